//! [`TextbookQueue`]: the queue every course writes first — a mutex, a `VecDeque` and two
//! condition variables, notified on every operation. Correct, and kept here as the lesson's
//! first step and the benchmark's baseline: see `cargo bench -p queues` for what it costs
//! against [`Queue`](crate::Queue) and crossbeam's channel.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};

/// A bounded FIFO queue on `Mutex<VecDeque<T>>` + `not_empty` / `not_full` condvars.
///
/// ```
/// let q = queues::TextbookQueue::new(2);
/// q.put(1);
/// q.put(2);
/// assert_eq!(q.get(), 1);
/// ```
#[derive(Debug)]
pub struct TextbookQueue<T> {
    items: Mutex<VecDeque<T>>,
    maxsize: usize,
    not_empty: Condvar,
    not_full: Condvar,
}

impl<T> TextbookQueue<T> {
    /// A queue for at most `maxsize` items (at least 1).
    pub fn new(maxsize: usize) -> Self {
        TextbookQueue {
            items: Mutex::new(VecDeque::with_capacity(maxsize.max(1))),
            maxsize: maxsize.max(1),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<T>> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait for room, add the item, wake a getter.
    pub fn put(&self, item: T) {
        let mut q = self
            .not_full
            .wait_while(self.lock(), |q| q.len() >= self.maxsize)
            .unwrap_or_else(|e| e.into_inner());
        q.push_back(item);
        // Every put notifies, whether anyone waits or not: a system call each time.
        self.not_empty.notify_one();
    }

    /// Wait for an item, take it, wake a putter.
    pub fn get(&self) -> T {
        let mut q = self
            .not_empty
            .wait_while(self.lock(), |q| q.is_empty())
            .unwrap_or_else(|e| e.into_inner());
        let item = q.pop_front();
        self.not_full.notify_one();
        match item {
            Some(item) => item,
            None => unreachable!("wait_while returned with an empty queue"),
        }
    }
}
