//! [`AsyncResult`], the handle on one task's future result, and the result-handler thread that
//! runs every completion (and so every callback) in the parent.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam::channel::Receiver;

use crate::shared::{Completion, Part, Pending, Shared, TaskError};

/// Where a result lands: the value, and how many threads wait for it (counted under the same
/// mutex, so the filler notifies only when someone waits: no system call per result).
pub(crate) struct Slot<O> {
    pub(crate) value: Option<Result<O, TaskError>>,
    pub(crate) waiters: usize,
}

pub(crate) type SharedSlot<O> = Arc<(Mutex<Slot<O>>, Condvar)>;

/// Put `result` in `slot` and wake whoever waits for it.
pub(crate) fn fill<O>(slot: &SharedSlot<O>, result: Result<O, TaskError>) {
    let mut s = slot.0.lock().unwrap_or_else(|e| e.into_inner());
    s.value = Some(result);
    if s.waiters > 0 {
        slot.1.notify_all();
    }
}

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

impl<O> Pending<O> {
    /// Put `results` (of tasks `start..`) in their places; `true` once every task has one.
    fn add(&mut self, start: usize, results: Vec<Result<O, TaskError>>) -> bool {
        if self.slots.is_empty() && start == self.ordered.len() {
            if self.ordered.is_empty() {
                self.ordered = results;
            } else {
                self.ordered.extend(results);
            }
            return self.ordered.len() >= self.total;
        }
        if self.slots.is_empty() {
            self.slots = (0..self.total).map(|_| None).collect();
            self.filled = self.ordered.len();
            for (slot, r) in self.slots.iter_mut().zip(self.ordered.drain(..)) {
                *slot = Some(r);
            }
        }
        for (i, r) in results.into_iter().enumerate() {
            if let Some(slot) = self.slots.get_mut(start + i) {
                debug_assert!(slot.is_none(), "a second result for one task");
                if slot.is_none() {
                    self.filled += 1;
                }
                *slot = Some(r);
            }
        }
        self.filled == self.total
    }

    /// The results in task order; a task with none (the pool stopped) is `Terminated`.
    fn results(self) -> (Completion<O>, Vec<Result<O, TaskError>>) {
        let results = if self.slots.is_empty() {
            let mut ordered = self.ordered;
            ordered.extend((ordered.len()..self.total).map(|_| Err(TaskError::Terminated)));
            ordered
        } else {
            self.slots
                .into_iter()
                .map(|r| r.unwrap_or(Err(TaskError::Terminated)))
                .collect()
        };
        (self.complete, results)
    }
}

/// The result-handler thread: assembles each job's results from the parts the drivers send,
/// and runs its completion in the parent, one at a time.
pub(crate) fn result_handler<O>(shared: &Shared<O>, done: &Receiver<Part<O>>) {
    for Part { id, start, results } in done.iter() {
        let ready = {
            let mut pending = shared.pending();
            match pending.entry(id) {
                Entry::Occupied(mut p) => {
                    if p.get_mut().add(start, results) {
                        Some(p.remove().results())
                    } else {
                        None
                    }
                }
                Entry::Vacant(_) => None,
            }
        };
        if let Some((complete, results)) = ready {
            run_completion(shared, complete, results);
        }
    }
    // Every worker thread is gone: whatever is still pending will never run.
    let left: Vec<Pending<O>> = shared.pending().drain().map(|(_, p)| p).collect();
    for p in left {
        let (complete, results) = p.results();
        run_completion(shared, complete, results);
    }
    shared.idle.notify_all();
}

/// Run a job's completion: its callbacks, which may panic. A panic is caught, counted and kept
/// (`Pool::callback_panics`), and the pool goes on: Python's result-handler thread dies of an
/// exception in a callback, and `pool.join()` then waits forever.
fn run_completion<O>(
    shared: &Shared<O>,
    complete: Completion<O>,
    results: Vec<Result<O, TaskError>>,
) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| complete(results))) {
        shared.callback_panicked(lesson::panic_message(&*payload));
    }
    shared.finished_one();
}

/// Where a `map`'s chunks report: (chunk index, its results).
pub(crate) type ChunkResults<O> = Receiver<(usize, Vec<Result<O, TaskError>>)>;

/// `imap`'s iterator: the chunks' results in chunk order (a reorder buffer holds early ones),
/// one per task; if the pool went away, one `Terminated` per task missing.
pub(crate) struct InOrder<O> {
    sizes: Vec<usize>,
    rx: ChunkResults<O>,
    early: HashMap<usize, Vec<Result<O, TaskError>>>,
    next: usize,
    current: std::vec::IntoIter<Result<O, TaskError>>,
}

pub(crate) fn in_order<O>(sizes: Vec<usize>, rx: ChunkResults<O>) -> InOrder<O> {
    InOrder {
        sizes,
        rx,
        early: HashMap::new(),
        next: 0,
        current: Vec::new().into_iter(),
    }
}

impl<O> InOrder<O> {
    /// How many tasks in all.
    pub(crate) fn total(&self) -> usize {
        self.sizes.iter().sum()
    }

    /// The next chunk's results (waiting for them), `None` after the last.
    pub(crate) fn next_chunk(&mut self) -> Option<Vec<Result<O, TaskError>>> {
        if self.next == self.sizes.len() {
            return None;
        }
        let results = match self.early.remove(&self.next) {
            Some(r) => r,
            None => loop {
                match self.rx.recv() {
                    Ok((i, r)) if i == self.next => break r,
                    Ok((i, r)) => {
                        self.early.insert(i, r);
                    }
                    Err(_) => {
                        break (0..self.sizes[self.next])
                            .map(|_| Err(TaskError::Terminated))
                            .collect();
                    }
                }
            },
        };
        self.next += 1;
        Some(results)
    }
}

impl<O> Iterator for InOrder<O> {
    type Item = Result<O, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(r) = self.current.next() {
                return Some(r);
            }
            self.current = self.next_chunk()?.into_iter();
        }
    }
}

/// `imap_unordered`'s iterator: the chunks' results as they finish, one per task.
pub(crate) fn as_finished<O>(
    sizes: Vec<usize>,
    rx: ChunkResults<O>,
) -> impl Iterator<Item = Result<O, TaskError>> {
    let mut seen = vec![false; sizes.len()];
    let mut left = sizes.len();
    let mut current: VecDeque<Result<O, TaskError>> = VecDeque::new();
    std::iter::from_fn(move || {
        loop {
            if let Some(r) = current.pop_front() {
                return Some(r);
            }
            if left == 0 {
                return None;
            }
            left -= 1;
            match rx.recv() {
                Ok((i, results)) => {
                    seen[i] = true;
                    current.extend(results);
                }
                Err(_) => {
                    // Only if the pool went away: one error per task not seen.
                    let missing: usize = (0..sizes.len())
                        .filter(|&i| !seen[i])
                        .map(|i| sizes[i])
                        .sum();
                    seen.iter_mut().for_each(|s| *s = true);
                    left = 0;
                    current.extend((0..missing).map(|_| Err(TaskError::Terminated)));
                }
            }
        }
    })
}
