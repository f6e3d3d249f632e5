//! [`EventLoop`]: event-driven programming (the seed's 驱动事件) in its plainest form, a loop
//! that waits for events and runs the callback registered for each, one at a time: asyncio's
//! `loop.call_soon`, `call_later`, `add_reader` and `run_forever`, on a
//! [`DefaultSelector`].
//!
//! It is what the next lessons build on: the selector is select / poll / epoll; the hub is
//! this loop with each callback written as a task that waits in the middle of its code.
//!
//! ```
//! use std::cell::RefCell;
//! use std::rc::Rc;
//! use std::time::Duration;
//! use coroutines::events::EventLoop;
//!
//! let order = Rc::new(RefCell::new(Vec::new()));
//! let mut ev = EventLoop::new()?;
//! let (a, b) = (order.clone(), order.clone());
//! ev.call_later(Duration::from_millis(5), move |_| a.borrow_mut().push("later"));
//! ev.call_soon(move |_| b.borrow_mut().push("soon"));
//! ev.run()?; // until nothing is left to wait for
//! assert_eq!(*order.borrow(), ["soon", "later"]);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::io;
use std::os::fd::{BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use crate::selectors::{DefaultSelector, Events, Selector, SelectorError};

/// A callback run once.
type Once = Box<dyn FnOnce(&mut EventLoop)>;
/// A reader's callback, run each time its descriptor is readable (taken out while it runs).
type Reader = Option<Box<dyn FnMut(&mut EventLoop)>>;

/// A timer: when, a sequence number (ties keep their order), what.
struct Timer(Instant, u64, Once);

impl PartialEq for Timer {
    fn eq(&self, other: &Timer) -> bool {
        (self.0, self.1) == (other.0, other.1)
    }
}
impl Eq for Timer {}
impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Timer) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timer {
    fn cmp(&self, other: &Timer) -> std::cmp::Ordering {
        (self.0, self.1).cmp(&(other.0, other.1))
    }
}

/// An event loop: callbacks for events (a descriptor readable, a time reached, "now"), run one
/// at a time, in the order their events come. Replaces the core of `asyncio`'s event loop.
pub struct EventLoop {
    sel: DefaultSelector<Reader>,
    soon: VecDeque<Once>,
    timers: BinaryHeap<Reverse<Timer>>,
    seq: u64,
    stopped: bool,
    waits: usize,
    ready: Vec<(RawFd, Events)>,
}

impl fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLoop")
            .field("readers", &self.sel.get_map().len())
            .field("soon", &self.soon.len())
            .field("timers", &self.timers.len())
            .field("waits", &self.waits)
            .finish()
    }
}

impl EventLoop {
    /// A new loop, with nothing to do.
    ///
    /// # Errors
    /// If its selector (epoll) cannot be made.
    pub fn new() -> io::Result<EventLoop> {
        Ok(EventLoop {
            sel: DefaultSelector::new()?,
            soon: VecDeque::new(),
            timers: BinaryHeap::new(),
            seq: 0,
            stopped: false,
            waits: 0,
            ready: Vec::new(),
        })
    }

    /// Run `f` at the loop's next turn. `loop.call_soon(f)`.
    pub fn call_soon(&mut self, f: impl FnOnce(&mut EventLoop) + 'static) {
        self.soon.push_back(Box::new(f));
    }

    /// Run `f` once `delay` has passed. `loop.call_later(delay, f)`.
    pub fn call_later(&mut self, delay: Duration, f: impl FnOnce(&mut EventLoop) + 'static) {
        self.seq += 1;
        self.timers.push(Reverse(Timer(
            Instant::now() + delay,
            self.seq,
            Box::new(f),
        )));
    }

    /// Run `f` each time `fd` is readable, until [`remove_reader`](EventLoop::remove_reader).
    /// `loop.add_reader(fd, f)`. The loop does not own `fd`: remove the reader before closing
    /// it.
    ///
    /// # Errors
    /// As [`Selector::register`] (for example, `fd` has a reader already).
    pub fn add_reader(
        &mut self,
        fd: BorrowedFd<'_>,
        f: impl FnMut(&mut EventLoop) + 'static,
    ) -> Result<(), SelectorError> {
        self.sel.register(fd, Events::READ, Some(Box::new(f)))?;
        Ok(())
    }

    /// Stop running `fd`'s reader. `loop.remove_reader(fd)`. Whether it had one.
    pub fn remove_reader(&mut self, fd: RawFd) -> bool {
        self.sel.unregister(fd).is_ok()
    }

    /// Make [`run`](EventLoop::run) return after the callback running now. `loop.stop()`.
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    /// How many times the loop has waited for an event so far (each wait ends because an
    /// event came or a timer is due: a loop that waits does not spin).
    pub fn waits(&self) -> usize {
        self.waits
    }

    /// Run callbacks as their events come, until [`stop`](EventLoop::stop) is called or
    /// nothing is left to wait for (no reader, no timer, nothing to run soon).
    /// `loop.run_forever()`.
    ///
    /// # Errors
    /// If the selector's wait fails.
    pub fn run(&mut self) -> io::Result<()> {
        self.stopped = false;
        while !self.stopped {
            if let Some(f) = self.soon.pop_front() {
                f(self);
                continue;
            }
            let now = Instant::now();
            if let Some(Reverse(Timer(at, ..))) = self.timers.peek()
                && *at <= now
            {
                if let Some(Reverse(Timer(_, _, f))) = self.timers.pop() {
                    f(self);
                }
                continue;
            }
            if self.sel.get_map().is_empty() && self.timers.is_empty() {
                return Ok(());
            }
            let timeout = self
                .timers
                .peek()
                .map(|Reverse(Timer(at, ..))| at.saturating_duration_since(now));
            let mut ready = std::mem::take(&mut self.ready);
            self.sel.select_into(timeout, &mut ready)?;
            self.waits += 1;
            for &(fd, _) in &ready {
                self.dispatch(fd);
            }
            self.ready = ready;
        }
        Ok(())
    }

    /// Run `fd`'s reader, if it still has one (an earlier callback may have removed it).
    fn dispatch(&mut self, fd: RawFd) {
        let Some(mut f) = self.sel.get_key_mut(fd).and_then(|k| k.data.take()) else {
            return;
        };
        f(self);
        // Put it back, unless the callback removed the reader (or replaced it).
        if let Some(key) = self.sel.get_key_mut(fd)
            && key.data.is_none()
        {
            key.data = Some(f);
        }
    }
}
