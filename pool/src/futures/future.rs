//! [`Future`]: Python's `concurrent.futures.Future`, the handle on a call's result.
//!
//! A future goes PENDING -> RUNNING -> FINISHED, or PENDING -> CANCELLED ->
//! CANCELLED_AND_NOTIFIED, as Python's does. The two cancelled states differ in one thing
//! only, kept because `wait` and `as_completed` depend on it as in Python: a future cancelled
//! while pending counts as completed there only once its executor has seen the cancellation
//! ([`Future::set_running_or_notify_cancel`]).
//!
//! Waiting spins a little before it sleeps: a result that comes within microseconds (a short
//! call on a thread that was already awake) is picked up without the two system calls and the
//! wake-up on another core (tens of microseconds on a virtual machine) that sleeping costs.

use std::any::type_name;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::FutureError;
use super::wait::Waiter;

/// Where a future is. Python's `PENDING`, `RUNNING`, `CANCELLED`, `CANCELLED_AND_NOTIFIED`,
/// `FINISHED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FutureState {
    /// Not started.
    Pending = 0,
    /// Started: it can no longer be cancelled.
    Running = 1,
    /// Cancelled while pending; its executor has not seen it yet.
    Cancelled = 2,
    /// Cancelled, and its executor has seen it: `wait` and `as_completed` count it as done.
    CancelledAndNotified = 3,
    /// A result or an exception is set.
    Finished = 4,
}

impl FutureState {
    fn from_u8(v: u8) -> FutureState {
        match v {
            1 => FutureState::Running,
            2 => FutureState::Cancelled,
            3 => FutureState::CancelledAndNotified,
            4 => FutureState::Finished,
            _ => FutureState::Pending,
        }
    }

    /// Python's name for it (`pending`, ..., as `repr` shows it).
    fn name(self) -> &'static str {
        match self {
            FutureState::Pending => "pending",
            FutureState::Running => "running",
            FutureState::Cancelled | FutureState::CancelledAndNotified => "cancelled",
            FutureState::Finished => "finished",
        }
    }

    /// Counted as completed by `wait` and `as_completed`.
    pub(crate) fn completed(self) -> bool {
        matches!(
            self,
            FutureState::CancelledAndNotified | FutureState::Finished
        )
    }
}

/// A result or an exception set on a future that was already done. Python's
/// `InvalidStateError`; its text names the state and the future, as Python's does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidStateError(pub String);

impl fmt::Display for InvalidStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidStateError {}

type Callback<T> = Box<dyn FnOnce(&Future<T>) + Send>;

struct State<T> {
    outcome: Option<Result<T, FutureError>>,
    callbacks: Vec<Callback<T>>,
    /// `wait` / `as_completed` waiting on this future, with this future's index there.
    waiters: Vec<(Arc<Waiter>, usize)>,
    /// Threads asleep in `result` / `exception`: the setter wakes them only if there are any.
    sleepers: usize,
}

struct Inner<T> {
    /// A [`FutureState`]: changed under `state`'s lock, read without it.
    phase: AtomicU8,
    state: Mutex<State<T>>,
    done: Condvar,
}

/// The handle on a call's future result. Python's `concurrent.futures.Future`.
///
/// Cheap to clone (an `Arc`): every clone is the same future. Made by an executor's `submit`,
/// or by [`Future::new`] for code that runs calls itself (as Python's executors and tests do).
pub struct Future<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Future<T> {
    fn clone(&self) -> Self {
        Future {
            inner: self.inner.clone(),
        }
    }
}

impl<T> PartialEq for Future<T> {
    /// The same future (not equal results).
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl<T> Eq for Future<T> {}

impl<T> Default for Future<T> {
    fn default() -> Self {
        Future::new()
    }
}

/// Python's `repr`: `<Future at 0x... state=finished returned u64>`.
impl<T> fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        write!(f, "<Future at {:p} state={}", self.inner, state.name())?;
        if state == FutureState::Finished {
            match &self.lock().outcome {
                Some(Ok(_)) => write!(f, " returned {}", short_type_name::<T>())?,
                Some(Err(e)) => write!(f, " raised {}", e.kind())?,
                None => {}
            }
        }
        f.write_str(">")
    }
}

fn short_type_name<T>() -> &'static str {
    let full = type_name::<T>();
    // `alloc::string::String` -> `String`; generic arguments kept whole.
    let head = full.split('<').next().unwrap_or(full);
    let cut = head.rfind("::").map_or(0, |i| i + 2);
    &full[cut..]
}

/// How long a waiter spins before it sleeps.
const SPIN: Duration = Duration::from_micros(20);

