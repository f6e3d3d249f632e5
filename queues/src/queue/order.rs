//! Orders: where the items live. A [`Store`] keeps the items and gives them back in its order;
//! the blocking logic above it ([`BlockingQueue`](super::BlockingQueue)) is the same for every
//! order.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;

#[cfg(not(loom))]
use crossbeam::queue::{ArrayQueue, SegQueue};

use crate::shim::{Mutex, lock};

/// Where a queue keeps its items, and in which order it gives them back. The blocking logic
/// ([`BlockingQueue`](super::BlockingQueue)) is the same for every order.
pub trait Store: Send + Sync {
    /// The item type.
    type Item;
    /// An empty store for at most `maxsize` items (0: no limit).
    fn with_maxsize(maxsize: usize) -> Self;
    /// Add an item, or hand it back if the store is full.
    fn push(&self, item: Self::Item) -> Result<(), Self::Item>;
    /// Take the next item in this store's order.
    fn pop(&self) -> Option<Self::Item>;
    /// How many items are stored.
    fn len(&self) -> usize;
    /// Whether nothing is stored.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// First in, first out: a lock-free ring when bounded (crossbeam's `ArrayQueue`, the same
/// algorithm as `crossbeam::channel::bounded`), a lock-free segmented list when unbounded.
pub struct Fifo<T> {
    #[cfg(not(loom))]
    inner: FifoInner<T>,
    #[cfg(loom)]
    inner: Mutex<std::collections::VecDeque<T>>,
    /// How many items `inner` holds, written under its lock (see the loom `Store` impl).
    #[cfg(loom)]
    len: crate::shim::AtomicUsize,
    #[cfg(loom)]
    maxsize: usize,
}

#[cfg(not(loom))]
enum FifoInner<T> {
    Bounded(ArrayQueue<T>),
    Unbounded(SegQueue<T>),
}

#[cfg(not(loom))]
impl<T: Send> Store for Fifo<T> {
    type Item = T;
    fn with_maxsize(maxsize: usize) -> Self {
        Fifo {
            inner: if maxsize == 0 {
                FifoInner::Unbounded(SegQueue::new())
            } else {
                FifoInner::Bounded(ArrayQueue::new(maxsize))
            },
        }
    }
    fn push(&self, item: T) -> Result<(), T> {
        match &self.inner {
            FifoInner::Bounded(q) => q.push(item),
            FifoInner::Unbounded(q) => {
                q.push(item);
                Ok(())
            }
        }
    }
    fn pop(&self) -> Option<T> {
        match &self.inner {
            FifoInner::Bounded(q) => q.pop(),
            FifoInner::Unbounded(q) => q.pop(),
        }
    }
    fn len(&self) -> usize {
        match &self.inner {
            FifoInner::Bounded(q) => q.len(),
            FifoInner::Unbounded(q) => q.len(),
        }
    }
}

/// Under loom the ring is replaced by a loom-visible store that is no stronger than the ring:
/// the items are kept under a loom mutex, but a pop that finds the store empty and a push that
/// finds it full decide from `len` alone (an acquire load, as the ring's stamps are), without
/// taking the mutex. So, as with the ring, a get that finds the queue empty does not
/// synchronize with a put racing it (nor a full put with a get), and the models check that
/// the blocking logic above (the fences and `books`, `parker.rs`) is what prevents a lost
/// wake-up. (A store that took its mutex on every call would order every put and get by
/// itself, and hide a missing fence from the models.)
#[cfg(loom)]
impl<T: Send> Store for Fifo<T> {
    type Item = T;
    fn with_maxsize(maxsize: usize) -> Self {
        Fifo {
            inner: Mutex::new(std::collections::VecDeque::new()),
            len: crate::shim::AtomicUsize::new(0),
            maxsize,
        }
    }
    fn push(&self, item: T) -> Result<(), T> {
        use crate::shim::Ordering::{Acquire, Release};
        if self.maxsize > 0 && self.len.load(Acquire) >= self.maxsize {
            return Err(item);
        }
        let mut q = lock(&self.inner);
        if self.maxsize > 0 && q.len() >= self.maxsize {
            return Err(item);
        }
        q.push_back(item);
        self.len.store(q.len(), Release);
        Ok(())
    }
    fn pop(&self) -> Option<T> {
        use crate::shim::Ordering::{Acquire, Release};
        if self.len.load(Acquire) == 0 {
            return None;
        }
        let mut q = lock(&self.inner);
        let item = q.pop_front();
        self.len.store(q.len(), Release);
        item
    }
    fn len(&self) -> usize {
        self.len.load(crate::shim::Ordering::Acquire)
    }
}

/// Last in, first out (a stack): a `Vec` behind a mutex (crossbeam has no LIFO).
pub struct Lifo<T> {
    items: Mutex<Vec<T>>,
    maxsize: usize,
}

impl<T: Send> Store for Lifo<T> {
    type Item = T;
    fn with_maxsize(maxsize: usize) -> Self {
        Lifo {
            items: Mutex::new(Vec::new()),
            maxsize,
        }
    }
    fn push(&self, item: T) -> Result<(), T> {
        let mut v = lock(&self.items);
        if self.maxsize > 0 && v.len() >= self.maxsize {
            return Err(item);
        }
        v.push(item);
        Ok(())
    }
    fn pop(&self) -> Option<T> {
        lock(&self.items).pop()
    }
    fn len(&self) -> usize {
        lock(&self.items).len()
    }
}

/// An item of a [`Priority`] store: ordered by the item, then by arrival, smallest first.
struct Entry<T> {
    item: T,
    seq: u64,
}

impl<T: Ord> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}
impl<T: Ord> Eq for Entry<T> {}
impl<T: Ord> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl<T: Ord> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        // BinaryHeap pops the greatest: reverse both keys so the smallest, earliest comes out.
        other
            .item
            .cmp(&self.item)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

