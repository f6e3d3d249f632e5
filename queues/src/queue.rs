//! The blocking queue: one implementation of the waiting, counting and shutting down, shared by
//! three orders ([`Queue`], [`LifoQueue`], [`PriorityQueue`]).

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::fmt;
use std::time::{Duration, Instant};

#[cfg(not(loom))]
use crossbeam::queue::{ArrayQueue, SegQueue};
#[cfg(not(loom))]
use crossbeam::utils::{Backoff, CachePadded};

use crate::shim::{AtomicBool, AtomicUsize, Condvar, Mutex, Ordering, fence, lock};

#[cfg(loom)]
#[derive(Debug, Default)]
struct CachePadded<T>(T);
#[cfg(loom)]
impl<T> CachePadded<T> {
    fn new(t: T) -> Self {
        CachePadded(t)
    }
}
#[cfg(loom)]
impl<T> std::ops::Deref for CachePadded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

// ---------------------------------------------------------------------------------------------
// Errors: Python's queue.Full, queue.Empty, queue.ShutDown and the ValueError of task_done().

/// Why an item could not be put; the item comes back. Python raises `queue.Full` or
/// `queue.ShutDown` and the item is lost with the exception.
#[derive(PartialEq, Eq)]
pub enum PutError<T> {
    /// The queue stayed full: `try_put` found it full, or `put_timeout` timed out.
    Full(T),
    /// The queue was shut down.
    ShutDown(T),
}

impl<T> PutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            PutError::Full(t) | PutError::ShutDown(t) => t,
        }
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("Full(..)"),
            PutError::ShutDown(_) => f.write_str("ShutDown(..)"),
        }
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("the queue is full"),
            PutError::ShutDown(_) => f.write_str("the queue is shut down"),
        }
    }
}

impl<T> std::error::Error for PutError<T> {}

/// Why nothing could be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetError {
    /// The queue stayed empty: `try_get` found it empty, or `get_timeout` timed out
    /// (`queue.Empty`).
    Empty,
    /// The queue was shut down and nothing is left in it (`queue.ShutDown`).
    ShutDown,
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetError::Empty => f.write_str("the queue is empty"),
            GetError::ShutDown => f.write_str("the queue is shut down and drained"),
        }
    }
}

impl std::error::Error for GetError {}

/// `task_done()` called more times than items were put (Python's `ValueError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyTaskDone;

impl fmt::Display for TooManyTaskDone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task_done() called more times than items were put")
    }
}

impl std::error::Error for TooManyTaskDone {}

// ---------------------------------------------------------------------------------------------
// Parking: where threads wait, and the rule that makes waking them cheap.

/// Threads that wait for one condition (not empty, not full, all done).
///
/// The rule: a waiter first spins briefly (most waits on a busy queue are short), then counts
/// itself in `sleepers`, then issues a SeqCst fence, then tries once more before it sleeps.
/// A thread that changes the condition does its change, then a SeqCst fence, then reads
/// `sleepers`, and takes the lock to notify only if it is not zero. Between two SeqCst fences
/// one comes first: either the waiter's last try sees the change, or the changer sees the
/// waiter and wakes it. So the common case (nobody asleep) costs a fence and a load, not a
/// lock and a system call, and no wake-up is lost. (The waiter counts itself while holding
/// `lock` and keeps it until it sleeps, so a notify sent under `lock` cannot miss it.)
#[derive(Default)]
struct Parker {
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    cv: Condvar,
}

impl Parker {
    fn new() -> Parker {
        Parker {
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            cv: Condvar::new(),
        }
    }