impl<T> Future<T> {
    /// A pending future. Python's `Future()`: executors make them; code that runs a call
    /// itself sets the outcome with [`Future::set_result`] or [`Future::set_exception`].
    pub fn new() -> Future<T> {
        Future {
            inner: Arc::new(Inner {
                phase: AtomicU8::new(FutureState::Pending as u8),
                state: Mutex::new(State {
                    outcome: None,
                    callbacks: Vec::new(),
                    waiters: Vec::new(),
                    sleepers: 0,
                }),
                done: Condvar::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Callbacks run outside the lock; nothing panics while holding it.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_phase(&self, s: FutureState) {
        self.inner.phase.store(s as u8, Ordering::Release);
    }

    /// Identity (for sets of futures): the address of the state every clone shares.
    pub(crate) fn addr(&self) -> usize {
        Arc::as_ptr(&self.inner).cast::<()>() as usize
    }

    /// Where it is now (Python's `_state`).
    pub fn state(&self) -> FutureState {
        FutureState::from_u8(self.inner.phase.load(Ordering::Acquire))
    }

    /// Cancelled, in either cancelled state. Python's `cancelled()`.
    pub fn cancelled(&self) -> bool {
        matches!(
            self.state(),
            FutureState::Cancelled | FutureState::CancelledAndNotified
        )
    }

    /// Running now. Python's `running()`.
    pub fn running(&self) -> bool {
        self.state() == FutureState::Running
    }

    /// Finished or cancelled. Python's `done()`.
    pub fn done(&self) -> bool {
        matches!(
            self.state(),
            FutureState::Cancelled | FutureState::CancelledAndNotified | FutureState::Finished
        )
    }

    /// Cancel it if it has not started: `true` if it is cancelled now (or was already),
    /// `false` if it is running or finished. Wakes whoever waits in `result` and runs the done
    /// callbacks. Python's `cancel()`.
    pub fn cancel(&self) -> bool {
        let mut s = self.lock();
        match self.state() {
            FutureState::Running | FutureState::Finished => return false,
            FutureState::Cancelled | FutureState::CancelledAndNotified => return true,
            FutureState::Pending => {}
        }
        self.set_phase(FutureState::Cancelled);
        if s.sleepers > 0 {
            self.inner.done.notify_all();
        }
        let callbacks = std::mem::take(&mut s.callbacks);
        drop(s);
        self.invoke(callbacks);
        true
    }

    /// For an executor, before it runs the call: `Ok(true)` and RUNNING if it was pending;
    /// `Ok(false)` if it was cancelled (it becomes CANCELLED_AND_NOTIFIED, and `wait` /
    /// `as_completed` now see it as done): do not run it. Python's
    /// `set_running_or_notify_cancel()`.
    ///
    /// # Errors
    ///
    /// [`InvalidStateError`] if it is already running or finished (Python: `RuntimeError`).
    pub fn set_running_or_notify_cancel(&self) -> Result<bool, InvalidStateError> {
        let mut s = self.lock();
        match self.state() {
            FutureState::Pending => {
                self.set_phase(FutureState::Running);
                Ok(true)
            }
            FutureState::Cancelled => {
                self.set_phase(FutureState::CancelledAndNotified);
                for (w, i) in std::mem::take(&mut s.waiters) {
                    w.notify(i, false);
                }
                Ok(false)
            }
            other => Err(InvalidStateError(format!(
                "Future in unexpected state: {}",
                other.name()
            ))),
        }
    }

    /// Finish it with `value`. Python's `set_result()`.
    ///
    /// # Errors
    ///
    /// [`InvalidStateError`] if it is already finished or cancelled.
    pub fn set_result(&self, value: T) -> Result<(), InvalidStateError> {
        self.finish(Ok(value))
    }

    /// Finish it with an exception: `FutureError::Raised(..)` for what the call raised, or a
    /// broken pool. Python's `set_exception()`.
    ///
    /// # Errors
    ///
    /// [`InvalidStateError`] if it is already finished or cancelled.
    pub fn set_exception(&self, error: FutureError) -> Result<(), InvalidStateError> {
        self.finish(Err(error))
    }

    fn finish(&self, outcome: Result<T, FutureError>) -> Result<(), InvalidStateError> {
        let mut s = self.lock();
        let state = self.state();
        if matches!(
            state,
            FutureState::Cancelled | FutureState::CancelledAndNotified | FutureState::Finished
        ) {
            drop(s);
            return Err(InvalidStateError(format!(
                "{}: {self:?}",
                match state {
                    FutureState::Finished => "FINISHED",
                    FutureState::Cancelled => "CANCELLED",
                    _ => "CANCELLED_AND_NOTIFIED",
                }
            )));
        }
        let raised = outcome.is_err();
        s.outcome = Some(outcome);
        self.set_phase(FutureState::Finished);
        for (w, i) in std::mem::take(&mut s.waiters) {
            w.notify(i, raised);
        }
        if s.sleepers > 0 {
            self.inner.done.notify_all();
        }
        let callbacks = std::mem::take(&mut s.callbacks);
        drop(s);
        self.invoke(callbacks);
        Ok(())
    }

    /// Run `f(self)` once it is done (finished or cancelled), on the thread that makes it done;
    /// at once, on this thread, if it is done already. A callback that panics is reported on
    /// stderr and the others still run (Python logs "exception calling callback for ...").
    /// Python's `add_done_callback()`.
    pub fn add_done_callback(&self, f: impl FnOnce(&Future<T>) + Send + 'static) {
        {
            let mut s = self.lock();
            if !self.done() {
                s.callbacks.push(Box::new(f));
                return;
            }
        }
        self.invoke(vec![Box::new(f)]);
    }

    fn invoke(&self, callbacks: Vec<Callback<T>>) {
        for cb in callbacks {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| cb(self))) {
                eprintln!(
                    "exception calling callback for {self:?}: {}",
                    lesson::panic_message(&*payload)
                );
            }
        }
    }

    /// Wait until it is done or `deadline` passes (spinning a little first); whether it is
    /// done.
    fn wait_done(&self, deadline: Option<Instant>) -> bool {
        if self.done() {
            return true;
        }
        if super::spin_until(SPIN, deadline, || self.done()) {
            return true;
        }
        let mut s = self.lock();
        s.sleepers += 1;
        let done = loop {
            if self.done() {
                break true;
            }
            match deadline {
                None => s = self.inner.done.wait(s).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break false;
                    }
                    s = match self.inner.done.wait_timeout(s, d - now) {
                        Ok((g, _)) => g,
                        Err(e) => e.into_inner().0,
                    };
                }
            }
        };
        s.sleepers -= 1;
        done
    }

