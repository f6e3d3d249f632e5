//! What the pool's parts share: the [`Task`] trait, the errors, the jobs and the messages
//! between the parent and a worker, and the state every pool thread sees ([`Shared`]).
//!
//! # The messages
//!
//! Parent to worker, one frame per batch: the sub-jobs ([`WireJob`]: a dispatch number `seq`,
//! the index of its first task in its job, how many tasks) and one byte string with every task
//! encoded on its own, as an *entry* (a varint length, then the postcard bytes). Worker to
//! parent, one frame per [`part`](PartIn) of a sub-job: its `seq`, the index of its first result,
//! and the results as entries (`entry` encodes and decodes them). Encoding each task and
//! result on its own costs one length byte per small value, and buys what a single encoded
//! `Vec` cannot give: a task or result that fails to encode, or to decode, is an error for
//! that one task, and the others go on.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_bytes::Bytes;

use crate::entry::decode_results;

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
    /// The worker running the task died (killed by `signal`, or exited with `code`) after the
    /// task had started. Python's `Pool` hangs forever here; this pool replaces the worker and
    /// goes on. Tasks that had not started on that worker run on another one instead.
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
    /// The task could not be sent to a worker: encoding it failed, it is larger than a
    /// message may be, or the worker could not decode it. It did not run; the pool goes on.
    /// (Python: pickling the arguments raised.)
    TaskEncoding(String),
    /// The task ran, but its result could not be sent back: encoding it failed, it is larger
    /// than a message may be, or the parent could not decode it. The worker lives on.
    /// (Python's `MaybeEncodingError`.)
    ResultEncoding(String),
    /// No worker could be started to run the task: every worker had died and a new one could
    /// not be forked (the cause, for example a process limit, is in the message).
    NoWorker(String),
    /// The task was cancelled before it was sent to a worker (only a task of a
    /// `ProcessPoolExecutor`'s cancelled `Future` is).
    Cancelled,
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
            TaskError::TaskEncoding(m) => write!(f, "cannot send the task to a worker: {m}"),
            TaskError::ResultEncoding(m) => write!(f, "cannot send the result back: {m}"),
            TaskError::NoWorker(m) => write!(f, "no worker can be started: {m}"),
            TaskError::Cancelled => f.write_str("the task was cancelled before it started"),
        }
    }
}

impl std::error::Error for TaskError {}

/// Misuse of the pool itself (Python raises `ValueError` for most of these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolError {
    /// `join` before `close` (or `terminate`).
    StillOpen,
    /// A submission after `close` or `terminate`.
    Closed,
    /// The pool could not start its workers or threads (the cause is in the message). Every
    /// worker it had started is stopped and reaped by then.
    Start(String),
    /// A builder setting out of range: no processes, or `maxtasksperchild(0)`.
    Invalid(String),
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::StillOpen => f.write_str("join() needs close() or terminate() first"),
            PoolError::Closed => f.write_str("the pool is closed: no new tasks"),
            PoolError::Start(e) => write!(f, "cannot start the pool: {e}"),
            PoolError::Invalid(e) => write!(f, "invalid pool setting: {e}"),
        }
    }
}

impl std::error::Error for PoolError {}

/// Tasks submitted together (one `apply_async`, or one chunk of a `map`) under one id, or the
/// part of them from task `first` on (what is left of a job after a worker died in it, or
/// after a worker took as many as it may run).
pub(crate) struct Job<T> {
    pub(crate) id: u64,
    /// The index, in the whole job, of `tasks[0]`.
    pub(crate) first: usize,
    pub(crate) tasks: Vec<T>,
    /// How many workers died decoding `tasks[0]` (see `journal`).
    pub(crate) strikes: u8,
    /// The job has a gate in [`Shared::gates`], asked once, when a driver first takes the
    /// job: `false` means it was cancelled and is not sent (its tasks fail with
    /// [`TaskError::Cancelled`]). Only a `ProcessPoolExecutor`'s jobs have one (its futures'
    /// `set_running_or_notify_cancel`). Kept beside the queue, not in the job: the job stays
    /// small (it is moved through the queue and the batches for every `apply_async`).
    pub(crate) gated: bool,
}

