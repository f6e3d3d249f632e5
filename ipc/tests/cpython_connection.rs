//! CPython 3.11's `_TestConnection` and `_TestPoll` (`Lib/test/_test_multiprocessing.py`),
//! ported to `ipc::Pipe` and `ipc::Connection`; each test is named after its original.
//! Python's `EOFError` is `FrameError::Eof`, its `OSError` on a one-way end an
//! `FrameError::Io`. Timed assertions keep only their lower bound. What is not ported, and why,
//! is in the chapter README's conformance table.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use ipc::{Connection, FrameError, Pipe};
use lesson::within;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use processes::Process;

const LONG: Duration = Duration::from_secs(60);
const TIMEOUT1: Duration = Duration::from_millis(100);

static FORK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    FORK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Python's `[1, 2.25, None]`, as a type.
type Seq = (i64, f64, Option<i64>);

/// The child's side of `_echo`: send back every message's bytes until an empty one.
fn echo<S: 'static, R: 'static>(conn: Connection<S, R>) -> Process {
    Process::new(move || -> Result<(), FrameError> {
        loop {
            let msg = conn.recv_bytes()?;
            if msg.is_empty() {
                return Ok(());
            }
            conn.send_bytes(&msg)?;
        }
    })
}

fn ints_as_bytes(ints: &[i32]) -> Vec<u8> {
    ints.iter().flat_map(|i| i.to_ne_bytes()).collect()
}

#[test]
fn test_connection() {
    let _fork = serial();
    within(LONG, "test_connection", || {
        let (conn, child_conn) = Pipe::duplex::<Seq, Seq>().unwrap();
        let mut p = echo(child_conn).close_in_child(&conn);
        p.start().unwrap();
        let seq: Seq = (1, 2.25, None);
        let msg = b"hello world".to_vec();
        let longmsg = msg.repeat(10);
        let arr = [0i32, 1, 2, 3];
        assert!(conn.as_raw_fd() >= 0);
        conn.send(&seq).unwrap();
        assert_eq!(conn.recv().unwrap(), seq);
        conn.send_bytes(&msg).unwrap();
        assert_eq!(conn.recv_bytes().unwrap(), msg);
        // recv_bytes_into an array of 10 ints: the message's length in bytes, the rest untouched.
        let mut buffer = [0u8; 40];
        conn.send_bytes(&ints_as_bytes(&arr)).unwrap();
        assert_eq!(conn.recv_bytes_into(&mut buffer, 0).unwrap(), 16);
        let mut expected = ints_as_bytes(&arr);
        expected.resize(40, 0);
        assert_eq!(&buffer[..], &expected[..]);
        // ... at an offset of 3 ints.
        let mut buffer = [0u8; 40];
        conn.send_bytes(&ints_as_bytes(&arr)).unwrap();
        assert_eq!(conn.recv_bytes_into(&mut buffer, 12).unwrap(), 16);
        let mut expected = vec![0u8; 12];
        expected.extend(ints_as_bytes(&arr));
        expected.resize(40, 0);
        assert_eq!(&buffer[..], &expected[..]);
        // A buffer too short: BufferTooShort carrying the message.
        let mut buffer = [b' '; 40];
        conn.send_bytes(&longmsg).unwrap();
        match conn.recv_bytes_into(&mut buffer, 0) {
            Err(FrameError::BufferTooShort(m)) => assert_eq!(m, longmsg),
            other => panic!("expected BufferTooShort, got {other:?}"),
        }
        assert!(!conn.poll(Duration::ZERO).unwrap());
        let t = Instant::now();
        assert!(!conn.poll(TIMEOUT1).unwrap());
        assert!(t.elapsed() >= TIMEOUT1);
        conn.send(&(0, 0.0, Some(0))).unwrap();
        assert!(conn.poll(LONG).unwrap());
        assert_eq!(conn.recv().unwrap(), (0, 0.0, Some(0)));
        let really_big_msg = vec![b'X'; 16 << 20];
        conn.send_bytes(&really_big_msg).unwrap();
        assert!(conn.recv_bytes().unwrap() == really_big_msg);
        conn.send_bytes(b"").unwrap(); // tell the child to quit
        assert!(conn.readable());
        assert!(conn.writable());
        assert!(matches!(conn.recv(), Err(FrameError::Eof)));
        assert!(matches!(conn.recv_bytes(), Err(FrameError::Eof)));
        assert_eq!(p.join().unwrap(), 0);
    });
}

#[test]
fn test_duplex_false() {
    let (reader, writer) = Pipe::oneway::<i32>().unwrap();
    writer.send(&1).unwrap();
    assert_eq!(reader.recv().unwrap(), 1);
    assert!(reader.readable());
    assert!(!reader.writable());
    assert!(!writer.readable());
    assert!(writer.writable());
    assert!(matches!(reader.send(&()), Err(FrameError::Io(_))));
    assert!(matches!(writer.recv(), Err(FrameError::Io(_))));
    assert!(matches!(
        writer.poll(Duration::ZERO),
        Err(FrameError::Io(_))
    ));
}

#[test]
fn test_spawn_close() {
    let _fork = serial();
    within(LONG, "test_spawn_close", || {
        let (conn, child_conn) = Pipe::duplex::<(), ()>().unwrap();
        // The parent closes the child's end as soon as the child is started.
        let mut p = echo(child_conn).close_in_child(&conn);
        p.start().unwrap();
        conn.send_bytes(b"hello").unwrap();
        assert_eq!(conn.recv_bytes().unwrap(), b"hello");
        conn.send_bytes(b"").unwrap();
        conn.close();
        assert_eq!(p.join().unwrap(), 0);
    });
}

