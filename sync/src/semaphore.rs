//! [`Semaphore`] and [`BoundedSemaphore`]: Python's `threading.Semaphore` / `BoundedSemaphore`,
//! which std does not have.

use std::fmt;
use std::time::{Duration, Instant};

use crate::deadline;
use crate::shim::{AtomicU64, Condvar, Mutex, Ordering, lock, wait, wait_timeout};

/// The low 32 bits of the state count free permits, the high 32 bits count waiting threads.
const PERMITS: u64 = (1 << 32) - 1;
/// One waiting thread, in the state word.
const WAITER: u64 = 1 << 32;

/// The most permits a [`Semaphore`] can count: the free permits share one 64-bit word with
/// the number of waiting threads, 32 bits each. [`Semaphore::try_new`] refuses more, and a
/// release that would go past it is an [`OverRelease`] error; the count never wraps.
pub const MAX_PERMITS: usize = PERMITS as usize;

/// A counting semaphore: at most `n` permits out at once. Replaces `threading.Semaphore(n)`.
///
/// `acquire` returns a [`Permit`] that gives the permit back when dropped (Python's
/// `with semaphore:`), so an early return or a panic cannot leak it.
///
/// Why not the textbook `Mutex<usize>` + `Condvar` alone: taking and returning a free permit
/// would then cost a lock, an unlock and a `notify` (a system call) every time. Here the free
/// permits and the number of waiting threads share one atomic word. While permits are free,
/// acquire and release are one atomic operation each; the mutex and condvar are used only by
/// threads that must wait, and a release notifies only when its own atomic update saw a
/// waiter. Because "take a permit or register as a waiter" and "add a permit and look for
/// waiters" are single read-modify-writes of the same word, one of them always sees the other:
/// no wake-up can be lost (loom checks this, see `tests/loom.rs`).
///
/// Every way a permit comes back (dropping a [`Permit`], [`Permit::release`],
/// [`Semaphore::release`], [`Semaphore::release_n`]) is one compare-and-swap that checks the
/// limit first: [`MAX_PERMITS`], or a [`BoundedSemaphore`]'s initial count. (A plain
/// `fetch_add` would be one instruction cheaper, and is how a permit dropped after an extra
/// `release()` once pushed a `BoundedSemaphore(1)` to 2.)
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

/// One permit, as Python's `threading.Semaphore()`.
impl Default for Semaphore {
    fn default() -> Semaphore {
        Semaphore::new(1)
    }
}

/// One permit of a [`Semaphore`]; dropping it releases the permit.
///
/// # Over-release
///
/// Dropping gives the permit back unless that would take the semaphore past its limit (a
/// [`BoundedSemaphore`] whose permit was already returned by an extra
/// [`release`](Semaphore::release), or a count at [`MAX_PERMITS`]): then nothing is added, as a
/// drop cannot report an error. Python raises `ValueError` from the `with` block's exit there;
/// [`Permit::release`] is the way to see that error in Rust.
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

    /// Give the permit back now and say whether it was accepted: what dropping the permit
    /// does, with the error a drop has to swallow.
    ///
    /// # Errors
    ///
    /// [`OverRelease`] if the semaphore already has all the permits it may hold (see
    /// [Over-release](Permit#over-release)); the count is then unchanged.
    pub fn release(self) -> Result<(), OverRelease> {
        let sem = self.sem;
        std::mem::forget(self);
        sem.give_back(1)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        // Refused only at the limit; see the type's "Over-release" section.
        let _ = self.sem.give_back(1);
    }
}

/// A release that would take a semaphore past its limit (Python's `ValueError: Semaphore
/// released too many times` for a `BoundedSemaphore`; Python's plain `Semaphore` has no limit,
/// but a count here cannot pass [`MAX_PERMITS`]). The count is left unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverRelease {
    /// The most permits the semaphore may hold: a [`BoundedSemaphore`]'s initial count, or
    /// [`MAX_PERMITS`].
    pub bound: usize,
    /// How many permits the refused release would have added.
    pub n: usize,
}

impl fmt::Display for OverRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "semaphore released too many times: {} more permit(s) would pass its limit of {}",
            self.n, self.bound
        )
    }
}

impl std::error::Error for OverRelease {}

/// More permits asked of [`Semaphore::try_new`] or [`BoundedSemaphore::try_new`] than a
/// semaphore can count ([`MAX_PERMITS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyPermits {
    /// The number asked for.
    pub requested: usize,
}

impl fmt::Display for TooManyPermits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a semaphore of {} permits cannot be made: at most {MAX_PERMITS}",
            self.requested
        )
    }
}

impl std::error::Error for TooManyPermits {}

