//! [`Event`]: a flag processes wait for.

use std::fmt;
use std::io;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use super::{Block, Layout};
use crate::deadline;

/// The block: one futex word and a count of sleepers (so `set` skips the wake-up call when
/// nobody sleeps).
#[repr(C)]
struct State {
    /// Bit 0: the flag. Bits 1..: how many times it was set (mod 2^31), so a waiter sees a
    /// `set` even if a `clear` came before it woke.
    word: AtomicU32,
    sleepers: AtomicU32,
}

// SAFETY: two atomics, valid at zero (a clear flag, nobody waiting); no state lock.
unsafe impl Layout for State {
    const LOCK: Option<usize> = None;
}

/// A flag that processes set, clear and wait for. Replaces `multiprocessing.Event`.
///
/// Clone it before forking; every clone is the same event. Nothing to hold, so nothing is
/// left held by a process that dies.
///
/// A waiter looks at the flag a few times, yielding its CPU in between, before it sleeps on
/// the futex: a set that comes soon after is seen without a sleep and a wake-up (`cargo bench
/// -p ipc -- event`: a hand-off between two processes went from 1.9 to 1.15 us on one core,
/// and from 22 us to 0.7-2 us unpinned).
///
/// # Differences from Python
///
/// A waiter woken by [`Event::set`] returns `true` even if the flag was cleared again before
/// it ran (as `threading.Event` does; `multiprocessing.Event.wait` looks at the flag again
/// after waking and can return `false` there).
///
/// ```
/// let e = ipc::Event::new()?;
/// assert!(!e.is_set());
/// assert!(!e.wait_timeout(std::time::Duration::from_millis(1)));
/// e.set();
/// assert!(e.wait_timeout(std::time::Duration::ZERO));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Event {
    block: Block<State>,
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ipc::Event")
            .field("is_set", &self.is_set())
            .finish()
    }
}

/// How many times a waiter gives up its CPU (`sched_yield`) and looks again before it sleeps.
const YIELDS: usize = 8;

impl Event {
    /// A new event, not set. Replaces `multiprocessing.Event()`.
    ///
    /// # Errors
    /// If the shared memory cannot be mapped.
    pub fn new() -> io::Result<Event> {
        Ok(Event {
            block: Block::new(|_| {})?,
        })
    }

    /// Whether the flag is set. Replaces `event.is_set()`.
    pub fn is_set(&self) -> bool {
        self.block.get().word.load(SeqCst) & 1 == 1
    }

    /// Set the flag and wake every waiter. Replaces `event.set()`.
    pub fn set(&self) {
        let s = self.block.get();
        let mut w = s.word.load(SeqCst);
        loop {
            if w & 1 == 1 {
                return;
            }
            // One more set in bits 1.., and the flag.
            let next = ((w >> 1).wrapping_add(1) << 1) | 1;
            match s.word.compare_exchange(w, next, SeqCst, SeqCst) {
                Ok(_) => break,
                Err(now) => w = now,
            }
        }
        // No lost wake-up: a waiter counts itself in `sleepers` before it reads `word` and
        // sleeps only while `word` is what it read. Either it read the word after our CAS (and
        // does not sleep), or its count came before our load below (and we wake it); the
        // futex compares the word atomically with queueing the sleeper.
        if s.sleepers.load(SeqCst) > 0 {
            crate::futex::wake_all(&s.word);
        }
    }

    /// Clear the flag. Replaces `event.clear()`.
    pub fn clear(&self) {
        self.block.get().word.fetch_and(!1, SeqCst);
    }

    /// Wait until the flag is set (or is set and cleared again meanwhile). Replaces
    /// `event.wait()`; returns `true`, as Python's does.
    pub fn wait(&self) -> bool {
        self.wait_until(None)
    }

    /// Wait at most `timeout`; whether the flag was set. Replaces `event.wait(timeout)`. A
    /// timeout too long to represent waits as long as it takes.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        match deadline::after(timeout) {
            Some(d) => self.wait_until(Some(d)),
            None => self.wait_until(None),
        }
    }

    fn wait_until(&self, deadline: Option<std::time::Instant>) -> bool {
        let s = self.block.get();
        let first = s.word.load(SeqCst);
        if first & 1 == 1 {
            return true;
        }
        // Look again a few times, giving up the CPU in between, before sleeping: a set that
        // comes within about a microsecond (the setter runs on another core, or is the
        // process the yield lets run on this one) then costs no sleep and no wake-up.
        for _ in 0..YIELDS {
            if deadline::left(deadline) == Some(Duration::ZERO) {
                break;
            }
            std::thread::yield_now();
            let w = s.word.load(SeqCst);
            if w & 1 == 1 || w >> 1 != first >> 1 {
                return true;
            }
        }
        s.sleepers.fetch_add(1, SeqCst);
        let set = loop {
            let w = s.word.load(SeqCst);
            if w & 1 == 1 || w >> 1 != first >> 1 {
                break true;
            }
            let left = deadline::left(deadline);
            if left == Some(Duration::ZERO) {
                break false;
            }
            crate::futex::wait(&s.word, w, left);
        };
        s.sleepers.fetch_sub(1, SeqCst);
        set
    }
}
