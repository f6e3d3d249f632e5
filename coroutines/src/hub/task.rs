//! A task and its handle: [`spawn`], [`spawn_later`], [`Spawned`] (the task's value, panic or
//! kill, gevent's `Greenlet.value` / `exception` / `kill()`), and [`Joinable`], what `joinall`
//! waits for. A task's panic, and the [`TaskExit`] a kill raises, are caught at its top and
//! kept here (the parent module's state rules 4 and 6).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::Duration;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, Yielder};

use super::run::{self, Request, Wake, with_hub};
use super::{Ctx, where_am_i};
use crate::greenlet::{DEFAULT_STACK, drop_payload, is_message, panic_text, report};
use crate::overflow;

thread_local! {
    /// Counts task failures, so `joinall_raise_error` knows which came first.
    static FAILURES: Cell<u64> = const { Cell::new(0) };
}

/// What a kill raises at the task's wait: gevent's `GreenletExit`. It unwinds the task's stack
/// as a panic would (its destructors run), without the panic message, and is caught at the
/// task's top, which marks the task killed. Code that catches it (`catch_unwind`) sees this
/// payload; re-raise it with `std::panic::resume_unwind`, or the task lives on, as a greenlet
/// that catches `GreenletExit` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TaskExit;

/// Why a task gave no value: see [`Spawned::get`], [`Pool::map`](super::Pool::map).
pub enum TaskError {
    /// It panicked; the payload (re-raise it with `std::panic::resume_unwind`, or read its
    /// message with `lesson::panic_message`).
    Panicked(Box<dyn Any + Send>),
    /// It was killed ([`Spawned::kill`]) before it returned.
    Killed,
    /// The wait for it failed: a [`timeout`](super::timeout) around it passed, nothing could
    /// run any more, or the hub is gone.
    Wait(io::Error),
}

impl TaskError {
    /// The panic's message, for a panic; else what happened.
    pub fn message(&self) -> String {
        match self {
            TaskError::Panicked(p) => panic_text(&**p),
            TaskError::Killed => "killed".to_owned(),
            TaskError::Wait(e) => e.to_string(),
        }
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Panicked(_) => write!(f, "Panicked({:?})", self.message()),
            TaskError::Killed => f.write_str("Killed"),
            TaskError::Wait(e) => write!(f, "Wait({e:?})"),
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Panicked(_) => write!(f, "the task panicked: {}", self.message()),
            TaskError::Killed => f.write_str("the task was killed"),
            TaskError::Wait(e) => write!(f, "waiting for the task: {e}"),
        }
    }
}

impl std::error::Error for TaskError {}

/// A task's panic, kept on its handle.
struct Panicked {
    /// Its place among this thread's task failures.
    seq: u64,
    message: String,
    /// Given out once, to be re-raised.
    payload: Option<Box<dyn Any + Send>>,
}

/// What every task's handle knows, whatever its value's type (a pool keeps these).
pub(super) struct TaskState {
    pub(super) id: u64,
    done: Cell<bool>,
    killed: Cell<bool>,
    panic: RefCell<Option<Panicked>>,
}

impl TaskState {
    pub(super) fn done(&self) -> bool {
        self.done.get()
    }

    /// Kill the task (see [`Spawned::kill`]).
    pub(super) fn kill(&self) -> io::Result<()> {
        if self.done() {
            return Ok(());
        }
        let own = where_am_i().is_ok_and(|h| matches!(h.ctx, Ctx::Task(id) if id == self.id));
        if own && !std::thread::panicking() {
            // Its own code: raised here (the wait gevent's kill would switch away in).
            std::panic::resume_unwind(Box::new(TaskExit));
        }
        run::kill(self.id).map(drop)
    }

    /// Note how the task ended. Never panics (it runs at the task's top).
    fn finish_with<T>(&self, value: &RefCell<Option<T>>, result: std::thread::Result<T>) {
        match result {
            Ok(v) => {
                if let Ok(mut slot) = value.try_borrow_mut() {
                    *slot = Some(v);
                }
            }
            Err(payload) if payload.is::<TaskExit>() => {
                self.killed.set(true);
                drop_payload(payload);
            }
            Err(payload) => {
                let seq = FAILURES.with(|f| {
                    f.set(f.get() + 1);
                    f.get()
                });
                let message = panic_text(&*payload);
                match self.panic.try_borrow_mut() {
                    Ok(mut slot) => {
                        *slot = Some(Panicked {
                            seq,
                            message,
                            payload: Some(payload),
                        });
                    }
                    Err(_) => drop_payload(payload),
                }
            }
        }
        self.done.set(true);
    }
}

/// A link: run once the task has ended.
type Link<T> = Box<dyn FnOnce(&Spawned<T>)>;

