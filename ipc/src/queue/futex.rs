//! Sleeping and waking across processes on a word of shared memory (Linux futexes).

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Instant;

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
        crate::futex::wait(seq, seen, left);
    }
    waiting.fetch_sub(1, SeqCst);
    Ok(())
}

/// Wake every process sleeping on `word`.
pub(super) fn futex_wake(word: &AtomicU32) {
    crate::futex::wake_all(word);
}