/// See [`Job::gated`].
pub(crate) type Gate = Box<dyn FnOnce() -> bool + Send>;

/// Called by a driver when its worker died while the pool was running (not terminated), with
/// how it died, before anything of the worker's is delivered: a `ProcessPoolExecutor` breaks
/// the pool there, as Python's does.
pub(crate) type DeathHook<O> = Box<dyn Fn(&Shared<O>, &TaskError) + Send + Sync>;

/// Results of a job's tasks `start..start + results.len()`, on their way to the result handler.
pub(crate) struct Part<O> {
    pub(crate) id: u64,
    pub(crate) start: usize,
    pub(crate) results: Vec<Result<O, TaskError>>,
}

/// A sub-job in a batch frame: its tasks are the next `count` entries of the batch's bytes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct WireJob {
    /// Unique per dispatch: the worker's replies and its journal name it.
    pub(crate) seq: u64,
    /// The index of its first task in the whole job.
    pub(crate) first: u32,
    pub(crate) count: u32,
}

/// A batch, as the parent sends it.
#[derive(Serialize)]
pub(crate) struct BatchOut<'a> {
    pub(crate) jobs: &'a [WireJob],
    pub(crate) tasks: &'a Bytes,
}

/// A batch, as the worker receives it (the tasks borrowed from the frame's bytes).
#[derive(Deserialize)]
pub(crate) struct BatchIn<'a> {
    pub(crate) jobs: Vec<WireJob>,
    #[serde(borrow)]
    pub(crate) tasks: &'a Bytes,
}

/// Results of a sub-job from `start` on, as the worker sends them.
#[derive(Serialize)]
pub(crate) struct PartOut<'a> {
    pub(crate) seq: u64,
    pub(crate) start: u32,
    pub(crate) entries: &'a Bytes,
}

/// Results of a sub-job from `start` on, as the parent receives them: decoded straight from
/// the frame's bytes.
#[derive(Deserialize)]
#[serde(bound = "O: DeserializeOwned")]
pub(crate) struct PartIn<O> {
    pub(crate) seq: u64,
    pub(crate) start: u32,
    pub(crate) results: Results<O>,
}

/// A part's result entries, decoded as they are read (see `entry::decode_results`).
pub(crate) struct Results<O>(pub(crate) Vec<Result<O, TaskError>>);

impl<'de, O: DeserializeOwned> Deserialize<'de> for Results<O> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries<O>(std::marker::PhantomData<O>);
        impl<O: DeserializeOwned> serde::de::Visitor<'_> for Entries<O> {
            type Value = Results<O>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("result entries")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Results<O>, E> {
                Ok(Results(decode_results(v)))
            }
        }
        d.deserialize_bytes(Entries(std::marker::PhantomData))
    }
}

/// What to do when a job completes: its results, one per task in order (run on the
/// result-handler thread).
pub(crate) type Completion<O> = Box<dyn FnOnce(Vec<Result<O, TaskError>>) + Send>;

/// A submitted job whose results are not all in.
pub(crate) struct Pending<O> {
    pub(crate) complete: Completion<O>,
    pub(crate) total: usize,
    /// The results of tasks `0..`, while the parts come in order (the common case: a chunk
    /// run by one worker, sent in several parts).
    pub(crate) ordered: Vec<Result<O, TaskError>>,
    /// Results by task index, once a part came out of order (after a death, a split job).
    pub(crate) slots: Vec<Option<Result<O, TaskError>>>,
    /// Tasks with a result in `slots`.
    pub(crate) filled: usize,
}

impl<O> Pending<O> {
    pub(crate) fn new(complete: Completion<O>, total: usize) -> Pending<O> {
        Pending {
            complete,
            total,
            ordered: Vec::new(),
            slots: Vec::new(),
            filled: 0,
        }
    }
}