    /// The call's value, waiting at most `timeout` (`None`: as long as it takes). Python's
    /// `result(timeout)`. The value is cloned: every call gives it, as Python gives the same
    /// object each time.
    ///
    /// # Errors
    ///
    /// [`FutureError::Cancelled`] if it was cancelled, [`FutureError::Timeout`] if it is not
    /// done in time, or the exception it finished with (what the call raised, or a broken
    /// pool).
    pub fn result(&self, timeout: Option<Duration>) -> Result<T, FutureError>
    where
        T: Clone,
    {
        self.result_until(timeout.map(|t| Instant::now() + t))
    }

    pub(crate) fn result_until(&self, deadline: Option<Instant>) -> Result<T, FutureError>
    where
        T: Clone,
    {
        self.outcome_until(deadline, |o| o.clone())
    }

    /// Like `result_until`, but takes the value out (for an iterator that holds the only
    /// interest in it).
    pub(crate) fn take_until(&self, deadline: Option<Instant>) -> Result<T, FutureError> {
        self.outcome_until(deadline, Option::take)
    }

    /// Once done (by `deadline`): `Timeout` if not, `Cancelled` if cancelled, else what `get`
    /// makes of the outcome (a clone, or the value taken out).
    fn outcome_until(
        &self,
        deadline: Option<Instant>,
        get: impl FnOnce(&mut Option<Result<T, FutureError>>) -> Option<Result<T, FutureError>>,
    ) -> Result<T, FutureError> {
        if !self.wait_done(deadline) {
            return Err(FutureError::Timeout);
        }
        if self.cancelled() {
            return Err(FutureError::Cancelled);
        }
        get(&mut self.lock().outcome).unwrap_or(Err(FutureError::Cancelled))
    }

    /// The exception it finished with (`None` if it returned a value), waiting at most
    /// `timeout`. Python's `exception(timeout)`.
    ///
    /// # Errors
    ///
    /// [`FutureError::Cancelled`] if it was cancelled, [`FutureError::Timeout`] if it is not
    /// done in time.
    pub fn exception(&self, timeout: Option<Duration>) -> Result<Option<FutureError>, FutureError> {
        if !self.wait_done(timeout.map(|t| Instant::now() + t)) {
            return Err(FutureError::Timeout);
        }
        if self.cancelled() {
            return Err(FutureError::Cancelled);
        }
        Ok(match &self.lock().outcome {
            Some(Err(e)) => Some(e.clone()),
            _ => None,
        })
    }

    /// If it is completed (for `wait`: finished or cancelled-and-notified), whether it raised;
    /// else `waiter` is installed to hear of it, as number `index`. Atomic with completion.
    pub(crate) fn completed_or_watch(&self, waiter: &Arc<Waiter>, index: usize) -> Option<bool> {
        let mut s = self.lock();
        let state = self.state();
        if state.completed() {
            return Some(state == FutureState::Finished && matches!(s.outcome, Some(Err(_))));
        }
        s.waiters.push((waiter.clone(), index));
        None
    }

    /// Take `waiter` off (once `wait` or `as_completed` is done with this future).
    pub(crate) fn unwatch(&self, waiter: &Arc<Waiter>) {
        let mut s = self.lock();
        s.waiters.retain(|(w, _)| !Arc::ptr_eq(w, waiter));
    }
}
