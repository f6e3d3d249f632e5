//! [`Condition`]: wait for a change announced by another process, under an [`RLock`].
//!
//! Each waiter takes a slot of a fixed table in shared memory (its own futex word, a ticket
//! for first-come order, its process); `notify(n)` marks the `n` oldest waiting slots and
//! wakes exactly those. A waiter that times out gives its slot back; one killed while waiting
//! is found dead by the `notify` that picks it (the futex wakes nobody there, and its process
//! is gone), and the notification goes to the next waiter instead.

use std::cell::UnsafeCell;
use std::fmt;
use std::io;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64};
use std::time::{Duration, Instant};

use nix::libc;

use super::{Block, Layout, RLock, RLockGuard, SyncError};
use crate::procid::{self, ProcId};
use crate::shm::Lock;
use crate::{deadline, futex};

/// How many waiters a [`Condition`] holds at once, across all processes.
pub const MAX_WAITERS: usize = 128;

const FREE: u32 = 0;
const WAITING: u32 = 1;
const NOTIFIED: u32 = 2;

#[repr(C)]
struct Slot {
    /// The waiter's futex word: 0 while it waits, 1 once notified.
    word: AtomicU32,
    /// [`FREE`], [`WAITING`] or [`NOTIFIED`] (under the table's mutex).
    state: AtomicU32,
    ticket: AtomicU64,
    pid: AtomicI32,
    start: AtomicU64,
}

#[repr(C)]
struct State {
    /// Guards the table (not the user's data: that is the [`RLock`]'s).
    mutex: UnsafeCell<libc::pthread_mutex_t>,
    next_ticket: AtomicU64,
    slots: [Slot; MAX_WAITERS],
}

// SAFETY: a pthread mutex in an UnsafeCell at offset 0, then atomics; zero is an empty table.
unsafe impl Layout for State {
    const LOCK: Option<usize> = Some(0);
}

/// A condition variable shared by processes, with its lock. Replaces
/// `multiprocessing.Condition` (whose lock is an `RLock` unless given one).
///
/// Take the lock with [`Condition::acquire`] (Python's `with cond:`); the guard waits and
/// notifies, so neither can be called without holding the lock (Python's `RuntimeError`).
///
/// ```
/// let cond = ipc::Condition::new()?;
/// let mut g = cond.acquire()?;
/// assert!(!g.wait_timeout(std::time::Duration::from_millis(1))?); // nobody notified
/// g.notify_all()?;                                                 // nobody waits: a no-op
/// # Ok::<(), ipc::SyncError>(())
/// ```
///
/// # Differences from Python
///
/// A wait that times out just as it is notified returns `true` (the notification is not lost;
/// Python's returns `False` and the notification is spent). At most [`MAX_WAITERS`] wait at
/// once ([`SyncError::TooManyWaiters`] beyond).
#[derive(Clone)]
pub struct Condition {
    block: Block<State>,
    table: Lock,
    rlock: RLock,
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ipc::Condition")
    }
}

/// The [`Condition`]'s lock, held: wait and notify through it.
pub struct ConditionGuard<'a> {
    cond: &'a Condition,
    guard: RLockGuard<'a>,
    owner_died: bool,
}

impl fmt::Debug for ConditionGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConditionGuard")
            .field("owner_died", &self.owner_died)
            .finish()
    }
}

impl Condition {
    /// A condition with a new [`RLock`]. Replaces `multiprocessing.Condition()`.
    ///
    /// # Errors
    /// If the shared memory cannot be mapped.
    pub fn new() -> io::Result<Condition> {
        Condition::with_lock(RLock::new()?)
    }

    /// A condition over an existing lock. Replaces `multiprocessing.Condition(lock)`.
    ///
    /// # Errors
    /// If the shared memory cannot be mapped.
    pub fn with_lock(rlock: RLock) -> io::Result<Condition> {
        let block = Block::new(|_: &State| {})?;
        let table = block.state_lock();
        Ok(Condition {
            block,
            table,
            rlock,
        })
    }

    /// The lock. Python's `cond._lock`.
    pub fn lock(&self) -> &RLock {
        &self.rlock
    }

