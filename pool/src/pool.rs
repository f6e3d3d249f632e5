//! [`Pool`]: Python's `multiprocessing.Pool`, that survives a dead worker.
//!
//! # How it is built
//!
//! Every worker is a forked [`Process`] with a socket pair of its own, so the parent always
//! knows which worker holds which job. In the parent, one thread per worker takes jobs from a
//! shared queue and sends a batch of them as one frame (one `write`, one cross-process wake-up
//! for many small jobs). The worker replies to each job as it finishes it, and the parent reads
//! the replies ahead in bulk ([`ipc::frame::FrameReader`]): measured on 20 000 trivial tasks,
//! a frame per job each way took 2x as long. A single *result-handler* thread runs every
//! callback, in the parent, as Python does.
//!
//! When a worker dies (a signal, an exit), its thread sees end-of-file: the job the worker was
//! running fails with [`TaskError::WorkerDied`], the jobs of the batch it had not started go
//! back to the queue, and a new worker is forked. Python's `Pool` hangs forever in that case.
//!
//! # Tasks are data
//!
//! A task is a value of a type implementing [`Task`] (serde): the worker receives the value
//! and calls its `run`. Python pickles a *function by name* plus its arguments; Rust cannot send
//! code, so the code is the type's `run` (compiled into both sides, since the worker is a fork
//! of the same program) and only the data crosses the socket.
//!
//! # Fork safety
//!
//! The first workers are forked by [`Pool::new`] before it starts any thread. Replacements (after
//! a death, or `maxtasksperchild`) are forked by a worker's thread, from a now multi-threaded
//! parent: the child only runs the worker loop (socket reads and writes, the task, `_exit`) and
//! `Process` holds std's stdout/stderr locks across the fork, so the child never waits on a lock
//! a parent thread held. A task that takes other locks shared with parent threads is the user's
//! responsibility (see `processes::process`).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::os::fd::AsRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{self, Receiver, Sender};
use ipc::frame::{DEFAULT_MAX_FRAME, FrameReader};
use ipc::{Connection, FrameError, Pipe};
use processes::Process;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Jobs sent to a worker in one go, at most.
const BATCH: usize = 64;

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

#[derive(Serialize, Deserialize)]
struct Job<T> {
    id: u64,
    tasks: Vec<T>,
}

#[derive(Serialize, Deserialize)]
struct Reply<O> {
    id: u64,
    results: Vec<Result<O, TaskError>>,
}

type Outcome<O> = Result<Vec<Result<O, TaskError>>, TaskError>;
/// Where a `map`'s chunks report: (chunk index, its outcome).
type ChunkResults<O> = Receiver<(usize, Outcome<O>)>;
type Completion<O> = Box<dyn FnOnce(Outcome<O>) + Send>;

struct Shared<O> {
    /// Job id -> what to do when it completes (run on the result-handler thread).
    pending: Mutex<HashMap<u64, Completion<O>>>,
    /// Jobs submitted whose completion (callbacks included) has not finished running.
    outstanding: Mutex<usize>,
    /// Signalled when `outstanding` reaches zero.
    idle: Condvar,
    next_id: AtomicU64,
    closed: AtomicBool,
    terminated: AtomicBool,
    /// Set by `stop`: worker threads leave once the job queue is empty. (They hold senders of
    /// the queue themselves, to put back a dead worker's unstarted jobs, so the queue never
    /// disconnects on its own.)
    stopped: AtomicBool,
    live_workers: AtomicUsize,
    pids: Mutex<Vec<i32>>,
}

impl<O> Shared<O> {
    fn outstanding(&self) -> MutexGuard<'_, usize> {
        self.outstanding.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One completion has finished running (callbacks included).
    fn finished_one(&self) {
        let mut n = self.outstanding();
        *n = n.saturating_sub(1);
        if *n == 0 {
            self.idle.notify_all();
        }
    }

    fn pids_len(&self) -> usize {
        self.pids.lock().map_or(1, |p| p.len().max(1))
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<u64, Completion<O>>> {
        // Completions are inserted and removed whole; a poisoned map is still consistent.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where a result lands: the value, and how many threads wait for it (counted under the same
/// mutex, so the filler notifies only when someone waits: no system call per result).
struct Slot<O> {
    value: Option<Result<O, TaskError>>,
    waiters: usize,
}

type SharedSlot<O> = Arc<(Mutex<Slot<O>>, Condvar)>;

/// The handle on one task's future result. Replaces `AsyncResult`.
pub struct AsyncResult<O> {
    slot: SharedSlot<O>,
}

impl<O> fmt::Debug for AsyncResult<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult")
            .field("ready", &self.ready())
            .finish()
    }
}

impl<O> AsyncResult<O> {
    fn lock(&self) -> MutexGuard<'_, Slot<O>> {
        self.slot.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the result has arrived. Replaces `r.ready()`.
    pub fn ready(&self) -> bool {
        self.lock().value.is_some()
    }

