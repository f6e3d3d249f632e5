//! [`ThreadPoolExecutor`]: Python's `concurrent.futures.ThreadPoolExecutor`.
//!
//! As Python's: threads start on demand, one per `submit` until `max_workers`, unless one is
//! idle (a count of idle threads stands for Python's idle semaphore); calls wait in one queue
//! in the order submitted; `shutdown` lets the threads finish the queue (or cancels what waits
//! in it) and leave. The queue is a crossbeam channel: its receivers park only when it is
//! empty, and a thread that has just run a call spins briefly for the next one first, so a
//! stream of short calls does not pay a wake-up on another core for each one.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{self, Receiver, Sender, TryRecvError};

use super::{ExecutorError, Future, FutureError, MapResults, default_thread_workers};
use crate::TaskError;

/// A call waiting in the queue, with its future.
trait WorkItem: Send {
    /// Run it (unless its future was cancelled), count this thread idle, and set the future.
    fn run(self: Box<Self>, idle: &AtomicUsize);
    /// It will not run: cancelled at shutdown (`None`), or the pool broke.
    fn drop_with(self: Box<Self>, why: Option<FutureError>);
}

struct Call<T, F> {
    future: Future<T>,
    f: F,
}

/// What a call gave: its value, or what it raised (an `Err`, or a panic).
fn outcome<T>(f: impl FnOnce() -> anyhow::Result<T>) -> Result<T, FutureError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(FutureError::Raised(TaskError::Failed(format!("{e:#}")))),
        Err(payload) => Err(FutureError::Raised(TaskError::Panicked(
            lesson::panic_message(&*payload),
        ))),
    }
}

impl<T: Send, F: FnOnce() -> anyhow::Result<T> + Send> WorkItem for Call<T, F> {
    fn run(self: Box<Self>, idle: &AtomicUsize) {
        let Call { future, f } = *self;
        if future.set_running_or_notify_cancel() != Ok(true) {
            idle.fetch_add(1, Ordering::Release);
            return;
        }
        let outcome = outcome(f);
        // Idle before the result is out (Python releases its idle semaphore just after): a
        // `submit` made as soon as the result is seen finds this thread idle, and does not
        // start another.
        idle.fetch_add(1, Ordering::Release);
        // The future is RUNNING and only this thread sets it: neither set can fail.
        let _ = match outcome {
            Ok(v) => future.set_result(v),
            Err(e) => future.set_exception(e),
        };
    }

    fn drop_with(self: Box<Self>, why: Option<FutureError>) {
        match why {
            None => {
                self.future.cancel();
                // Notified: `wait` and `as_completed` see it done (Python leaves these
                // CANCELLED, never notified: a `wait` on them would wait forever).
                let _ = self.future.set_running_or_notify_cancel();
            }
            Some(e) => {
                let _ = self.future.set_exception(e);
            }
        }
    }
}

type Item = Box<dyn WorkItem>;
type Init = Arc<dyn Fn() -> anyhow::Result<()> + Send + Sync>;

struct Shared {
    state: Mutex<State>,
    /// The queue's receiving end, for draining it (at shutdown, or when the pool breaks).
    queue: Receiver<Item>,
    /// Threads waiting for a call (Python's `_idle_semaphore`).
    idle: AtomicUsize,
    /// An idle thread spins for the next call (see `next`).
    spinning: AtomicBool,
    max_workers: usize,
    prefix: String,
    initializer: Option<Init>,
}

struct State {
    /// `None` after shutdown: the queue disconnects once drained, and the threads leave.
    sender: Option<Sender<Item>>,
    threads: Vec<JoinHandle<()>>,
    broken: Option<String>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The pool is broken: refuse from now on, and fail every call still queued.
    fn break_pool(&self, why: String) {
        let mut s = self.state();
        if s.broken.is_none() {
            s.broken = Some(why.clone());
        }
        drop(s);
        while let Ok(item) = self.queue.try_recv() {
            item.drop_with(Some(FutureError::BrokenThreadPool(why.clone())));
        }
    }
}

/// How long a thread that ran a call spins for the next before it parks.
const SPIN: Duration = Duration::from_micros(20);

