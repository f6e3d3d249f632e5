//! [`Generator`]: Python's `yield` / `send()` on a corosensei coroutine.

use corosensei::{Coroutine, CoroutineResult, Yielder};

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
///     loop {
///         total += y.suspend(total);      // yield total; receive the next number
///     }
/// });
/// assert_eq!(running_total.send(1), Some(1));
/// assert_eq!(running_total.send(2), Some(3));
/// assert_eq!(running_total.send(3), Some(6));
/// ```
pub struct Generator<S, Y> {
    co: Coroutine<S, Y, ()>,
}

impl<S, Y> std::fmt::Debug for Generator<S, Y> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator")
            .field("done", &self.co.done())
            .finish()
    }
}

impl<S: 'static, Y: 'static> Generator<S, Y> {
    /// A generator running `body`; `body` yields with `yielder.suspend(y)`, which returns
    /// the next sent value.
    pub fn new(body: impl FnOnce(&Yielder<S, Y>, S) + 'static) -> Generator<S, Y> {
        Generator {
            co: Coroutine::new(body),
        }
    }

    /// Send a value in; the next yielded value, or `None` once the body has returned (Python
    /// raises `StopIteration`). Sending to a finished generator is `None` too.
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
