//! Hostile and random frames against every reader of this crate: `read_frame`
//! (`Connection::recv`), `read_one_frame` (the Manager's client and server), `FrameReader`
//! (`recv_buffered`), `read_bytes_into` (`recv_bytes`), `decode`, and `Queue::get`.
//!
//! Each reader must answer with an error, never a panic, an abort or a hang, and must not
//! allocate for bytes that never arrived: a counting global allocator (this binary's own)
//! measures each call's peak of live heap memory, which must stay under
//! `BASE + PER_BYTE x (bytes sent)`. `BASE` (68 KiB) covers the fixed buffers (a
//! `FrameReader` reads 64 KiB at a time) and a decoded map's first node (a `BTreeMap` node is
//! about 500 bytes, even for one entry of 3 bytes); `PER_BYTE` (32) is what a decoded value may
//! legitimately take per byte of its encoding (a 2-byte `Data::Int(0)` is a 32-byte `Data`).
//!
//! The readers run in a forked child process: a stack overflow is an abort, which would take
//! the whole test binary down instead of failing one test. The seed of the random cases is
//! printed; `FUZZ_SEED=N cargo test -p ipc --test frame_fuzz` repeats a run.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use ipc::frame::{self, FrameError, FrameReader};
use ipc::{Data, Pipe, Queue};
use lesson::testing::Rng;
use processes::Process;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_bytes::ByteBuf;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let live = LIVE.fetch_add(n, Relaxed) + n;
    PEAK.fetch_max(live, Relaxed);
}

// SAFETY: every call is passed on to the system allocator unchanged; the counters are atomics
// touched only after it returns, and they allocate nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on as it is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as in `alloc`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as in `alloc`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The peak of live heap memory above what was live when `f` started.
fn peak_of<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let r = f();
    (r, PEAK.load(Relaxed).saturating_sub(base))
}

const BASE: usize = (64 + 4) << 10;
const PER_BYTE: usize = 32;
const MAX: usize = frame::DEFAULT_MAX_FRAME;

/// A field, then a byte string that may run to the frame's end: a large one is read
/// straight into the value (the tail path of `FrameReader::read`).
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Tailed {
    id: u16,
    data: ByteBuf,
}

/// postcard's unsigned varint (how it writes a `usize`).
fn varint(n: usize) -> Vec<u8> {
    postcard::to_stdvec(&n).expect("a usize always encodes")
}

/// A frame of `claim` body bytes shaped as `before` and then a byte string running to its
/// end, of which only `sent` body bytes follow the header.
fn tail_claim(claim: usize, before: &[u8], sent: usize, rng: &mut Rng) -> Vec<u8> {
    let mut len = claim - before.len() - varint(claim).len();
    if before.len() + varint(len).len() + len != claim {
        len += 1;
    }
    let mut body = before.to_vec();
    body.extend(varint(len));
    assert_eq!(body.len() + len, claim, "tail_claim arithmetic");
    let rest = sent.saturating_sub(body.len());
    body.extend(rng.bytes(rest));
    body.truncate(sent);
    let mut out = (claim as u32).to_le_bytes().to_vec();
    out.extend(body);
    out
}

/// A large frame (64-100 KiB) ending in a byte string, as a `ByteBuf` or a `Tailed`, whole,
/// cut short or with a few bytes changed (most near its start: the lengths).
fn large_tail(rng: &mut Rng) -> Vec<u8> {
    let claim = (64 << 10) + rng.below(36 << 10);
    let before: &[u8] = if rng.below(2) == 0 { &[] } else { &[7] };
    let mut bytes = tail_claim(claim, before, claim, rng);
    match rng.below(4) {
        0 => {}
        1 => bytes.truncate(rng.below(bytes.len() + 1)),
        2 => {
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(12);
                bytes[at] = rng.next() as u8;
            }
        }
        _ => {
            let at = rng.below(bytes.len());
            bytes[at] = rng.next() as u8;
        }
    }
    bytes
}

/// A user's recursive type: every reader of a recursive type must survive deep nesting.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Tree {
    kids: Vec<Tree>,
}

type Record = (u32, String, Vec<u8>, Option<Vec<i64>>);

/// Puts raw bytes on a queue as if they were one encoded item (a tuple of bytes encodes as
/// the bytes themselves), and gets a `T`: how a hostile or broken producer looks to `get`.
enum Raw<T> {
    Bytes(Vec<u8>),
    Got(T),
}

impl<T> Serialize for Raw<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let Raw::Bytes(bytes) = self else {
            panic!("only raw bytes are put")
        };
        let mut t = s.serialize_tuple(bytes.len())?;
        for b in bytes {
            t.serialize_element(b)?;
        }
        t.end()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Raw<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Raw::Got)
    }
}

