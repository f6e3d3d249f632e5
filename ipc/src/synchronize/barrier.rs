//! [`Barrier`]: parties in several processes meet, then all go on.
//!
//! Python's algorithm (`threading.Barrier`, which `multiprocessing.Barrier` runs over shared
//! state): the barrier *fills* as parties arrive; the last one runs the action and turns it to
//! *draining*; the others leave; the last to leave turns it back to *filling*, so it can be
//! used again. It can be *broken* (a timeout, [`Barrier::abort`]) or *reset*. Here the state
//! sits in shared memory behind a robust mutex, and waiting parties sleep on one futex word
//! bumped at every change (Python's `notify_all`). Each party inside `wait` is recorded with
//! its process: a party killed while waiting is found by the others (they look every
//! [`PROBE`]) and breaks the barrier, as a timeout would, instead of leaving it unable to
//! ever fill again.

use std::cell::UnsafeCell;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU32, AtomicU64};
use std::time::{Duration, Instant};

use nix::libc;

use super::{Block, Layout, PROBE, SyncError};
use crate::procid::{self, ProcId};
use crate::shm::{Lock, LockGuard};
use crate::{deadline, futex};

/// How many parties inside a wait are recorded (those beyond are not looked after if they die).
pub const MAX_PARTIES: usize = 64;

const FILLING: i64 = 0;
const DRAINING: i64 = 1;
const RESETTING: i64 = -1;
const BROKEN: i64 = -2;

#[repr(C)]
struct Party {
    pid: AtomicI32,
    start: AtomicU64,
}

#[repr(C)]
struct State {
    mutex: UnsafeCell<libc::pthread_mutex_t>,
    parties: AtomicU64,
    /// Parties inside `wait` (Python's `_count`).
    count: AtomicU64,
    /// [`FILLING`], [`DRAINING`], [`RESETTING`] or [`BROKEN`] (Python's `_state`).
    state: AtomicI64,
    /// Bumped at every change waiters must see: the futex word they sleep on.
    seq: AtomicU32,
    inside: [Party; MAX_PARTIES],
}

// SAFETY: a pthread mutex in an UnsafeCell at offset 0, then atomics; zero is an empty, filling
// barrier (`new` writes the parties).
unsafe impl Layout for State {
    const LOCK: Option<usize> = Some(0);
}

/// A barrier for `parties` processes (or threads in them). Replaces
/// `multiprocessing.Barrier(parties, action, timeout)`.
///
/// ```
/// let b = ipc::Barrier::new(1)?;
/// assert_eq!(b.wait()?, 0);              // one party: it is the last, and goes on
/// assert_eq!(b.parties(), 1);
/// # Ok::<(), ipc::SyncError>(())
/// ```
#[derive(Clone)]
pub struct Barrier {
    block: Block<State>,
    lock: Lock,
    action: Option<Arc<dyn Fn() + Send + Sync>>,
    timeout: Option<Duration>,
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ipc::Barrier")
            .field("parties", &self.parties())
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.broken())
            .finish()
    }
}

impl Barrier {
    /// A barrier for `parties` parties. Replaces `multiprocessing.Barrier(parties)`.
    ///
    /// # Errors
    /// If the shared memory cannot be mapped.
    ///
    /// # Panics
    /// If `parties` is 0 (Python's `ValueError`).
    pub fn new(parties: usize) -> Result<Barrier, SyncError> {
        assert!(parties > 0, "a barrier needs at least one party");
        let block = Block::new(|s: &State| s.parties.store(parties as u64, SeqCst))?;
        let lock = block.state_lock();
        Ok(Barrier {
            block,
            lock,
            action: None,
            timeout: None,
        })
    }

    /// Run `action` in the last party to arrive, before any goes on (Python's `action=`). It
    /// belongs to this handle and its clones (a forked child's copy runs in the child). A
    /// panicking action breaks the barrier, as Python's raising one does.
    pub fn with_action(mut self, action: impl Fn() + Send + Sync + 'static) -> Barrier {
        self.action = Some(Arc::new(action));
        self
    }

    /// The timeout of [`Barrier::wait`] (Python's `timeout=`).
    pub fn with_timeout(mut self, timeout: Duration) -> Barrier {
        self.timeout = Some(timeout);
        self
    }

    fn state(&self) -> &State {
        self.block.get()
    }

    /// How many parties it needs. Python's `barrier.parties`.
    pub fn parties(&self) -> usize {
        self.state().parties.load(Relaxed) as usize
    }

    /// How many parties wait in it now. Python's `barrier.n_waiting`.
    pub fn n_waiting(&self) -> usize {
        let s = self.state();
        if s.state.load(SeqCst) == FILLING {
            s.count.load(SeqCst) as usize
        } else {
            0
        }
    }

    /// Whether it is broken. Python's `barrier.broken`.
    pub fn broken(&self) -> bool {
        self.state().state.load(SeqCst) == BROKEN
    }

    /// Wait for all parties (at most the barrier's own timeout, if it has one); this party's
    /// arrival index, `0` for the first to arrive. Replaces `barrier.wait()`.
    ///
    /// # Errors
    /// [`SyncError::BrokenBarrier`] if it is or becomes broken (a timeout, an abort, a reset
    /// while waiting, a party that died waiting, a panicking action); [`SyncError::Lock`].
    pub fn wait(&self) -> Result<usize, SyncError> {
        self.wait_until(self.timeout.and_then(deadline::after))
    }

