//! [`Semaphore`] and [`BoundedSemaphore`]: permits counted in shared memory, with the holders
//! of guarded permits recorded so that a dead holder's permits come back.

use std::cell::UnsafeCell;
use std::fmt;
use std::ops::Deref;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64};
use std::time::{Duration, Instant};

use nix::libc;

use super::{Block, Layout, PROBE, SyncError};
use crate::procid::{self, ProcId};
use crate::shm::Lock;
use crate::{deadline, futex};

/// The most permits a semaphore counts.
pub const MAX_PERMITS: u32 = u32::MAX / 2;

/// How many processes can hold guarded permits of one semaphore at once and be recorded;
/// permits held beyond that work, but are not given back if their process dies.
pub const HOLDERS: usize = 64;

/// No bound (a plain [`Semaphore`]).
const UNBOUNDED: u32 = u32::MAX;

/// One process holding guarded permits: its pid and start time, and how many.
#[repr(C)]
struct Holder {
    pid: AtomicI32,
    count: AtomicU32,
    start: AtomicU64,
}

#[repr(C)]
struct State {
    /// Guards every field below except the futex word's wake-ups and `value`'s reads.
    mutex: UnsafeCell<libc::pthread_mutex_t>,
    /// Free permits.
    value: AtomicU32,
    /// The most `value` may reach ([`UNBOUNDED`] for a plain semaphore).
    bound: AtomicU32,
    /// Bumped, under the mutex, whenever permits come back: the futex word waiters sleep on.
    seq: AtomicU32,
    /// Waiters between counting themselves (under the mutex) and waking.
    sleepers: AtomicU32,
    holders: [Holder; HOLDERS],
}

// SAFETY: a pthread mutex in an UnsafeCell at offset 0 (repr(C), first field), then atomics;
// all zero is a valid empty table, and `new` writes the value and bound.
unsafe impl Layout for State {
    const LOCK: Option<usize> = Some(0);
}

/// A counter of permits shared by processes. Replaces `multiprocessing.Semaphore`.
///
/// [`Semaphore::acquire`] returns a [`Permit`] that gives the permit back when dropped (the
/// `with sem:` block). While it is held, the permit is recorded with its process: if that
/// process dies (even by SIGKILL), a waiter finds that out within [`PROBE`] of waiting, takes
/// the permit back and is told ([`Permit::reclaimed`]). Python's semaphore would stay short of
/// that permit forever, and its waiters would hang.
///
/// For Python's bare `acquire()` / `release()` (a permit taken in one process and given back
/// by another, or a semaphore used as a counter of signals), take the permit with
/// [`Permit::forget`] and give it with [`Semaphore::release`]: such a permit is not recorded,
/// so the death of the process that took it gives nothing back (it was not held, it was
/// taken).
///
/// ```
/// let sem = ipc::Semaphore::new(2)?;
/// let a = sem.acquire()?;
/// let b = sem.acquire()?;
/// assert!(sem.try_acquire()?.is_none());
/// drop(a);
/// assert_eq!(sem.get_value(), 1);
/// b.forget();                          // taken for good ...
/// sem.release()?;                      // ... and given back by hand
/// assert_eq!(sem.get_value(), 2);
/// # Ok::<(), ipc::SyncError>(())
/// ```
#[derive(Clone)]
pub struct Semaphore {
    block: Block<State>,
    lock: Lock,
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ipc::Semaphore")
            .field("value", &self.get_value())
            .finish()
    }
}

/// A permit of a [`Semaphore`], given back when dropped.
#[must_use = "the permit is given back as soon as it is dropped"]
pub struct Permit<'a> {
    sem: &'a Semaphore,
    recorded: bool,
    reclaimed: u32,
    owner_died: bool,
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("reclaimed", &self.reclaimed)
            .field("owner_died", &self.owner_died)
            .finish()
    }
}