fn socketpair() -> (OwnedFd, OwnedFd) {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .expect("socketpair")
}

/// A socket whose peer sent `bytes` and closed.
fn fed(bytes: &[u8]) -> OwnedFd {
    let (r, w) = socketpair();
    frame::write_all(w.as_fd(), bytes).expect("the test's bytes fit in the socket buffer");
    r
}

/// Why reading stopped; `Err` for what must never happen.
fn stop(e: &FrameError) -> Result<(), String> {
    match e {
        FrameError::Eof
        | FrameError::Truncated { .. }
        | FrameError::TooLarge { .. }
        | FrameError::Io(_) => Ok(()),
        other => Err(format!("unexpected end of reading: {other:?}")),
    }
}

/// Check one reader's peak against the bytes that were sent.
fn within_bound(reader: &str, case: &str, sent: usize, peak: usize) -> Result<(), String> {
    let bound = BASE + PER_BYTE * sent;
    if peak > bound {
        return Err(format!(
            "{reader} on {case}: {peak} bytes allocated for {sent} bytes sent (bound {bound})"
        ));
    }
    Ok(())
}

/// Every stream reader, decoding `T`, over `bytes`: each reads frames until the stream ends.
/// Returns how many frames decoded, and how many were refused as malformed, over all readers.
fn every_reader<T: DeserializeOwned>(case: &str, bytes: &[u8]) -> Result<(usize, usize), String> {
    let (mut ok, mut bad) = (0, 0);
    let mut count = |r: &Result<T, FrameError>| -> Result<bool, String> {
        match r {
            Ok(_) => ok += 1,
            Err(FrameError::Decode(_)) => bad += 1,
            Err(e) => {
                stop(e)?;
                return Ok(false);
            }
        }
        Ok(true)
    };
    let sent = bytes.len();
    let fd = fed(bytes);
    for _ in 0..100_000 {
        let (r, peak) = peak_of(|| frame::read_frame::<T>(&fd, MAX));
        within_bound("read_frame", case, sent, peak)?;
        if !count(&r)? {
            break;
        }
    }
    let fd = fed(bytes);
    let (r, peak) = peak_of(|| frame::read_one_frame::<T>(&fd, MAX));
    within_bound("read_one_frame", case, sent, peak)?;
    match &r {
        Err(FrameError::Io(_)) => {} // more than one frame in flight: refused, as it should be
        r => {
            count(r)?;
        }
    }
    let fd = fed(bytes);
    let mut reader = FrameReader::new(MAX);
    for _ in 0..100_000 {
        let (r, peak) = peak_of(|| reader.read::<T>(&fd));
        within_bound("FrameReader::read", case, sent, peak)?;
        if !count(&r)? {
            break;
        }
    }
    drop(reader);
    let fd = fed(bytes);
    let mut buf = Vec::new();
    for _ in 0..100_000 {
        let (r, peak) = peak_of(|| frame::read_bytes_into(&fd, &mut buf, MAX));
        within_bound("read_bytes_into", case, sent, peak)?;
        if let Err(e) = r {
            stop(&e)?;
            break;
        }
    }
    drop(buf);
    // A Connection, as a user holds it: its peer writes the raw bytes.
    let (ours, theirs) = Pipe::duplex::<T, ()>().map_err(|e| e.to_string())?;
    // SAFETY: `ours` is open for the whole block; the borrowed descriptor does not outlive it.
    let raw = unsafe { BorrowedFd::borrow_raw(ours.as_raw_fd()) };
    frame::write_all(raw, bytes).map_err(|e| e.to_string())?;
    drop(ours);
    for _ in 0..100_000 {
        let (r, peak) = peak_of(|| theirs.recv());
        within_bound("Connection::recv", case, sent, peak)?;
        if !count(&r)? {
            break;
        }
    }
    Ok((ok, bad))
}

/// `decode` of a body, and `Queue::get` of that body put as one item.
fn body_readers<T: DeserializeOwned>(
    case: &str,
    body: &[u8],
    q: &Queue<Raw<T>>,
) -> Result<(), String> {
    let sent = body.len();
    let (r, peak) = peak_of(|| frame::decode::<T>(body));
    within_bound("decode", case, sent, peak)?;
    if let Err(e) = r
        && !matches!(e, FrameError::Decode(_))
    {
        return Err(format!("decode on {case}: {e:?}"));
    }
    if body.len() + frame::HEADER > ipc::queue::CAPACITY {
        return Ok(());
    }
    q.put(&Raw::Bytes(body.to_vec()))
        .map_err(|e| e.to_string())?;
    let (r, peak) = peak_of(|| q.get_timeout(Duration::from_secs(10)));
    within_bound("Queue::get", case, sent, peak)?;
    match r {
        Ok(_) | Err(FrameError::Decode(_)) => Ok(()),
        Err(e) => Err(format!("Queue::get on {case}: {e:?}")),
    }
}

