//! A task and its handle: [`spawn`], [`Spawned`] (the task's value or panic, gevent's
//! `Greenlet.value` / `exception`), and [`Joinable`], what `joinall` waits for. A task's panic
//! is caught at its top and kept here (the parent module's state rule 4).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, Yielder};

use super::run::{self, Request, Wake, with_hub};
use crate::greenlet::{DEFAULT_STACK, drop_payload, panic_text};
use crate::overflow;

thread_local! {
    /// Counts task failures, so `joinall_raise_error` knows which came first.
    static FAILURES: Cell<u64> = const { Cell::new(0) };
}

/// How a task ended: its value, or its panic.
struct Outcome<T> {
    done: Cell<bool>,
    value: RefCell<Option<T>>,
    panic: RefCell<Option<Panicked>>,
}

/// A task's panic, kept on its handle.
struct Panicked {
    /// Its place among this thread's task failures.
    seq: u64,
    message: String,
    /// Given out once, to be re-raised.
    payload: Option<Box<dyn Any + Send>>,
}

impl<T> Outcome<T> {
    /// Note how the task ended. Never panics (it runs at the task's top).
    fn finish(&self, result: std::thread::Result<T>) {
        match result {
            Ok(v) => {
                if let Ok(mut slot) = self.value.try_borrow_mut() {
                    *slot = Some(v);
                }
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

/// A spawned task: its result, or its panic, once it has finished. Replaces a
/// `gevent.Greenlet`.
pub struct Spawned<T> {
    outcome: Rc<Outcome<T>>,
}

impl<T> fmt::Debug for Spawned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawned")
            .field("done", &self.done())
            .field("exception", &self.exception())
            .finish()
    }
}

impl<T> Spawned<T> {
    /// Whether it has finished, returning or panicking. Replaces `g.ready()` / `g.dead`.
    pub fn done(&self) -> bool {
        self.outcome.done.get()
    }

    /// Its return value, once (`None` before it finished, if it panicked, or if taken).
    /// Replaces `g.value`.
    pub fn take(&self) -> Option<T> {
        self.outcome.value.borrow_mut().take()
    }

    /// The message of its panic, if it panicked. Replaces `g.exception`.
    pub fn exception(&self) -> Option<String> {
        self.outcome
            .panic
            .borrow()
            .as_ref()
            .map(|p| p.message.clone())
    }

    /// Whether it has finished without a panic. Replaces `g.successful()`.
    pub fn successful(&self) -> bool {
        self.done() && self.outcome.panic.borrow().is_none()
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

impl<T> Joinable for Spawned<T> {
    fn is_done(&self) -> bool {
        self.done()
    }

    fn failed_at(&self) -> Option<u64> {
        self.outcome.panic.borrow().as_ref().map(|p| p.seq)
    }

    fn take_panic(&self) -> Option<Box<dyn Any + Send>> {
        let mut panic = self.outcome.panic.borrow_mut();
        let p = panic.as_mut()?;
        Some(
            p.payload
                .take()
                .unwrap_or_else(|| Box::new(p.message.clone())),
        )
    }
}

/// Start `f` as a task of this thread's hub; it runs once the hub runs (inside a wait outside
/// any task, such as [`joinall`](super::joinall), or a wait of another task). Replaces `gevent.spawn(f, ...)`.
///
/// # Errors
/// Its stack cannot be mapped (past the process's memory-map limit), or the hub cannot be made
/// (epoll) or is gone (at thread exit).
pub fn spawn<T: 'static>(f: impl FnOnce() -> T + 'static) -> io::Result<Spawned<T>> {
    spawn_with_stack(DEFAULT_STACK, f)
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
    let outcome = Rc::new(Outcome {
        done: Cell::new(false),
        value: RefCell::new(None),
        panic: RefCell::new(None),
    });
    let out = outcome.clone();
    let id = with_hub(|h| {
        let id = h.next;
        h.next += 1;
        id
    })?;
    let co = Coroutine::with_stack(stack, move |y: &Yielder<Wake, Request>, _first: Wake| {
        let _ = with_hub(|h| {
            if let Some(s) = h.tasks.get_mut(&id) {
                s.yielder = y;
            }
        });
        // State rule 4. When the thread exits with the task suspended, what is caught here is
        // corosensei's own unwind; it ends here too, as corosensei allows.
        out.finish(catch_unwind(AssertUnwindSafe(f)));
    });
    run::add(id, co, guard)?;
    Ok(Spawned { outcome })
}
