//! [`Semaphore`] and [`BoundedSemaphore`]: Python's `threading.Semaphore` / `BoundedSemaphore`,
//! which std does not have.

use std::fmt;
use std::time::{Duration, Instant};

use crate::shim::{AtomicU64, Condvar, Mutex, Ordering, lock, wait, wait_timeout};

/// The low 32 bits of the state count free permits, the high 32 bits count waiting threads.
const PERMITS: u64 = (1 << 32) - 1;
/// One waiting thread, in the state word.
const WAITER: u64 = 1 << 32;

/// A counting semaphore: at most `n` permits out at once. Replaces `threading.Semaphore(n)`.
///
/// `acquire` returns a [`Permit`] that gives the permit back when dropped (Python's
/// `with semaphore:`), so an early return or a panic cannot leak it.
///
/// Why not the textbook `Mutex<usize>` + `Condvar` alone: taking and returning a free permit
/// would then cost a lock, an unlock and a `notify` (a system call) every time. Here the free
/// permits and the number of waiting threads share one atomic word. While permits are free,
/// acquire and release are one atomic operation each; the mutex and condvar are used only by
/// threads that must wait, and a release notifies only when its own atomic add saw a waiter.
/// Because "take a permit or register as a waiter" and "add a permit and look for waiters" are
/// single read-modify-writes of the same word, one of them always sees the other: no wake-up
/// can be lost (loom checks this, see `tests/loom.rs`).
///
/// ```
/// use sync::Semaphore;
///
/// let sem = Semaphore::new(2);
/// let a = sem.acquire();
/// let _b = sem.acquire();
/// assert!(sem.try_acquire().is_none());      // acquire(blocking=False) -> False
/// drop(a);                                   // release()
/// assert!(sem.try_acquire().is_some());
/// ```
pub struct Semaphore {
    state: AtomicU64,
    lock: Mutex<()>,
    cv: Condvar,
    bound: Option<usize>,
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available", &self.available())
            .field("bound", &self.bound)
            .finish()
    }
}

/// One permit of a [`Semaphore`]; dropping it releases the permit.
#[must_use = "the permit is released as soon as it is dropped"]
pub struct Permit<'a> {
    sem: &'a Semaphore,
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Permit")
    }
}

impl Permit<'_> {
    /// Keep the permit taken without a guard: Python's bare `acquire()`, to be matched by a
    /// later [`Semaphore::release`]. Forgetting to release it is the leak the guard prevents.
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.sem.put_back();
    }
}

/// Releasing a [`BoundedSemaphore`] more often than it was acquired (Python's `ValueError:
/// Semaphore released too many times`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverRelease {
    /// The semaphore's initial (and maximal) count.
    pub bound: usize,
}

impl fmt::Display for OverRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "semaphore released too many times: it already has all {} permits",
            self.bound
        )
    }
}

impl std::error::Error for OverRelease {}

impl Semaphore {
    /// A semaphore with `n` permits. Replaces `threading.Semaphore(n)`.
    pub fn new(n: usize) -> Semaphore {
        Semaphore::with_bound(n, None)
    }

    fn with_bound(n: usize, bound: Option<usize>) -> Semaphore {
        let n = u64::try_from(n).unwrap_or(PERMITS).min(PERMITS);
        Semaphore {
            state: AtomicU64::new(n),
            lock: Mutex::new(()),
            cv: Condvar::new(),
            bound,
        }
    }

    /// Free permits right now (a snapshot: it may change before you use it).
    pub fn available(&self) -> usize {
        (self.state.load(Ordering::SeqCst) & PERMITS) as usize
    }