/// The typed part of a task's ending: its value, and its links.
struct Outcome<T> {
    value: RefCell<Option<T>>,
    links: RefCell<Vec<Link<T>>>,
}

/// A spawned task: its result, its panic, or its kill, once it has ended. Replaces a
/// `gevent.Greenlet`. Cloning gives another handle on the same task.
pub struct Spawned<T> {
    state: Rc<TaskState>,
    out: Rc<Outcome<T>>,
}

impl<T> Clone for Spawned<T> {
    fn clone(&self) -> Spawned<T> {
        Spawned {
            state: self.state.clone(),
            out: self.out.clone(),
        }
    }
}

impl<T> fmt::Debug for Spawned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawned")
            .field("id", &self.id())
            .field("done", &self.done())
            .field("killed", &self.killed())
            .field("exception", &self.exception())
            .finish()
    }
}

impl<T> Spawned<T> {
    /// The task's number on this thread's hub (what [`set_tracer`](super::set_tracer) reports).
    pub fn id(&self) -> u64 {
        self.state.id
    }

    pub(super) fn state(&self) -> Rc<TaskState> {
        self.state.clone()
    }

    /// Whether it has ended: returned, panicked or was killed. Replaces `g.ready()` / `g.dead`.
    pub fn done(&self) -> bool {
        self.state.done()
    }

    /// Its return value, once (`None` before it finished, if it panicked or was killed, or if
    /// taken already).
    pub fn take(&self) -> Option<T> {
        self.out.value.borrow_mut().take()
    }

    /// A copy of its return value, if it has one (not taken). Replaces `g.value`.
    pub fn value(&self) -> Option<T>
    where
        T: Clone,
    {
        self.out.value.borrow().clone()
    }

    /// The message of its panic, if it panicked. Replaces `g.exception`.
    pub fn exception(&self) -> Option<String> {
        self.state
            .panic
            .borrow()
            .as_ref()
            .map(|p| p.message.clone())
    }

    /// Whether it was killed before it returned.
    pub fn killed(&self) -> bool {
        self.state.killed.get()
    }

    /// Whether it has ended without a panic. Replaces `g.successful()`: as in gevent, a killed
    /// task counts as successful (its value there is the `GreenletExit`; see [`killed`]).
    ///
    /// [`killed`]: Spawned::killed
    pub fn successful(&self) -> bool {
        self.done() && self.state.panic.borrow().is_none()
    }

    /// Wait for it to end, then take its value. Replaces `g.get()`.
    ///
    /// # Errors
    /// [`TaskError::Panicked`] with its panic (the payload the first time, the message after),
    /// [`TaskError::Killed`], or [`TaskError::Wait`] if the wait failed (as
    /// [`joinall`](super::joinall)'s); a value taken already is `Wait(NotFound)`.
    pub fn get(&self) -> Result<T, TaskError> {
        super::joinall(&[self]).map_err(TaskError::Wait)?;
        if let Some(p) = self.take_panic() {
            return Err(TaskError::Panicked(p));
        }
        if self.killed() {
            return Err(TaskError::Killed);
        }
        self.take().ok_or_else(|| {
            TaskError::Wait(io::Error::new(
                io::ErrorKind::NotFound,
                "the task's value was taken already",
            ))
        })
    }

    /// Kill the task, as `g.kill()` does: [`TaskExit`] is raised where it waits, which unwinds
    /// its stack (its destructors run; a hub wait from one of them fails) up to its top, and
    /// it ends killed. A task that has not started yet ends without running; an ended one is
    /// left as it is.
    ///
    /// When the task is suspended, this resumes it at once, so it has ended (unless it caught
    /// its exit) when `kill` returns; gevent's `kill(block=True)` waits for the same. When the
    /// task is running (this is its own code, or code it called, such as a greenlet started
    /// inside it), the exit is raised at its next wait.
    ///
    /// # Errors
    /// If the thread's hub is gone (at thread exit).
    ///
    /// # Panics
    /// Called from the task's own code, it does not return: [`TaskExit`] unwinds from here
    /// (not a panic: no message, and the task's top catches it).
    pub fn kill(&self) -> io::Result<()> {
        self.state.kill()
    }

    /// Run `f` with this handle once the task has ended (at once if it has). Replaces
    /// `g.link(callback)`. Links run on the task's own stack, in the order they were added,
    /// after its value is set; a panic in one is reported on stderr and the others still run.
    pub fn link(&self, f: impl FnOnce(&Spawned<T>) + 'static) {
        if self.done() {
            f(self);
        } else {
            self.out.links.borrow_mut().push(Box::new(f));
        }
    }

