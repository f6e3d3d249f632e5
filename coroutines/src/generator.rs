//! [`Generator`]: Python's `yield` / `send()` on a corosensei coroutine.
//!
//! # Ownership and unwinding
//!
//! The generator owns its coroutine (its stack and the body's frames). Dropping a generator
//! that is suspended inside its body unwinds the body's stack (corosensei drops the coroutine),
//! so the body's destructors run, as Python closes a generator with `GeneratorExit`. Two things
//! would abort the process there, and cannot happen:
//! - a suspension from a destructor during that unwind, or during a panic of the body (the
//!   panic count is the thread's: a suspended half-unwound stack would leave the caller
//!   "panicking", and unwinding it later starts a second unwind inside a destructor):
//!   [`Yielder::suspend`] returns `None` there instead of suspending;
//! - a panic that the body raises while it is unwound for the drop (say, after catching the
//!   unwind): it is reported on stderr and the drop completes.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::rc::Rc;

use corosensei::{Coroutine, CoroutineResult};

use crate::greenlet::{drop_payload, is_message, panic_text, report};

/// A coroutine that receives `S` from each [`Generator::send`] and yields `Y` back.
/// Replaces a Python generator driven with `send()`.
///
/// Python must prime a generator with `next()` (or `send(None)`) before it can receive a
/// value; here the first `send` starts it and its value is the body's argument.
///
/// ```
/// use coroutines::Generator;
///
/// let mut running_total = Generator::new(|y, first: i32| {
///     let mut total = first;
///     // yield total; receive the next number (None: the generator is being dropped)
///     while let Some(n) = y.suspend(total) {
///         total += n;
///     }
/// });
/// assert_eq!(running_total.send(1), Some(1));
/// assert_eq!(running_total.send(2), Some(3));
/// assert_eq!(running_total.send(3), Some(6));
/// ```
///
/// # Dropping
///
/// Dropping it while its body is suspended unwinds the body's stack: see the module doc.
pub struct Generator<S, Y> {
    co: Coroutine<S, Y, ()>,
    /// Set when the generator is dropped, before its stack is unwound.
    dropping: Rc<Cell<bool>>,
}

/// What a generator's body yields with (corosensei's `Yielder`, guarded).
pub struct Yielder<'a, S, Y> {
    inner: &'a corosensei::Yielder<S, Y>,
    dropping: &'a Cell<bool>,
}

impl<S, Y> Yielder<'_, S, Y> {
    /// Yield `y` to the caller of [`Generator::send`], and wait for the next `send`: its value.
    /// Python's `x = yield y`.
    ///
    /// `None` when the generator cannot suspend, and the body should return: it is being
    /// dropped (this runs in a destructor while its stack is unwound), or a panic is unwinding
    /// on this thread.
    pub fn suspend(&self, y: Y) -> Option<S> {
        if self.dropping.get() || std::thread::panicking() {
            return None;
        }
        Some(self.inner.suspend(y))
    }
}

impl<S, Y> std::fmt::Debug for Generator<S, Y> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator")
            .field("done", &self.co.done())
            .finish()
    }
}

impl<S, Y> Drop for Generator<S, Y> {
    fn drop(&mut self) {
        // The coroutine (a field) is dropped next, which unwinds a suspended body.
        self.dropping.set(true);
    }
}

impl<S: 'static, Y: 'static> Generator<S, Y> {
    /// A generator running `body`; `body` yields with `yielder.suspend(y)`, which returns
    /// the next sent value.
    ///
    /// # Panics
    /// A panic of `body` comes out of the [`Generator::send`] that ran it, as a Python
    /// generator's exception comes out of `send()`.
    pub fn new(body: impl for<'a> FnOnce(&Yielder<'a, S, Y>, S) + 'static) -> Generator<S, Y> {
        let dropping = Rc::new(Cell::new(false));
        let flag = dropping.clone();
        let co = Coroutine::new(move |y: &corosensei::Yielder<S, Y>, first: S| {
            let yielder = Yielder {
                inner: y,
                dropping: &flag,
            };
            let Err(payload) = catch_unwind(AssertUnwindSafe(|| body(&yielder, first))) else {
                return;
            };
            if !flag.get() {
                resume_unwind(payload); // the body's own panic: out of `send`
            }
            // Being dropped: corosensei's unwind, or a panic raised during it, ends here; a
            // normal return ends the coroutine, as corosensei allows.
            if is_message(&*payload) {
                report(&format!(
                    "a panic while a dropped generator's stack was unwound was discarded: {}",
                    panic_text(&*payload)
                ));
            }
            drop_payload(payload);
        });
        Generator { co, dropping }
    }

    /// Send a value in; the next yielded value, or `None` once the body has returned (Python
    /// raises `StopIteration`). Sending to a finished generator is `None` too.
    ///
    /// # Panics
    /// If the body panics: the panic goes on from here.
    pub fn send(&mut self, value: S) -> Option<Y> {
        if self.co.done() {
            return None;
        }
        match self.co.resume(value) {
            CoroutineResult::Yield(y) => Some(y),
            CoroutineResult::Return(()) => None,
        }
    }

    /// Whether the body has returned.
    pub fn done(&self) -> bool {
        self.co.done()
    }
}
