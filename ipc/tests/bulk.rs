//! Large typed messages (issue 22): a byte string that ends a large frame (a 1 MiB `ByteBuf`,
//! a struct whose last field is one) is read from the socket straight into the value, not into
//! the end's read-ahead buffer and then copied. These check what that path delivers (every
//! byte, in order, across frames larger than the socket buffer, with small messages and other
//! large types between), that it holds the message once, and that a cut, malformed or
//! over-limit large frame still gives the error it gave before.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ipc::Pipe;
use ipc::frame::{self, FrameError, FrameReader};
use lesson::testing::Rng;
use nix::sys::socket::{setsockopt, sockopt};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

const LIMIT: Duration = Duration::from_secs(120);
const MIB: usize = 1 << 20;

/// Counts the heap memory of the threads that ask for it (the receiving thread), so that a
/// sender thread's allocations do not blur the figure.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn counted(delta: isize) {
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = LIVE.try_with(|live| {
                live.set(live.get() + delta);
                let _ = PEAK.try_with(|peak| peak.set(peak.get().max(live.get())));
            });
        }
    });
}

// SAFETY: every call is passed on to the system allocator unchanged; the counters are
// thread-locals without destructors, touched only after it returns, and they allocate nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is the system allocator's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            counted(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            counted(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as in `alloc`.
        unsafe { System.dealloc(ptr, layout) };
        counted(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as in `alloc`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            counted(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// `f`'s result and the peak of heap memory this thread held during it, above what it held
/// when `f` started.
fn peak_of<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LIVE.with(|l| l.set(0));
    PEAK.with(|p| p.set(0));
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (r, PEAK.with(Cell::get).max(0) as usize)
}

/// What the tests send: a large byte string as the whole value, after a field, not last (the
/// frame is then read whole and decoded as before), large text, and small messages.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
enum Msg {
    Small(u32),
    Bytes(ByteBuf),
    Tagged { id: u32, data: ByteBuf },
    NotLast(ByteBuf, u32),
    Text(String),
}

/// `len` bytes that differ from message to message and from place to place.
fn pattern(i: usize, len: usize) -> Vec<u8> {
    let mut rng = Rng::new(i as u64);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Message `i` of a test sequence of `n`: the edge sizes first, then random kinds and sizes.
fn message(i: usize, seed: u64) -> Msg {
    const EDGES: [usize; 12] = [
        0,
        1,
        1023,
        1024,
        (64 << 10) - 1,
        64 << 10,
        (64 << 10) + 1,
        200_000,
        MIB,
        3 * MIB + 17,
        5 * MIB,
        2 * MIB,
    ];
    let mut rng = Rng::new(seed ^ (i as u64).wrapping_mul(0x1000_0000_01b3));
    let len = match EDGES.get(i / 3) {
        Some(&len) => len,
        None => match rng.below(3) {
            0 => rng.below(4096),
            1 => rng.below(300_000),
            _ => rng.below(3 * MIB),
        },
    };
    // Each edge size as a bare string, after a field, and not last; afterwards any kind.
    let kind = if i < 3 * EDGES.len() {
        i % 3
    } else {
        rng.below(5)
    };
    match kind {
        0 => Msg::Bytes(ByteBuf::from(pattern(i, len))),
        1 => Msg::Tagged {
            id: i as u32,
            data: ByteBuf::from(pattern(i, len)),
        },
        2 => Msg::NotLast(ByteBuf::from(pattern(i, len)), i as u32),
        3 => Msg::Text(
            pattern(i, len)
                .iter()
                .map(|b| char::from(b'a' + b % 26))
                .collect(),
        ),
        _ => Msg::Small(i as u32),
    }
}

/// The first place two byte strings differ, for a readable failure.
fn same(what: &str, got: &[u8], want: &[u8]) {
    if got != want {
        let at = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: {} bytes received, {} sent, first difference at {at:?}",
            got.len(),
            want.len()
        );
    }
}

fn check(i: usize, got: &Msg, want: &Msg) {
    let what = format!("message {i}");
    match (got, want) {
        (Msg::Bytes(g), Msg::Bytes(w)) | (Msg::NotLast(g, _), Msg::NotLast(w, _)) => {
            same(&what, g, w);
        }
        (Msg::Tagged { data: g, .. }, Msg::Tagged { data: w, .. }) => same(&what, g, w),
        (Msg::Text(g), Msg::Text(w)) => same(&what, g.as_bytes(), w.as_bytes()),
        _ => {}
    }
    // Lengths and the small fields, now that large contents are known equal.
    assert!(got == want, "message {i}: kinds or small fields differ");
}

/// Send `n` messages of the sequence from another thread, each followed by a small one, and
/// check every one as it arrives.
fn sequence(n: usize, seed: u64, socket_buffer: Option<usize>) {
    let (ours, theirs) = Pipe::duplex::<Msg, ()>().unwrap();
    if let Some(size) = socket_buffer {
        setsockopt(&ours, sockopt::SndBuf, &size).unwrap();
        setsockopt(&theirs, sockopt::RcvBuf, &size).unwrap();
    }
    let sender = std::thread::spawn(move || {
        for i in 0..n {
            ours.send(&message(i, seed)).unwrap();
            ours.send(&Msg::Small(i as u32)).unwrap();
        }
    });
    for i in 0..n {
        let got = theirs.recv_timeout(LIMIT).unwrap();
        check(i, &got, &message(i, seed));
        assert_eq!(theirs.recv_timeout(LIMIT).unwrap(), Msg::Small(i as u32));
    }
    sender.join().unwrap();
    assert!(matches!(theirs.recv(), Err(FrameError::Eof)));
}

#[test]
fn large_byte_strings_arrive_exactly_with_small_messages_between() {
    let seed = lesson::testing::seed("BULK_SEED");
    lesson::within(LIMIT, "bulk sequence", move || sequence(60, seed, None));
}

#[test]
fn large_byte_strings_arrive_exactly_through_a_tiny_socket_buffer() {
    // Every `read` then brings a few KiB: the string's buffer grows over many reads.
    lesson::within(LIMIT, "bulk sequence, small buffer", || {
        sequence(40, 7, Some(4096));
    });
}

#[test]
fn a_large_byte_string_is_held_once_on_receipt() {
    // Before: the frame filled the end's read-ahead buffer (4 MiB), and decoding copied it
    // into a new 4 MiB `ByteBuf`: 8 MiB. Now the string is read into the `ByteBuf` itself.
    lesson::within(LIMIT, "one copy", || {
        const SIZE: usize = 4 * MIB;
        let (a, b) = Pipe::duplex::<Msg, Msg>().unwrap();
        let sender = std::thread::spawn(move || {
            a.send(&Msg::Small(1)).unwrap();
            a.send(&Msg::Bytes(ByteBuf::from(pattern(1, SIZE))))
                .unwrap();
            a.send(&Msg::Tagged {
                id: 2,
                data: ByteBuf::from(pattern(2, SIZE)),
            })
            .unwrap();
            a
        });
        // The end's buffer exists after a first message.
        assert_eq!(b.recv_timeout(LIMIT).unwrap(), Msg::Small(1));
        for i in 1..=2 {
            assert!(b.poll(LIMIT).unwrap());
            let (got, peak) = peak_of(|| b.recv().unwrap());
            check(i, &got, &message_of(i, SIZE));
            assert!(
                peak <= SIZE + SIZE / 8,
                "message {i}: receiving {SIZE} bytes held {peak} bytes at the peak"
            );
        }
        drop(sender.join().unwrap());
    });
}

fn message_of(i: usize, size: usize) -> Msg {
    match i {
        1 => Msg::Bytes(ByteBuf::from(pattern(1, size))),
        _ => Msg::Tagged {
            id: 2,
            data: ByteBuf::from(pattern(2, size)),
        },
    }
}

/// postcard's unsigned varint (how it writes a `usize`).
fn varint(n: usize) -> Vec<u8> {
    postcard::to_stdvec(&n).expect("a usize always encodes")
}

/// Write `bytes` from another thread (they are larger than the socket buffer), then close.
fn raw_writer(end: impl AsFd + Send + 'static, bytes: Vec<u8>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        // A reader that stopped early makes this fail (EPIPE): that is its business.
        let _ = frame::write_all(end.as_fd(), &bytes);
    })
}

