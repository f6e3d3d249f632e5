//! [`Lock`]: a process-shared, robust pthread mutex in shared memory.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::mem::{MaybeUninit, size_of};
use std::sync::Arc;
use std::time::Duration;

use nix::libc;

use super::Mapping;

fn check(rc: libc::c_int, what: &str) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::new(
            io::Error::from_raw_os_error(rc).kind(),
            format!("{what}: {}", io::Error::from_raw_os_error(rc)),
        ))
    }
}

/// Make `*m` a process-shared, robust mutex.
///
/// SAFETY: `m` must point to writable memory for a `pthread_mutex_t` that no one is using.
pub(crate) unsafe fn init_mutex(m: *mut libc::pthread_mutex_t) -> io::Result<()> {
    let mut attr = MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
    // SAFETY: attr is initialised by pthread_mutexattr_init before any other use, and
    // destroyed after pthread_mutex_init has copied what it needs; `m` is valid (caller).
    unsafe {
        check(
            libc::pthread_mutexattr_init(attr.as_mut_ptr()),
            "pthread_mutexattr_init",
        )?;
        let attr = attr.as_mut_ptr();
        let result = check(
            libc::pthread_mutexattr_setpshared(attr, libc::PTHREAD_PROCESS_SHARED),
            "pthread_mutexattr_setpshared",
        )
        .and_then(|()| {
            check(
                libc::pthread_mutexattr_setrobust(attr, libc::PTHREAD_MUTEX_ROBUST),
                "pthread_mutexattr_setrobust",
            )
        })
        .and_then(|()| check(libc::pthread_mutex_init(m, attr), "pthread_mutex_init"));
        libc::pthread_mutexattr_destroy(attr);
        result
    }
}

/// Why a lock could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// A previous owner died holding it and the one who recovered it dropped the guard
    /// without marking it consistent; the lock is unusable (`ENOTRECOVERABLE`).
    NotRecoverable,
    /// The previous holder died while holding the lock, so what it protects may be half
    /// updated. Returned by the calls that would otherwise use that data without showing the
    /// caller a guard ([`Value::get`](super::Value::get), [`Value::set`](super::Value::set)),
    /// which then do nothing. The lock itself has been made consistent again: reported once,
    /// the next call works normally.
    OwnerDied,
    /// Any other error from the system.
    Os(io::Error),
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::NotRecoverable => f.write_str("the lock is not recoverable"),
            LockError::OwnerDied => f.write_str(
                "the previous holder of the lock died holding it: the data may be half updated \
                 (nothing was read or written; the lock works again)",
            ),
            LockError::Os(e) => write!(f, "lock error: {e}"),
        }
    }
}

impl std::error::Error for LockError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LockError::Os(e) => Some(e),
            _ => None,
        }
    }
}

/// A lock shared by a process and its forked children. Replaces `multiprocessing.Lock`.
///
/// A pthread mutex with `PTHREAD_PROCESS_SHARED` (it may be used from several processes) and
/// `PTHREAD_MUTEX_ROBUST` (if its owner dies, the next `acquire` gets it, told so by
/// [`LockGuard::owner_died`]). Python's `multiprocessing.Lock` is a semaphore with no owner:
/// if a process dies holding it, it stays locked forever.
///
/// Clone it before forking; every clone is the same lock.
///
/// ```
/// let lock = ipc::Lock::new()?;
/// {
///     let guard = lock.acquire()?;
///     assert!(!guard.owner_died());
///     assert!(lock.try_acquire()?.is_none());   // held
/// }
/// assert!(lock.try_acquire()?.is_some());       // released when the guard dropped
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Lock {
    pub(crate) map: Arc<Mapping>,
    offset: usize,
}

/// Two handles are equal when they are the same lock (Python's `lock == val.get_lock()`).
impl PartialEq for Lock {
    fn eq(&self, other: &Lock) -> bool {
        Arc::ptr_eq(&self.map, &other.map) && self.offset == other.offset
    }
}

impl Eq for Lock {}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ipc::Lock")
    }
}

/// A held [`Lock`]; dropping it releases the lock (in this process, on this thread).
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
    owner_died: bool,
    // Unlocking must happen on the thread that locked.
    _not_send: PhantomData<*const ()>,
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("owner_died", &self.owner_died)
            .finish()
    }
}

