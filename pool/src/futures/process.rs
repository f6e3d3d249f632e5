//! [`ProcessPoolExecutor`]: Python's `concurrent.futures.ProcessPoolExecutor`, on this crate's
//! [`Pool`] of forked workers.
//!
//! Each `submit` is a job of the pool whose completion sets its [`Future`]. The future is
//! PENDING while the job waits in the pool's queue and RUNNING from the moment a worker's
//! thread takes it (the job's gate calls `set_running_or_notify_cancel`), so `cancel` works
//! until then, and a job whose future was cancelled is never sent. (Python marks a future
//! RUNNING a little earlier: when it enters the queue of at most `max_workers + 1` calls that
//! feeds the workers.)
//!
//! When a worker dies, the pool tells the executor before it delivers anything of the dead
//! worker's. With [`WorkerDeath::BreakPool`] (Python's rule) the executor then marks itself
//! broken, fails every future not done with `BrokenProcessPool`, and stops the pool (every
//! worker killed and reaped); with [`WorkerDeath::FailTask`] (this crate's `Pool`'s rule) only
//! the call that was running fails, with [`TaskError::WorkerDied`], and a new worker takes
//! the dead one's place.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{ExecutorError, Future, FutureError, MapResults};
use crate::builder::Builder;
use crate::pool::Pool;
use crate::shared::{PoolError, Task, TaskError};

/// What a [`ProcessPoolExecutor`] does when one of its worker processes dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WorkerDeath {
    /// Python's rule: the executor is broken. Every future not done fails with
    /// [`FutureError::BrokenProcessPool`], the other workers are stopped, and every later
    /// `submit` is refused with [`ExecutorError::BrokenProcessPool`].
    #[default]
    BreakPool,
    /// This crate's [`Pool`]'s rule: the call that was running on the dead worker fails
    /// ([`FutureError::Raised`] of [`TaskError::WorkerDied`]); the calls it had not started
    /// run elsewhere, a new worker takes its place, and the executor goes on.
    FailTask,
}

/// Options for a [`ProcessPoolExecutor`]: Python's `max_workers` and `max_tasks_per_child`,
/// and what a worker's death does.
#[derive(Debug, Clone, Default)]
pub struct ProcessPoolBuilder {
    max_workers: Option<usize>,
    max_tasks_per_child: Option<usize>,
    on_death: WorkerDeath,
}

impl ProcessPoolBuilder {
    /// How many worker processes (default: the CPUs this process may use).
    pub fn max_workers(mut self, n: usize) -> ProcessPoolBuilder {
        self.max_workers = Some(n);
        self
    }

    /// Replace a worker after this many calls (Python 3.11's `max_tasks_per_child`, which
    /// Python allows only with the spawn or forkserver start method; this crate's workers
    /// are forked and it works with them).
    pub fn max_tasks_per_child(mut self, n: usize) -> ProcessPoolBuilder {
        self.max_tasks_per_child = Some(n);
        self
    }

    /// What a worker's death does (default [`WorkerDeath::BreakPool`], Python's).
    pub fn on_worker_death(mut self, rule: WorkerDeath) -> ProcessPoolBuilder {
        self.on_death = rule;
        self
    }

    /// Fork the workers (before any thread of the executor starts).
    ///
    /// # Errors
    ///
    /// [`ExecutorError::Invalid`] for `max_workers(0)` or `max_tasks_per_child(0)` (Python:
    /// `ValueError`); [`ExecutorError::Start`] if a worker or a thread cannot be started
    /// (everything started is stopped and reaped first).
    pub fn build<T: Task>(self) -> Result<ProcessPoolExecutor<T>, ExecutorError> {
        let mut b = Builder::default();
        if let Some(n) = self.max_workers {
            if n == 0 {
                return Err(ExecutorError::Invalid(
                    "max_workers must be greater than 0".into(),
                ));
            }
            b = b.processes(n);
        }
        if let Some(n) = self.max_tasks_per_child {
            if n == 0 {
                return Err(ExecutorError::Invalid(
                    "max_tasks_per_child must be >= 1".into(),
                ));
            }
            b = b.maxtasksperchild(n);
        }
        // Workers named as Python names them: ForkProcess-N.
        b.prefix = 1;
        // One call per worker at a time, as Python's workers take them: a future is RUNNING
        // only while a worker has it.
        b = b.max_batch(1);
        let settings = b
            .settings()
            .map_err(|e| ExecutorError::Invalid(e.to_string()))?;
        let registry: Arc<Registry> = Arc::default();
        let hook = (self.on_death == WorkerDeath::BreakPool).then(|| {
            let registry = registry.clone();
            Box::new(
                move |shared: &crate::shared::Shared<T::Output>, how: &TaskError| {
                    registry.break_pool(how);
                    shared.abort();
                },
            ) as crate::shared::DeathHook<T::Output>
        });
        let pool = Pool::start_with(settings, hook).map_err(|e| match e {
            PoolError::Start(why) => ExecutorError::Start(why),
            other => ExecutorError::Start(other.to_string()),
        })?;
        Ok(ProcessPoolExecutor {
            registry,
            pool: Mutex::new(Some(pool)),
            closer: Mutex::new(None),
            on_death: self.on_death,
        })
    }
}

