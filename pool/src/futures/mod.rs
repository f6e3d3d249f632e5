//! `concurrent.futures`: executors that hand back [`Future`]s, and [`as_completed`] / [`wait`]
//! over them.
//!
//! | Python | Rust |
//! |---|---|
//! | `ThreadPoolExecutor(max_workers, thread_name_prefix, initializer)` | [`ThreadPoolExecutor::new`], [`ThreadPoolExecutor::builder`] |
//! | `ProcessPoolExecutor(max_workers, max_tasks_per_child)` (fork) | [`ProcessPoolExecutor::new`], [`ProcessPoolExecutor::builder`]: this crate's forked workers |
//! | `executor.submit(fn, *args)` | [`ThreadPoolExecutor::submit`]`(closure)`, [`ProcessPoolExecutor::submit`]`(task)` -> [`Future`] |
//! | `executor.map(fn, *iterables, timeout, chunksize)` | [`ThreadPoolExecutor::map`], [`ProcessPoolExecutor::map`] -> [`MapResults`] |
//! | `executor.shutdown(wait, cancel_futures)`, `with` | `shutdown(wait, cancel_futures)`; drop shuts down and waits |
//! | `Future`: `result(timeout)`, `exception(timeout)`, `done`, `running`, `cancel`, `cancelled`, `add_done_callback` | [`Future::result`], [`Future::exception`], [`Future::done`], [`Future::running`], [`Future::cancel`], [`Future::cancelled`], [`Future::add_done_callback`] |
//! | `set_result`, `set_exception`, `set_running_or_notify_cancel` (for executors) | the same names |
//! | `as_completed(fs, timeout)` | [`as_completed`] (an iterator; a time-out is one `Err`) |
//! | `wait(fs, timeout, return_when)`, `FIRST_COMPLETED`, `FIRST_EXCEPTION`, `ALL_COMPLETED` | [`wait`] -> [`DoneAndNotDone`], [`ReturnWhen`] and the same constants |
//! | `CancelledError`, `TimeoutError`, an exception raised by the call | [`FutureError::Cancelled`], [`FutureError::Timeout`], [`FutureError::Raised`] |
//! | `BrokenProcessPool`, `BrokenThreadPool` | [`FutureError::BrokenProcessPool`], [`FutureError::BrokenThreadPool`] (and [`ExecutorError`]'s, from `submit`) |
//! | `RuntimeError('cannot schedule new futures after shutdown')` | [`ExecutorError::Shutdown`] |
//!
//! # A dead worker: Python's rule, and this crate's
//!
//! When a worker process dies, Python's `ProcessPoolExecutor` is *broken*: every future not
//! done fails with `BrokenProcessPool`, the other workers are stopped, and every later
//! `submit` raises it. [`ProcessPoolExecutor`] does the same by default
//! ([`WorkerDeath::BreakPool`]). This crate's [`Pool`](crate::Pool) instead fails only the
//! task that was running on the dead worker and goes on with a new one;
//! [`WorkerDeath::FailTask`] gives an executor that rule.
//!
//! # Calls are closures or tasks
//!
//! A thread executor runs closures `FnOnce() -> anyhow::Result<T>`: `Err` is the exception the
//! call raised, and a panic is caught as one ([`TaskError::Failed`], [`TaskError::Panicked`]).
//! A process executor runs [`Task`](crate::Task)s, as a [`Pool`](crate::Pool) does.

mod future;
mod map;
mod process;
mod thread;
mod wait;

use std::fmt;

pub use future::{Future, FutureState, InvalidStateError};
pub use map::MapResults;
pub use process::{ProcessPoolBuilder, ProcessPoolExecutor, WorkerDeath};
pub use thread::{ThreadPoolBuilder, ThreadPoolExecutor};
pub use wait::{
    ALL_COMPLETED, AsCompleted, AsCompletedTimeout, DoneAndNotDone, FIRST_COMPLETED,
    FIRST_EXCEPTION, ReturnWhen, as_completed, wait,
};

use crate::TaskError;