    /// `Some(true)` if it arrived and succeeded. Replaces `r.successful()` (which raises if
    /// not ready).
    pub fn successful(&self) -> Option<bool> {
        self.lock().value.as_ref().map(Result::is_ok)
    }

    /// Wait at most `timeout` for the result; `true` if it is there. Replaces
    /// `r.wait(timeout)`.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut slot = self.lock();
        slot.waiters += 1;
        let arrived = loop {
            if slot.value.is_some() {
                break true;
            }
            let now = Instant::now();
            if now >= deadline {
                break false;
            }
            slot = match self.slot.1.wait_timeout(slot, deadline - now) {
                Ok((s, _)) => s,
                Err(e) => e.into_inner().0,
            };
        };
        slot.waiters -= 1;
        arrived
    }

    /// Wait for the result. Replaces `r.wait()`.
    pub fn wait(&self) {
        let mut slot = self.lock();
        slot.waiters += 1;
        while slot.value.is_none() {
            slot = self.slot.1.wait(slot).unwrap_or_else(|e| e.into_inner());
        }
        slot.waiters -= 1;
    }

    /// Wait for the result and take it. Replaces `r.get()`.
    pub fn get(self) -> Result<O, TaskError> {
        self.wait();
        self.take()
    }

    /// Wait at most `timeout`; the result, or this handle back on time-out. Replaces
    /// `r.get(timeout)` (which raises `TimeoutError`).
    pub fn get_timeout(self, timeout: Duration) -> Result<Result<O, TaskError>, AsyncResult<O>> {
        if self.wait_timeout(timeout) {
            Ok(self.take())
        } else {
            Err(self)
        }
    }

    fn take(&self) -> Result<O, TaskError> {
        self.lock()
            .value
            .take()
            .unwrap_or(Err(TaskError::Terminated))
    }
}

/// Options for a [`Pool`]: Python's `Pool(processes, maxtasksperchild=...)`.
#[derive(Debug, Clone, Default)]
pub struct Builder {
    processes: Option<usize>,
    maxtasksperchild: Option<usize>,
}

impl Builder {
    /// How many workers (default: `available_parallelism()`).
    pub fn processes(mut self, n: usize) -> Builder {
        self.processes = Some(n.max(1));
        self
    }

    /// Replace a worker after it has run this many tasks (Python's `maxtasksperchild`).
    pub fn maxtasksperchild(mut self, n: usize) -> Builder {
        self.maxtasksperchild = Some(n.max(1));
        self
    }

    /// Start the workers, then the pool's threads.
    pub fn build<T: Task>(self) -> Result<Pool<T>, PoolError> {
        let n = self
            .processes
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        Pool::start(n, self.maxtasksperchild)
    }
}

/// A pool of worker processes. Replaces `multiprocessing.Pool`.
///
/// Dropping it terminates it (kills the workers, fails what was not done) and reaps every
/// child; use `close()` then `join()` to finish the work first.
pub struct Pool<T: Task> {
    shared: Arc<Shared<T::Output>>,
    jobs: Option<Sender<Job<T>>>,
    threads: Vec<JoinHandle<()>>,
    handler: Option<JoinHandle<()>>,
    size: usize,
}

impl<T: Task> fmt::Debug for Pool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("processes", &self.size)
            .field("pids", &self.worker_pids())
            .finish()
    }
}

/// The parent's end of a worker's socket pair: a batch of jobs goes out as one frame; a reply
/// comes back for each job as it finishes (so when a worker dies, the replies already sent say
/// which jobs it had finished).
type WorkerEnd<T> = Connection<Vec<Job<T>>, Reply<<T as Task>::Output>>;

/// Fork one worker; the parent's end of its socket pair.
fn fork_worker<T: Task>() -> Result<(Process, WorkerEnd<T>), PoolError> {
    let (parent_end, child_end) = Pipe::duplex::<Vec<Job<T>>, Reply<T::Output>>()
        .map_err(|e| PoolError::Start(e.to_string()))?;
    let keep = child_end.as_raw_fd();
    // The worker keeps only its own end: otherwise a worker forked later would hold copies of
    // the other workers' ends, and they would never see end-of-file when told to stop.
    let mut worker = Process::new(move || worker_loop::<T>(child_end))
        .named("pool-worker")
        .keep_only_fds(&[keep]);
    worker
        .start()
        .map_err(|e| PoolError::Start(format!("{e:#}")))?;
    Ok((worker, parent_end))
}