/// Lowest first; equal items in the order they were put. A `BinaryHeap` behind a mutex.
pub struct Priority<T> {
    heap: Mutex<(BinaryHeap<Entry<T>>, u64)>,
    maxsize: usize,
}

impl<T: Ord + Send> Store for Priority<T> {
    type Item = T;
    fn with_maxsize(maxsize: usize) -> Self {
        Priority {
            heap: Mutex::new((BinaryHeap::new(), 0)),
            maxsize,
        }
    }
    fn push(&self, item: T) -> Result<(), T> {
        let mut h = lock(&self.heap);
        if self.maxsize > 0 && h.0.len() >= self.maxsize {
            return Err(item);
        }
        let seq = h.1;
        h.1 += 1;
        h.0.push(Entry { item, seq });
        Ok(())
    }
    fn pop(&self) -> Option<T> {
        lock(&self.heap).0.pop().map(|e| e.item)
    }
    fn len(&self) -> usize {
        lock(&self.heap).0.len()
    }
}

/// A priority and a payload, ordered by the priority alone: the Rust form of the seed's
/// `[priority, data]` items. Python compares the data too when priorities tie (a `TypeError`
/// for dicts); here ties come out in the order they were put.
#[derive(Debug, Clone)]
pub struct Prioritized<P, V> {
    /// Lower comes out first.
    pub priority: P,
    /// Anything; never compared.
    pub value: V,
}

impl<P, V> Prioritized<P, V> {
    /// Pair a priority with a value.
    pub fn new(priority: P, value: V) -> Self {
        Prioritized { priority, value }
    }
}

impl<P: Ord, V> PartialEq for Prioritized<P, V> {
    fn eq(&self, other: &Self) -> bool {
        self.priority == other.priority
    }
}
impl<P: Ord, V> Eq for Prioritized<P, V> {}
impl<P: Ord, V> PartialOrd for Prioritized<P, V> {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl<P: Ord, V> Ord for Prioritized<P, V> {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        self.priority.cmp(&other.priority)
    }
}