/// A future not done yet, whatever its value's type (one call's, or a chunk's of `map`).
trait Live: Send {
    fn handle(&self) -> Box<dyn Live>;
    fn cancel(&self);
    fn fail_broken(&self, why: &str);
}

impl<O: Send + 'static> Live for Future<O> {
    fn handle(&self) -> Box<dyn Live> {
        Box::new(self.clone())
    }

    fn cancel(&self) {
        Future::cancel(self);
    }

    fn fail_broken(&self, why: &str) {
        if self.cancelled() {
            // Its job will never be taken now: notify `wait` and `as_completed`.
            let _ = self.set_running_or_notify_cancel();
        } else {
            let _ = self.set_exception(FutureError::BrokenProcessPool(why.to_owned()));
        }
    }
}

/// The futures not done yet, by id, and whether the pool is broken: one lock, so a `submit`
/// either sees the pool broken or is failed by the break.
#[derive(Default)]
struct Registry {
    state: Mutex<Futures>,
}

#[derive(Default)]
struct Futures {
    live: HashMap<u64, Box<dyn Live>>,
    next: u64,
    broken: Option<String>,
    shutdown: bool,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Futures> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Python's `_terminate_broken`: refuse from now on, and fail every future not done.
    fn break_pool(&self, how: &TaskError) {
        let why = format!(
            "a child process terminated abruptly ({how}); the process pool is not usable \
             anymore"
        );
        let live: Vec<Box<dyn Live>> = {
            let mut s = self.lock();
            if s.broken.is_none() {
                s.broken = Some(why.clone());
            }
            s.live.drain().map(|(_, f)| f).collect()
        };
        for f in live {
            f.fail_broken(&why);
        }
    }

    fn broken(&self) -> Option<String> {
        self.lock().broken.clone()
    }
}

/// A pool of worker processes that runs [`Task`]s and hands back [`Future`]s. Python's
/// `concurrent.futures.ProcessPoolExecutor` with the fork start method.
///
/// Dropping it is `shutdown(true, false)`: the calls submitted run, then every worker is
/// stopped and reaped. Done callbacks run on the pool's result thread (or, for a broken pool,
/// on the thread that saw the worker die): a callback that waits for the executor to shut
/// down would wait for itself.
pub struct ProcessPoolExecutor<T: Task> {
    registry: Arc<Registry>,
    /// `None` once shut down and joined (or handed to the closing thread).
    pool: Mutex<Option<Pool<T>>>,
    /// The thread that joins the pool after `shutdown(wait = false)`.
    closer: Mutex<Option<std::thread::JoinHandle<()>>>,
    on_death: WorkerDeath,
}

impl<T: Task> std::fmt::Debug for ProcessPoolExecutor<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessPoolExecutor")
            .field("on_worker_death", &self.on_death)
            .field("worker_pids", &self.worker_pids())
            .finish()
    }
}

impl<T: Task> ProcessPoolExecutor<T> {
    /// `ProcessPoolExecutor(max_workers)`, with Python's rule for a dead worker.
    ///
    /// # Errors
    ///
    /// As [`ProcessPoolBuilder::build`].
    pub fn new(max_workers: usize) -> Result<ProcessPoolExecutor<T>, ExecutorError> {
        ProcessPoolExecutor::<T>::builder()
            .max_workers(max_workers)
            .build()
    }

    /// Options: [`ProcessPoolBuilder`].
    pub fn builder() -> ProcessPoolBuilder {
        ProcessPoolBuilder::default()
    }

    fn pool(&self) -> MutexGuard<'_, Option<Pool<T>>> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The worker processes alive now, as (pid, name): `ForkProcess-1`, ..., as Python
    /// names them. Empty once shut down.
    pub fn workers(&self) -> Vec<(i32, String)> {
        self.pool().as_ref().map(Pool::workers).unwrap_or_default()
    }

    /// The pids of [`ProcessPoolExecutor::workers`].
    pub fn worker_pids(&self) -> Vec<i32> {
        self.workers().into_iter().map(|(pid, _)| pid).collect()
    }

    /// Whether a worker's death broke it (Python's `_broken`).
    pub fn broken(&self) -> bool {
        self.registry.broken().is_some()
    }

    /// Run `task` in a worker process; its future. Python's `submit(fn, *args)`.
    ///
    /// # Errors
    ///
    /// [`ExecutorError::BrokenProcessPool`] once a worker's death broke it;
    /// [`ExecutorError::Shutdown`] after `shutdown`.
    pub fn submit(&self, task: T) -> Result<Future<T::Output>, ExecutorError> {
        self.submit_chunk(vec![task], |mut r| {
            r.pop().unwrap_or(Err(TaskError::Terminated))
        })
    }