/// The next call; `None` once the queue is closed and empty. One idle thread at a time spins
/// a little first (the others park at once: several spinning threads would take the cores
/// the callers need).
fn next(shared: &Shared) -> Option<Item> {
    let queue = &shared.queue;
    match queue.try_recv() {
        Ok(item) => return Some(item),
        Err(TryRecvError::Disconnected) => return None,
        Err(TryRecvError::Empty) => {}
    }
    if shared
        .spinning
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        let mut got = None;
        super::spin_until(SPIN, None, || match queue.try_recv() {
            Ok(item) => {
                got = Some(Some(item));
                true
            }
            Err(TryRecvError::Disconnected) => {
                got = Some(None);
                true
            }
            Err(TryRecvError::Empty) => false,
        });
        shared.spinning.store(false, Ordering::Release);
        if let Some(got) = got {
            return got;
        }
    }
    queue.recv().ok()
}

fn worker(shared: &Shared) {
    if let Some(init) = &shared.initializer
        && let Err(e) = outcome(|| init())
    {
        eprintln!("exception in initializer: {e}");
        shared.break_pool(format!(
            "a thread initializer failed ({e}): the thread pool is not usable anymore"
        ));
        return;
    }
    while let Some(item) = next(shared) {
        item.run(&shared.idle);
    }
}

/// Options for a [`ThreadPoolExecutor`]: Python's `max_workers`, `thread_name_prefix`,
/// `initializer`.
#[derive(Default)]
pub struct ThreadPoolBuilder {
    max_workers: Option<usize>,
    prefix: Option<String>,
    initializer: Option<Init>,
}

impl ThreadPoolBuilder {
    /// At most this many threads (default Python's: `min(32, cpus + 4)`).
    pub fn max_workers(mut self, n: usize) -> ThreadPoolBuilder {
        self.max_workers = Some(n);
        self
    }

    /// Threads are named `{prefix}_0`, `{prefix}_1`, ... (default `ThreadPoolExecutor-N`).
    pub fn thread_name_prefix(mut self, prefix: impl Into<String>) -> ThreadPoolBuilder {
        self.prefix = Some(prefix.into());
        self
    }

    /// Run `f` on each thread as it starts; if it fails (or panics), the pool is broken:
    /// every call queued and every later `submit` fails with `BrokenThreadPool`.
    pub fn initializer(
        mut self,
        f: impl Fn() -> anyhow::Result<()> + Send + Sync + 'static,
    ) -> ThreadPoolBuilder {
        self.initializer = Some(Arc::new(f));
        self
    }

    /// The executor (no thread starts before the first `submit`).
    ///
    /// # Errors
    ///
    /// [`ExecutorError::Invalid`] for `max_workers(0)` (Python: `ValueError`).
    pub fn build(self) -> Result<ThreadPoolExecutor, ExecutorError> {
        static POOLS: AtomicUsize = AtomicUsize::new(0);
        let max_workers = self.max_workers.unwrap_or_else(default_thread_workers);
        if max_workers == 0 {
            return Err(ExecutorError::Invalid(
                "max_workers must be greater than 0".into(),
            ));
        }
        let prefix = self.prefix.unwrap_or_else(|| {
            format!(
                "ThreadPoolExecutor-{}",
                POOLS.fetch_add(1, Ordering::Relaxed)
            )
        });
        let (tx, rx) = channel::unbounded();
        Ok(ThreadPoolExecutor {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    sender: Some(tx),
                    threads: Vec::new(),
                    broken: None,
                }),
                queue: rx,
                idle: AtomicUsize::new(0),
                spinning: AtomicBool::new(false),
                max_workers,
                prefix,
                initializer: self.initializer,
            }),
        })
    }
}

/// A pool of threads that runs closures and hands back [`Future`]s. Python's
/// `concurrent.futures.ThreadPoolExecutor`.
///
/// `Send + Sync`: share it by reference or in an `Arc` (a call may submit more). Dropping it
/// is `shutdown(true, false)`: the queued calls run, then the threads are joined.
pub struct ThreadPoolExecutor {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ThreadPoolExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPoolExecutor")
            .field("max_workers", &self.shared.max_workers)
            .field("threads", &self.threads())
            .finish()
    }
}

impl ThreadPoolExecutor {
    /// `ThreadPoolExecutor(max_workers)`.
    ///
    /// # Errors
    ///
    /// [`ExecutorError::Invalid`] for 0.
    pub fn new(max_workers: usize) -> Result<ThreadPoolExecutor, ExecutorError> {
        ThreadPoolExecutor::builder()
            .max_workers(max_workers)
            .build()
    }

    /// Options: [`ThreadPoolBuilder`].
    pub fn builder() -> ThreadPoolBuilder {
        ThreadPoolBuilder::default()
    }