    /// Call `attempt` until it returns `Some`, sleeping between tries; `None` at the deadline.
    fn wait_for<R>(
        &self,
        deadline: Option<Instant>,
        mut attempt: impl FnMut() -> Option<R>,
    ) -> Option<R> {
        #[cfg(not(loom))]
        {
            let backoff = Backoff::new();
            loop {
                if let Some(r) = attempt() {
                    return Some(r);
                }
                if backoff.is_completed() || deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                backoff.snooze();
            }
        }
        let mut guard = lock(&self.lock);
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let outcome = loop {
            if let Some(r) = attempt() {
                break Some(r);
            }
            guard = match deadline {
                None => self.cv.wait(guard).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break None;
                    }
                    match self.cv.wait_timeout(guard, deadline - now) {
                        Ok((g, _)) => g,
                        Err(e) => e.into_inner().0,
                    }
                }
            };
        };
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
        drop(guard);
        outcome
    }

    fn wake(&self, all: bool) {
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            let _g = lock(&self.lock);
            if all {
                self.cv.notify_all();
            } else {
                self.cv.notify_one();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Orders: where the items live.

/// Where a queue keeps its items, and in which order it gives them back. The blocking logic
/// ([`BlockingQueue`]) is the same for every order.
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

/// Under loom the ring is replaced by a loom mutex around a `VecDeque`, so that loom sees
/// every access; the blocking logic above it is unchanged.
#[cfg(loom)]
impl<T: Send> Store for Fifo<T> {
    type Item = T;
    fn with_maxsize(maxsize: usize) -> Self {
        Fifo {
            inner: Mutex::new(std::collections::VecDeque::new()),
            maxsize,
        }
    }
    fn push(&self, item: T) -> Result<(), T> {
        let mut q = lock(&self.inner);
        if self.maxsize > 0 && q.len() >= self.maxsize {
            return Err(item);
        }
        q.push_back(item);
        Ok(())
    }
    fn pop(&self) -> Option<T> {
        lock(&self.inner).pop_front()
    }
    fn len(&self) -> usize {
        lock(&self.inner).len()
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

// ---------------------------------------------------------------------------------------------
// The queue.

/// A thread-safe blocking queue in the order of its [`Store`]: Python's `queue.Queue` and its
/// relatives. Use it through [`Queue`], [`LifoQueue`] or [`PriorityQueue`].
///
/// ```
/// use queues::{GetError, PutError, Queue};
///
/// let q = Queue::new(2);                      // queue.Queue(maxsize=2)
/// q.put(10)?;
/// q.put(9)?;
/// assert!(matches!(q.try_put(8), Err(PutError::Full(8))));
/// assert_eq!(q.get()?, 10);                   // first in, first out
/// assert_eq!(q.get()?, 9);
/// assert_eq!(q.try_get(), Err(GetError::Empty));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct BlockingQueue<S: Store> {
    store: S,
    maxsize: usize,
    not_empty: CachePadded<Parker>,
    not_full: CachePadded<Parker>,
    all_done: CachePadded<Parker>,
    /// Items put (counted just before they go in, so `task_done` never sees more dones).
    puts: CachePadded<AtomicUsize>,
    /// `task_done()` calls.
    dones: CachePadded<AtomicUsize>,
    shut: AtomicBool,
}

/// First in, first out. Replaces `queue.Queue(maxsize)`.
pub type Queue<T> = BlockingQueue<Fifo<T>>;
/// Last in, first out. Replaces `queue.LifoQueue(maxsize)`.
pub type LifoQueue<T> = BlockingQueue<Lifo<T>>;
/// Lowest first, ties in arrival order. Replaces `queue.PriorityQueue(maxsize)`.
pub type PriorityQueue<T> = BlockingQueue<Priority<T>>;

impl<S: Store> fmt::Debug for BlockingQueue<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingQueue")
            .field("qsize", &self.qsize())
            .field("maxsize", &self.maxsize)
            .finish()
    }
}

impl<S: Store> BlockingQueue<S> {
    /// A queue for at most `maxsize` items; 0 means no limit, as in Python. (Beware:
    /// `crossbeam::channel::bounded(0)` and `std::sync::mpsc::sync_channel(0)` mean the
    /// opposite, a queue with no room at all where every send waits for a receiver.)
    /// Replaces `Queue(maxsize=...)`.
    pub fn new(maxsize: usize) -> Self {
        BlockingQueue {
            store: S::with_maxsize(maxsize),
            maxsize,
            not_empty: CachePadded::new(Parker::new()),
            not_full: CachePadded::new(Parker::new()),
            all_done: CachePadded::new(Parker::new()),
            puts: CachePadded::new(AtomicUsize::new(0)),
            dones: CachePadded::new(AtomicUsize::new(0)),
            shut: AtomicBool::new(false),
        }
    }

    /// The capacity given to [`BlockingQueue::new`] (0: none). Python's `q.maxsize`.
    pub fn maxsize(&self) -> usize {
        self.maxsize
    }

    /// How many items are in the queue. Replaces `q.qsize()`. A snapshot: other threads may
    /// change it before you act on it, so `if q.qsize() > 0 { q.get() }` can still block.
    pub fn qsize(&self) -> usize {
        self.store.len()
    }

    /// Whether the queue holds nothing. Replaces `q.empty()`; a snapshot like [`Self::qsize`].
    pub fn empty(&self) -> bool {
        self.qsize() == 0
    }

    /// Whether the queue is at `maxsize`. Replaces `q.full()`; a snapshot like
    /// [`Self::qsize`]. Always `false` for an unbounded queue.
    pub fn full(&self) -> bool {
        self.maxsize > 0 && self.qsize() >= self.maxsize
    }

    fn is_shut(&self) -> bool {
        self.shut.load(Ordering::SeqCst)
    }

    fn put_until(&self, item: S::Item, deadline: Option<Instant>) -> Result<(), PutError<S::Item>> {
        if self.is_shut() {
            return Err(PutError::ShutDown(item));
        }
        self.puts.fetch_add(1, Ordering::SeqCst);
        let mut slot = Some(item);
        let outcome = self.not_full.wait_for(deadline, || {
            if self.is_shut() {
                return Some(false);
            }
            let item = slot.take()?;
            match self.store.push(item) {
                Ok(()) => Some(true),
                Err(back) => {
                    slot = Some(back);
                    None
                }
            }
        });
        match (outcome, slot) {
            (Some(true), _) => {
                self.not_empty.wake(false);
                Ok(())
            }
            (not_put, Some(item)) => {
                self.puts.fetch_sub(1, Ordering::SeqCst);
                self.all_done.wake(true);
                Err(if not_put.is_some() {
                    PutError::ShutDown(item)
                } else {
                    PutError::Full(item)
                })
            }
            (_, None) => unreachable!("the item is either stored or still in the slot"),
        }
    }

    fn get_until(&self, deadline: Option<Instant>) -> Result<S::Item, GetError> {
        let outcome = self
            .not_empty
            .wait_for(deadline, || match self.store.pop() {
                Some(item) => Some(Ok(item)),
                None if self.is_shut() => Some(Err(GetError::ShutDown)),
                None => None,
            });
        match outcome {
            Some(Ok(item)) => {
                if self.maxsize > 0 {
                    self.not_full.wake(false);
                }
                Ok(item)
            }
            Some(Err(e)) => Err(e),
            None => Err(GetError::Empty),
        }
    }

    /// Put an item, waiting for room as long as it takes. Replaces `q.put(item)`.
    /// Fails only if the queue is shut down (before or while waiting).
    pub fn put(&self, item: S::Item) -> Result<(), PutError<S::Item>> {
        self.put_until(item, None)
    }

    /// Put an item, waiting at most `timeout` for room. Replaces `q.put(item, timeout=...)`.
    pub fn put_timeout(&self, item: S::Item, timeout: Duration) -> Result<(), PutError<S::Item>> {
        self.put_until(item, Some(Instant::now() + timeout))
    }

    /// Put an item only if there is room now. Replaces `q.put_nowait(item)` /
    /// `q.put(item, block=False)`.
    pub fn try_put(&self, item: S::Item) -> Result<(), PutError<S::Item>> {
        self.put_until(item, Some(Instant::now()))
    }

    /// Take the next item, waiting as long as it takes. Replaces `q.get()`. After
    /// [`Self::shutdown`] it still returns what is left, then `Err(ShutDown)`.
    pub fn get(&self) -> Result<S::Item, GetError> {
        self.get_until(None)
    }

    /// Take the next item, waiting at most `timeout`. Replaces `q.get(timeout=...)`.
    pub fn get_timeout(&self, timeout: Duration) -> Result<S::Item, GetError> {
        self.get_until(Some(Instant::now() + timeout))
    }

    /// Take the next item only if there is one now. Replaces `q.get_nowait()` /
    /// `q.get(block=False)`.
    pub fn try_get(&self) -> Result<S::Item, GetError> {
        self.get_until(Some(Instant::now()))
    }

    /// Say that one item taken from the queue has been dealt with. Replaces `q.task_done()`;
    /// calling it more often than items were put is an error, as in Python.
    pub fn task_done(&self) -> Result<(), TooManyTaskDone> {
        let done = self.dones.fetch_add(1, Ordering::SeqCst) + 1;
        let puts = self.puts.load(Ordering::SeqCst);
        if done > puts {
            self.dones.fetch_sub(1, Ordering::SeqCst);
            return Err(TooManyTaskDone);
        }
        if done == puts {
            self.all_done.wake(true);
        }
        Ok(())
    }

    /// How many items were put and not yet `task_done()` (Python's `unfinished_tasks`).
    pub fn unfinished(&self) -> usize {
        // `dones` first: then a `dones >= puts` reading means both held at the second load.
        let dones = self.dones.load(Ordering::SeqCst);
        self.puts.load(Ordering::SeqCst).saturating_sub(dones)
    }

    /// Wait until every item put has been `task_done()`. Replaces `q.join()`.
    ///
    /// Not "until the queue is empty", as the seed says: the queue is empty as soon as the
    /// last item is *taken*; `join` returns only once it has been *dealt with*.
    pub fn join(&self) {
        self.all_done
            .wait_for(None, || (self.unfinished() == 0).then_some(()));
    }

    /// [`Self::join`], waiting at most `timeout`; `true` if all work was done.
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.all_done
            .wait_for(Some(Instant::now() + timeout), || {
                (self.unfinished() == 0).then_some(())
            })
            .is_some()
    }

    /// Shut the queue down (Python 3.13's `q.shutdown(immediate)`). From now on `put` fails
    /// with `ShutDown`; getters, blocked ones included, take what is left and then get
    /// `ShutDown`. With `immediate`, what is left is thrown away (and counted as done, so
    /// `join` returns) and getters get `ShutDown` at once.
    pub fn shutdown(&self, immediate: bool) {
        self.shut.store(true, Ordering::SeqCst);
        if immediate {
            while self.store.pop().is_some() {
                // Each discarded item counts as done, as in Python.
                let _ = self.task_done();
            }
        }
        self.not_empty.wake(true);
        self.not_full.wake(true);
        self.all_done.wake(true);
    }

    /// Whether [`Self::shutdown`] was called.
    pub fn is_shutdown(&self) -> bool {
        self.is_shut()
    }
}
