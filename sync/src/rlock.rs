//! [`RLock`]: Python's `threading.RLock`, built by hand so the counter the seed describes is
//! visible.

use std::fmt;
use std::marker::PhantomData;
use std::sync::{Condvar, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use crate::deadline;

#[derive(Debug, Default)]
struct State {
    owner: Option<ThreadId>,
    count: usize,
    /// Threads asleep in `acquire` (or about to look again after a wake-up).
    waiting: usize,
}

/// A reentrant lock: the thread that holds it may take it again; each take adds one to a
/// counter, each guard dropped takes one away, and other threads get in only when it is back at
/// zero. Replaces `threading.RLock()`.
///
/// It protects no data of its own, like Python's. To guard data reentrantly in Rust, use
/// `parking_lot::ReentrantMutex<RefCell<T>>` (std's `ReentrantLock` is still unstable): the lock
/// can only hand out `&T`, since two guards of one thread exist at once.
///
/// ```
/// use sync::RLock;
///
/// let lock = RLock::new();
/// let outer = lock.acquire();
/// let inner = lock.acquire();     // same thread: no deadlock
/// assert_eq!(lock.count(), 2);
/// drop(inner);
/// drop(outer);
/// assert_eq!(lock.count(), 0);
/// ```
#[derive(Default)]
pub struct RLock {
    state: Mutex<State>,
    cv: Condvar,
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock_state();
        f.debug_struct("RLock")
            .field("owner", &s.owner)
            .field("count", &s.count)
            .finish()
    }
}

/// One level of an [`RLock`]; dropping it releases that level. Not `Send`: only the owning
/// thread may release (Python raises `RuntimeError` otherwise; here it does not compile):
///
/// ```compile_fail,E0277
/// let lock = sync::RLock::new();
/// let guard = lock.acquire();
/// std::thread::scope(|s| {
///     s.spawn(move || drop(guard)); // another thread may not release it
/// });
/// ```
#[must_use = "the level is released as soon as the guard is dropped"]
pub struct RLockGuard<'a> {
    lock: &'a RLock,
    _not_send: PhantomData<*const ()>,
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RLockGuard")
    }
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        let mut s = self.lock.lock_state();
        s.count -= 1;
        if s.count == 0 {
            s.owner = None;
            self.lock.cv.notify_one();
        }
    }
}

impl RLock {
    /// A new, free lock.
    pub fn new() -> RLock {
        RLock::default()
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        // Only `owner` and `count` live here, each updated in one step.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The owner's depth, as seen by any thread: how many guards the thread that holds the
    /// lock has (0 when free). A snapshot.
    ///
    /// Python's `rlock._recursion_count()` answers only for the caller (0 when another thread
    /// holds the lock); that is `if lock.is_owned() { lock.count() } else { 0 }` here.
    pub fn count(&self) -> usize {
        self.lock_state().count
    }

    /// How many threads are waiting to take the lock right now (a snapshot; for lessons and
    /// tests). A thread counts from the moment it goes to sleep on the lock until it wakes;
    /// `try_acquire` never waits, so never counts.
    pub fn waiting(&self) -> usize {
        self.lock_state().waiting
    }

    /// Whether the calling thread holds the lock. Any thread may ask; only the owner gets
    /// `true`. Replaces Python's `rlock._is_owned()` (what `threading.Condition` uses).
    pub fn is_owned(&self) -> bool {
        self.lock_state().owner == Some(thread::current().id())
    }

    /// Take the lock (again, if this thread holds it). Replaces `rlock.acquire()`.
    pub fn acquire(&self) -> RLockGuard<'_> {
        self.acquire_until(None)
            .unwrap_or_else(|| unreachable!("an untimed acquire cannot time out"))
    }

    /// Take the lock, waiting at most `timeout`. Replaces `rlock.acquire(timeout=...)`. A
    /// timeout too long to represent as a deadline (such as `Duration::MAX`) waits as long as
    /// it takes.
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<RLockGuard<'_>> {
        self.acquire_until(deadline::after(timeout))
    }

    /// Take the lock only if that needs no waiting. Replaces `rlock.acquire(blocking=False)`.
    pub fn try_acquire(&self) -> Option<RLockGuard<'_>> {
        self.acquire_until(Some(Instant::now()))
    }

    fn acquire_until(&self, deadline: Option<Instant>) -> Option<RLockGuard<'_>> {
        let me = thread::current().id();
        let mut s = self.lock_state();
        loop {
            match s.owner {
                None => {
                    s.owner = Some(me);
                    s.count = 1;
                    break;
                }
                Some(owner) if owner == me => {
                    s.count += 1;
                    break;
                }
                Some(_) => {}
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return None;
            }
            s.waiting += 1;
            s = match deadline {
                None => self.cv.wait(s).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => match self.cv.wait_timeout(s, deadline - now) {
                    Ok((s, _)) => s,
                    Err(e) => e.into_inner().0,
                },
            };
            s.waiting -= 1;
        }
        Some(RLockGuard {
            lock: self,
            _not_send: PhantomData,
        })
    }
}