#[test]
fn test_sendbytes() {
    let msg = b"abcdefghijklmnopqrstuvwxyz";
    let (a, b) = Pipe::duplex::<(), ()>().unwrap();
    a.send_bytes(msg).unwrap();
    assert_eq!(b.recv_bytes().unwrap(), msg);
    // Python's offset and size arguments are a slice here.
    a.send_bytes(&msg[5..]).unwrap();
    assert_eq!(b.recv_bytes().unwrap(), &msg[5..]);
    a.send_bytes(&msg[7..7 + 8]).unwrap();
    assert_eq!(b.recv_bytes().unwrap(), &msg[7..15]);
    a.send_bytes(&msg[26..]).unwrap();
    assert_eq!(b.recv_bytes().unwrap(), b"");
    a.send_bytes(&msg[26..26]).unwrap();
    assert_eq!(b.recv_bytes().unwrap(), b"");
    // Python's ValueError cases are slices that do not exist: refused before any call.
    assert!(msg.get(27..).is_none());
    assert!(msg.get(22..22 + 5).is_none());
    assert!(msg.get(26..26 + 1).is_none());
}

#[test]
fn test_context() {
    let (a, b) = Pipe::duplex::<i32, i32>().unwrap();
    {
        a.send(&1729).unwrap();
        assert_eq!(b.recv().unwrap(), 1729);
    }
    // Leaving Python's `with` closes both; here `close` consumes an end, so a closed end
    // cannot be used at all (no OSError to test): what remains is the peer's view.
    a.close();
    assert!(matches!(b.recv(), Err(FrameError::Eof)));
    b.close();
}

// _TestPoll

#[test]
fn test_empty_string() {
    let (a, b) = Pipe::duplex::<(), ()>().unwrap();
    assert!(!a.poll(Duration::ZERO).unwrap());
    b.send_bytes(b"").unwrap();
    assert!(a.poll(Duration::ZERO).unwrap());
    assert!(a.poll(Duration::ZERO).unwrap());
}

#[test]
fn test_strings() {
    let _fork = serial();
    within(LONG, "test_strings", || {
        let strings: [&[u8]; 8] = [b"hello", b"", b"a", b"b", b"", b"bye", b"", b"lop"];
        let (a, b) = Pipe::duplex::<(), ()>().unwrap();
        let mut p = Process::new(move || -> Result<(), FrameError> {
            for s in strings {
                std::thread::sleep(Duration::from_millis(10));
                b.send_bytes(s)?;
            }
            Ok(())
        })
        .close_in_child(&a);
        p.start().unwrap();
        for s in strings {
            let t = Instant::now();
            while !a.poll(Duration::from_millis(10)).unwrap() {
                assert!(t.elapsed() < LONG);
            }
            assert_eq!(a.recv_bytes().unwrap(), s);
        }
        assert_eq!(p.join().unwrap(), 0);
    });
}

#[test]
fn test_boundaries() {
    let _fork = serial();
    within(LONG, "test_boundaries", || {
        let (r, w) = Pipe::oneway::<()>().unwrap();
        // A child polls its copy of the reading end: that must not pull part of a message
        // out of the pipe (which would corrupt it for the parent).
        let raw = r.as_raw_fd();
        let mut p = Process::new(move || -> Result<(), FrameError> {
            // SAFETY: `raw` is the child's inherited copy of the reading end, open for the
            // whole body (the child never closes it).
            let fd = unsafe { BorrowedFd::borrow_raw(raw) };
            let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::from(5000u16))?;
            Ok(())
        })
        .close_in_child(&w);
        p.start().unwrap();
        let l: [&[u8]; 2] = [b"first", b"second"];
        for obj in l {
            w.send_bytes(obj).unwrap();
        }
        w.close();
        assert_eq!(p.join().unwrap(), 0);
        assert_eq!(r.recv_bytes().unwrap(), l[0]);
        assert_eq!(r.recv_bytes().unwrap(), l[1]);
    });
}

#[test]
fn test_dont_merge() {
    let _fork = serial();
    within(LONG, "test_dont_merge", || {
        let (a, b) = Pipe::duplex::<(), ()>().unwrap();
        assert!(!a.poll(Duration::ZERO).unwrap());
        assert!(!a.poll(TIMEOUT1).unwrap());
        let mut p = Process::new(move || -> Result<(), FrameError> {
            b.send_bytes(b"a")?;
            b.send_bytes(b"b")?;
            b.send_bytes(b"cd")
        })
        .close_in_child(&a);
        p.start().unwrap();
        assert_eq!(a.recv_bytes().unwrap(), b"a");
        assert!(a.poll(Duration::from_secs(1)).unwrap());
        assert!(a.poll(Duration::from_secs(1)).unwrap());
        assert_eq!(a.recv_bytes().unwrap(), b"b");
        assert!(a.poll(Duration::from_secs(1)).unwrap());
        assert!(a.poll(Duration::from_secs(1)).unwrap());
        assert!(a.poll(Duration::ZERO).unwrap());
        assert_eq!(a.recv_bytes().unwrap(), b"cd");
        assert_eq!(p.join().unwrap(), 0);
    });
}