/// One frame holding `body`.
fn framed(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32).to_le_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

/// `Data` nested `depth` deep: a list holding a list ... holding the integer 0.
fn deep_data(depth: usize) -> Vec<u8> {
    let mut body = [2u8, 1].repeat(depth);
    body.extend([0, 0]);
    body
}

/// A `Tree` whose first kid has a first kid ... `depth` deep.
fn deep_tree(depth: usize) -> Vec<u8> {
    let mut body = vec![1u8; depth];
    body.push(0);
    body
}

static FORK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Run `body` in a forked child and require it to exit 0: a panic there is exit code 1 with
/// its message on stderr, an abort (a stack overflow) is -6.
fn in_child(what: &str, body: fn() -> Result<(), String>) {
    let _fork = FORK.lock().unwrap_or_else(|e| e.into_inner());
    let mut p = Process::new(body).named(what);
    p.start().expect("fork");
    let limit = Duration::from_secs(300);
    if !p.join_timeout(limit).expect("join") {
        let _ = p.kill();
        let _ = p.join();
        panic!("{what}: did not finish within {limit:?}");
    }
    let code = p.exitcode().expect("reaped");
    assert_eq!(
        code, 0,
        "{what}: the child failed (exit code {code}; -6 is an abort, e.g. a stack overflow; \
         its message is on stderr above)"
    );
}

#[test]
fn deep_nesting_is_a_decode_error_in_every_reader() {
    in_child("deep nesting", || {
        let q: Queue<Raw<Data>> = Queue::new().map_err(|e| e.to_string())?;
        let qt: Queue<Raw<Tree>> = Queue::new().map_err(|e| e.to_string())?;
        // The two cases: a 20 KB `Data`, a 40 KB user type.
        let data = deep_data(10_000);
        let tree = deep_tree(40_000);
        let (ok, bad) = every_reader::<Data>("Data 10 000 deep", &framed(&data))?;
        // Each of the 4 decoding readers refused it (read_bytes_into does not decode).
        if (ok, bad) != (0, 4) {
            return Err(format!("Data 10 000 deep: {ok} decoded, {bad} refused"));
        }
        let (ok, bad) = every_reader::<Tree>("Tree 40 000 deep", &framed(&tree))?;
        if (ok, bad) != (0, 4) {
            return Err(format!("Tree 40 000 deep: {ok} decoded, {bad} refused"));
        }
        for (what, r) in [
            ("decode Data", frame::decode::<Data>(&data).map(drop)),
            ("decode Tree", frame::decode::<Tree>(&tree).map(drop)),
        ] {
            match r {
                Err(e @ FrameError::Decode(_)) if e.to_string().contains("nested deeper") => {}
                other => return Err(format!("{what}: {other:?}")),
            }
        }
        body_readers("Data 10 000 deep", &data, &q)?;
        body_readers("Tree 40 000 deep", &tree, &qt)?;
        // Shallow nesting still decodes: the limit is not in the way of real messages.
        let shallow: Data = frame::decode(&deep_data(50)).map_err(|e| e.to_string())?;
        let mut d = &shallow;
        let mut levels = 0;
        while let Data::List(items) = d {
            d = &items[0];
            levels += 1;
        }
        if levels != 50 {
            return Err(format!("50 levels decoded as {levels}"));
        }
        Ok(())
    });
}

#[test]
fn a_claimed_length_costs_nothing_until_its_bytes_arrive() {
    in_child("huge claims", || {
        // Prefixes claiming 16 MiB (the limit itself) and just under it, followed by 10 bytes
        // and the end: every reader must see a truncated frame having allocated next to
        // nothing (before: the whole claim, allocated and zeroed up front).
        for claim in [MAX, MAX - 1, 1 << 20, 300_000] {
            let mut bytes = (claim as u32).to_le_bytes().to_vec();
            bytes.extend([7u8; 10]);
            let case = format!("a claim of {claim} bytes, 14 sent");
            let (ok, bad) = every_reader::<Vec<u8>>(&case, &bytes)?;
            if (ok, bad) != (0, 0) {
                return Err(format!("{case}: {ok} decoded, {bad} malformed"));
            }
        }
        // The same claims as byte strings running to the frame's end, bare and after a
        // field, with 2 000 bytes of them sent: their readers decode as the bytes arrive
        // (FrameReader, Connection) and must not reserve for the claim either.
        let mut rng = Rng::new(1);
        for claim in [MAX, MAX - 1, 1 << 20, 300_000, 64 << 10] {
            let case = format!("a byte string claiming {claim} bytes, 2 000 sent");
            let (ok, bad) =
                every_reader::<ByteBuf>(&case, &tail_claim(claim, &[], 2000, &mut rng))?;
            if (ok, bad) != (0, 0) {
                return Err(format!("{case}: {ok} decoded, {bad} malformed"));
            }
            let bytes = tail_claim(claim, &[7], 2000, &mut rng);
            let (ok, bad) = every_reader::<Tailed>(&case, &bytes)?;
            if (ok, bad) != (0, 0) {
                return Err(format!(
                    "{case} after a field: {ok} decoded, {bad} malformed"
                ));
            }
        }
        // Over the limit: refused before anything is read.
        let bytes = u32::MAX.to_le_bytes();
        every_reader::<Vec<u8>>("a claim of 4 GiB", &bytes)?;
        Ok(())
    });
}

