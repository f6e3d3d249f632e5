//! [`Pool`]: Python's `multiprocessing.Pool`, that survives a dead worker.
//!
//! # How it is built
//!
//! Every worker is a forked [`Process`](processes::Process) with a socket pair of its own, so
//! the parent always knows which worker holds which task. In the parent, one thread per worker
//! (`driver`) takes the next job (an `apply_async`, or a chunk of a `map`) from a shared queue
//! when its worker is free: Python's order. While its worker's last tasks took under a
//! millisecond each, it takes a batch of them instead and sends it as one frame: one `write`,
//! one cross-process wake-up for many small jobs ([`Builder::max_batch`]).
//! The worker sends each job's results back when the job is done, and the parent reads them
//! ahead in bulk ([`ipc::frame::FrameReader`]). A single *result-handler* thread puts each
//! job's results together and runs every callback, in the parent, as Python does.
//!
//! Each task and each result is encoded on its own, so one that cannot be encoded (or is over
//! the frame limit) is an error for that task alone: [`TaskError::TaskEncoding`] before it is
//! sent, [`TaskError::ResultEncoding`] (Python's `MaybeEncodingError`) after it ran; the
//! worker lives on.
//!
//! # When a worker dies
//!
//! Its thread sees end-of-file. The worker kept its progress in a *journal* in memory shared
//! with the parent (`journal`): the results it had not sent yet, and whether a task was
//! running, updated by one atomic store per step. The parent reaps the worker, delivers the
//! results it had finished, fails the task it was running with [`TaskError::WorkerDied`], and
//! puts the tasks it had not started back in the queue, for another worker; then it forks a
//! replacement. Every task yields exactly one result, in its place, and runs at most once.
//! Python's `Pool` hangs forever in that case.
//!
//! If no replacement can be forked (a process limit), the slot stays empty and tries again
//! later; while no worker at all is left, tasks fail with [`TaskError::NoWorker`] instead of
//! waiting forever. A worker's pid leaves [`Pool::worker_pids`] before it is reaped, and
//! [`Pool::terminate`] signals only the pids listed, under the same lock: a pid the system may
//! have reused is never signalled.
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

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam::channel::{self, Sender};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::builder::Settings;
use crate::driver::Driver;
use crate::result::{SharedSlot, Slot, fill, result_handler};
use crate::shared::{Completion, DeathHook, Gate, Job, Part, Pending, PendingMap, Shared};
use crate::worker::{PREFIXES, Worker, fork_worker};