    /// Submit `tasks` as one job of the pool, whose results `finish` turns into the future's
    /// outcome.
    fn submit_chunk<O: Send + 'static>(
        &self,
        tasks: Vec<T>,
        finish: impl FnOnce(Vec<Result<T::Output, TaskError>>) -> Result<O, TaskError> + Send + 'static,
    ) -> Result<Future<O>, ExecutorError> {
        let future: Future<O> = Future::new();
        let id = {
            let mut s = self.registry.lock();
            if let Some(why) = &s.broken {
                return Err(ExecutorError::BrokenProcessPool(why.clone()));
            }
            if s.shutdown {
                return Err(ExecutorError::Shutdown);
            }
            s.next += 1;
            let id = s.next;
            s.live.insert(id, Box::new(future.clone()));
            id
        };
        let gate_future = future.clone();
        let done_future = future.clone();
        let registry = self.registry.clone();
        let complete = Box::new(move |results: Vec<Result<T::Output, TaskError>>| {
            registry.lock().live.remove(&id);
            if done_future.cancelled() {
                // Cancelled, and its job was not sent (or the pool stopped first): notify
                // `wait` and `as_completed` if the gate did not.
                let _ = done_future.set_running_or_notify_cancel();
                return;
            }
            let _ = match finish(results) {
                Ok(v) => done_future.set_result(v),
                Err(e @ (TaskError::Terminated | TaskError::WorkerDied { .. })) => {
                    match registry.broken() {
                        Some(why) => done_future.set_exception(FutureError::BrokenProcessPool(why)),
                        None => done_future.set_exception(FutureError::Raised(e)),
                    }
                }
                Err(e) => done_future.set_exception(FutureError::Raised(e)),
            };
        });
        let gate = Box::new(move || gate_future.set_running_or_notify_cancel() == Ok(true));
        let submitted = match self.pool().as_ref() {
            Some(pool) => pool.submit_gated(tasks, Some(gate), complete),
            None => Err(PoolError::Closed),
        };
        if submitted.is_err() {
            self.registry.lock().live.remove(&id);
            return Err(match self.registry.broken() {
                Some(why) => ExecutorError::BrokenProcessPool(why),
                None => ExecutorError::Shutdown,
            });
        }
        Ok(future)
    }

    /// Run every task; the results in order. Python's `map(fn, *iterables, timeout,
    /// chunksize)`: `chunksize` tasks travel to a worker together as one call, whose first
    /// error is that chunk's (and ends the iteration); every call is submitted before this
    /// returns.
    ///
    /// # Errors
    ///
    /// [`ExecutorError::Invalid`] for `chunksize` 0 (Python: `ValueError`); otherwise as
    /// [`ProcessPoolExecutor::submit`] (the chunks submitted before are cancelled).
    pub fn map(
        &self,
        tasks: Vec<T>,
        timeout: Option<Duration>,
        chunksize: usize,
    ) -> Result<MapResults<T::Output>, ExecutorError> {
        if chunksize == 0 {
            return Err(ExecutorError::Invalid("chunksize must be >= 1.".into()));
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut futures = Vec::new();
        let mut tasks = tasks.into_iter().peekable();
        while tasks.peek().is_some() {
            let chunk: Vec<T> = tasks.by_ref().take(chunksize).collect();
            match self.submit_chunk(chunk, |results| results.into_iter().collect()) {
                Ok(f) => futures.push(f),
                Err(e) => {
                    futures.iter().for_each(|f| {
                        f.cancel();
                    });
                    return Err(e);
                }
            }
        }
        Ok(MapResults::new(futures, deadline))
    }

    /// No new calls. `cancel_futures`: cancel every call not yet taken by a worker. `wait`:
    /// return once every call left has run and every worker is stopped and reaped; otherwise
    /// that happens on a thread of its own, joined when the executor is dropped. Python's
    /// `shutdown(wait, cancel_futures)`.
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        let pending: Vec<Box<dyn Live>> = {
            let mut s = self.registry.lock();
            s.shutdown = true;
            if cancel_futures {
                s.live.values().map(|f| f.handle()).collect()
            } else {
                Vec::new()
            }
        };
        for f in pending {
            f.cancel();
        }
        let Some(mut pool) = self.pool().take() else {
            self.join_closer();
            return;
        };
        pool.close();
        if wait {
            let _ = pool.join();
        } else {
            let spawned = std::thread::Builder::new()
                .name("executor-shutdown".into())
                .spawn(move || {
                    let _ = pool.join();
                });
            // Without a thread, the pool is dropped here: terminated (the workers stopped).
            if let Ok(t) = spawned {
                *self.closer.lock().unwrap_or_else(|e| e.into_inner()) = Some(t);
            }
        }
    }

    fn join_closer(&self) {
        let closer = self.closer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = closer {
            let _ = t.join();
        }
    }
}

impl<T: Task> Drop for ProcessPoolExecutor<T> {
    fn drop(&mut self) {
        self.shutdown(true, false);
        self.join_closer();
    }
}
