//! Parking: where threads wait, and the rule that makes waking them cheap.

use std::time::Instant;

#[cfg(not(loom))]
use crossbeam::utils::Backoff;

use crate::shim::{AtomicUsize, Condvar, Mutex, Ordering, fence, lock};

/// Threads that wait for one condition (not empty, not full, all done).
///
/// The rule: a waiter first spins briefly (most waits on a busy queue are short), then counts
/// itself in `sleepers`, then issues a SeqCst fence, then tries once more before it sleeps.
/// A thread that changes the condition does its change, then a SeqCst fence, then reads
/// `sleepers`, and takes the lock to notify only if it is not zero. Between two SeqCst fences
/// one comes first: either the waiter's last try sees the change, or the changer sees the
/// waiter and wakes it. So the common case (nobody asleep) costs a fence and a load, not a
/// lock and a system call, and no wake-up is lost. (The waiter counts itself while holding
/// `lock` and keeps it until it sleeps, so a notify sent under `lock` cannot miss it.)
#[derive(Default)]
pub(super) struct Parker {
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    cv: Condvar,
}

impl Parker {
    pub(super) fn new() -> Parker {
        Parker {
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            cv: Condvar::new(),
        }
    }

    /// Call `attempt` until it returns `Some`, sleeping between tries; `None` at the deadline.
    pub(super) fn wait_for<R>(
        &self,
        deadline: Option<Instant>,
        mut attempt: impl FnMut() -> Option<R>,
    ) -> Option<R> {
        #[cfg(not(loom))]
        {
            let backoff = Backoff::new();
            loop {
                if let Some(r) = attempt() {
                    return Some(r);
                }
                if backoff.is_completed() || deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                backoff.snooze();
            }
        }
        let mut guard = lock(&self.lock);
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        // Counted out again however this ends, also if `attempt` panics (a store may), so a
        // panic cannot leave every later wake-up taking the lock for a sleeper that is gone.
        // Declared after `guard`, it is dropped first: the count drops with the lock held.
        let asleep = Asleep(&self.sleepers);
        fence(Ordering::SeqCst);
        let outcome = loop {
            if let Some(r) = attempt() {
                break Some(r);
            }
            guard = match deadline {
                None => self.cv.wait(guard).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break None;
                    }
                    match self.cv.wait_timeout(guard, deadline - now) {
                        Ok((g, _)) => g,
                        Err(e) => e.into_inner().0,
                    }
                }
            };
        };
        drop(asleep);
        drop(guard);
        outcome
    }

    pub(super) fn wake(&self, all: bool) {
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            let _g = lock(&self.lock);
            if all {
                self.cv.notify_all();
            } else {
                self.cv.notify_one();
            }
        }
    }
}

/// One sleeper counted in [`Parker::sleepers`]; dropping it counts it out.
struct Asleep<'a>(&'a AtomicUsize);

impl Drop for Asleep<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