#[test]
fn a_large_frame_cut_short_is_truncated() {
    lesson::within(LIMIT, "cut short", || {
        const CLAIM: usize = 3 * MIB;
        // `Msg::Bytes` (variant 1) whose string runs to the end of a 3 MiB frame, and
        // `Msg::Tagged` (variant 2, id 9): 1.5 MiB of each arrive, then the end.
        for (variant, field) in [(1u8, vec![]), (2u8, vec![9u8])] {
            let mut body = vec![variant];
            body.extend(&field);
            let before = body.len();
            body.extend(varint(CLAIM - before - varint(CLAIM).len()));
            assert_eq!(body.len(), before + varint(CLAIM).len());
            body.extend(pattern(3, CLAIM * 2 / 4 - body.len()));
            let sent = body.len();
            let mut bytes = (CLAIM as u32).to_le_bytes().to_vec();
            bytes.extend(body);
            let (w, r) = Pipe::duplex::<Msg, ()>().unwrap();
            let writer = raw_writer(w, bytes);
            match r.recv() {
                Err(FrameError::Truncated { expected, got }) => {
                    assert_eq!((expected, got), (4 + CLAIM, 4 + sent));
                }
                other => panic!("variant {variant}: {other:?}"),
            }
            writer.join().unwrap();
        }
    });
}