/// The worker: run jobs until the parent closes the connection.
fn worker_loop<T: Task>(conn: Connection<Reply<T::Output>, Vec<Job<T>>>) {
    while let Ok(batch) = conn.recv() {
        for job in batch {
            if !run_job(&conn, job) {
                return;
            }
        }
    }
}

/// Run one job and send its reply; `false` if the parent is gone.
fn run_job<T: Task>(conn: &Connection<Reply<T::Output>, Vec<Job<T>>>, job: Job<T>) -> bool {
    let results = job
        .tasks
        .into_iter()
        .map(|task| match catch_unwind(AssertUnwindSafe(|| task.run())) {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(e)) => Err(TaskError::Failed(format!("{e:#}"))),
            Err(payload) => Err(TaskError::Panicked(processes_panic_message(&*payload))),
        })
        .collect();
    conn.send(&Reply {
        id: job.id,
        results,
    })
    .is_ok()
}

fn processes_panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic".to_owned())
}

fn died(worker: &mut Process) -> TaskError {
    let pid = worker.pid().unwrap_or_default();
    match worker.join() {
        Ok(code) if code < 0 => TaskError::WorkerDied {
            pid,
            signal: Some(-code),
            code: None,
        },
        Ok(code) => TaskError::WorkerDied {
            pid,
            signal: None,
            code: Some(code),
        },
        Err(_) => TaskError::WorkerDied {
            pid,
            signal: None,
            code: None,
        },
    }
}

impl<T: Task> Pool<T> {
    /// A pool of `n` workers. Replaces `Pool(n)`.
    pub fn new(n: usize) -> Result<Pool<T>, PoolError> {
        Builder::default().processes(n).build()
    }

    /// Options: [`Builder::processes`], [`Builder::maxtasksperchild`].
    pub fn builder() -> Builder {
        Builder::default()
    }

