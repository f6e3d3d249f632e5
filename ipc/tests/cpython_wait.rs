//! CPython 3.11's `TestWait` (`Lib/test/_test_multiprocessing.py`): `connection::wait` over
//! several `Connection`s, sockets and a process sentinel; each test named after its original.
//!
//! `processes::Process` has no `sentinel()` in this crate's version of `processes`: the
//! sentinel here is `ipc::connection::sentinel(pid)`, a pidfd (what a sentinel is on Linux:
//! readable once the process has exited). Python's timed assertions keep their lower bound only.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use ipc::connection::{Waitable, wait};
use ipc::{Pipe, Semaphore};
use lesson::within;
use processes::Process;

const LONG: Duration = Duration::from_secs(60);

static FORK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    FORK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A pause of up to 100 ms, different in each child and message (Python's `random() * 0.1`).
fn jitter(k: u64, i: u64) -> Duration {
    Duration::from_micros((k * 7919 + i * 104_729) % 100_000)
}

fn test_wait_with(slow: bool) {
    let mut readers = Vec::new();
    let mut procs = Vec::new();
    for k in 0..4u64 {
        let (r, w) = Pipe::oneway::<(u32, u32)>().unwrap();
        let mut p = Process::new(move || -> anyhow::Result<()> {
            for i in 0..10 {
                if slow {
                    std::thread::sleep(jitter(k, i));
                }
                w.send(&(i as u32, std::process::id()))?;
            }
            Ok(())
        })
        .close_in_child(&r);
        p.start().unwrap();
        readers.push(r);
        procs.push(p);
    }
    let mut messages = Vec::new();
    while !readers.is_empty() {
        let ready = wait(&readers.iter().collect::<Vec<_>>(), Some(LONG)).unwrap();
        assert!(!ready.is_empty(), "nothing became ready");
        for &i in ready.iter().rev() {
            match readers[i].recv() {
                Ok(m) => messages.push(m),
                Err(ipc::FrameError::Eof) => {
                    readers.remove(i);
                }
                Err(e) => panic!("{e}"),
            }
        }
    }
    let mut expected: Vec<(u32, u32)> = procs
        .iter()
        .flat_map(|p| {
            let pid = p.pid().unwrap() as u32;
            (0..10).map(move |i| (i, pid))
        })
        .collect();
    for p in &mut procs {
        assert_eq!(p.join().unwrap(), 0);
    }
    messages.sort();
    expected.sort();
    assert_eq!(messages, expected);
}

#[test]
fn test_wait() {
    let _fork = serial();
    within(LONG, "test_wait", || test_wait_with(false));
}

#[test]
fn test_wait_slow() {
    let _fork = serial();
    within(LONG, "test_wait_slow", || test_wait_with(true));
}

fn test_wait_socket_with(slow: bool) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut procs: Vec<Process> = (0..4u64)
        .map(|k| {
            let mut p = Process::new(move || -> anyhow::Result<()> {
                let mut s = std::net::TcpStream::connect(addr)?;
                for i in 0..10 {
                    if slow {
                        std::thread::sleep(jitter(k, i));
                    }
                    s.write_all(format!("{i}\n").as_bytes())?;
                }
                Ok(())
            });
            p.start().unwrap();
            p
        })
        .collect();
    let mut readers: Vec<std::net::TcpStream> =
        (0..4).map(|_| listener.accept().unwrap().0).collect();
    drop(listener);
    let mut got: Vec<Vec<u8>> = vec![Vec::new(); 4];
    let mut owner: Vec<usize> = (0..4).collect();
    while !readers.is_empty() {
        let ready = wait(&readers.iter().collect::<Vec<_>>(), Some(LONG)).unwrap();
        assert!(!ready.is_empty(), "nothing became ready");
        for &i in ready.iter().rev() {
            let mut buf = [0u8; 32];
            match readers[i].read(&mut buf).unwrap() {
                0 => {
                    readers.remove(i);
                    owner.remove(i);
                }
                n => got[owner[i]].extend_from_slice(&buf[..n]),
            }
        }
    }
    for p in &mut procs {
        assert_eq!(p.join().unwrap(), 0);
    }
    let expected: String = (0..10).map(|i| format!("{i}\n")).collect();
    for g in got {
        assert_eq!(String::from_utf8(g).unwrap(), expected);
    }
}

#[test]
fn test_wait_socket() {
    let _fork = serial();
    within(LONG, "test_wait_socket", || test_wait_socket_with(false));
}

#[test]
fn test_wait_socket_slow() {
    let _fork = serial();
    within(LONG, "test_wait_socket_slow", || {
        test_wait_socket_with(true)
    });
}

/// Python waits 5 s; 200 ms here.
#[test]
fn test_wait_timeout() {
    within(LONG, "test_wait_timeout", || {
        let timeout = Duration::from_millis(200);
        let (a, b) = Pipe::duplex::<(), ()>().unwrap();
        let began = Instant::now();
        assert!(wait(&[&a, &b], Some(timeout)).unwrap().is_empty());
        assert!(began.elapsed() >= timeout);
        b.send(&()).unwrap();
        assert_eq!(wait(&[&a, &b], Some(LONG)).unwrap(), [0]);
    });
}

fn sentinel(pid: i32) -> OwnedFd {
    ipc::connection::sentinel(pid).unwrap()
}

/// Python's child sleeps 3 s; 300 ms here.
#[test]
fn test_wait_integer() {
    let _fork = serial();
    within(LONG, "test_wait_integer", || {
        let expected = Duration::from_millis(300);
        let sem = Semaphore::new(0).unwrap();
        let (a, b) = Pipe::duplex::<(), ()>().unwrap();
        let s = sem.clone();
        let mut p = Process::new(move || -> anyhow::Result<()> {
            s.release()?;
            std::thread::sleep(expected);
            Ok(())
        });
        p.start().unwrap();
        let sentinel = sentinel(p.pid().unwrap());
        sem.acquire_timeout(LONG)
            .unwrap()
            .unwrap()
            .forget()
            .unwrap();
        let all: [&dyn Waitable; 3] = [&a, &sentinel, &b];
        assert_eq!(wait(&all, Some(LONG)).unwrap(), [1], "only the sentinel");
        a.send(&()).unwrap();
        assert_eq!(wait(&all, Some(LONG)).unwrap(), [1, 2]);
        b.send(&()).unwrap();
        assert_eq!(wait(&all, Some(LONG)).unwrap(), [0, 1, 2]);
        assert_eq!(p.join().unwrap(), 0);
    });
}

/// Python passes `timeout=-1`; a `Duration` is never negative: zero is the same request.
#[test]
fn test_neg_timeout() {
    let (a, _b) = Pipe::duplex::<(), ()>().unwrap();
    let began = Instant::now();
    assert!(wait(&[&a], Some(Duration::ZERO)).unwrap().is_empty());
    assert!(began.elapsed() < LONG);
}

/// Beyond Python: a message already read ahead into an end counts as ready, though its
/// descriptor is not readable any more.
#[test]
fn wait_sees_messages_read_ahead() {
    let (a, b) = Pipe::duplex::<u8, u8>().unwrap();
    a.send(&1).unwrap();
    a.send(&2).unwrap();
    assert_eq!(b.recv().unwrap(), 1);
    assert_eq!(wait(&[&b], Some(Duration::ZERO)).unwrap(), [0]);
    assert_eq!(b.recv().unwrap(), 2);
    assert!(wait(&[&b], Some(Duration::ZERO)).unwrap().is_empty());
}