#[test]
fn a_large_frame_over_the_limit_is_refused_unread() {
    lesson::within(LIMIT, "over the limit", || {
        const MAX: usize = MIB;
        let (a, b) = Pipe::duplex::<Msg, Msg>().unwrap();
        let b = b.with_max_frame(MAX);
        // Exactly the limit: variant 1, a 3-byte length, the rest the string.
        let at_limit = Msg::Bytes(ByteBuf::from(pattern(5, MAX - 4)));
        assert_eq!(frame::encode(&at_limit, usize::MAX).unwrap().len(), 4 + MAX);
        let over = Msg::Bytes(ByteBuf::from(pattern(6, MAX - 3)));
        let sender = std::thread::spawn(move || {
            a.send(&at_limit).unwrap();
            // Never read past its header: this blocks until the reader's end closes.
            assert!(a.send(&over).is_err());
        });
        let got = b.recv_timeout(LIMIT).unwrap();
        check(0, &got, &Msg::Bytes(ByteBuf::from(pattern(5, MAX - 4))));
        let (r, peak) = peak_of(|| b.recv_timeout(LIMIT));
        match r {
            Err(FrameError::TooLarge { claimed, max }) => {
                assert_eq!((claimed, max), (MAX + 1, MAX));
            }
            other => panic!("{other:?}"),
        }
        assert!(peak < 64 << 10, "refusing the frame held {peak} bytes");
        drop(b);
        sender.join().unwrap();
    });
}

#[test]
fn a_malformed_large_frame_is_a_decode_error_and_the_next_one_reads() {
    lesson::within(LIMIT, "malformed", || {
        const N: usize = 2 * MIB;
        let mut bytes = Vec::new();
        let mut push = |body: Vec<u8>| {
            bytes.extend((body.len() as u32).to_le_bytes());
            bytes.extend(body);
        };
        // A string claiming 10 bytes more than the frame holds.
        let mut body = vec![1u8];
        body.extend(varint(N + 10));
        body.extend(pattern(7, N));
        push(body);
        // `NotLast` whose string runs to the frame's end: its `u32` is missing.
        let mut body = vec![3u8];
        body.extend(varint(N));
        body.extend(pattern(8, N));
        push(body);
        // An unknown variant in front of a large frame.
        let mut body = vec![9u8];
        body.extend(varint(N));
        body.extend(pattern(9, N));
        push(body);
        // A good one after each.
        push(frame::encode(&Msg::Small(77), usize::MAX).unwrap()[4..].to_vec());
        push(
            frame::encode(&Msg::Bytes(ByteBuf::from(pattern(10, N))), usize::MAX).unwrap()[4..]
                .to_vec(),
        );
        let (w, r) = Pipe::duplex::<Msg, ()>().unwrap();
        let writer = raw_writer(w, bytes);
        for what in ["overlong string", "missing field", "unknown variant"] {
            match r.recv() {
                Err(FrameError::Decode(_)) => {}
                other => panic!("{what}: {other:?}"),
            }
        }
        assert_eq!(r.recv().unwrap(), Msg::Small(77));
        check(
            10,
            &r.recv().unwrap(),
            &Msg::Bytes(ByteBuf::from(pattern(10, N))),
        );
        assert!(matches!(r.recv(), Err(FrameError::Eof)));
        writer.join().unwrap();
    });
}

#[test]
fn a_time_out_inside_a_large_frame_loses_nothing() {
    // A socket with a receive time-out: the reader gives up in the middle of a large frame's
    // string, and the next `read` goes on with it where it was.
    lesson::within(LIMIT, "time-out mid-frame", || {
        const N: usize = 3 * MIB;
        let (w, r) = UnixStream::pair().unwrap();
        r.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let msg = Msg::Tagged {
            id: 4,
            data: ByteBuf::from(pattern(11, N)),
        };
        let mut bytes = frame::encode(&msg, usize::MAX).unwrap();
        bytes.extend(frame::encode(&Msg::Small(5), usize::MAX).unwrap());
        let (go, wait) = mpsc::channel::<()>();
        let writer = std::thread::spawn(move || {
            let (first, rest) = bytes.split_at(N / 3);
            frame::write_all(w.as_fd(), first).unwrap();
            // The rest only once the reader has timed out at least once.
            wait.recv_timeout(LIMIT).unwrap();
            frame::write_all(w.as_fd(), rest).unwrap();
        });
        let mut reader = FrameReader::new(frame::DEFAULT_MAX_FRAME);
        let deadline = Instant::now() + LIMIT;
        let mut timeouts = 0;
        let got = loop {
            assert!(Instant::now() < deadline, "no message by the deadline");
            match reader.read::<Msg>(&r) {
                Err(FrameError::Timeout) => {
                    if timeouts == 0 {
                        go.send(()).unwrap();
                    }
                    timeouts += 1;
                }
                other => break other.unwrap(),
            }
        };
        assert!(timeouts >= 1);
        check(4, &got, &msg);
        let next = loop {
            assert!(Instant::now() < deadline, "no message by the deadline");
            match reader.read::<Msg>(&r) {
                Err(FrameError::Timeout) => {}
                other => break other.unwrap(),
            }
        };
        assert_eq!(next, Msg::Small(5));
        writer.join().unwrap();
    });
}
