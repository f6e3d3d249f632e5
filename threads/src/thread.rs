//! [`Thread`]: what Python's `threading.Thread` offers and `std::thread` lacks — a name by
//! default, `is_alive()`, `join(timeout)`, and `enumerate()` / `active_count()`.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The live threads started through [`Thread`], by [`Thread::ident`].
static REGISTRY: Mutex<BTreeMap<u64, String>> = Mutex::new(BTreeMap::new());
/// Source of idents and of the `Thread-N` default names (Python counts the same way).
static NEXT_IDENT: AtomicU64 = AtomicU64::new(1);

fn registry() -> MutexGuard<'static, BTreeMap<u64, String>> {
    // Only inserts and removes happen under this lock; a poisoned map is still consistent.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// A live thread as [`enumerate`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadInfo {
    /// The thread's [`Thread::ident`].
    pub ident: u64,
    /// The thread's name.
    pub name: String,
}

/// The threads started through [`Thread`] that have not finished, oldest first.
/// Replaces `threading.enumerate()` (the seed's spelling is the same).
///
/// Unlike Python's, the list does not include the main thread or threads started with plain
/// `std::thread`: Rust keeps no global list of threads, so this registry only knows its own.
pub fn enumerate() -> Vec<ThreadInfo> {
    registry()
        .iter()
        .map(|(&ident, name)| ThreadInfo {
            ident,
            name: name.clone(),
        })
        .collect()
}

/// How many threads [`enumerate`] would list. Replaces `threading.active_count()`
/// (the seed's `activeCount()`, removed in Python 3.12).
pub fn active_count() -> usize {
    registry().len()
}

/// The "subclass `threading.Thread` and override `run()`" style: a type that knows how to run
/// itself. Start it with [`Thread::start`]; calling `run` yourself runs it on *your* thread, in
/// Rust as in Python.
pub trait Run: Send + 'static {
    /// What the thread returns; [`Thread::join`] hands it back.
    type Output: Send + 'static;
    /// The thread's body. Replaces overriding `Thread.run`.
    fn run(self) -> Self::Output;
}

/// A thread's panic, as [`Thread::join`] returns it. Python prints the exception through
/// `threading.excepthook` and `join()` returns `None`; Rust hands it to whoever joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Panicked {
    /// The thread's name.
    pub thread: String,
    /// The panic message (or a placeholder when the payload was not a string).
    pub message: String,
}

impl fmt::Display for Panicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "thread {} panicked: {}", self.thread, self.message)
    }
}

impl std::error::Error for Panicked {}

/// The text of a panic payload (`panic!("...")` gives a `&str` or a `String`): the lesson
/// crate's one function for it, re-exported here where a thread's panic is read.
pub use lesson::panic_message;

/// Set by the thread itself when its body has ended (returned or panicked).
#[derive(Default)]
struct Finished {
    done: Mutex<bool>,
    cv: Condvar,
}

impl Finished {
    fn is_set(&self) -> bool {
        *self.done.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs when the thread's body ends, also by panic: leaves the registry, then says "finished".
struct Leaving {
    ident: u64,
    finished: Arc<Finished>,
}

impl Drop for Leaving {
    fn drop(&mut self) {
        registry().remove(&self.ident);
        *self.finished.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.finished.cv.notify_all();
    }
}

/// A running thread with Python's conveniences. Replaces `threading.Thread`.
///
/// There is no "created but not started" state: building it starts it (Python's `Thread(...)`
/// then `start()` is one step here), so a thread cannot be started twice.
///
/// ```
/// use std::time::Duration;
/// use threads::Thread;
///
/// let t = Thread::builder().name("worker").spawn(|| 6 * 7)?;
/// assert_eq!(t.name(), "worker");
/// assert!(t.join_timeout(Duration::from_secs(10)));  // join(timeout) — true: it finished
/// assert!(!t.is_alive());
/// assert_eq!(t.join()?, 42);                          // the value comes back
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Thread<T> {
    name: String,
    ident: u64,
    handle: JoinHandle<T>,
    finished: Arc<Finished>,
}

impl<T> fmt::Debug for Thread<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Thread")
            .field("name", &self.name)
            .field("ident", &self.ident)
            .field("alive", &self.is_alive())
            .finish()
    }
}