    /// As [`Barrier::wait`], at most `timeout`. Replaces `barrier.wait(timeout)`; on time-out
    /// the barrier breaks, for every party (as in Python).
    ///
    /// # Errors
    /// As [`Barrier::wait`].
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, SyncError> {
        self.wait_until(deadline::after(timeout))
    }

    /// Break it: every waiting and later party gets [`SyncError::BrokenBarrier`] until
    /// [`Barrier::reset`]. Replaces `barrier.abort()`.
    ///
    /// # Errors
    /// [`SyncError::Lock`].
    pub fn abort(&self) -> Result<(), SyncError> {
        let _g = self.lock.acquire()?;
        self.break_it();
        Ok(())
    }

    /// Back to its empty state; parties waiting now get [`SyncError::BrokenBarrier`].
    /// Replaces `barrier.reset()`.
    ///
    /// # Errors
    /// [`SyncError::Lock`].
    pub fn reset(&self) -> Result<(), SyncError> {
        let _g = self.lock.acquire()?;
        let s = self.state();
        if s.count.load(Relaxed) > 0 {
            let st = s.state.load(Relaxed);
            if st == FILLING || st == BROKEN {
                s.state.store(RESETTING, SeqCst);
            }
        } else {
            s.state.store(FILLING, SeqCst);
        }
        self.changed();
        Ok(())
    }

    fn changed(&self) {
        let s = self.state();
        s.seq.fetch_add(1, SeqCst);
        futex::wake_all(&s.seq);
    }

    fn break_it(&self) {
        self.state().state.store(BROKEN, SeqCst);
        self.changed();
    }

    /// The state lock; a process that died holding it may have left the barrier half
    /// updated, so that breaks it.
    fn locked(&self) -> Result<LockGuard<'_>, SyncError> {
        let g = self.lock.acquire()?;
        if g.owner_died() {
            self.break_it();
        }
        Ok(g)
    }

    /// Sleep (lock released) until the state changes, `deadline`, or the next look for dead
    /// parties; then take the lock again. `false` once `deadline` has passed.
    fn sleep<'a>(
        &'a self,
        g: LockGuard<'a>,
        deadline: Option<Instant>,
    ) -> Result<(LockGuard<'a>, bool), SyncError> {
        let s = self.state();
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok((g, false));
        }
        let seen = s.seq.load(SeqCst);
        drop(g);
        let left = deadline::left(deadline).map_or(PROBE, |l| l.min(PROBE));
        futex::wait(&s.seq, seen, Some(left));
        let g = self.locked()?;
        if s.seq.load(SeqCst) == seen {
            // Nothing changed for a while: is a party we wait for dead?
            self.bury_dead();
        }
        Ok((g, true))
    }

    /// Parties recorded inside `wait` whose process died: out of the count, and the barrier
    /// broken (under the lock).
    fn bury_dead(&self) {
        let s = self.state();
        let me = procid::me();
        let mut dead = 0;
        for p in &s.inside {
            let who = ProcId {
                pid: p.pid.load(Relaxed),
                start: p.start.load(Relaxed),
            };
            if who.pid != 0 && who.pid != me.pid && !who.alive() {
                p.pid.store(0, Relaxed);
                dead += 1;
            }
        }
        if dead > 0 {
            let c = s.count.load(Relaxed);
            s.count.store(c.saturating_sub(dead), Relaxed);
            self.break_it();
        }
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<usize, SyncError> {
        let s = self.state();
        let me = procid::me();
        let mut g = self.locked()?;
        // Python's `_enter`: wait for a draining or resetting barrier to fill again.
        loop {
            let st = s.state.load(Relaxed);
            if st == DRAINING || st == RESETTING {
                g = self.sleep(g, None)?.0;
                continue;
            }
            if st == BROKEN {
                return Err(SyncError::BrokenBarrier);
            }
            break;
        }
        let index = s.count.fetch_add(1, Relaxed);
        let slot = s.inside.iter().find(|p| p.pid.load(Relaxed) == 0);
        if let Some(p) = slot {
            p.start.store(me.start, Relaxed);
            p.pid.store(me.pid, Relaxed);
        }
        let outcome = if index + 1 == s.parties.load(Relaxed) {
            // The last: the action, then everyone goes.
            let ran = match &self.action {
                Some(action) => {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| action())).is_ok()
                }
                None => true,
            };
            if ran {
                s.state.store(DRAINING, SeqCst);
                self.changed();
                Ok(index as usize)
            } else {
                self.break_it();
                Err(SyncError::BrokenBarrier)
            }
        } else {
            loop {
                let st = s.state.load(Relaxed);
                if st != FILLING {
                    break if st < 0 {
                        Err(SyncError::BrokenBarrier)
                    } else {
                        Ok(index as usize)
                    };
                }
                let (back, in_time) = self.sleep(g, deadline)?;
                g = back;
                if !in_time {
                    self.break_it();
                    break Err(SyncError::BrokenBarrier);
                }
            }
        };
        // Python's `_exit`: out of the count; the last one out lets the barrier fill again.
        if let Some(p) = slot {
            p.pid.store(0, Relaxed);
        }
        let left = s.count.load(Relaxed).saturating_sub(1);
        s.count.store(left, Relaxed);
        if left == 0 {
            let st = s.state.load(Relaxed);
            if st == RESETTING || st == DRAINING {
                s.state.store(FILLING, SeqCst);
                self.changed();
            }
        }
        drop(g);
        outcome
    }
}
