//! `as_completed` and `wait` over futures: Python's `concurrent.futures.as_completed` and
//! `concurrent.futures.wait`.
//!
//! Both take each future's lock once, to see whether it is already completed or else to
//! install a [`Waiter`] on it (so no completion is missed between the two), and take the
//! waiter off every future they still watch when they are done, as Python's do.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::future::Future;

/// What completed futures tell a `wait` or an `as_completed` watching them.
pub(crate) struct Waiter {
    state: Mutex<Heard>,
    cond: Condvar,
}

#[derive(Default)]
struct Heard {
    /// Indexes of the futures completed since the watcher last looked.
    completed: Vec<usize>,
    /// One of them raised.
    raised: bool,
    /// The watcher sleeps: wake it.
    asleep: bool,
}

impl Waiter {
    fn new() -> Arc<Waiter> {
        Arc::new(Waiter {
            state: Mutex::new(Heard::default()),
            cond: Condvar::new(),
        })
    }

    /// Future `index` completed (`raised`: with an exception).
    pub(crate) fn notify(&self, index: usize, raised: bool) {
        let mut h = self.state.lock().unwrap_or_else(|e| e.into_inner());
        h.completed.push(index);
        h.raised |= raised;
        if h.asleep {
            self.cond.notify_one();
        }
    }

    /// Take what was heard, waiting until something is or `deadline` passes (`ready` says
    /// whether what is there is enough to stop waiting).
    fn take(
        &self,
        into: &mut Vec<usize>,
        deadline: Option<Instant>,
        ready: impl Fn(&[usize], bool) -> bool,
    ) -> bool {
        let mut h = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if ready(&h.completed, h.raised) {
                into.append(&mut h.completed);
                return std::mem::take(&mut h.raised);
            }
            let wait = match deadline {
                None => None,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => {
                        into.append(&mut h.completed);
                        return std::mem::take(&mut h.raised);
                    }
                },
            };
            h.asleep = true;
            h = match wait {
                None => self.cond.wait(h).unwrap_or_else(|e| e.into_inner()),
                Some(left) => match self.cond.wait_timeout(h, left) {
                    Ok((g, _)) => g,
                    Err(e) => e.into_inner().0,
                },
            };
            h.asleep = false;
        }
    }
}

/// The futures given, once each (a future given twice is one future, as in Python's sets).
fn distinct<T>(fs: impl IntoIterator<Item = Future<T>>) -> Vec<Future<T>> {
    let mut seen = HashSet::new();
    fs.into_iter().filter(|f| seen.insert(f.addr())).collect()
}

/// `as_completed` gave up: Python's `TimeoutError('N (of M) futures unfinished')`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsCompletedTimeout {
    /// Futures not yet given.
    pub unfinished: usize,
    /// Futures in all (each counted once).
    pub total: usize,
}

impl fmt::Display for AsCompletedTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (of {}) futures unfinished",
            self.unfinished, self.total
        )
    }
}

impl std::error::Error for AsCompletedTimeout {}

/// The futures as they complete: those done already first, then each as it completes. After a
/// time-out it gives one `Err` and ends. Made by [`as_completed`].
pub struct AsCompleted<T> {
    /// The futures not given yet (`None` once given: the iterator keeps no reference to a
    /// future it gave, as Python's does not).
    futures: Vec<Option<Future<T>>>,
    ready: VecDeque<usize>,
    heard: Vec<usize>,
    waiter: Arc<Waiter>,
    deadline: Option<Instant>,
    left: usize,
    total: usize,
    ended: bool,
}

/// Iterate over `futures` as they complete (finish, or are cancelled and notified). Python's
/// `as_completed(fs, timeout)`: a future given twice comes once; `timeout` bounds the whole
/// iteration, counted from this call.
pub fn as_completed<T>(
    futures: impl IntoIterator<Item = Future<T>>,
    timeout: Option<Duration>,
) -> AsCompleted<T> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let futures = distinct(futures);
    let waiter = Waiter::new();
    let mut ready = VecDeque::new();
    for (i, f) in futures.iter().enumerate() {
        if f.completed_or_watch(&waiter, i).is_some() {
            ready.push_back(i);
        }
    }
    let total = futures.len();
    AsCompleted {
        futures: futures.into_iter().map(Some).collect(),
        ready,
        heard: Vec::new(),
        waiter,
        deadline,
        left: total,
        total,
        ended: false,
    }
}

