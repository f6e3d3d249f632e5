//! [`AsyncResult`], the handle on one task's future result, and the result-handler thread that
//! runs every completion (and so every callback) in the parent.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam::channel::Receiver;

use crate::shared::{Completion, Outcome, Shared, TaskError};

/// Where a result lands: the value, and how many threads wait for it (counted under the same
/// mutex, so the filler notifies only when someone waits: no system call per result).
pub(crate) struct Slot<O> {
    pub(crate) value: Option<Result<O, TaskError>>,
    pub(crate) waiters: usize,
}

pub(crate) type SharedSlot<O> = Arc<(Mutex<Slot<O>>, Condvar)>;

/// The handle on one task's future result. Replaces `AsyncResult`.
pub struct AsyncResult<O> {
    pub(crate) slot: SharedSlot<O>,
}

impl<O> fmt::Debug for AsyncResult<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult")
            .field("ready", &self.ready())
            .finish()
    }
}

impl<O> AsyncResult<O> {
    fn lock(&self) -> MutexGuard<'_, Slot<O>> {
        self.slot.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the result has arrived. Replaces `r.ready()`.
    pub fn ready(&self) -> bool {
        self.lock().value.is_some()
    }

    /// `Some(true)` if it arrived and succeeded. Replaces `r.successful()` (which raises if
    /// not ready).
    pub fn successful(&self) -> Option<bool> {
        self.lock().value.as_ref().map(Result::is_ok)
    }

    /// Wait at most `timeout` for the result; `true` if it is there. Replaces
    /// `r.wait(timeout)`.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut slot = self.lock();
        slot.waiters += 1;
        let arrived = loop {
            if slot.value.is_some() {
                break true;
            }
            let now = Instant::now();
            if now >= deadline {
                break false;
            }
            slot = match self.slot.1.wait_timeout(slot, deadline - now) {
                Ok((s, _)) => s,
                Err(e) => e.into_inner().0,
            };
        };
        slot.waiters -= 1;
        arrived
    }

    /// Wait for the result. Replaces `r.wait()`.
    pub fn wait(&self) {
        let mut slot = self.lock();
        slot.waiters += 1;
        while slot.value.is_none() {
            slot = self.slot.1.wait(slot).unwrap_or_else(|e| e.into_inner());
        }
        slot.waiters -= 1;
    }

    /// Wait for the result and take it. Replaces `r.get()`.
    pub fn get(self) -> Result<O, TaskError> {
        self.wait();
        self.take()
    }

    /// Wait at most `timeout`; the result, or this handle back on time-out. Replaces
    /// `r.get(timeout)` (which raises `TimeoutError`).
    pub fn get_timeout(self, timeout: Duration) -> Result<Result<O, TaskError>, AsyncResult<O>> {
        if self.wait_timeout(timeout) {
            Ok(self.take())
        } else {
            Err(self)
        }
    }

    fn take(&self) -> Result<O, TaskError> {
        self.lock()
            .value
            .take()
            .unwrap_or(Err(TaskError::Terminated))
    }
}

/// The result-handler thread: runs completions in the parent, one at a time.
pub(crate) fn result_handler<O>(shared: &Shared<O>, done: &Receiver<(u64, Outcome<O>)>) {
    for (id, outcome) in done.iter() {
        let completion = shared.pending().remove(&id);
        if let Some(complete) = completion {
            let _ = catch_unwind(AssertUnwindSafe(|| complete(outcome)));
            shared.finished_one();
        }
    }
    // Every worker thread is gone: whatever is still pending will never run.
    let left: Vec<Completion<O>> = shared.pending().drain().map(|(_, c)| c).collect();
    for complete in left {
        let _ = catch_unwind(AssertUnwindSafe(|| complete(Err(TaskError::Terminated))));
        shared.finished_one();
    }
    shared.idle.notify_all();
}