    /// Take the lock. Replaces `cond.acquire()` / `with cond:`.
    ///
    /// # Errors
    /// [`SyncError::Lock`] if the lock fails (a dead owner is not an error: see
    /// [`ConditionGuard::owner_died`]).
    pub fn acquire(&self) -> Result<ConditionGuard<'_>, SyncError> {
        let guard = self.rlock.acquire()?;
        let owner_died = guard.owner_died();
        Ok(ConditionGuard {
            cond: self,
            guard,
            owner_died,
        })
    }

    /// Take the lock, waiting at most `timeout` (`None` on time-out).
    ///
    /// # Errors
    /// As [`Condition::acquire`].
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Option<ConditionGuard<'_>>, SyncError> {
        Ok(self
            .rlock
            .acquire_timeout(timeout)?
            .map(|guard| ConditionGuard {
                cond: self,
                owner_died: guard.owner_died(),
                guard,
            }))
    }

    fn slot(&self, i: usize) -> &Slot {
        &self.block.get().slots[i]
    }

    /// Take a free slot (or one whose waiter's process is gone) for `me`.
    fn register(&self, me: ProcId) -> Result<usize, SyncError> {
        let s = self.block.get();
        let _g = self.table.acquire()?;
        let free = s.slots.iter().position(|sl| sl.state.load(Relaxed) == FREE);
        let i = match free {
            Some(i) => i,
            // Full: a slot left by a process killed while waiting is free in truth.
            None => s
                .slots
                .iter()
                .position(|sl| sl.pid.load(Relaxed) != me.pid && !owner_of(sl).alive())
                .ok_or(SyncError::TooManyWaiters { limit: MAX_WAITERS })?,
        };
        let sl = &s.slots[i];
        sl.word.store(0, SeqCst);
        sl.ticket
            .store(s.next_ticket.fetch_add(1, Relaxed), Relaxed);
        sl.pid.store(me.pid, Relaxed);
        sl.start.store(me.start, Relaxed);
        sl.state.store(WAITING, Relaxed);
        Ok(i)
    }

    /// Give slot `i` back; whether it had been notified.
    fn deregister(&self, i: usize) -> Result<bool, SyncError> {
        let _g = self.table.acquire()?;
        let sl = self.slot(i);
        let notified = sl.state.load(Relaxed) == NOTIFIED;
        sl.state.store(FREE, Relaxed);
        Ok(notified)
    }

    /// Notify up to `n` waiters, oldest first, skipping waiters whose process died.
    fn notify(&self, n: usize) -> Result<(), SyncError> {
        let s = self.block.get();
        let me = procid::me();
        let _g = self.table.acquire()?;
        let mut done = 0;
        while done < n {
            let oldest = s
                .slots
                .iter()
                .filter(|sl| sl.state.load(Relaxed) == WAITING)
                .min_by_key(|sl| sl.ticket.load(Relaxed));
            let Some(sl) = oldest else { break };
            sl.state.store(NOTIFIED, Relaxed);
            sl.word.store(1, SeqCst);
            // Asleep on its word: alive, and now woken. Not asleep: about to look at its word
            // (it will see the 1), or dead (then the next waiter gets this notification).
            if futex::wake(&sl.word, 1) == 0
                && sl.pid.load(Relaxed) != me.pid
                && !owner_of(sl).alive()
            {
                sl.state.store(FREE, Relaxed);
                continue;
            }
            done += 1;
        }
        Ok(())
    }
}

fn owner_of(sl: &Slot) -> ProcId {
    ProcId {
        pid: sl.pid.load(Relaxed),
        start: sl.start.load(Relaxed),
    }
}

impl ConditionGuard<'_> {
    /// Whether a previous holder of the lock died holding it (when this guard was taken, or
    /// when a wait took it back).
    pub fn owner_died(&self) -> bool {
        self.owner_died || self.guard.owner_died()
    }

    /// Let go of the lock, wait until notified, take it back. Replaces `cond.wait()`;
    /// returns `true`.
    ///
    /// # Errors
    /// [`SyncError::TooManyWaiters`]; [`SyncError::Lock`] if a lock fails.
    pub fn wait(&mut self) -> Result<bool, SyncError> {
        self.wait_until(None)
    }

    /// As [`ConditionGuard::wait`], at most `timeout`; whether it was notified. Replaces
    /// `cond.wait(timeout)`.
    ///
    /// # Errors
    /// As [`ConditionGuard::wait`].
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<bool, SyncError> {
        self.wait_until(deadline::after(timeout))
    }

    /// Wait until `predicate()` is true (checked first, and after each wake-up, with the lock
    /// held), at most `timeout` (`None`: as long as it takes); the predicate's last value.
    /// Replaces `cond.wait_for(predicate, timeout)`.
    ///
    /// # Errors
    /// As [`ConditionGuard::wait`].
    pub fn wait_for(
        &mut self,
        mut predicate: impl FnMut() -> bool,
        timeout: Option<Duration>,
    ) -> Result<bool, SyncError> {
        let deadline = timeout.and_then(deadline::after);
        let forever = timeout.is_none() || deadline.is_none();
        loop {
            if predicate() {
                return Ok(true);
            }
            if !forever && deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
            self.wait_until(if forever { None } else { deadline })?;
        }
    }

    fn wait_until(&mut self, deadline: Option<Instant>) -> Result<bool, SyncError> {
        let cond = self.cond;
        let i = cond.register(procid::me())?;
        let levels = cond.rlock.release_all();
        let word = &cond.slot(i).word;
        loop {
            if word.load(SeqCst) == 1 {
                break;
            }
            let left = deadline::left(deadline);
            if left == Some(Duration::ZERO) {
                break;
            }
            futex::wait(word, 0, left);
        }
        let notified = cond.deregister(i);
        // The lock comes back whatever happened to the table, as Python's `wait` re-acquires.
        self.owner_died |= cond.rlock.restore(levels)?;
        notified
    }

    /// Wake up to `n` waiters (the longest waiting first). Replaces `cond.notify(n)`.
    ///
    /// # Errors
    /// [`SyncError::Lock`] if the table's lock fails.
    pub fn notify(&self, n: usize) -> Result<(), SyncError> {
        self.cond.notify(n)
    }

    /// Wake every waiter. Replaces `cond.notify_all()`.
    ///
    /// # Errors
    /// As [`ConditionGuard::notify`].
    pub fn notify_all(&self) -> Result<(), SyncError> {
        self.cond.notify(MAX_WAITERS)
    }
}
