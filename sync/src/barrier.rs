//! [`Barrier`]: Python's `threading.Barrier`, with what std's `Barrier` lacks: an action run
//! before anyone is released, timeouts, `abort()`, `reset()`, and a [`BrokenBarrier`] error
//! for every waiter when the barrier breaks.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::deadline;

/// Where a barrier is in its cycle (Python keeps the same four states as 0, 1, -1, -2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Parties arrive and wait.
    Filling,
    /// The last party arrived (and the action ran): the waiters leave; newcomers wait until
    /// the last has left.
    Draining,
    /// `reset()` was called while parties waited: they leave with `BrokenBarrier`; newcomers
    /// wait until the last has left, then the barrier is new.
    Resetting,
    /// A party timed out, `abort()` was called, or the action panicked: every `wait` fails
    /// until `reset()`.
    Broken,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// Parties inside `wait` (arrived and not yet left).
    count: usize,
    /// Whether the last party is running the action: the barrier is then neither filling nor
    /// released, and a waiter whose time runs out keeps waiting (see [`Barrier::wait_timeout`]).
    acting: bool,
}

/// The barrier broke: a party timed out, [`Barrier::abort`] or [`Barrier::reset`] was called
/// while parties waited, or the action panicked. Python's `threading.BrokenBarrierError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokenBarrier;

impl fmt::Display for BrokenBarrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "the barrier is broken (a party timed out, it was aborted or reset, or its action panicked)",
        )
    }
}

impl std::error::Error for BrokenBarrier {}

type Action = Box<dyn FnMut() + Send>;

/// A meeting point for a fixed number of threads, each waiting until all have arrived; then
/// all go on, and the barrier can be used again. Replaces `threading.Barrier(parties, action,
/// timeout)`.
///
/// Unlike `std::sync::Barrier`, it runs an optional action **before any party is released**
/// (on the last thread to arrive), a wait can time out, and a barrier that cannot complete
/// *breaks*: every party waiting, and every later one until [`reset`](Barrier::reset), gets
/// [`BrokenBarrier`] instead of waiting forever.
///
/// | Python | here |
/// |---|---|
/// | `Barrier(n)`, `Barrier(n, action)`, `Barrier(n, timeout=t)` | [`new`](Barrier::new), [`with_action`](Barrier::with_action), [`with_timeout`](Barrier::with_timeout) |
/// | `b.wait()` -> index, `b.wait(t)` | [`wait`](Barrier::wait), [`wait_timeout`](Barrier::wait_timeout) -> `Result<usize, BrokenBarrier>` |
/// | `b.abort()`, `b.reset()` | [`abort`](Barrier::abort), [`reset`](Barrier::reset) |
/// | `b.broken`, `b.n_waiting`, `b.parties` | [`broken`](Barrier::broken), [`n_waiting`](Barrier::n_waiting), [`parties`](Barrier::parties) |
/// | `threading.BrokenBarrierError` | [`BrokenBarrier`] |
///
/// The action runs without the barrier's lock held (Python holds it), so the action may ask
/// [`n_waiting`](Barrier::n_waiting) or call [`abort`](Barrier::abort) without deadlocking; an
/// abort or reset from the action breaks this round, and the parties get [`BrokenBarrier`].
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use sync::Barrier;
///
/// let rounds = AtomicUsize::new(0);
/// let barrier = Barrier::new(3);
/// std::thread::scope(|s| {
///     for _ in 0..3 {
///         s.spawn(|| {
///             let index = barrier.wait().unwrap();   // 0, 1 or 2: each once
///             assert!(index < 3);
///             rounds.fetch_add(1, Ordering::SeqCst);
///         });
///     }
/// });
/// assert_eq!(rounds.into_inner(), 3);
/// ```
pub struct Barrier {
    parties: usize,
    timeout: Option<Duration>,
    state: Mutex<State>,
    changed: Condvar,
    /// Locked only by the thread running the action (one at a time: the barrier does not
    /// fill again until its parties have left).
    action: Mutex<Option<Action>>,
}