pub use crate::builder::{Builder, DEFAULT_MAX_BATCH};
pub use crate::result::AsyncResult;
pub use crate::shared::{PoolError, Task, TaskError};

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
    ///
    /// # Errors
    ///
    /// As [`Builder::build`]: [`PoolError::Invalid`] for 0, [`PoolError::Start`] when a worker
    /// or thread cannot be created.
    pub fn new(n: usize) -> Result<Pool<T>, PoolError> {
        Builder::default().processes(n).build()
    }

    /// Options: [`Builder::processes`], [`Builder::maxtasksperchild`].
    pub fn builder() -> Builder {
        Builder::default()
    }

    pub(crate) fn start(settings: Settings) -> Result<Pool<T>, PoolError> {
        Pool::start_with(settings, None)
    }

    /// Start a pool whose drivers call `on_death` when a worker dies (see `DeathHook`).
    pub(crate) fn start_with(
        settings: Settings,
        on_death: Option<DeathHook<T::Output>>,
    ) -> Result<Pool<T>, PoolError> {
        let Settings {
            processes: n,
            maxtasks,
            max_batch,
            prefix,
        } = settings;
        // Fork every first worker before any thread of the pool exists. On failure, those
        // already started are dropped: socket first, so each sees end-of-file and leaves,
        // then reaped.
        let mut workers: Vec<Worker> = Vec::with_capacity(n);
        for number in 1..=n {
            let number = u32::try_from(number).unwrap_or(u32::MAX);
            workers.push(fork_worker::<T>(number, prefix)?);
        }
        let shared = Arc::new(Shared {
            pending: Mutex::new(PendingMap::default()),
            outstanding: Mutex::new(0),
            idle: Condvar::new(),
            next_id: AtomicU64::new(0),
            next_seq: AtomicU64::new(1),
            closed: AtomicBool::new(false),
            terminated: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            live_workers: AtomicUsize::new(n),
            pids: Mutex::new(workers.iter().map(|w| Some(w.member())).collect()),
            callback_panics: Mutex::new((0, Vec::new())),
            on_death,
            gates: Mutex::default(),
            size: n,
            next_number: AtomicU32::new(u32::try_from(n + 1).unwrap_or(u32::MAX)),
            prefix,
        });
        let (jobs_tx, jobs_rx) = channel::unbounded::<Job<T>>();
        let (done_tx, done_rx) = channel::unbounded::<Part<T::Output>>();
        let handler = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("pool-results".into())
                .spawn(move || result_handler(&shared, &done_rx))
                .map_err(|e| PoolError::Start(format!("a thread for the results: {e}")))?
        };
        let mut pool = Pool {
            shared,
            jobs: Some(jobs_tx.clone()),
            threads: Vec::with_capacity(n),
            handler: Some(handler),
            size: n,
        };
        let mut workers = workers.into_iter().enumerate();
        while let Some((slot, worker)) = workers.next() {
            let driver = Driver {
                slot,
                worker: Some(worker),
                shared: pool.shared.clone(),
                jobs: jobs_rx.clone(),
                requeue: jobs_tx.clone(),
                done: done_tx.clone(),
                maxtasks,
                max_batch,
                quick: false,
            };
            let spawned = std::thread::Builder::new()
                .name(format!("pool-worker-{slot}"))
                .spawn(move || driver.run());
            match spawned {
                Ok(t) => pool.threads.push(t),
                Err(e) => {
                    // The failed thread's driver (and its worker) was dropped inside spawn:
                    // the worker saw end-of-file and was reaped. No one else could signal
                    // it meanwhile (the pool was not handed out yet); now forget its pid,
                    // let the rest go the same way, and stop the threads already started.
                    let mut pids = pool.shared.pids();
                    pids[slot] = None;
                    for (slot, worker) in workers.by_ref() {
                        pids[slot] = None;
                        drop(worker);
                    }
                    drop(pids);
                    drop(done_tx);
                    pool.stop();
                    return Err(PoolError::Start(format!("a thread for worker {slot}: {e}")));
                }
            }
        }
        Ok(pool)
    }

    /// Whether `close` or `terminate` was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    /// Count a callback's panic (one that ran outside the result handler).
    pub(crate) fn count_callback_panic(&self, payload: Box<dyn std::any::Any + Send>) {
        self.shared
            .callback_panicked(lesson::panic_message(&*payload));
    }

    /// The number of worker slots (Python's `processes`).
    pub fn processes(&self) -> usize {
        self.size
    }

    /// The pids of the workers alive now (replacements included): our own children, not yet
    /// reaped. A slot whose worker died and could not be replaced has none.
    pub fn worker_pids(&self) -> Vec<i32> {
        self.shared.pids().iter().flatten().map(|m| m.pid).collect()
    }

    /// The workers alive now, as (pid, name): `ForkPoolWorker-1` to `-N` at first, as Python
    /// names them; a replacement takes the next number. A task finds its own worker's name
    /// with [`current_worker_name`](crate::current_worker_name).
    pub fn workers(&self) -> Vec<(i32, String)> {
        let prefix = PREFIXES[usize::from(self.shared.prefix) % PREFIXES.len()];
        self.shared
            .pids()
            .iter()
            .flatten()
            .map(|m| (m.pid, format!("{prefix}-{}", m.number)))
            .collect()
    }

    /// The messages of the callbacks (and error callbacks) that panicked, in the order they
    /// ran: the first 64 (see [`Pool::callback_panic_count`] for how many in all). Each was
    /// caught on the result-handler thread, its result still reached its [`AsyncResult`], and
    /// the pool went on. (Python's result-handler thread dies of an exception in a callback,
    /// and `pool.join()` then waits forever.)
    pub fn callback_panics(&self) -> Vec<String> {
        let p = self.shared.callback_panics.lock();
        p.map_or_else(|e| e.into_inner().1.clone(), |p| p.1.clone())
    }

    /// How many callbacks (and error callbacks) panicked.
    pub fn callback_panic_count(&self) -> usize {
        let p = self.shared.callback_panics.lock();
        p.map_or_else(|e| e.into_inner().0, |p| p.0)
    }

    /// How many workers are alive now (restored after a death).
    pub fn live_workers(&self) -> usize {
        self.shared.live_workers.load(Ordering::SeqCst)
    }

    pub(crate) fn submit(
        &self,
        tasks: Vec<T>,
        complete: Completion<T::Output>,
    ) -> Result<(), PoolError> {
        self.submit_gated(tasks, None, complete)
    }

    /// Submit a job of `tasks`, whose `complete` receives their results in order; `gate` (see
    /// `Job::gated`) may keep it from being sent.
    pub(crate) fn submit_gated(
        &self,
        tasks: Vec<T>,
        gate: Option<Gate>,
        complete: Completion<T::Output>,
    ) -> Result<(), PoolError> {
        if self.shared.closed.load(Ordering::SeqCst) {
            return Err(PoolError::Closed);
        }
        let id = self.shared.next_id.fetch_add(1, Ordering::SeqCst);
        *self.shared.outstanding() += 1;
        self.shared
            .pending()
            .insert(id, Pending::new(complete, tasks.len()));
        let job = Job {
            id,
            first: 0,
            tasks,
            strikes: 0,
            gated: gate.is_some(),
        };
        if let Some(gate) = gate {
            self.shared
                .gates
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, gate);
        }
        match self.jobs.as_ref().map(|j| j.send(job)) {
            Some(Ok(())) => Ok(()),
            _ => {
                drop(self.shared.take_gate(id));
                self.shared.pending().remove(&id);
                self.shared.finished_one();
                Err(PoolError::Closed)
            }
        }
    }

    /// Run `task` in a worker and wait for its result. Replaces `pool.apply(func, args)`.
    ///
    /// # Errors
    ///
    /// The task's [`TaskError`]; [`TaskError::Terminated`] if the pool is closed.
    pub fn apply(&self, task: T) -> Result<T::Output, TaskError> {
        self.apply_async(task)
            .map_err(|_| TaskError::Terminated)?
            .get()
    }

    /// Start `task` in a worker; the result comes later. Replaces `pool.apply_async(func, args)`.
    ///
    /// # Errors
    ///
    /// [`PoolError::Closed`] after `close` or `terminate`.
    pub fn apply_async(&self, task: T) -> Result<AsyncResult<T::Output>, PoolError> {
        self.apply_async_with(task, |_| {}, |_| {})
    }

    /// [`Pool::apply_async`] with a `callback` for a result and an `error_callback` for a
    /// failure, both run in the parent on the pool's result-handler thread (Python's
    /// `callback=` / `error_callback=`). A callback that panics is caught: the pool goes on.
    ///
    /// # Errors
    ///
    /// [`PoolError::Closed`] after `close` or `terminate`.
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
            Box::new(move |mut results: Vec<Result<T::Output, TaskError>>| {
                let result = results.pop().unwrap_or(Err(TaskError::Terminated));
                // Callbacks run before the result is visible to get(), as in Python.
                let called = catch_unwind(AssertUnwindSafe(|| match &result {
                    Ok(v) => callback(v),
                    Err(e) => error_callback(e),
                }));
                fill(&filled, result);
                if let Err(payload) = called {
                    // The result handler counts it (see `Pool::callback_panics`).
                    std::panic::resume_unwind(payload);
                }
            }),
        )?;
        Ok(AsyncResult { slot })
    }

    /// No more tasks; the workers finish what was submitted. Replaces `pool.close()`.
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
    }

    /// Wait until every submitted task has completed and its callback has run, then stop the
    /// workers and reap them. Replaces `pool.join()`.
    ///
    /// # Errors
    ///
    /// [`PoolError::StillOpen`] before `close()` or `terminate()` (Python: `ValueError`).
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

    /// Stop now: SIGTERM the workers, fail every task not finished with
    /// [`TaskError::Terminated`], reap everything. Replaces `pool.terminate()`.
    pub fn terminate(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.terminated.store(true, Ordering::SeqCst);
        {
            // Under the lock: a pid in it is our unreaped child (see `Shared::pids`), and no
            // worker forked after this sees the pool as running (drivers check under it).
            let pids = self.shared.pids();
            for m in pids.iter().flatten() {
                let _ = kill(Pid::from_raw(m.pid), Signal::SIGTERM);
            }
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