/// Options for a new [`Thread`]: the keyword arguments of `threading.Thread(...)`.
#[derive(Debug, Default, Clone)]
pub struct Builder {
    name: Option<String>,
}

impl Builder {
    /// The thread's name (`Thread(name=...)`). Without one it is `Thread-N`, as in Python.
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Start a thread running `f` (`Thread(target=f, args=...)` then `start()`; the arguments
    /// are whatever the closure captures).
    pub fn spawn<T, F>(self, f: F) -> io::Result<Thread<T>>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let ident = NEXT_IDENT.fetch_add(1, Ordering::Relaxed);
        let name = self.name.unwrap_or_else(|| format!("Thread-{ident}"));
        let finished = Arc::new(Finished::default());
        // Registered before it starts, so enumerate() lists it as soon as spawn returns
        // (Python lists a thread from start() on).
        registry().insert(ident, name.clone());
        let leaving = Leaving {
            ident,
            finished: Arc::clone(&finished),
        };
        let spawned = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                let _leaving = leaving;
                f()
            });
        match spawned {
            Ok(handle) => Ok(Thread {
                name,
                ident,
                handle,
                finished,
            }),
            // The closure (and with it `leaving`) was dropped, which unregistered it.
            Err(e) => Err(e),
        }
    }

    /// Start a thread running `runner.run()` (the subclass style).
    pub fn start<R: Run>(self, runner: R) -> io::Result<Thread<R::Output>> {
        self.spawn(move || runner.run())
    }
}

impl Thread<()> {
    /// A [`Builder`], to name the thread before starting it.
    pub fn builder() -> Builder {
        Builder::default()
    }
}

impl<T: Send + 'static> Thread<T> {
    /// Start `f` on a new thread named `Thread-N`.
    pub fn spawn<F>(f: F) -> io::Result<Thread<T>>
    where
        F: FnOnce() -> T + Send + 'static,
    {
        Builder::default().spawn(f)
    }

    /// Start `runner.run()` on a new thread named `Thread-N`. Replaces `MyThread(...).start()`.
    pub fn start<R: Run<Output = T>>(runner: R) -> io::Result<Thread<T>> {
        Builder::default().start(runner)
    }
}

impl<T> Thread<T> {
    /// The name. Replaces `t.name` / the seed's `t.getName()`. Rust names are fixed at start:
    /// there is no `setName` on another thread.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A number unique among the threads this process started through [`Thread`]
    /// (Python's `t.ident`).
    pub fn ident(&self) -> u64 {
        self.ident
    }

    /// Whether the thread's body is still running. Replaces `t.is_alive()` (the seed's
    /// `isAlive()`, removed in Python 3.9). The answer may be stale as soon as it returns.
    pub fn is_alive(&self) -> bool {
        !self.finished.is_set()
    }

    /// Wait at most `timeout` for the thread to finish; `true` if it has. Replaces
    /// `t.join(timeout)`, which returns `None` either way and leaves you to call `is_alive()`.
    /// The thread is not consumed: call [`Thread::join`] afterwards for its value. A timeout
    /// too large to make a deadline (`Duration::MAX`) waits without a limit.
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        // A timeout too large to add to now (`Duration::MAX`) means no limit.
        let deadline = Instant::now().checked_add(timeout);
        let mut done = self.finished.done.lock().unwrap_or_else(|e| e.into_inner());
        while !*done {
            let Some(deadline) = deadline else {
                done = self
                    .finished
                    .cv
                    .wait(done)
                    .unwrap_or_else(|e| e.into_inner());
                continue;
            };
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            done = match self.finished.cv.wait_timeout(done, deadline - now) {
                Ok((guard, _)) => guard,
                Err(e) => e.into_inner().0,
            };
        }
        true
    }

    /// Wait for the thread and take what it returned, or its panic as an error.
    /// Replaces `t.join()`.
    pub fn join(self) -> Result<T, Panicked> {
        let name = self.name;
        self.handle.join().map_err(|payload| Panicked {
            thread: name,
            message: panic_message(payload.as_ref()),
        })
    }
}