impl<T> Iterator for AsCompleted<T> {
    type Item = Result<Future<T>, AsCompletedTimeout>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.ended || self.left == 0 {
                return None;
            }
            while let Some(i) = self.ready.pop_front() {
                // A future here was completed when looked at, or has told the waiter (and let
                // go of it) since: nothing to take off.
                if let Some(f) = self.futures.get_mut(i).and_then(Option::take) {
                    self.left -= 1;
                    return Some(Ok(f));
                }
            }
            self.waiter
                .take(&mut self.heard, self.deadline, |c, _| !c.is_empty());
            if self.heard.is_empty() {
                self.ended = true;
                return Some(Err(AsCompletedTimeout {
                    unfinished: self.left,
                    total: self.total,
                }));
            }
            self.ready.extend(self.heard.drain(..));
        }
    }
}

impl<T> Drop for AsCompleted<T> {
    fn drop(&mut self) {
        for f in self.futures.iter().flatten() {
            f.unwatch(&self.waiter);
        }
    }
}

/// When [`wait`] returns. Python's `FIRST_COMPLETED`, `FIRST_EXCEPTION`, `ALL_COMPLETED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnWhen {
    /// As soon as one future completes (or is cancelled and notified).
    FirstCompleted,
    /// As soon as one future finishes with an exception; else when all complete.
    FirstException,
    /// When every future has completed.
    AllCompleted,
}

/// Python's `FIRST_COMPLETED`.
pub const FIRST_COMPLETED: ReturnWhen = ReturnWhen::FirstCompleted;
/// Python's `FIRST_EXCEPTION`.
pub const FIRST_EXCEPTION: ReturnWhen = ReturnWhen::FirstException;
/// Python's `ALL_COMPLETED`.
pub const ALL_COMPLETED: ReturnWhen = ReturnWhen::AllCompleted;

/// What [`wait`] returns: Python's `DoneAndNotDoneFutures(done, not_done)`, each future once,
/// in the order given.
#[derive(Debug)]
pub struct DoneAndNotDone<T> {
    /// Completed: finished, or cancelled and notified.
    pub done: Vec<Future<T>>,
    /// The rest.
    pub not_done: Vec<Future<T>>,
}

/// Wait until `return_when` holds for `futures`, or `timeout` passes. Python's
/// `wait(fs, timeout, return_when)`.
pub fn wait<T>(
    futures: impl IntoIterator<Item = Future<T>>,
    timeout: Option<Duration>,
    return_when: ReturnWhen,
) -> DoneAndNotDone<T> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let futures = distinct(futures);
    let waiter = Waiter::new();
    let mut done = vec![false; futures.len()];
    let mut count = 0;
    let mut raised = false;
    for (i, f) in futures.iter().enumerate() {
        if let Some(r) = f.completed_or_watch(&waiter, i) {
            done[i] = true;
            count += 1;
            raised |= r;
        }
    }
    let total = futures.len();
    let enough = |count: usize, raised: bool| match return_when {
        _ if count == total => true,
        ReturnWhen::FirstCompleted => count > 0,
        ReturnWhen::FirstException => raised,
        ReturnWhen::AllCompleted => false,
    };
    let mut heard = Vec::new();
    while !enough(count, raised) {
        let before = count;
        let r = waiter.take(&mut heard, deadline, |c, r| {
            enough(count + c.len(), raised || r)
        });
        raised |= r;
        for i in heard.drain(..) {
            if !done[i] {
                done[i] = true;
                count += 1;
            }
        }
        if count == before && deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
    }
    for f in &futures {
        f.unwatch(&waiter);
    }
    let (mut d, mut n) = (Vec::new(), Vec::new());
    for (f, is_done) in futures.into_iter().zip(done) {
        // A future that completed after the last look is done too (Python reads the waiter
        // once more the same way).
        if is_done || f.state().completed() {
            d.push(f);
        } else {
            n.push(f);
        }
    }
    DoneAndNotDone {
        done: d,
        not_done: n,
    }
}