    fn start(n: usize, maxtasks: Option<usize>) -> Result<Pool<T>, PoolError> {
        // Fork every first worker before any thread of the pool exists.
        let workers = (0..n)
            .map(|_| fork_worker::<T>())
            .collect::<Result<Vec<_>, _>>()?;
        let shared = Arc::new(Shared {
            pending: Mutex::new(HashMap::new()),
            outstanding: Mutex::new(0),
            idle: Condvar::new(),
            next_id: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            terminated: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            live_workers: AtomicUsize::new(n),
            pids: Mutex::new(
                workers
                    .iter()
                    .map(|(p, _)| p.pid().unwrap_or_default())
                    .collect(),
            ),
        });
        let (jobs_tx, jobs_rx) = channel::unbounded::<Job<T>>();
        let (done_tx, done_rx) = channel::unbounded::<(u64, Outcome<T::Output>)>();
        let handler = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("pool-results".into())
                .spawn(move || result_handler(&shared, &done_rx))
                .map_err(|e| PoolError::Start(e.to_string()))?
        };
        let mut threads = Vec::new();
        for (slot, (worker, end)) in workers.into_iter().enumerate() {
            let (shared, jobs_rx, jobs_tx, done_tx) = (
                shared.clone(),
                jobs_rx.clone(),
                jobs_tx.clone(),
                done_tx.clone(),
            );
            let t = std::thread::Builder::new()
                .name(format!("pool-worker-{slot}"))
                .spawn(move || {
                    drive(
                        slot, worker, end, &shared, &jobs_rx, &jobs_tx, &done_tx, maxtasks,
                    )
                })
                .map_err(|e| PoolError::Start(e.to_string()))?;
            threads.push(t);
        }
        Ok(Pool {
            shared,
            jobs: Some(jobs_tx),
            threads,
            handler: Some(handler),
            size: n,
        })
    }

    /// The number of worker processes.
    pub fn processes(&self) -> usize {
        self.size
    }

    /// The current workers' pids (replacements included).
    pub fn worker_pids(&self) -> Vec<i32> {
        self.shared
            .pids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many workers are alive now (restored after a death).
    pub fn live_workers(&self) -> usize {
        self.shared.live_workers.load(Ordering::SeqCst)
    }

    fn submit(&self, tasks: Vec<T>, done: Completion<T::Output>) -> Result<(), PoolError> {
        if self.shared.closed.load(Ordering::SeqCst) {
            return Err(PoolError::Closed);
        }
        let id = self.shared.next_id.fetch_add(1, Ordering::SeqCst);
        *self.shared.outstanding() += 1;
        self.shared.pending().insert(id, done);
        match self.jobs.as_ref().map(|j| j.send(Job { id, tasks })) {
            Some(Ok(())) => Ok(()),
            _ => {
                self.shared.pending().remove(&id);
                self.shared.finished_one();
                Err(PoolError::Closed)
            }
        }
    }

    /// Run `task` in a worker and wait for its result. Replaces `pool.apply(func, args)`.
    pub fn apply(&self, task: T) -> Result<T::Output, TaskError> {
        self.apply_async(task)
            .map_err(|_| TaskError::Terminated)?
            .get()
    }

    /// Start `task` in a worker; the result comes later. Replaces `pool.apply_async(func, args)`.
    pub fn apply_async(&self, task: T) -> Result<AsyncResult<T::Output>, PoolError> {
        self.apply_async_with(task, |_| {}, |_| {})
    }

    /// [`Pool::apply_async`] with a `callback` for a result and an `error_callback` for a
    /// failure, both run in the parent on the pool's result-handler thread (Python's
    /// `callback=` / `error_callback=`). A callback that panics is caught: the pool goes on.
    pub fn apply_async_with(
        &self,
        task: T,
        callback: impl FnOnce(&T::Output) + Send + 'static,
        error_callback: impl FnOnce(&TaskError) + Send + 'static,
    ) -> Result<AsyncResult<T::Output>, PoolError> {
        let slot: SharedSlot<T::Output> = Arc::new((
            Mutex::new(Slot {
                value: None,
                waiters: 0,
            }),
            Condvar::new(),
        ));
        let filled = slot.clone();
        self.submit(
            vec![task],
            Box::new(move |outcome: Outcome<T::Output>| {
                let result = outcome
                    .and_then(|mut v| v.pop().ok_or(TaskError::Terminated))
                    .and_then(|r| r);
                // Callbacks run before the result is visible to get(), as in Python.
                let _ = catch_unwind(AssertUnwindSafe(|| match &result {
                    Ok(v) => callback(v),
                    Err(e) => error_callback(e),
                }));
                let mut slot = filled.0.lock().unwrap_or_else(|e| e.into_inner());
                slot.value = Some(result);
                if slot.waiters > 0 {
                    filled.1.notify_all();
                }
            }),
        )?;
        Ok(AsyncResult { slot })
    }

    /// Submit `tasks` in chunks of `chunksize`; each chunk's results arrive on the returned
    /// channel as (chunk index, results).
    fn chunks(
        &self,
        tasks: Vec<T>,
        chunksize: usize,
    ) -> Result<(usize, ChunkResults<T::Output>), PoolError> {
        let chunksize = chunksize.max(1);
        let (tx, rx) = channel::unbounded();
        let mut tasks = tasks.into_iter().peekable();
        let mut n = 0;
        while tasks.peek().is_some() {
            let chunk: Vec<T> = tasks.by_ref().take(chunksize).collect();
            let tx = tx.clone();
            let index = n;
            self.submit(
                chunk,
                Box::new(move |outcome| {
                    let _ = tx.send((index, outcome));
                }),
            )?;
            n += 1;
        }
        Ok((n, rx))
    }

    /// Python's default chunk size for `map`: about four chunks per worker.
    pub fn default_chunksize(&self, len: usize) -> usize {
        len.div_ceil(self.size * 4).max(1)
    }

    /// Run every task and return the results in order, the first error if any.
    /// Replaces `pool.map(func, iterable, chunksize)`.
    pub fn map(&self, tasks: Vec<T>, chunksize: usize) -> Result<Vec<T::Output>, TaskError> {
        self.imap(tasks, chunksize)
            .map_err(|_| TaskError::Terminated)?
            .collect()
    }

    /// A tuple task type is `starmap`: the task carries all its arguments. Replaces
    /// `pool.starmap(func, [(a, b), ...])`; the same as [`Pool::map`].
    pub fn starmap(&self, tasks: Vec<T>, chunksize: usize) -> Result<Vec<T::Output>, TaskError> {
        self.map(tasks, chunksize)
    }

    /// The results in order, as they become available (a reorder buffer holds early chunks).
    /// Replaces `pool.imap(func, iterable, chunksize)`.
    pub fn imap(
        &self,
        tasks: Vec<T>,
        chunksize: usize,
    ) -> Result<impl Iterator<Item = Result<T::Output, TaskError>>, PoolError> {
        let (n, rx) = self.chunks(tasks, chunksize)?;
        let mut early: HashMap<usize, Outcome<T::Output>> = HashMap::new();
        let mut next = 0;
        let mut current: VecDeque<Result<T::Output, TaskError>> = VecDeque::new();
        Ok(std::iter::from_fn(move || {
            loop {
                if let Some(r) = current.pop_front() {
                    return Some(r);
                }
                if next == n {
                    return None;
                }
                let outcome = match early.remove(&next) {
                    Some(o) => o,
                    None => loop {
                        match rx.recv() {
                            Ok((i, o)) if i == next => break o,
                            Ok((i, o)) => {
                                early.insert(i, o);
                            }
                            Err(_) => break Err(TaskError::Terminated),
                        }
                    },
                };
                next += 1;
                match outcome {
                    Ok(results) => current.extend(results),
                    Err(e) => current.push_back(Err(e)),
                }
            }
        }))
    }

    /// The results in the order they finish. Replaces `pool.imap_unordered(...)`.
    pub fn imap_unordered(
        &self,
        tasks: Vec<T>,
        chunksize: usize,
    ) -> Result<impl Iterator<Item = Result<T::Output, TaskError>>, PoolError> {
        let (n, rx) = self.chunks(tasks, chunksize)?;
        let mut left = n;
        let mut current: VecDeque<Result<T::Output, TaskError>> = VecDeque::new();
        Ok(std::iter::from_fn(move || {
            loop {
                if let Some(r) = current.pop_front() {
                    return Some(r);
                }
                if left == 0 {
                    return None;
                }
                left -= 1;
                match rx.recv() {
                    Ok((_, Ok(results))) => current.extend(results),
                    Ok((_, Err(e))) => current.push_back(Err(e)),
                    Err(_) => current.push_back(Err(TaskError::Terminated)),
                }
            }
        }))
    }

    /// No more tasks; the workers finish what was submitted. Replaces `pool.close()`.
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
    }

    /// Wait until every submitted task has completed and its callback has run, then stop the
    /// workers and reap them. Replaces `pool.join()`; like Python's, it is an error before
    /// `close()` or `terminate()`.
    pub fn join(&mut self) -> Result<(), PoolError> {
        if !self.shared.closed.load(Ordering::SeqCst) {
            return Err(PoolError::StillOpen);
        }
        {
            // Every submitted job completed and its callbacks returned (Python's join also
            // waits for the result handler).
            let mut outstanding = self.shared.outstanding();
            while *outstanding > 0 && !self.shared.terminated.load(Ordering::SeqCst) {
                outstanding = self
                    .shared
                    .idle
                    .wait_timeout(outstanding, Duration::from_millis(50))
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
        }
        self.stop();
        Ok(())
    }

    /// Stop now: kill the workers, fail every task not finished with
    /// [`TaskError::Terminated`], reap everything. Replaces `pool.terminate()`.
    pub fn terminate(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.terminated.store(true, Ordering::SeqCst);
        for pid in self.worker_pids() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        self.stop();
    }

    /// Close the job queue, wait for the worker threads (each stops and reaps its worker),
    /// then for the result handler (which fails whatever is still pending).
    fn stop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.stopped.store(true, Ordering::SeqCst);
        drop(self.jobs.take());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Some(h) = self.handler.take() {
            let _ = h.join();
        }
    }
}