impl LockGuard<'_> {
    /// Whether this guard holds `lock`.
    pub(crate) fn holds(&self, lock: &Lock) -> bool {
        self.lock == lock
    }

    /// `true` if the previous owner died holding the lock: whatever it protects may be half
    /// updated. The lock itself has been made consistent again and works normally.
    pub fn owner_died(&self) -> bool {
        self.owner_died
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: this guard exists only while this thread holds the mutex.
        unsafe { libc::pthread_mutex_unlock(self.lock.raw()) };
    }
}

impl Lock {
    /// A new, free lock in its own shared page.
    ///
    /// # Errors
    /// If the shared memory cannot be mapped or the mutex initialised.
    pub fn new() -> io::Result<Lock> {
        let map = Arc::new(Mapping::new(size_of::<libc::pthread_mutex_t>())?);
        // SAFETY: the mapping is fresh, big enough and aligned (page-aligned).
        unsafe { init_mutex(map.at(0))? };
        Ok(Lock { map, offset: 0 })
    }

    /// A lock whose mutex sits at `offset` of `map` (already initialised).
    pub(crate) fn inside(map: Arc<Mapping>, offset: usize) -> Lock {
        Lock { map, offset }
    }

    fn raw(&self) -> *mut libc::pthread_mutex_t {
        self.map.at(self.offset)
    }

    fn guard(&self, rc: libc::c_int) -> Result<Option<LockGuard<'_>>, LockError> {
        let owner_died = match rc {
            0 => false,
            libc::EOWNERDEAD => {
                // SAFETY: we hold the mutex (EOWNERDEAD hands it to us); marking it consistent
                // is what lets the next owners use it normally.
                unsafe { libc::pthread_mutex_consistent(self.raw()) };
                true
            }
            libc::EBUSY | libc::ETIMEDOUT => return Ok(None),
            libc::ENOTRECOVERABLE => return Err(LockError::NotRecoverable),
            e => return Err(LockError::Os(io::Error::from_raw_os_error(e))),
        };
        Ok(Some(LockGuard {
            lock: self,
            owner_died,
            _not_send: PhantomData,
        }))
    }

    /// Take the lock, waiting as long as it takes. Replaces `lock.acquire()` / `with lock:`.
    ///
    /// # Errors
    /// [`LockError::NotRecoverable`] if an earlier recovery left it unusable, or
    /// [`LockError::Os`]. A dead previous holder is not an error: see
    /// [`LockGuard::owner_died`].
    pub fn acquire(&self) -> Result<LockGuard<'_>, LockError> {
        // SAFETY: raw() points at an initialised process-shared mutex in our mapping.
        let rc = unsafe { libc::pthread_mutex_lock(self.raw()) };
        self.guard(rc)?
            .ok_or_else(|| LockError::Os(io::Error::other("lock returned busy")))
    }

    /// Take the lock if it is free now (`None` if held). Replaces `lock.acquire(block=False)`.
    ///
    /// # Errors
    /// As [`Lock::acquire`].
    pub fn try_acquire(&self) -> Result<Option<LockGuard<'_>>, LockError> {
        // SAFETY: as in `acquire`.
        let rc = unsafe { libc::pthread_mutex_trylock(self.raw()) };
        self.guard(rc)
    }

    /// Take the lock, waiting at most `timeout` (`None` on time-out). Replaces
    /// `lock.acquire(timeout=...)`. A timeout too long to represent waits as long as it takes.
    ///
    /// # Errors
    /// As [`Lock::acquire`].
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<Option<LockGuard<'_>>, LockError> {
        let Some(at) = crate::deadline::realtime_after(timeout) else {
            return self.acquire().map(Some);
        };
        // SAFETY: as in `acquire`; `at` is a valid timespec on our stack.
        let rc = unsafe { libc::pthread_mutex_timedlock(self.raw(), &at) };
        self.guard(rc)
    }
}

impl LockGuard<'_> {
    /// Keep the lock taken after this guard is gone (for [`RLock`](crate::RLock), which
    /// counts its own levels): whether the previous owner died. Release it with
    /// [`Lock::unlock_kept`] on the same thread.
    pub(crate) fn keep(self) -> bool {
        let died = self.owner_died;
        std::mem::forget(self);
        died
    }
}

impl Lock {
    /// Release a lock kept by [`LockGuard::keep`].
    ///
    /// # Safety
    /// This thread must hold the lock, taken through [`LockGuard::keep`] and not yet released.
    pub(crate) unsafe fn unlock_kept(&self) {
        // SAFETY: the caller holds the mutex on this thread.
        unsafe { libc::pthread_mutex_unlock(self.raw()) };
    }
}