/// Why a future has no value: what `result` raises in Python.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FutureError {
    /// It was cancelled (Python's `CancelledError`).
    Cancelled,
    /// It was not done in time (Python's `TimeoutError`).
    Timeout,
    /// The call raised: returned `Err` ([`TaskError::Failed`]), panicked
    /// ([`TaskError::Panicked`]), or (with [`WorkerDeath::FailTask`]) its worker died.
    Raised(TaskError),
    /// A worker process of its executor died before it finished (Python's
    /// `BrokenProcessPool`): the executor is unusable.
    BrokenProcessPool(String),
    /// A thread of its executor failed to start or to initialise (Python's
    /// `BrokenThreadPool`): the executor is unusable.
    BrokenThreadPool(String),
}

impl FutureError {
    /// Python's exception class name, as `repr` shows it.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            FutureError::Cancelled => "CancelledError",
            FutureError::Timeout => "TimeoutError",
            FutureError::Raised(TaskError::Panicked(_)) => "Panicked",
            FutureError::Raised(TaskError::WorkerDied { .. }) => "WorkerDied",
            FutureError::Raised(_) => "Failed",
            FutureError::BrokenProcessPool(_) => "BrokenProcessPool",
            FutureError::BrokenThreadPool(_) => "BrokenThreadPool",
        }
    }

    /// A broken executor's error (Python's `BrokenExecutor` and its subclasses).
    pub fn is_broken(&self) -> bool {
        matches!(
            self,
            FutureError::BrokenProcessPool(_) | FutureError::BrokenThreadPool(_)
        )
    }
}

impl fmt::Display for FutureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FutureError::Cancelled => f.write_str("the future was cancelled"),
            FutureError::Timeout => f.write_str("the future is not done in time"),
            FutureError::Raised(e) => write!(f, "{e}"),
            FutureError::BrokenProcessPool(m) => write!(f, "broken process pool: {m}"),
            FutureError::BrokenThreadPool(m) => write!(f, "broken thread pool: {m}"),
        }
    }
}

impl std::error::Error for FutureError {}

/// Why an executor refused: what `submit`, `map` or the constructor raise in Python.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutorError {
    /// After `shutdown` (Python: `RuntimeError('cannot schedule new futures after
    /// shutdown')`).
    Shutdown,
    /// The process pool is broken (Python's `BrokenProcessPool`).
    BrokenProcessPool(String),
    /// The thread pool is broken (Python's `BrokenThreadPool`).
    BrokenThreadPool(String),
    /// A setting out of range: `max_workers` 0, `chunksize` 0 (Python: `ValueError`).
    Invalid(String),
    /// The workers could not be started (the cause is in the message).
    Start(String),
}

impl fmt::Display for ExecutorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecutorError::Shutdown => f.write_str("cannot schedule new futures after shutdown"),
            ExecutorError::BrokenProcessPool(m) => write!(f, "broken process pool: {m}"),
            ExecutorError::BrokenThreadPool(m) => write!(f, "broken thread pool: {m}"),
            ExecutorError::Invalid(m) => f.write_str(m),
            ExecutorError::Start(m) => write!(f, "cannot start the executor: {m}"),
        }
    }
}

impl std::error::Error for ExecutorError {}

/// Rounds of pause instructions (1, 2, 4, ...) before `spin_until` starts yielding.
const SPIN_STEPS: u32 = 3;

/// Poll `ready` until it holds (`true`) or `spin` (or `deadline`) has passed (`false`):
/// a few pause instructions at first, then yielding the CPU between polls, so a partner
/// thread that shares this core still gets to run. A hand-off that comes within microseconds
/// then costs no sleep and no wake-up (tens of microseconds on a virtual machine when the
/// sleeper is on another core).
pub(crate) fn spin_until(
    spin: std::time::Duration,
    deadline: Option<std::time::Instant>,
    mut ready: impl FnMut() -> bool,
) -> bool {
    let start = std::time::Instant::now();
    let until = deadline.map_or(start + spin, |d| d.min(start + spin));
    let mut step = 0u32;
    loop {
        if ready() {
            return true;
        }
        if step < SPIN_STEPS {
            for _ in 0..1u32 << step {
                std::hint::spin_loop();
            }
        } else {
            std::thread::yield_now();
        }
        step += 1;
        if step >= SPIN_STEPS && std::time::Instant::now() >= until {
            return ready();
        }
    }
}

/// Python's default `max_workers` for a thread pool: `min(32, cpu_count + 4)`.
pub(crate) fn default_thread_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .saturating_add(4)
        .min(32)
}