#[test]
fn random_truncated_and_mutated_frames_never_panic_abort_or_overallocate() {
    in_child("random frames", || {
        let seed = lesson::testing::seed("FUZZ_SEED");
        let mut rng = Rng::new(seed);
        let qd: Queue<Raw<Data>> = Queue::new().map_err(|e| e.to_string())?;
        let qr: Queue<Raw<Record>> = Queue::new().map_err(|e| e.to_string())?;
        let qm: Queue<Raw<BTreeMap<String, Vec<u16>>>> = Queue::new().map_err(|e| e.to_string())?;
        let qt: Queue<Raw<Tree>> = Queue::new().map_err(|e| e.to_string())?;
        let samples: Vec<Vec<u8>> = vec![
            frame::encode(
                &Data::List(vec![Data::Int(-5), "x".into(), Data::List(vec![7.into()])]),
                MAX,
            )
            .map_err(|e| e.to_string())?,
            frame::encode(
                &(
                    9u32,
                    "nine".to_owned(),
                    vec![1u8; 40],
                    Some(vec![-1i64, 1 << 40]),
                ),
                MAX,
            )
            .map_err(|e| e.to_string())?,
            frame::encode(
                &BTreeMap::from([("a".to_owned(), vec![1u16, 2]), ("b".to_owned(), vec![])]),
                MAX,
            )
            .map_err(|e| e.to_string())?,
            frame::encode(
                &Tree {
                    kids: vec![Tree { kids: vec![] }],
                },
                MAX,
            )
            .map_err(|e| e.to_string())?,
        ];
        let (mut decoded, mut refused) = (0, 0);
        for i in 0..2000 {
            // A stream of a few valid frames, then damage it.
            let mut bytes = Vec::new();
            for _ in 0..1 + rng.below(4) {
                bytes.extend(&samples[rng.below(samples.len())]);
            }
            match rng.below(6) {
                4 => bytes = large_tail(&mut rng),
                0 => {
                    let n = rng.below(600);
                    bytes = rng.bytes(n);
                }
                1 => bytes.truncate(rng.below(bytes.len() + 1)),
                2 => {
                    for _ in 0..1 + rng.below(4) {
                        let at = rng.below(bytes.len());
                        bytes[at] = rng.next() as u8;
                    }
                }
                3 => {
                    // A random claim in the first header.
                    let claim = match rng.below(3) {
                        0 => rng.next() as u32,
                        1 => rng.below(MAX + 2) as u32,
                        _ => rng.below(4096) as u32,
                    };
                    bytes[..4].copy_from_slice(&claim.to_le_bytes());
                }
                _ => {
                    // A valid header in front of random bytes.
                    let n = rng.below(2000);
                    let body = rng.bytes(n);
                    bytes = framed(&body);
                }
            }
            let case = format!("case {i} ({} bytes)", bytes.len());
            for (ok, bad) in [
                every_reader::<Data>(&case, &bytes)?,
                every_reader::<Record>(&case, &bytes)?,
                every_reader::<BTreeMap<String, Vec<u16>>>(&case, &bytes)?,
                every_reader::<Tree>(&case, &bytes)?,
                every_reader::<ByteBuf>(&case, &bytes)?,
                every_reader::<Tailed>(&case, &bytes)?,
            ] {
                decoded += ok;
                refused += bad;
            }
            let body = if bytes.len() > 4 {
                &bytes[4..]
            } else {
                &bytes[..]
            };
            body_readers(&case, body, &qd)?;
            body_readers(&case, body, &qr)?;
            body_readers(&case, body, &qm)?;
            body_readers(&case, body, &qt)?;
        }
        eprintln!("frame fuzz: {decoded} frames decoded, {refused} refused as malformed");
        if decoded == 0 || refused == 0 {
            return Err("the cases did not exercise both outcomes".to_owned());
        }
        Ok(())
    });
}
