//! [`Latch`]: a count-down whose wait has a deadline, for lessons whose printed order must hold
//! on a busy machine too.

use std::sync::{Condvar, Mutex};
use std::time::Instant;

use crate::{Activity, Cx};

/// A count-down latch: [`Latch::wait`] returns once [`Latch::count_down`] has been called as
/// many times as the latch was made for. The lessons use it so that an ordering they print
/// (main says "ending" before a thread is done) holds by construction, not because a sleep was
/// long enough on the day: a loaded machine can delay any thread for longer than a scaled
/// sleep. The wait has a deadline, so a lesson whose other side failed does not hang.
#[derive(Debug)]
pub struct Latch {
    left: Mutex<usize>,
    opened: Condvar,
}

impl Latch {
    /// A latch that opens after `n` calls of [`Latch::count_down`] (at once if `n` is 0).
    pub fn new(n: usize) -> Latch {
        Latch {
            left: Mutex::new(n),
            opened: Condvar::new(),
        }
    }

    /// One of the awaited events happened.
    pub fn count_down(&self) {
        let mut left = self.left.lock().unwrap_or_else(|e| e.into_inner());
        *left = left.saturating_sub(1);
        if *left == 0 {
            self.opened.notify_all();
        }
    }

    /// Whether every awaited event has happened.
    fn is_open(&self) -> bool {
        *self.left.lock().unwrap_or_else(|e| e.into_inner()) == 0
    }

    /// Wait until the latch is open, at most [`Cx::long_wait`] (a lesson whose other side
    /// failed goes on instead of hanging, and its own checks then fail). If it has to wait, the
    /// wait is a span on the timeline (`what`).
    pub fn wait(&self, cx: &Cx, what: &str) {
        if self.is_open() {
            return;
        }
        let _waiting = cx.span(Activity::Wait, what);
        let deadline = Instant::now() + cx.long_wait();
        let mut left = self.left.lock().unwrap_or_else(|e| e.into_inner());
        while *left > 0 {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            left = match self.opened.wait_timeout(left, deadline - now) {
                Ok((guard, _)) => guard,
                Err(e) => e.into_inner().0,
            };
        }
    }
}