impl Semaphore {
    /// A semaphore with `n` permits. Replaces `threading.Semaphore(n)`.
    ///
    /// # Panics
    ///
    /// If `n` is more than [`MAX_PERMITS`]; [`Semaphore::try_new`] returns that as an error.
    pub fn new(n: usize) -> Semaphore {
        Semaphore::try_new(n).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A semaphore with `n` permits, or an error if it cannot count that many.
    ///
    /// # Errors
    ///
    /// [`TooManyPermits`] if `n` is more than [`MAX_PERMITS`].
    pub fn try_new(n: usize) -> Result<Semaphore, TooManyPermits> {
        Semaphore::with_bound(n, None)
    }

    fn with_bound(n: usize, bound: Option<usize>) -> Result<Semaphore, TooManyPermits> {
        if n > MAX_PERMITS {
            return Err(TooManyPermits { requested: n });
        }
        Ok(Semaphore {
            state: AtomicU64::new(n as u64),
            lock: Mutex::new(()),
            cv: Condvar::new(),
            bound,
        })
    }

    /// Free permits right now (a snapshot: it may change before you use it). Python's
    /// `sem._value`.
    pub fn available(&self) -> usize {
        (self.state.load(Ordering::SeqCst) & PERMITS) as usize
    }

    /// The most permits this semaphore may hold.
    fn limit(&self) -> u64 {
        self.bound.unwrap_or(MAX_PERMITS) as u64
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

    /// Add `n` permits unless that passes the limit; then wake as many waiters as there are
    /// new permits (at most as many as wait). A waiter registers while holding `lock` and
    /// keeps it until it sleeps on `cv`, so once we hold `lock` it is asleep and hears the
    /// notify.
    fn give_back(&self, n: u64) -> Result<(), OverRelease> {
        let limit = self.limit();
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if n > limit - (s & PERMITS) {
                return Err(OverRelease {
                    bound: limit as usize,
                    n: n as usize,
                });
            }
            match self
                .state
                .compare_exchange_weak(s, s + n, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(before) => {
                    let waiters = before / WAITER;
                    if waiters > 0 {
                        let _g = lock(&self.lock);
                        for _ in 0..n.min(waiters) {
                            self.cv.notify_one();
                        }
                    }
                    return Ok(());
                }
                Err(now) => s = now,
            }
        }
    }

    /// Take a permit before `deadline` (`None`: however long it takes).
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

    /// Take a permit, waiting at most `timeout` (`None` if none came). Replaces
    /// `acquire(timeout=...)`. A timeout too long to represent as a deadline (such as
    /// `Duration::MAX`) waits as long as it takes.
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<Permit<'_>> {
        if self.take() {
            return Some(Permit { sem: self });
        }
        self.take_until(deadline::after(timeout))
            .then(|| Permit { sem: self })
    }

    /// Add a permit without a guard: Python's `release()`, matching an earlier
    /// [`Permit::forget`]. A plain `Semaphore` may grow past its initial count this way (as
    /// Python's may); a [`BoundedSemaphore`] refuses.
    ///
    /// # Errors
    ///
    /// [`OverRelease`] if the semaphore already holds all the permits it may: a
    /// `BoundedSemaphore`'s initial count, or [`MAX_PERMITS`]. Nothing is added then.
    pub fn release(&self) -> Result<(), OverRelease> {
        self.give_back(1)
    }

    /// Add `n` permits at once and wake up to `n` waiting threads: Python's `release(n)`.
    /// All or nothing: if the `n` do not fit, none is added. `release_n(0)` does nothing
    /// (Python raises `ValueError` for `n < 1`).
    ///
    /// # Errors
    ///
    /// [`OverRelease`] if `n` more permits would pass the limit (see [`Semaphore::release`]).
    pub fn release_n(&self, n: usize) -> Result<(), OverRelease> {
        if n == 0 {
            return Ok(());
        }
        match u64::try_from(n) {
            Ok(n) => self.give_back(n),
            Err(_) => Err(OverRelease {
                bound: self.limit() as usize,
                n,
            }),
        }
    }
}

/// A semaphore whose count may never exceed its initial value: a [`Semaphore::release`] too
/// many is an [`OverRelease`] error, and a [`Permit`] dropped after its permit was already
/// released adds nothing. Replaces `threading.BoundedSemaphore(n)`.
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
    ///
    /// # Panics
    ///
    /// If `n` is more than [`MAX_PERMITS`]; [`BoundedSemaphore::try_new`] returns that as an
    /// error.
    pub fn new(n: usize) -> BoundedSemaphore {
        BoundedSemaphore::try_new(n).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A bounded semaphore with `n` permits, or an error if it cannot count that many.
    ///
    /// # Errors
    ///
    /// [`TooManyPermits`] if `n` is more than [`MAX_PERMITS`].
    pub fn try_new(n: usize) -> Result<BoundedSemaphore, TooManyPermits> {
        Semaphore::with_bound(n, Some(n)).map(BoundedSemaphore)
    }

    /// The initial (and largest) count.
    pub fn bound(&self) -> usize {
        self.0.limit() as usize
    }
}

/// One permit, as Python's `threading.BoundedSemaphore()`.
impl Default for BoundedSemaphore {
    fn default() -> BoundedSemaphore {
        BoundedSemaphore::new(1)
    }
}

impl std::ops::Deref for BoundedSemaphore {
    type Target = Semaphore;

    fn deref(&self) -> &Semaphore {
        &self.0
    }
}
