//! The blocking queue: one implementation of the waiting, counting and shutting down, shared by
//! three orders ([`Queue`], [`LifoQueue`], [`PriorityQueue`]).
//!
//! Split as crossbeam-channel splits its own: `error` (what a put, get or `task_done` reports),
//! `parker` (where threads wait, and when a change must wake them), `order` (the [`Store`]s
//! that keep the items: FIFO, LIFO, priority), and here the [`BlockingQueue`] that joins them.

mod error;
mod order;
mod parker;

use std::fmt;
use std::time::{Duration, Instant};

#[cfg(not(loom))]
use crossbeam::utils::CachePadded;

use crate::shim::{AtomicBool, AtomicUsize, Ordering};

pub use error::{GetError, PutError, TooManyTaskDone};
pub use order::{Fifo, Lifo, Prioritized, Priority, Store};
use parker::Parker;

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
