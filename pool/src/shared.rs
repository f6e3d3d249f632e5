//! What the pool's parts share: the [`Task`] trait, the errors, the messages between the
//! parent and a worker, and the state every pool thread sees ([`Shared`]).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Condvar, Mutex, MutexGuard};

use crossbeam::channel::Receiver;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Work a pool can run: the data crosses to a worker process, which calls `run`.
/// Replaces the `func` + `args` of `pool.apply_async(func, args)`.
pub trait Task: Serialize + DeserializeOwned + Send + 'static {
    /// What `run` returns to the parent.
    type Output: Serialize + DeserializeOwned + Send + 'static;
    /// The work, in the worker. An `Err` (Python: an exception) becomes
    /// [`TaskError::Failed`] and goes to the error callback.
    fn run(self) -> anyhow::Result<Self::Output>;
}

/// Why a task has no result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskError {
    /// `run` returned an error (Python: the function raised).
    Failed(String),
    /// `run` panicked; the worker caught it and lives on.
    Panicked(String),
    /// The worker running the task died (killed by `signal`, or exited with `code`).
    /// Python's `Pool` hangs forever here; this pool replaces the worker and goes on.
    WorkerDied {
        /// The dead worker's pid.
        pid: i32,
        /// The signal that killed it, if any.
        signal: Option<i32>,
        /// Its exit code, if it exited.
        code: Option<i32>,
    },
    /// The pool was terminated before the task finished.
    Terminated,
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Failed(m) => write!(f, "task failed: {m}"),
            TaskError::Panicked(m) => write!(f, "task panicked: {m}"),
            TaskError::WorkerDied {
                pid,
                signal: Some(s),
                ..
            } => write!(f, "worker {pid} died (signal {s}) while running the task"),
            TaskError::WorkerDied { pid, code, .. } => {
                write!(f, "worker {pid} exited ({code:?}) while running the task")
            }
            TaskError::Terminated => f.write_str("the pool was terminated"),
        }
    }
}

impl std::error::Error for TaskError {}

/// Misuse of the pool itself (Python raises `ValueError` for these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolError {
    /// `join` before `close` (or `terminate`).
    StillOpen,
    /// A submission after `close` or `terminate`.
    Closed,
    /// The pool could not start its workers or threads.
    Start(String),
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::StillOpen => f.write_str("join() needs close() or terminate() first"),
            PoolError::Closed => f.write_str("the pool is closed: no new tasks"),
            PoolError::Start(e) => write!(f, "cannot start the pool: {e}"),
        }
    }
}

impl std::error::Error for PoolError {}

/// Tasks submitted together (one `apply_async`, or one chunk of a `map`), under one id.
#[derive(Serialize, Deserialize)]
pub(crate) struct Job<T> {
    pub(crate) id: u64,
    pub(crate) tasks: Vec<T>,
}

/// A worker's answer to one job: a result per task.
#[derive(Serialize, Deserialize)]
pub(crate) struct Reply<O> {
    pub(crate) id: u64,
    pub(crate) results: Vec<Result<O, TaskError>>,
}

/// A job's results, or why it has none.
pub(crate) type Outcome<O> = Result<Vec<Result<O, TaskError>>, TaskError>;
/// Where a `map`'s chunks report: (chunk index, its outcome).
pub(crate) type ChunkResults<O> = Receiver<(usize, Outcome<O>)>;
/// What to do when a job completes (run on the result-handler thread).
pub(crate) type Completion<O> = Box<dyn FnOnce(Outcome<O>) + Send>;

/// The state the pool, its worker threads and its result handler share.
pub(crate) struct Shared<O> {
    /// Job id -> what to do when it completes (run on the result-handler thread).
    pub(crate) pending: Mutex<HashMap<u64, Completion<O>>>,
    /// Jobs submitted whose completion (callbacks included) has not finished running.
    pub(crate) outstanding: Mutex<usize>,
    /// Signalled when `outstanding` reaches zero.
    pub(crate) idle: Condvar,
    pub(crate) next_id: AtomicU64,
    pub(crate) closed: AtomicBool,
    pub(crate) terminated: AtomicBool,
    /// Set by `stop`: worker threads leave once the job queue is empty. (They hold senders of
    /// the queue themselves, to put back a dead worker's unstarted jobs, so the queue never
    /// disconnects on its own.)
    pub(crate) stopped: AtomicBool,
    pub(crate) live_workers: AtomicUsize,
    pub(crate) pids: Mutex<Vec<i32>>,
}

impl<O> Shared<O> {
    pub(crate) fn outstanding(&self) -> MutexGuard<'_, usize> {
        self.outstanding.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One completion has finished running (callbacks included).
    pub(crate) fn finished_one(&self) {
        let mut n = self.outstanding();
        *n = n.saturating_sub(1);
        if *n == 0 {
            self.idle.notify_all();
        }
    }

    pub(crate) fn pids_len(&self) -> usize {
        self.pids.lock().map_or(1, |p| p.len().max(1))
    }

    pub(crate) fn pending(&self) -> MutexGuard<'_, HashMap<u64, Completion<O>>> {
        // Completions are inserted and removed whole; a poisoned map is still consistent.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}