impl<T: Task> Drop for Pool<T> {
    fn drop(&mut self) {
        if self.handler.is_some() {
            self.terminate();
        }
    }
}

/// The result-handler thread: runs completions in the parent, one at a time.
fn result_handler<O>(shared: &Shared<O>, done: &Receiver<(u64, Outcome<O>)>) {
    for (id, outcome) in done.iter() {
        let completion = shared.pending().remove(&id);
        if let Some(complete) = completion {
            let _ = catch_unwind(AssertUnwindSafe(|| complete(outcome)));
            shared.finished_one();
        }
    }
    // Every worker thread is gone: whatever is still pending will never run.
    let left: Vec<Completion<O>> = shared.pending().drain().map(|(_, c)| c).collect();
    for complete in left {
        let _ = catch_unwind(AssertUnwindSafe(|| complete(Err(TaskError::Terminated))));
        shared.finished_one();
    }
    shared.idle.notify_all();
}

/// One worker's thread in the parent: batches of jobs out, replies in, a replacement when the
/// worker dies or has run `maxtasks` tasks.
#[allow(clippy::too_many_arguments)]
fn drive<T: Task>(
    slot: usize,
    mut worker: Process,
    mut end: WorkerEnd<T>,
    shared: &Shared<T::Output>,
    jobs: &Receiver<Job<T>>,
    requeue: &Sender<Job<T>>,
    done: &Sender<(u64, Outcome<T::Output>)>,
    maxtasks: Option<usize>,
) {
    let mut ran = 0usize;
    let mut replies = FrameReader::new(DEFAULT_MAX_FRAME);
    let stopping = || shared.terminated.load(Ordering::SeqCst);
    'jobs: loop {
        let first = match jobs.recv_timeout(Duration::from_millis(20)) {
            Ok(job) => job,
            Err(channel::RecvTimeoutError::Timeout) => {
                if shared.stopped.load(Ordering::SeqCst) {
                    break;
                }
                continue;
            }
            Err(channel::RecvTimeoutError::Disconnected) => break,
        };
        if stopping() {
            let _ = done.send((first.id, Err(TaskError::Terminated)));
            continue;
        }
        // A fair share of what is queued, so slow tasks spread over every worker, and up to
        // BATCH trivial ones travel together.
        let share = (1 + jobs.len() / shared.pids_len()).min(BATCH);
        let mut batch = vec![first];
        while batch.len() < share {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // One frame for the batch; the replies come one per job, read ahead in bulk.
        let sent = if end.send(&batch).is_ok() {
            batch.len()
        } else {
            0
        };
        let mut replied = 0;
        while replied < sent {
            match end.recv_buffered(&mut replies) {
                Ok(reply) => {
                    ran += batch[replied].tasks.len();
                    let _ = done.send((reply.id, Ok(reply.results)));
                    replied += 1;
                }
                Err(FrameError::Decode(e)) => {
                    let _ = done.send((
                        batch[replied].id,
                        Err(TaskError::Failed(format!("a malformed reply: {e}"))),
                    ));
                    replied += 1;
                }
                Err(_) => break,
            }
        }
        if replied < batch.len() {
            // The worker is gone: the job it was running failed, the rest go back.
            shared.live_workers.fetch_sub(1, Ordering::SeqCst);
            let why = if stopping() {
                TaskError::Terminated
            } else {
                died(&mut worker)
            };
            let mut rest = batch.into_iter().skip(replied);
            if let Some(job) = rest.next() {
                let _ = done.send((job.id, Err(why)));
            }
            for job in rest {
                if stopping() {
                    let _ = done.send((job.id, Err(TaskError::Terminated)));
                } else if let Err(e) = requeue.send(job) {
                    let _ = done.send((e.0.id, Err(TaskError::Terminated)));
                }
            }
            if stopping() || !replace(slot, &mut worker, &mut end, shared, &mut ran) {
                break 'jobs;
            }
            // What was read ahead from the old worker's end is of no use now.
            replies = FrameReader::new(DEFAULT_MAX_FRAME);
            continue;
        }
        if maxtasks.is_some_and(|m| ran >= m) {
            // Recycle: close its connection (it exits on end-of-file), reap, fork anew.
            shared.live_workers.fetch_sub(1, Ordering::SeqCst);
            if !replace(slot, &mut worker, &mut end, shared, &mut ran) {
                break 'jobs;
            }
            replies = FrameReader::new(DEFAULT_MAX_FRAME);
        }
    }
    // Queue closed (join/terminate): let the worker see end-of-file, then reap it.
    drop(end);
    let _ = worker.join();
}

/// Fork a new worker in place of the current one.
fn replace<T: Task>(
    slot: usize,
    worker: &mut Process,
    end: &mut WorkerEnd<T>,
    shared: &Shared<T::Output>,
    ran: &mut usize,
) -> bool {
    match fork_worker::<T>() {
        Ok((new_worker, new_end)) => {
            // Dropping the old end lets a recycled worker see end-of-file; joining reaps it.
            let old_end = std::mem::replace(end, new_end);
            drop(old_end);
            let mut old = std::mem::replace(worker, new_worker);
            let _ = old.join();
            *ran = 0;
            if let Some(p) = shared
                .pids
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut(slot)
            {
                *p = worker.pid().unwrap_or_default();
            }
            shared.live_workers.fetch_add(1, Ordering::SeqCst);
            true
        }
        Err(_) => false,
    }
}