/// Job ids are a counter, picked by the pool, never by a peer: they need no SipHash (whose
/// cost per lookup showed in `apply_async`'s profile), only spreading over the table.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        // Fibonacci hashing: consecutive ids land far apart in the high bits hashbrown uses.
        self.0 = id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Job id -> its pending results.
pub(crate) type PendingMap<O> = HashMap<u64, Pending<O>, BuildHasherDefault<IdHasher>>;

/// The state the pool, its worker threads and its result handler share.
pub(crate) struct Shared<O> {
    /// Job id -> what to do when it completes (run on the result-handler thread).
    pub(crate) pending: Mutex<PendingMap<O>>,
    /// Jobs submitted whose completion (callbacks included) has not finished running.
    pub(crate) outstanding: Mutex<usize>,
    /// Signalled when `outstanding` reaches zero.
    pub(crate) idle: Condvar,
    pub(crate) next_id: AtomicU64,
    /// Dispatch numbers for sub-jobs ([`WireJob::seq`]).
    pub(crate) next_seq: AtomicU64,
    pub(crate) closed: AtomicBool,
    pub(crate) terminated: AtomicBool,
    /// Set by `stop`: worker threads leave once the job queue is empty. (They hold senders of
    /// the queue themselves, to put back a dead worker's unstarted jobs, so the queue never
    /// disconnects on its own.)
    pub(crate) stopped: AtomicBool,
    pub(crate) live_workers: AtomicUsize,
    /// The pid of each slot's worker while it is our child and not yet reaped, `None` between
    /// workers. A pid is taken out *before* its process is reaped, and signals are sent only
    /// while holding this lock, so a pid signalled is never one the system has reused.
    pub(crate) pids: Mutex<Vec<Option<Member>>>,
    /// The number of worker slots.
    pub(crate) size: usize,
    /// The next worker's number (its name is `{prefix}-{number}`).
    pub(crate) next_number: AtomicU32,
    /// Workers are named `{prefix}-{number}`, the prefix one of `worker::PREFIXES` (this is
    /// its index): `ForkPoolWorker` for a pool, as Python names them.
    pub(crate) prefix: u8,
    /// Callbacks that panicked: how many, and the first [`KEPT_PANICS`] messages.
    pub(crate) callback_panics: Mutex<(usize, Vec<String>)>,
    /// See [`DeathHook`].
    pub(crate) on_death: Option<DeathHook<O>>,
    /// Gated jobs' gates, by job id (see [`Job::gated`]).
    pub(crate) gates: Mutex<HashMap<u64, Gate, BuildHasherDefault<IdHasher>>>,
}

/// Messages of panicking callbacks a pool keeps, at most.
pub(crate) const KEPT_PANICS: usize = 64;

/// A worker slot's process: our unreaped child, and its number (its name's suffix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Member {
    pub(crate) pid: i32,
    pub(crate) number: u32,
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

    /// A completion (a callback) panicked with `message`: count it, keep the message.
    pub(crate) fn callback_panicked(&self, message: String) {
        let mut p = self
            .callback_panics
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        p.0 += 1;
        if p.1.len() < KEPT_PANICS {
            p.1.push(message);
        }
    }

    /// Stop at once, from any thread (a driver's included): no more submissions, every worker
    /// SIGKILLed; the drivers then fail what is left with [`TaskError::Terminated`] and reap
    /// their workers. (`Pool::terminate` also waits for the threads; this does not.)
    pub(crate) fn abort(&self) {
        self.closed.store(true, Ordering::SeqCst);
        // Under the lock, as `terminate`: a pid listed is our unreaped child, and no worker
        // forked after this is installed.
        let pids = self.pids();
        self.terminated.store(true, Ordering::SeqCst);
        for m in pids.iter().flatten() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(m.pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }

    /// Take job `id`'s gate out, if it has one still.
    pub(crate) fn take_gate(&self, id: u64) -> Option<Gate> {
        self.gates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
    }

    pub(crate) fn pids(&self) -> MutexGuard<'_, Vec<Option<Member>>> {
        self.pids.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn pending(&self) -> MutexGuard<'_, PendingMap<O>> {
        // Entries are inserted and removed whole; a poisoned map is still consistent.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}
