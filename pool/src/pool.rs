//! [`Pool`]: Python's `multiprocessing.Pool`, that survives a dead worker.
//!
//! # How it is built
//!
//! Every worker is a forked [`Process`](processes::Process) with a socket pair of its own, so the parent always
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
//! The parts live in sibling modules: `shared` (the [`Task`] trait, the errors, the messages),
//! `driver` (the parent's thread per worker: dispatch, death, replacement), `worker` (the
//! child's loop) and `result` ([`AsyncResult`] and the result-handler thread). This module holds
//! [`Pool`] and its [`Builder`].
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
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam::channel::{self, Sender};

use crate::driver::Driver;
use crate::result::{SharedSlot, Slot, result_handler};
use crate::shared::{ChunkResults, Completion, Job, Outcome, Shared};
use crate::worker::fork_worker;

pub use crate::result::AsyncResult;
pub use crate::shared::{PoolError, Task, TaskError};

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
                    Driver {
                        slot,
                        worker,
                        end,
                        shared,
                        jobs: jobs_rx,
                        requeue: jobs_tx,
                        done: done_tx,
                        maxtasks,
                    }
                    .run()
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