    /// Take a free permit if there is one (the fast path).
    fn take(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        while s & PERMITS > 0 {
            match self
                .state
                .compare_exchange_weak(s, s - 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
        false
    }

    /// In one atomic step: take a free permit (and stop counting ourselves as a waiter if we
    /// were), or, if none is free, count ourselves as a waiter. `true` if a permit was taken.
    fn take_or_register(&self, registered: &mut bool) -> bool {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            let new = if s & PERMITS > 0 {
                s - 1 - if *registered { WAITER } else { 0 }
            } else if !*registered {
                s + WAITER
            } else {
                return false; // still nothing free, and already counted
            };
            match self
                .state
                .compare_exchange_weak(s, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    let took = s & PERMITS > 0;
                    *registered = !took;
                    return took;
                }
                Err(now) => s = now,
            }
        }
    }

    /// After a permit was added by an operation that saw the state `before`: wake one waiter
    /// if there was any. A waiter registers while holding `lock` and keeps it until it sleeps
    /// on `cv`, so once we hold `lock` it is asleep and hears the notify.
    fn wake_if_waited(&self, before: u64) {
        if before >= WAITER {
            let _g = lock(&self.lock);
            self.cv.notify_one();
        }
    }

    fn put_back(&self) {
        let before = self.state.fetch_add(1, Ordering::AcqRel);
        self.wake_if_waited(before);
    }

    fn take_until(&self, deadline: Option<Instant>) -> bool {
        if self.take() {
            return true;
        }
        let mut guard = lock(&self.lock);
        let mut registered = false;
        loop {
            if self.take_or_register(&mut registered) {
                return true;
            }
            match deadline {
                None => guard = wait(&self.cv, guard),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        self.state.fetch_sub(WAITER, Ordering::AcqRel);
                        return false;
                    }
                    guard = wait_timeout(&self.cv, guard, deadline - now);
                }
            }
        }
    }

    /// Take a permit, waiting as long as it takes. Replaces `acquire()` (which always returns
    /// `True` when it blocks: the seed's `if semaphore.acquire():` is always taken).
    pub fn acquire(&self) -> Permit<'_> {
        self.take_until(None);
        Permit { sem: self }
    }

    /// Take a permit if one is free now. Replaces `acquire(blocking=False)`.
    pub fn try_acquire(&self) -> Option<Permit<'_>> {
        self.take().then(|| Permit { sem: self })
    }

    /// Take a permit, waiting at most `timeout`. Replaces `acquire(timeout=...)`.
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<Permit<'_>> {
        self.take_until(Some(Instant::now() + timeout))
            .then(|| Permit { sem: self })
    }

    /// Add a permit without a guard: Python's `release()`, matching an earlier
    /// [`Permit::forget`]. A plain `Semaphore` may grow past its initial count this way (as
    /// Python's may); a [`BoundedSemaphore`] refuses.
    pub fn release(&self) -> Result<(), OverRelease> {
        let Some(bound) = self.bound else {
            self.put_back();
            return Ok(());
        };
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            if s & PERMITS >= bound as u64 {
                return Err(OverRelease { bound });
            }
            match self
                .state
                .compare_exchange_weak(s, s + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(before) => {
                    self.wake_if_waited(before);
                    return Ok(());
                }
                Err(now) => s = now,
            }
        }
    }
}

/// A semaphore whose count may never exceed its initial value: a [`Semaphore::release`] too
/// many is an [`OverRelease`] error. Replaces `threading.BoundedSemaphore(n)`.
///
/// ```
/// use sync::BoundedSemaphore;
///
/// let sem = BoundedSemaphore::new(1);
/// sem.acquire().forget();            // a bare acquire()
/// assert!(sem.release().is_ok());    // its release()
/// assert!(sem.release().is_err());   // one too many: ValueError in Python
/// ```
#[derive(Debug)]
pub struct BoundedSemaphore(Semaphore);

impl BoundedSemaphore {
    /// A bounded semaphore with `n` permits.
    pub fn new(n: usize) -> BoundedSemaphore {
        BoundedSemaphore(Semaphore::with_bound(n, Some(n)))
    }
}

impl std::ops::Deref for BoundedSemaphore {
    type Target = Semaphore;

    fn deref(&self) -> &Semaphore {
        &self.0
    }
}