    /// The most threads it starts (Python's `_max_workers`).
    pub fn max_workers(&self) -> usize {
        self.shared.max_workers
    }

    /// How many threads it has started (Python's `len(executor._threads)`).
    pub fn threads(&self) -> usize {
        self.shared.state().threads.len()
    }

    /// Run `f` on a thread of the pool; its future. Python's `submit(fn, *args)`: `f`'s
    /// `Err` is the exception, a panic is caught as one.
    ///
    /// # Errors
    ///
    /// [`ExecutorError::Shutdown`] after `shutdown`; [`ExecutorError::BrokenThreadPool`] once
    /// an initializer failed, or when no thread at all could be started.
    pub fn submit<T, F>(&self, f: F) -> Result<Future<T>, ExecutorError>
    where
        T: Send + 'static,
        F: FnOnce() -> anyhow::Result<T> + Send + 'static,
    {
        let mut s = self.shared.state();
        if let Some(why) = &s.broken {
            return Err(ExecutorError::BrokenThreadPool(why.clone()));
        }
        let Some(sender) = &s.sender else {
            return Err(ExecutorError::Shutdown);
        };
        let future = Future::new();
        let item: Item = Box::new(Call {
            future: future.clone(),
            f,
        });
        if sender.send(item).is_err() {
            return Err(ExecutorError::Shutdown);
        }
        self.adjust_thread_count(&mut s)?;
        Ok(future)
    }

    /// Python's `_adjust_thread_count`: an idle thread takes the call, else a new thread
    /// starts if there is room.
    fn adjust_thread_count(&self, s: &mut State) -> Result<(), ExecutorError> {
        let idle = &self.shared.idle;
        if idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
        {
            return Ok(());
        }
        if s.threads.len() >= self.shared.max_workers {
            return Ok(());
        }
        let shared = self.shared.clone();
        let name = format!("{}_{}", self.shared.prefix, s.threads.len());
        match std::thread::Builder::new()
            .name(name)
            .spawn(move || worker(&shared))
        {
            Ok(t) => {
                s.threads.push(t);
                Ok(())
            }
            // The threads already there serve the queue.
            Err(_) if !s.threads.is_empty() => Ok(()),
            Err(e) => {
                let why = format!("cannot start a thread: {e}");
                s.broken = Some(why.clone());
                while let Ok(item) = self.shared.queue.try_recv() {
                    item.drop_with(Some(FutureError::BrokenThreadPool(why.clone())));
                }
                Err(ExecutorError::BrokenThreadPool(why))
            }
        }
    }

    /// `f` on each input, on the pool's threads; the results in order. Python's
    /// `map(fn, iterable, timeout)` (its `chunksize` does nothing for threads, and is not
    /// taken here). Every call is submitted before this returns.
    ///
    /// # Errors
    ///
    /// As [`ThreadPoolExecutor::submit`] (the calls submitted before are cancelled).
    pub fn map<A, T, F>(
        &self,
        f: F,
        inputs: impl IntoIterator<Item = A>,
        timeout: Option<Duration>,
    ) -> Result<MapResults<T>, ExecutorError>
    where
        A: Send + 'static,
        T: Send + 'static,
        F: Fn(A) -> anyhow::Result<T> + Send + Sync + 'static,
    {
        let deadline = timeout.map(|t| Instant::now() + t);
        let f = Arc::new(f);
        let mut futures = Vec::new();
        for a in inputs {
            let f = f.clone();
            match self.submit(move || f(a).map(|v| vec![v])) {
                Ok(fut) => futures.push(fut),
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

    /// No new calls. `cancel_futures`: cancel the calls still waiting in the queue. `wait`:
    /// return once the threads have finished every call left and are joined. Python's
    /// `shutdown(wait, cancel_futures)`. A call of the pool may shut it down: its own thread
    /// is then not waited for.
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        let threads = {
            let mut s = self.shared.state();
            // Dropping the sender: once the queue is empty, every thread's receive ends.
            s.sender = None;
            if cancel_futures {
                while let Ok(item) = self.shared.queue.try_recv() {
                    item.drop_with(None);
                }
            }
            if wait {
                std::mem::take(&mut s.threads)
            } else {
                Vec::new()
            }
        };
        let me = std::thread::current().id();
        for t in threads {
            if t.thread().id() != me {
                let _ = t.join();
            }
        }
    }
}

impl Drop for ThreadPoolExecutor {
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}
