//! Sleeping and waking across processes on a word of shared memory (Linux futexes).

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use nix::libc;

use crate::frame::FrameError;

/// How long to check again before sleeping: the other side is usually running on another
/// core and about to publish, and a futex sleep and wake-up cost microseconds.
const SPINS: u32 = 2000;

/// Wait until `ready()`, sleeping on the futex word `seq` (announced in `waiting`, so the
/// other side knows to bump `seq` and wake us). Returns early, to be asked again, on any wake;
/// [`FrameError::Timeout`] once `deadline` has passed (never sleeping past it).
///
/// No wake-up is lost: we announce ourselves, read `seq`, then check `ready()`; the other side
/// publishes, then checks `waiting` and bumps `seq`. In the single total order of these
/// SeqCst operations, either our check sees the publication, or the other side sees us waiting
/// and bumps `seq` after we read it, so the futex refuses to sleep (or wakes us).
pub(super) fn wait(
    waiting: &AtomicU32,
    seq: &AtomicU32,
    ready: impl Fn() -> bool,
    deadline: Option<Instant>,
) -> Result<(), FrameError> {
    for _ in 0..SPINS {
        if ready() {
            return Ok(());
        }
        std::hint::spin_loop();
    }
    let left = match deadline {
        Some(d) => match d.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Some(left),
            _ => return Err(FrameError::Timeout),
        },
        None => None,
    };
    waiting.fetch_add(1, SeqCst);
    let seen = seq.load(SeqCst);
    if !ready() {
        futex_wait(seq, seen, left);
    }
    waiting.fetch_sub(1, SeqCst);
    Ok(())
}

/// Sleep while `*word == expected`, at most `timeout`. Not FUTEX_PRIVATE: the word is in a
/// mapping shared between processes. Any return (woken, timed out, interrupted, the value
/// already changed) means "look again".
fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(crate::deadline::timespec);
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, aligned u32; FUTEX_WAIT only reads it; `ts_ptr` is null or
    // points to a timespec on our stack for the whole call.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            ts_ptr,
            std::ptr::null::<u32>(),
            0,
        );
    }
}

/// Wake every process sleeping on `word`.
pub(super) fn futex_wake(word: &AtomicU32) {
    // SAFETY: `word` is a live, aligned u32; FUTEX_WAKE does not touch memory.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0,
        );
    }
}