impl Permit<'_> {
    /// How many permits this acquire took back from holders that had died holding them
    /// (0 almost always).
    pub fn reclaimed(&self) -> u32 {
        self.reclaimed
    }

    /// Whether a process died holding what this acquire had to wait for: permits were taken
    /// back from dead holders, or a process died while updating the semaphore's own state.
    /// What those processes protected with their permits may be half done.
    pub fn owner_died(&self) -> bool {
        self.owner_died || self.reclaimed > 0
    }

    /// Keep the permit taken, without a guard: Python's bare `acquire()`, to be matched by a
    /// [`Semaphore::release`] (in any process). The permit is no longer recorded as held.
    ///
    /// # Errors
    /// If the semaphore's state lock fails (the permit stays taken).
    pub fn forget(self) -> Result<(), SyncError> {
        let (sem, recorded) = (self.sem, self.recorded);
        std::mem::forget(self);
        if recorded {
            let _g = sem.lock.acquire()?;
            sem.unrecord(procid::me());
        }
        Ok(())
    }

    /// Give the permit back now, and see the error a drop has to swallow.
    ///
    /// # Errors
    /// [`SyncError::OverRelease`] if a [`BoundedSemaphore`] already has all its permits (an
    /// extra [`Semaphore::release`] gave this one back before); [`SyncError::Lock`] if its
    /// state lock fails.
    pub fn release(self) -> Result<(), SyncError> {
        let (sem, recorded) = (self.sem, self.recorded);
        std::mem::forget(self);
        sem.give_back(1, recorded)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        // Refused only past a bounded semaphore's bound, or if the lock failed: see `release`.
        let _ = self.sem.give_back(1, self.recorded);
    }
}

impl Semaphore {
    /// A semaphore with `n` permits. Replaces `multiprocessing.Semaphore(n)`.
    ///
    /// # Errors
    /// [`SyncError::TooManyPermits`] over [`MAX_PERMITS`]; an error mapping the memory.
    pub fn new(n: u32) -> Result<Semaphore, SyncError> {
        Semaphore::with_bound(n, UNBOUNDED)
    }

    fn with_bound(n: u32, bound: u32) -> Result<Semaphore, SyncError> {
        if n > MAX_PERMITS {
            return Err(SyncError::TooManyPermits {
                requested: n.into(),
            });
        }
        let block = Block::new(|s: &State| {
            s.value.store(n, SeqCst);
            s.bound.store(bound, SeqCst);
        })?;
        let lock = block.state_lock();
        Ok(Semaphore { block, lock })
    }

    /// Free permits now (a snapshot). Replaces `sem.get_value()`.
    pub fn get_value(&self) -> u32 {
        self.block.get().value.load(SeqCst)
    }

