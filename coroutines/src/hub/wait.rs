//! Waiting for a condition that another task makes true (an item in a queue, a free slot in a
//! pool): the waiting task parks on a [`Waiters`] list and is woken by whoever changes the
//! condition; code outside any task runs the hub in place until the condition holds, as the
//! other hub waits do.
//!
//! A woken task checks the condition again (another may have been quicker) and parks again if
//! it does not hold. A task that leaves a wait without taking what it was woken for (its
//! time-out passed, it was killed) passes the wake-up on to the next waiter, so none is lost.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::time::Instant;

use super::run::{self, Wait};
use super::{Ctx, refuse_while_panicking, timed_out, wait_within, where_am_i};

/// Tasks parked on one condition, first come, first woken.
#[derive(Default)]
pub(super) struct Waiters(RefCell<VecDeque<u64>>);

impl Waiters {
    /// Wake the first waiter that is still parked. Whether there was one.
    pub(super) fn wake_one(&self) -> bool {
        loop {
            let Some(id) = self.0.borrow_mut().pop_front() else {
                return false;
            };
            if run::unpark(id) {
                return true;
            }
        }
    }

    /// Wake every waiter.
    pub(super) fn wake_all(&self) {
        while self.wake_one() {}
    }

    /// How many tasks are parked here.
    pub(super) fn len(&self) -> usize {
        self.0.borrow().len()
    }

    fn remove(&self, id: u64) {
        self.0.borrow_mut().retain(|&w| w != id);
    }
}

/// Why a wait for a condition ended without it.
#[derive(Debug)]
pub(super) enum Missed {
    /// The wait's own deadline passed (a `timeout` argument: gevent's `Empty` or `Full`).
    Deadline,
    /// The hub wait failed: the deadline of a [`timeout`](super::timeout) block around it
    /// (`TimedOut`), nothing could run any more (`Deadlock`, gevent's `LoopExit`), a panic
    /// unwinds, or there is no hub.
    Hub(io::Error),
}

/// Leaves the waiters list on every way out of a parked wait; passes the wake-up on if it
/// leaves without taking what it was woken for.
struct Leave<'a> {
    waiters: &'a Waiters,
    id: u64,
    ready: &'a dyn Fn() -> bool,
    taking: bool,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.waiters.remove(self.id);
        if !self.taking && (self.ready)() {
            self.waiters.wake_one();
        }
    }
}

/// Wait until `ready()` holds: parked on `waiters` in a task's own code, running the hub in
/// place outside one. `own` is the wait's own deadline; the deadline of a `timeout` block
/// around it applies too.
pub(super) fn wait_for(
    ready: &dyn Fn() -> bool,
    waiters: &Waiters,
    own: Option<Instant>,
) -> Result<(), Missed> {
    refuse_while_panicking().map_err(Missed::Hub)?;
    if ready() {
        return Ok(());
    }
    loop {
        let here = where_am_i().map_err(Missed::Hub)?;
        let block = here.deadline.as_ref().map(|d| d.at);
        let dl = match (own, block) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // Which deadline a time-out belongs to: the wait's own when it is the earlier (or the
        // same), else the block's, whose flag tells the block.
        let missed = |e: io::Error| {
            if own.is_some_and(|o| block.is_none_or(|b| o <= b)) {
                Missed::Deadline
            } else {
                if let Some(d) = &here.deadline {
                    d.fired.set(true);
                }
                Missed::Hub(e)
            }
        };
        match here.ctx {
            Ctx::Task(id) => {
                waiters.0.borrow_mut().push_back(id);
                let mut leave = Leave {
                    waiters,
                    id,
                    ready,
                    taking: false,
                };
                match wait_within(&here, Wait::Parked, dl) {
                    Ok(()) if ready() => {
                        leave.taking = true;
                        return Ok(());
                    }
                    // Another was quicker: park again, at the back.
                    Ok(()) => continue,
                    Err(e) if e.kind() == io::ErrorKind::TimedOut => return Err(missed(e)),
                    Err(e) => return Err(Missed::Hub(e)),
                }
            }
            Ctx::Outside(_) => {
                run::run_until(ready, dl);
                if ready() {
                    return Ok(());
                }
                if dl.is_some_and(|d| Instant::now() >= d) {
                    return Err(missed(timed_out()));
                }
                return Err(Missed::Hub(io::Error::new(
                    io::ErrorKind::Deadlock,
                    "no task can run any more, and none will make this wait's condition \
                     true (gevent's LoopExit)",
                )));
            }
        }
    }
}
