//! [`Event`]: Python's `threading.Event`, a flag threads can wait for.

use std::fmt;
use std::time::{Duration, Instant};

use crate::deadline;
use crate::shim::{Condvar, Mutex, lock, wait, wait_timeout, yield_now};

#[derive(Debug, Default)]
struct State {
    flag: bool,
    /// Counts the `set()` calls that raised the flag. A waiter remembers it on entry and
    /// leaves once it changes, so a `set()` immediately followed by `clear()` still releases
    /// every thread that was waiting, even if the flag is down again when they wake.
    generation: u64,
    waiting: usize,
}

/// A flag that threads wait for: `set` raises it and wakes every waiter, `clear` lowers it.
/// Replaces `threading.Event`.
///
/// A waiter looks at the flag a few times, yielding its CPU in between, before it sleeps on
/// the condition variable, and only then counts in [`Event::waiting`]: a set that comes soon
/// after is seen without a sleep and a wake-up (`cargo bench -p sync -- event`: a hand-off
/// between two threads went from 10.5 to about 2 us on one core, one context switch instead
/// of three).
///
/// ```
/// use std::time::Duration;
/// use sync::Event;
///
/// let event = Event::new();
/// assert!(!event.wait_timeout(Duration::from_millis(1)));  // not set: times out
/// event.set();
/// assert!(event.is_set());
/// event.wait();                                           // set: returns at once
/// ```
#[derive(Default)]
pub struct Event {
    state: Mutex<State>,
    cv: Condvar,
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .finish()
    }
}

/// How many times a waiter yields its CPU and looks again before it sleeps (fewer under loom,
/// whose search grows with every step: two still check the path).
#[cfg(not(loom))]
const YIELDS: usize = 8;
#[cfg(loom)]
const YIELDS: usize = 2;

impl Event {
    /// A new event, not set.
    pub fn new() -> Event {
        Event::default()
    }

    /// Raise the flag and wake every thread waiting. Replaces `event.set()`.
    pub fn set(&self) {
        let mut s = lock(&self.state);
        if !s.flag {
            s.flag = true;
            s.generation += 1;
            if s.waiting > 0 {
                self.cv.notify_all();
            }
        }
    }

    /// Lower the flag; later `wait`s block again. Replaces `event.clear()`.
    pub fn clear(&self) {
        lock(&self.state).flag = false;
    }

    /// Whether the flag is up (a snapshot). Replaces `event.is_set()` (the seed's `isSet()`).
    pub fn is_set(&self) -> bool {
        lock(&self.state).flag
    }

    /// How many threads are waiting right now (a snapshot; for lessons and tests).
    pub fn waiting(&self) -> usize {
        lock(&self.state).waiting
    }

    /// Wait until the flag is set (or was set while we waited). Replaces `event.wait()`.
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Wait at most `timeout`; `true` if the event was set, `false` on time-out. Replaces
    /// `event.wait(timeout)`, which returns the same. A timeout too long to represent as a
    /// deadline (such as `Duration::MAX`) waits as long as it takes.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(deadline::after(timeout))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        let mut s = lock(&self.state);
        if s.flag {
            return true;
        }
        let entered = s.generation;
        // Look again a few times, giving up the CPU in between, before sleeping: a set that
        // comes soon (from a thread on another core, or the one the yield lets run on this
        // one) then costs no sleep and no wake-up.
        for _ in 0..YIELDS {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            drop(s);
            yield_now();
            s = lock(&self.state);
            if s.flag || s.generation != entered {
                return true;
            }
        }
        s.waiting += 1;
        let released = loop {
            if s.flag || s.generation != entered {
                break true;
            }
            match deadline {
                None => s = wait(&self.cv, s),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break false;
                    }
                    s = wait_timeout(&self.cv, s, deadline - now);
                }
            }
        };
        s.waiting -= 1;
        released
    }
}
