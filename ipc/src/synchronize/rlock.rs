//! [`RLock`]: a reentrant lock shared by processes, robust like [`Lock`](crate::Lock).

use std::cell::UnsafeCell;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use nix::libc;

use super::{Block, Layout};
use crate::procid;
use crate::shm::{Lock, LockError, LockGuard};

#[repr(C)]
struct State {
    mutex: UnsafeCell<libc::pthread_mutex_t>,
    /// The owning thread's process (pid and start time) and its number in that process; 0 and
    /// 0 when free. Written only by the owner while it holds the mutex, cleared before it lets
    /// go, so a thread reading its own key here can only have written it itself.
    owner_proc: AtomicU64,
    owner_thread: AtomicU64,
    /// Levels held by the owner (only the owner touches it).
    count: AtomicU32,
}

// SAFETY: a pthread mutex in an UnsafeCell at offset 0, then atomics; zero is "free".
unsafe impl Layout for State {
    const LOCK: Option<usize> = Some(0);
}

/// This thread, as an owner key: its process (pid and start time, so a later process with the
/// same pid is someone else) and a number unique among this process's threads.
fn me() -> (u64, u64) {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static THREAD: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    let p = procid::me();
    let proc_key = (p.pid as u32 as u64) | (p.start << 32);
    (proc_key, THREAD.with(|t| *t))
}

/// A lock the thread holding it may take again; shared by processes. Replaces
/// `multiprocessing.RLock`.
///
/// A robust, process-shared mutex underneath, with the owner and its level count beside it in
/// shared memory: each [`RLock::acquire`] by the owning thread adds a level (a new guard), and
/// the lock is free again when the last guard is dropped. If the owning thread dies holding it
/// (its process killed, or the thread ended), the next acquirer gets it at level 1, told so by
/// [`RLockGuard::owner_died`]. Python's would stay held forever.
///
/// ```
/// let r = ipc::RLock::new()?;
/// let outer = r.acquire()?;
/// let inner = r.acquire()?;           // the same thread again: level 2
/// assert_eq!(r.count(), 2);
/// drop(inner);
/// drop(outer);
/// assert!(!r.is_owned());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct RLock {
    block: Block<State>,
    lock: Lock,
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ipc::RLock")
            .field("owned_here", &self.is_owned())
            .finish()
    }
}

/// One level of a held [`RLock`]; dropping it lets go of that level (in this thread).
#[must_use = "the level is released as soon as the guard is dropped"]
pub struct RLockGuard<'a> {
    rlock: &'a RLock,
    owner_died: bool,
    _not_send: PhantomData<*const ()>,
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLockGuard")
            .field("owner_died", &self.owner_died)
            .finish()
    }
}

impl RLockGuard<'_> {
    /// `true` if the previous owner died holding the lock (whatever it protects may be half
    /// updated); the lock itself works normally again.
    pub fn owner_died(&self) -> bool {
        self.owner_died
    }
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        self.rlock.release_level();
    }
}

impl RLock {
    /// A new, free reentrant lock. Replaces `multiprocessing.RLock()`.
    ///
    /// # Errors
    /// If the shared memory cannot be mapped or the mutex initialised.
    pub fn new() -> io::Result<RLock> {
        let block = Block::new(|_: &State| {})?;
        let lock = block.state_lock();
        Ok(RLock { block, lock })
    }

    /// Whether this thread holds it. Python's `rlock._is_owned()`.
    pub fn is_owned(&self) -> bool {
        let s = self.block.get();
        let (p, t) = me();
        s.owner_proc.load(Relaxed) == p && s.owner_thread.load(Relaxed) == t
    }

    /// How many levels this thread holds (0 if it does not hold it).
    pub fn count(&self) -> u32 {
        if self.is_owned() {
            self.block.get().count.load(Relaxed)
        } else {
            0
        }
    }

    fn level(&self, taken: Option<LockGuard<'_>>) -> Option<RLockGuard<'_>> {
        let owner_died = taken?.keep();
        let s = self.block.get();
        let (p, t) = me();
        s.owner_proc.store(p, Relaxed);
        s.owner_thread.store(t, Relaxed);
        s.count.store(1, Relaxed);
        Some(RLockGuard {
            rlock: self,
            owner_died,
            _not_send: PhantomData,
        })
    }

    /// A further level for the thread that already holds it.
    fn again(&self) -> Option<RLockGuard<'_>> {
        if !self.is_owned() {
            return None;
        }
        self.block.get().count.fetch_add(1, Relaxed);
        Some(RLockGuard {
            rlock: self,
            owner_died: false,
            _not_send: PhantomData,
        })
    }

    /// Take it (another level if this thread holds it), waiting as long as it takes.
    /// Replaces `rlock.acquire()` / `with rlock:`.
    ///
    /// # Errors
    /// As [`Lock::acquire`](crate::Lock::acquire).
    pub fn acquire(&self) -> Result<RLockGuard<'_>, LockError> {
        if let Some(g) = self.again() {
            return Ok(g);
        }
        let taken = self.lock.acquire()?;
        self.level(Some(taken))
            .ok_or_else(|| LockError::Os(io::Error::other("lock returned busy")))
    }

    /// Take it if free now or held by this thread (`None` if another holds it). Replaces
    /// `rlock.acquire(False)`.
    ///
    /// # Errors
    /// As [`RLock::acquire`].
    pub fn try_acquire(&self) -> Result<Option<RLockGuard<'_>>, LockError> {
        if let Some(g) = self.again() {
            return Ok(Some(g));
        }
        Ok(self.level(self.lock.try_acquire()?))
    }

    /// Take it, waiting at most `timeout` (`None` on time-out). Replaces
    /// `rlock.acquire(timeout=t)`.
    ///
    /// # Errors
    /// As [`RLock::acquire`].
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<Option<RLockGuard<'_>>, LockError> {
        if let Some(g) = self.again() {
            return Ok(Some(g));
        }
        Ok(self.level(self.lock.acquire_timeout(timeout)?))
    }

    fn release_level(&self) {
        let s = self.block.get();
        if s.count.fetch_sub(1, Relaxed) == 1 {
            s.owner_thread.store(0, Relaxed);
            s.owner_proc.store(0, Relaxed);
            // SAFETY: this thread held the last level, taken through `LockGuard::keep`.
            unsafe { self.lock.unlock_kept() };
        }
    }

    /// Let go of every level this thread holds (it must hold at least one, through guards
    /// that stay alive), for a [`Condition`](crate::Condition) wait; the levels, for
    /// [`RLock::restore`].
    pub(crate) fn release_all(&self) -> u32 {
        let s = self.block.get();
        let levels = s.count.swap(0, Relaxed);
        s.owner_thread.store(0, Relaxed);
        s.owner_proc.store(0, Relaxed);
        // SAFETY: the caller's guards prove this thread holds the lock (taken through `keep`).
        unsafe { self.lock.unlock_kept() };
        levels
    }

    /// Take the lock back at `levels` levels after [`RLock::release_all`]; whether its owner
    /// died meanwhile.
    pub(crate) fn restore(&self, levels: u32) -> Result<bool, LockError> {
        let died = self.lock.acquire()?.keep();
        let s = self.block.get();
        let (p, t) = me();
        s.owner_proc.store(p, Relaxed);
        s.owner_thread.store(t, Relaxed);
        s.count.store(levels, Relaxed);
        Ok(died)
    }
}
