//! Python's `multiprocessing.synchronize` for processes: [`Event`], [`Semaphore`],
//! [`BoundedSemaphore`], [`RLock`], [`Condition`] and [`Barrier`], each a small block of shared
//! memory that every process holding a clone (made before `fork`, or attached by name) uses
//! directly. Waiting is a futex on a word of that block; no server, no pipe.
//!
//! # What happens when a process dies inside one
//!
//! Python's versions are POSIX semaphores: a process killed holding one leaves it held
//! forever, and its waiters hang. Here:
//!
//! - each block's own state is guarded by a robust process-shared mutex: a process killed
//!   while updating it leaves a lock the next caller gets (`EOWNERDEAD`), not a hang;
//! - a [`Semaphore`] permit held through a [`Permit`] guard is recorded with its process (pid
//!   and start time). A waiter that finds no permit looks, every [`PROBE`], for holders that
//!   died; their permits come back, and the acquirer that gets one is told
//!   ([`Permit::reclaimed`]). A permit taken for good ([`Permit::forget`], Python's bare
//!   `acquire()` matched by a `release()` elsewhere) is not recorded, so a semaphore used to
//!   signal between processes never sees phantom permits;
//! - an [`RLock`] (and the lock of a [`Condition`]) is a robust mutex: its next acquirer is
//!   told the owner died;
//! - a [`Condition`] waiter killed while waiting does not swallow a `notify` meant for a live
//!   one (Python's `notify` would wait forever for the dead sleeper to acknowledge);
//! - an [`Event`] and a [`Barrier`] have no holder; their waits take timeouts (a [`Barrier`]
//!   whose parties do not all come within one breaks, as Python's does).
//!
//! `tests/sync_faults.rs` kills holders and waiters at chosen moments; `tests/sync_model.rs`
//! runs random operations from several processes against each type's invariants.
//!
//! # Unsafe code: its rules
//!
//! - A block is a `#[repr(C)]` struct whose fields are atomics and, where it has a state lock,
//!   one `pthread_mutex_t` inside an `UnsafeCell`, reached only through a raw pointer by the
//!   pthread calls ([`Lock`]). Shared references to the block are sound: every field is
//!   either an atomic or behind that cell.
//! - A block is written whole only while its mapping is fresh (before any other process can
//!   see it); afterwards only through atomics and the pthread calls.
//! - A mapping is unmapped when the last handle of this process drops it (an `Arc`); guards
//!   borrow their handle, so no reference into the block outlives the mapping.
//! - Futex words are 32-bit atomics at 4-byte aligned offsets of the block (`repr(C)`).
//!
//! # Timeouts
//!
//! Every timed call takes any `Duration`: one too long to represent waits as long as it takes.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::mem::size_of;
use std::sync::Arc;
use std::time::Duration;

use crate::shm::{Lock, LockError, Mapping};

mod barrier;
mod condition;
mod event;
mod rlock;
mod semaphore;

pub use barrier::{Barrier, MAX_PARTIES};
pub use condition::{Condition, ConditionGuard, MAX_WAITERS};
pub use event::Event;
pub use rlock::{RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, HOLDERS, MAX_PERMITS, Permit, Semaphore};

/// How often a waiter that found nothing looks for holders that died (a [`Semaphore`]'s).
pub const PROBE: Duration = Duration::from_millis(20);

/// Why a call on a process-shared synchronisation object failed.
#[derive(Debug)]
pub enum SyncError {
    /// Its lock failed (see [`LockError`]).
    Lock(LockError),
    /// A release that would take a [`BoundedSemaphore`] past its initial value (Python's
    /// `ValueError: semaphore or lock released too many times`); nothing was released.
    OverRelease {
        /// The bound.
        bound: u32,
        /// How many permits the refused release would have added.
        n: u32,
    },
    /// The [`Barrier`] is broken (aborted, reset while parties waited, or a wait timed out):
    /// Python's `threading.BrokenBarrierError`.
    BrokenBarrier,
    /// A [`Condition`] already has [`MAX_WAITERS`] waiters: this one was not added.
    TooManyWaiters {
        /// The limit.
        limit: usize,
    },
    /// More permits than a semaphore counts (`u32::MAX / 2`).
    TooManyPermits {
        /// The number asked for.
        requested: u64,
    },
}

impl fmt::Display for SyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncError::Lock(e) => write!(f, "{e}"),
            SyncError::OverRelease { bound, n } => write!(
                f,
                "semaphore released too many times: {n} more permit(s) would pass its bound of \
                 {bound} (nothing was released)"
            ),
            SyncError::BrokenBarrier => f.write_str("the barrier is broken"),
            SyncError::TooManyWaiters { limit } => write!(
                f,
                "the condition already has {limit} waiters, its most (this one was not added)"
            ),
            SyncError::TooManyPermits { requested } => write!(
                f,
                "a semaphore of {requested} permits cannot be made: at most {}",
                MAX_PERMITS
            ),
        }
    }
}

impl std::error::Error for SyncError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SyncError::Lock(e) => Some(e),
            _ => None,
        }
    }
}

impl From<LockError> for SyncError {
    fn from(e: LockError) -> Self {
        SyncError::Lock(e)
    }
}

impl From<io::Error> for SyncError {
    fn from(e: io::Error) -> Self {
        SyncError::Lock(LockError::Os(e))
    }
}

/// Implemented by a block's `#[repr(C)]` layout.
///
/// # Safety
/// The type must be valid when all its bytes are zero except what `init` writes, hold only
/// atomics and `UnsafeCell`s (so shared references to it are sound across processes), and
/// have its robust mutex (if [`Layout::LOCK`] is `Some(offset)`) at that offset.
pub(crate) unsafe trait Layout: Sized {
    /// Where its state mutex is, if it has one.
    const LOCK: Option<usize>;
}

/// A block of type `T` at offset 0 of a shared mapping; clones share it.
pub(crate) struct Block<T: Layout> {
    map: Arc<Mapping>,
    _t: PhantomData<T>,
}

impl<T: Layout> Clone for Block<T> {
    fn clone(&self) -> Self {
        Block {
            map: Arc::clone(&self.map),
            _t: PhantomData,
        }
    }
}

impl<T: Layout> Block<T> {
    /// A fresh zeroed block, its state mutex initialised, then `init` run on it (nobody else
    /// sees it yet).
    pub(crate) fn new(init: impl FnOnce(&T)) -> io::Result<Block<T>> {
        let map = Arc::new(Mapping::new(size_of::<T>())?);
        if let Some(offset) = T::LOCK {
            // SAFETY: the mapping is fresh, page-aligned and large enough; the Layout impl
            // says a pthread_mutex_t (in an UnsafeCell) is at `offset`.
            unsafe { crate::shm::init_mutex(map.at(offset))? };
        }
        let block = Block {
            map,
            _t: PhantomData,
        };
        init(block.get());
        Ok(block)
    }

    /// The block.
    pub(crate) fn get(&self) -> &T {
        // SAFETY: a T lives at offset 0 for as long as the mapping (held by `self`); T holds
        // only atomics and UnsafeCells (the Layout contract), so a shared reference is sound
        // while other processes change it.
        unsafe { &*self.map.at::<T>(0) }
    }

    /// The block's state lock.
    pub(crate) fn state_lock(&self) -> Lock {
        Lock::inside(Arc::clone(&self.map), T::LOCK.unwrap_or(0))
    }
}