impl fmt::Debug for Barrier {
    /// Python's repr: `waiters=2/3`, or `broken`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("Barrier")
            .field("parties", &self.parties)
            .field("n_waiting", &n_waiting(&s))
            .field("broken", &(s.phase == Phase::Broken))
            .finish()
    }
}

fn n_waiting(s: &State) -> usize {
    if s.phase == Phase::Filling {
        s.count
    } else {
        0
    }
}

impl Barrier {
    /// A barrier for `parties` threads, with no action and no default timeout. Replaces
    /// `threading.Barrier(parties)`.
    ///
    /// # Panics
    ///
    /// If `parties` is 0 (Python raises `ValueError`): nobody could ever complete it.
    pub fn new(parties: usize) -> Barrier {
        assert!(parties > 0, "a barrier needs at least one party");
        Barrier {
            parties,
            timeout: None,
            state: Mutex::new(State {
                phase: Phase::Filling,
                count: 0,
                acting: false,
            }),
            changed: Condvar::new(),
            action: Mutex::new(None),
        }
    }

    /// A barrier for `parties` threads whose last arrival runs `action` before any of them is
    /// released. Replaces `threading.Barrier(parties, action)`. If the action panics, the
    /// barrier breaks (the others get [`BrokenBarrier`]) and the panic goes on in the thread
    /// that ran it.
    ///
    /// # Panics
    ///
    /// If `parties` is 0.
    pub fn with_action(parties: usize, action: impl FnMut() + Send + 'static) -> Barrier {
        let b = Barrier::new(parties);
        *b.action.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(action));
        b
    }

    /// Give [`wait`](Barrier::wait) a default timeout. Replaces `Barrier(..., timeout=t)`.
    pub fn with_timeout(mut self, timeout: Duration) -> Barrier {
        self.timeout = Some(timeout);
        self
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is changed in single assignments; a panic cannot leave it half-done.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sleep<'a>(&self, s: MutexGuard<'a, State>, until: Option<Instant>) -> MutexGuard<'a, State> {
        match until {
            None => self.changed.wait(s).unwrap_or_else(|e| e.into_inner()),
            Some(until) => {
                let left = until.saturating_duration_since(Instant::now());
                match self.changed.wait_timeout(s, left) {
                    Ok((s, _)) => s,
                    Err(e) => e.into_inner().0,
                }
            }
        }
    }

    /// The number of threads that must call `wait` to pass. Python's `b.parties`.
    pub fn parties(&self) -> usize {
        self.parties
    }

    /// How many threads wait in the barrier now (a snapshot; 0 while it drains or resets).
    /// Python's `b.n_waiting`.
    pub fn n_waiting(&self) -> usize {
        n_waiting(&self.lock())
    }

    /// Whether the barrier is broken (until [`reset`](Barrier::reset)). Python's `b.broken`.
    pub fn broken(&self) -> bool {
        self.lock().phase == Phase::Broken
    }

    /// Wait until all parties have arrived, or the default timeout given by
    /// [`with_timeout`](Barrier::with_timeout) runs out. Returns this thread's arrival index,
    /// 0 to `parties - 1`, each once per round; the last to arrive (index `parties - 1`) runs
    /// the action. Replaces `b.wait()`.
    ///
    /// # Errors
    ///
    /// [`BrokenBarrier`] if the barrier is broken, or breaks while this thread waits (a
    /// timeout, [`abort`](Barrier::abort), [`reset`](Barrier::reset), a panicking action).
    /// A thread whose wait times out breaks the barrier for everyone, as in Python.
    ///
    /// # Panics
    ///
    /// If the action panics, in the thread that ran it (after breaking the barrier).
    pub fn wait(&self) -> Result<usize, BrokenBarrier> {
        self.wait_until(self.timeout.and_then(deadline::after))
    }

    /// [`wait`](Barrier::wait) with this timeout instead of the default one. Replaces
    /// `b.wait(timeout)`. A timeout too long to represent as a deadline (such as
    /// `Duration::MAX`) waits as long as it takes. A waiter whose time runs out while the last
    /// party runs the action waits for the action to end, then passes (in Python it cannot
    /// even look before the action ends).
    ///
    /// # Errors
    ///
    /// As [`wait`](Barrier::wait).
    ///
    /// # Panics
    ///
    /// As [`wait`](Barrier::wait).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, BrokenBarrier> {
        self.wait_until(deadline::after(timeout))
    }

    fn wait_until(&self, until: Option<Instant>) -> Result<usize, BrokenBarrier> {
        let mut s = self.lock();
        // Enter: not while the previous round drains or resets, nor while an action runs.
        while matches!(s.phase, Phase::Draining | Phase::Resetting) || s.acting {
            s = self.sleep(s, None);
        }
        if s.phase == Phase::Broken {
            return Err(BrokenBarrier);
        }
        let index = s.count;
        s.count += 1;
        let outcome = if index + 1 == self.parties {
            self.release(s)
        } else {
            self.await_release(s, until)
        };
        let mut s = outcome.0;
        // Leave: the last to leave a drained or reset round opens the barrier again.
        s.count -= 1;
        if s.count == 0 && matches!(s.phase, Phase::Draining | Phase::Resetting) {
            s.phase = Phase::Filling;
            self.changed.notify_all();
        }
        drop(s);
        match outcome.1 {
            Released::Yes => Ok(index),
            Released::Broken => Err(BrokenBarrier),
            Released::ActionPanicked(payload) => resume_unwind(payload),
        }
    }

    /// The last party: run the action (without the lock), then release everyone.
    fn release<'a>(&'a self, mut s: MutexGuard<'a, State>) -> (MutexGuard<'a, State>, Released) {
        let mut action = self.action.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = action.as_mut() {
            s.acting = true;
            drop(s);
            let ran = catch_unwind(AssertUnwindSafe(f));
            drop(action);
            s = self.lock();
            s.acting = false;
            if let Err(payload) = ran {
                s.phase = Phase::Broken;
                self.changed.notify_all();
                return (s, Released::ActionPanicked(payload));
            }
            if s.phase != Phase::Filling {
                // Aborted or reset from the action: this round is broken.
                self.changed.notify_all();
                return (s, Released::Broken);
            }
        } else {
            drop(action);
        }
        s.phase = Phase::Draining;
        self.changed.notify_all();
        (s, Released::Yes)
    }

    /// Any other party: wait until released, broken or reset, or break it on timeout.
    fn await_release<'a>(
        &'a self,
        mut s: MutexGuard<'a, State>,
        until: Option<Instant>,
    ) -> (MutexGuard<'a, State>, Released) {
        loop {
            match s.phase {
                Phase::Draining => return (s, Released::Yes),
                Phase::Broken | Phase::Resetting => return (s, Released::Broken),
                Phase::Filling => {}
            }
            let late = until.is_some_and(|u| Instant::now() >= u);
            if late && !s.acting {
                s.phase = Phase::Broken;
                self.changed.notify_all();
                return (s, Released::Broken);
            }
            // While an action runs, a late waiter waits for it untimed (it ends the round).
            s = self.sleep(s, if late { None } else { until });
        }
    }

    /// Break the barrier: every thread waiting, and every later `wait` until
    /// [`reset`](Barrier::reset), gets [`BrokenBarrier`]. Replaces `b.abort()`, used when a
    /// party knows it will never arrive.
    pub fn abort(&self) {
        let mut s = self.lock();
        s.phase = Phase::Broken;
        self.changed.notify_all();
    }

    /// Return the barrier to its new state. Threads waiting in it get [`BrokenBarrier`]; once
    /// they have left, it fills again from zero. A broken barrier becomes usable again. A round
    /// already released (draining) is left to finish. Replaces `b.reset()`.
    pub fn reset(&self) {
        let mut s = self.lock();
        if s.count == 0 {
            s.phase = Phase::Filling;
        } else if matches!(s.phase, Phase::Filling | Phase::Broken) {
            s.phase = Phase::Resetting;
        }
        self.changed.notify_all();
    }
}

/// How a party's wait ended.
enum Released {
    Yes,
    Broken,
    ActionPanicked(Box<dyn std::any::Any + Send>),
}