    /// Take a permit, waiting as long as it takes. Replaces `sem.acquire()` / `with sem:`.
    ///
    /// # Errors
    /// [`SyncError::Lock`] if the state lock fails. A dead holder is not an error: see
    /// [`Permit::owner_died`].
    pub fn acquire(&self) -> Result<Permit<'_>, SyncError> {
        loop {
            if let Some(p) = self.acquire_until(None)? {
                return Ok(p);
            }
        }
    }

    /// Take a permit if one is free now. Replaces `sem.acquire(False)`.
    ///
    /// # Errors
    /// As [`Semaphore::acquire`].
    pub fn try_acquire(&self) -> Result<Option<Permit<'_>>, SyncError> {
        self.acquire_until(Some(Instant::now()))
    }

    /// Take a permit, waiting at most `timeout` (`None` on time-out). Replaces
    /// `sem.acquire(timeout=t)`. A timeout too long to represent waits as long as it takes.
    ///
    /// # Errors
    /// As [`Semaphore::acquire`].
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<Option<Permit<'_>>, SyncError> {
        match deadline::after(timeout) {
            Some(d) => self.acquire_until(Some(d)),
            None => self.acquire().map(Some),
        }
    }

    /// Give back one permit taken with [`Permit::forget`] (or never taken: a plain
    /// semaphore counts up). Replaces `sem.release()`.
    ///
    /// # Errors
    /// [`SyncError::OverRelease`] past a [`BoundedSemaphore`]'s bound or [`MAX_PERMITS`]
    /// (nothing released); [`SyncError::Lock`] if the state lock fails.
    pub fn release(&self) -> Result<(), SyncError> {
        self.give_back(1, false)
    }

    /// Give back `n` permits at once. Replaces `sem.release(n)` (Python 3.9's `threading`
    /// form; `multiprocessing`'s takes no `n`).
    ///
    /// # Errors
    /// As [`Semaphore::release`].
    pub fn release_n(&self, n: u32) -> Result<(), SyncError> {
        self.give_back(n, false)
    }

    fn give_back(&self, n: u32, recorded: bool) -> Result<(), SyncError> {
        let s = self.block.get();
        let woke = {
            let _g = self.lock.acquire()?;
            let (value, bound) = (s.value.load(Relaxed), s.bound.load(Relaxed));
            let most = bound.min(MAX_PERMITS);
            if value.checked_add(n).is_none_or(|v| v > most) {
                return Err(SyncError::OverRelease { bound: most, n });
            }
            if recorded {
                self.unrecord(procid::me());
            }
            s.value.store(value + n, Relaxed);
            s.seq.fetch_add(1, SeqCst);
            s.sleepers.load(SeqCst) > 0
        };
        if woke {
            futex::wake(&s.seq, n);
        }
        Ok(())
    }

    /// Record a guarded permit of `me` (under the state lock); `false` if the table is full.
    fn record(&self, me: ProcId) -> bool {
        let s = self.block.get();
        let mine = s.holders.iter().find(|h| {
            h.pid.load(Relaxed) == me.pid
                && h.start.load(Relaxed) == me.start
                && h.count.load(Relaxed) > 0
        });
        if let Some(h) = mine {
            h.count.fetch_add(1, Relaxed);
            return true;
        }
        match s.holders.iter().find(|h| h.count.load(Relaxed) == 0) {
            Some(h) => {
                h.pid.store(me.pid, Relaxed);
                h.start.store(me.start, Relaxed);
                h.count.store(1, Relaxed);
                true
            }
            None => false,
        }
    }

    /// Forget one guarded permit of `me` (under the state lock).
    fn unrecord(&self, me: ProcId) {
        let s = self.block.get();
        if let Some(h) = s.holders.iter().find(|h| {
            h.pid.load(Relaxed) == me.pid
                && h.start.load(Relaxed) == me.start
                && h.count.load(Relaxed) > 0
        }) {
            h.count.fetch_sub(1, Relaxed);
        }
    }

    /// Whether another process holds recorded permits (under the state lock).
    fn others_hold(&self, me: ProcId) -> bool {
        self.block
            .get()
            .holders
            .iter()
            .any(|h| h.count.load(Relaxed) > 0 && h.pid.load(Relaxed) != me.pid)
    }

    /// Take back the permits of recorded holders that died (under the state lock): how many.
    fn reclaim(&self, me: ProcId) -> u32 {
        let s = self.block.get();
        let mut back = 0;
        for h in &s.holders {
            let count = h.count.load(Relaxed);
            let who = ProcId {
                pid: h.pid.load(Relaxed),
                start: h.start.load(Relaxed),
            };
            if count > 0 && who.pid != me.pid && !who.alive() {
                h.count.store(0, Relaxed);
                back += count;
            }
        }
        if back > 0 {
            let v = s.value.load(Relaxed);
            s.value.store(v.saturating_add(back), Relaxed);
        }
        back
    }

    /// One attempt to take a permit, sleeping until `deadline` (`None`: until woken, which
    /// returns `None` to be called again).
    fn acquire_until(&self, deadline: Option<Instant>) -> Result<Option<Permit<'_>>, SyncError> {
        let s = self.block.get();
        let me = procid::me();
        let (mut reclaimed, mut owner_died) = (0, false);
        let began = Instant::now();
        let mut probed = began;
        loop {
            let (seen, others) = {
                let g = self.lock.acquire()?;
                owner_died |= g.owner_died();
                let mut value = s.value.load(Relaxed);
                if value == 0 && probed.elapsed() >= PROBE {
                    reclaimed += self.reclaim(me);
                    probed = Instant::now();
                    value = s.value.load(Relaxed);
                }
                if value > 0 {
                    // Taken first, recorded second: a process killed between the two loses a
                    // permit rather than making one up.
                    s.value.store(value - 1, Relaxed);
                    let recorded = self.record(me);
                    return Ok(Some(Permit {
                        sem: self,
                        recorded,
                        reclaimed,
                        owner_died,
                    }));
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(None);
                }
                s.sleepers.fetch_add(1, SeqCst);
                (s.seq.load(SeqCst), self.others_hold(me))
            };
            // Sleep until a release, the deadline, or (if other processes hold permits) the
            // next look for dead holders.
            let mut left = deadline::left(deadline);
            if others {
                left = Some(left.map_or(PROBE, |l| l.min(PROBE)));
            }
            futex::wait(&s.seq, seen, left);
            s.sleepers.fetch_sub(1, SeqCst);
        }
    }
}

/// A [`Semaphore`] that refuses to be released past its initial value. Replaces
/// `multiprocessing.BoundedSemaphore`. Everything else is the [`Semaphore`]'s (it derefs to
/// one).
#[derive(Clone, Debug)]
pub struct BoundedSemaphore {
    sem: Semaphore,
}

impl BoundedSemaphore {
    /// A bounded semaphore with `n` permits, and never more. Replaces
    /// `multiprocessing.BoundedSemaphore(n)`.
    ///
    /// # Errors
    /// As [`Semaphore::new`].
    pub fn new(n: u32) -> Result<BoundedSemaphore, SyncError> {
        Ok(BoundedSemaphore {
            sem: Semaphore::with_bound(n, n)?,
        })
    }
}

impl Deref for BoundedSemaphore {
    type Target = Semaphore;
    fn deref(&self) -> &Semaphore {
        &self.sem
    }
}
