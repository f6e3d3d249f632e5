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
//!
//! # Stack overflow
//!
//! The body runs on its own stack (1 MiB unless [`Generator::with_stack_size`] says otherwise),
//! with a guard page below it. While the body runs (in [`Generator::send`], and while a drop
//! unwinds it) the generator's guard page is marked for the crate's SIGSEGV handler, so running
//! past the end prints "generator has overflowed its stack" and aborts, as std does for a
//! thread, instead of dying with a bare "Segmentation fault".

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::rc::Rc;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult};

use crate::greenlet::{drop_payload, is_message, panic_text, report};
use crate::overflow::{self, StackMark};

/// A generator's stack when none is asked for: corosensei's default, 1 MiB.
const DEFAULT_STACK: usize = 1024 * 1024;

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
    /// The first address of the stack's guard page, marked while the body runs.
    guard: usize,
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
        self.dropping.set(true);
        // Unwind a suspended body here, with its stack marked (the coroutine's own drop, next,
        // then finds it done).
        let _running = StackMark::generator(self.guard);
        self.co.force_unwind();
    }
}

impl<S: 'static, Y: 'static> Generator<S, Y> {
    /// A generator running `body`; `body` yields with `yielder.suspend(y)`, which returns
    /// the next sent value. Its stack is 1 MiB; see [`Generator::with_stack_size`].
    ///
    /// # Panics
    /// A panic of `body` comes out of the [`Generator::send`] that ran it, as a Python
    /// generator's exception comes out of `send()`. `new` itself panics if the stack cannot
    /// be mapped (out of memory, or an address-space limit).
    pub fn new(body: impl for<'a> FnOnce(&Yielder<'a, S, Y>, S) + 'static) -> Generator<S, Y> {
        Generator::with_stack_size(DEFAULT_STACK, body)
    }

    /// [`Generator::new`] with a stack of `size` bytes (rounded up to whole pages), for a body
    /// that recurses deeper than 1 MiB allows.
    ///
    /// # Panics
    /// As [`Generator::new`].
    pub fn with_stack_size(
        size: usize,
        body: impl for<'a> FnOnce(&Yielder<'a, S, Y>, S) + 'static,
    ) -> Generator<S, Y> {
        let stack = DefaultStack::new(size)
            .unwrap_or_else(|e| panic!("cannot map a generator stack of {size} bytes: {e}"));
        overflow::install();
        let guard = overflow::guard_page(&stack);
        let dropping = Rc::new(Cell::new(false));
        let flag = dropping.clone();
        let co = Coroutine::with_stack(stack, move |y: &corosensei::Yielder<S, Y>, first: S| {
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
        Generator {
            co,
            dropping,
            guard,
        }
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
        let _running = StackMark::generator(self.guard);
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