    /// Run the links (at the task's top, after it ended).
    fn run_links(&self) {
        loop {
            let next = {
                let Ok(mut links) = self.out.links.try_borrow_mut() else {
                    return;
                };
                if links.is_empty() {
                    return;
                }
                links.remove(0)
            };
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| next(self))) {
                // A link's exit or corosensei's unwind at thread exit is no panic to report.
                if is_message(&*p) {
                    report(&format!("a task's link panicked: {}", panic_text(&*p)));
                }
                drop_payload(p);
            }
        }
    }
}

/// Something [`joinall`](super::joinall) can wait for.
pub trait Joinable {
    /// Whether it has finished.
    fn is_done(&self) -> bool;

    /// If it failed: its place among this thread's failures (smaller is earlier).
    fn failed_at(&self) -> Option<u64> {
        None
    }

    /// If it failed: what to re-raise (the panic's payload the first time, its message after).
    fn take_panic(&self) -> Option<Box<dyn Any + Send>> {
        None
    }
}

impl Joinable for TaskState {
    fn is_done(&self) -> bool {
        self.done()
    }

    fn failed_at(&self) -> Option<u64> {
        self.panic.borrow().as_ref().map(|p| p.seq)
    }

    fn take_panic(&self) -> Option<Box<dyn Any + Send>> {
        let mut panic = self.panic.borrow_mut();
        let p = panic.as_mut()?;
        Some(
            p.payload
                .take()
                .unwrap_or_else(|| Box::new(p.message.clone())),
        )
    }
}

impl<T> Joinable for Spawned<T> {
    fn is_done(&self) -> bool {
        self.state.is_done()
    }

    fn failed_at(&self) -> Option<u64> {
        self.state.failed_at()
    }

    fn take_panic(&self) -> Option<Box<dyn Any + Send>> {
        self.state.take_panic()
    }
}

/// Start `f` as a task of this thread's hub; it runs once the hub runs (inside a wait outside
/// any task, such as [`joinall`](super::joinall), or a wait of another task). Replaces
/// `gevent.spawn(f, ...)`.
///
/// # Errors
/// Its stack cannot be mapped (past the process's memory-map limit), or the hub cannot be made
/// (epoll) or is gone (at thread exit).
pub fn spawn<T: 'static>(f: impl FnOnce() -> T + 'static) -> io::Result<Spawned<T>> {
    spawn_with_stack(DEFAULT_STACK, f)
}

/// Start `f` as a task that first sleeps `delay`. Replaces `gevent.spawn_later(seconds, f)`:
/// killed before the delay is over, it ends without running `f`.
///
/// # Errors
/// As [`spawn`].
pub fn spawn_later<T: 'static>(
    delay: Duration,
    f: impl FnOnce() -> T + 'static,
) -> io::Result<Spawned<T>> {
    spawn(move || {
        // A sleep fails only at thread exit, when the task is being dropped anyway.
        let _ = super::sleep(delay);
        f()
    })
}

/// [`spawn`] with a stack of `size` bytes. Past the process's memory-map limit this is an
/// error (each stack is a mapping of its own), not a crash.
///
/// # Errors
/// As [`spawn`].
pub fn spawn_with_stack<T: 'static>(
    size: usize,
    f: impl FnOnce() -> T + 'static,
) -> io::Result<Spawned<T>> {
    let stack = DefaultStack::new(size)?;
    overflow::install();
    let guard = overflow::guard_page(&stack);
    let id = with_hub(|h| {
        let id = h.next;
        h.next += 1;
        id
    })?;
    let handle = Spawned {
        state: Rc::new(TaskState {
            id,
            done: Cell::new(false),
            killed: Cell::new(false),
            panic: RefCell::new(None),
        }),
        out: Rc::new(Outcome {
            value: RefCell::new(None),
            links: RefCell::new(Vec::new()),
        }),
    };
    let mine = handle.clone();
    let co = Coroutine::with_stack(stack, move |y: &Yielder<Wake, Request>, first: Wake| {
        let _ = with_hub(|h| {
            if let Some(s) = h.tasks.get_mut(&id) {
                s.yielder = y;
            }
        });
        // State rules 4 and 6: a panic, or the exit a kill raises, ends here. Killed before
        // it started, the function is dropped unrun. When the thread exits with the task
        // suspended, what is caught is corosensei's own unwind; it ends here too, as
        // corosensei allows.
        let result = if first == Wake::Killed {
            catch_unwind(AssertUnwindSafe(move || drop(f)))
                .and_then(|()| Err(Box::new(TaskExit) as Box<dyn Any + Send>))
        } else {
            catch_unwind(AssertUnwindSafe(f))
        };
        mine.state.finish_with(&mine.out.value, result);
        mine.run_links();
    });
    run::add(id, co, guard)?;
    Ok(handle)
}
