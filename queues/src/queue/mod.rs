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

use crate::shim::{AtomicBool, Mutex, Ordering, lock};

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
///
/// # What is exclusive, and what is not
///
/// Python's queue does everything under one mutex. Here getters never take a lock while items
/// are there (the stores are lock-free or lock themselves briefly), and neither do waits or
/// wake-ups (`parker.rs`). One small mutex, `books`, makes three things atomic that must be:
/// a put's "not shut down? then in, and counted" (so that once [`shutdown`](Self::shutdown)
/// has taken `books`, no put can land after it, and `unfinished` counts an item exactly when it
/// is in), `task_done`'s "anything unfinished? then one less", and the shutdown itself. A
/// getter that finds the queue empty and shut down looks once more before it says `ShutDown`:
/// seeing the flag means seeing every put that went in before it. A getter about to sleep
/// takes `books` once, before its last try, so that a put (a change made under `books`) needs
/// no fence before it looks for sleepers to wake.
pub struct BlockingQueue<S: Store> {
    store: S,
    maxsize: usize,
    not_empty: CachePadded<Parker>,
    not_full: CachePadded<Parker>,
    all_done: CachePadded<Parker>,
    books: CachePadded<Mutex<Books>>,
    /// Written only with `books` held; read without it by getters.
    shut: AtomicBool,
}

/// What `books` guards (besides the exclusion of puts and shutdown).
#[derive(Debug, Default)]
struct Books {
    /// Items put and not yet `task_done()` (Python's `unfinished_tasks`): counted as an item
    /// goes in, so a put still waiting for room, or one whose store panicked, is not counted.
    unfinished: usize,
}

/// What a queue's waits have cost so far: how often a thread went to sleep, how often one was
/// woken, and how many waits ended while spinning or right after a yield, summed over its
/// three conditions (not empty, not full, all done). Diagnostics for benches and tuning (each count is a relaxed
/// atomic, bumped on the slow paths only); see [`BlockingQueue::wait_stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WaitStats {
    /// Sleeps on a condition variable (a system call each, and a context switch).
    pub parks: u64,
    /// Notifications sent to sleeping threads (a lock and a system call each).
    pub wakeups: u64,
    /// Waits that ended while spinning, without sleeping.
    pub spun: u64,
    /// Waits that ended right after a yield (`sched_yield`, a system call, and a context
    /// switch when another thread ran), without sleeping.
    pub yielded: u64,
}

/// A deadline `timeout` from now, or `None` (wait as long as it takes) when it cannot be
/// represented, as for `Duration::MAX` (Python accepts huge timeouts too).
fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
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
            .field("unfinished", &self.unfinished())
            .field("shutdown", &self.is_shutdown())
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
            books: CachePadded::new(Mutex::new(Books::default())),
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

    /// One try at putting: with `books` held, refuse if shut down (`Some(false)`), else push
    /// and count (`Some(true)`); `None`, with the item back in `slot`, if the store is full.
    fn try_push(&self, slot: &mut Option<S::Item>) -> Option<bool> {
        let mut books = lock(&self.books);
        if self.shut.load(Ordering::Relaxed) {
            return Some(false);
        }
        let item = slot.take()?;
        match self.store.push(item) {
            Ok(()) => {
                books.unfinished += 1;
                Some(true)
            }
            Err(back) => {
                *slot = Some(back);
                None
            }
        }
    }

    fn put_until(&self, item: S::Item, deadline: Option<Instant>) -> Result<(), PutError<S::Item>> {
        let mut slot = Some(item);
        match self.not_full.wait_for(
            deadline,
            Some(&self.not_empty),
            || {},
            || self.try_push(&mut slot),
        ) {
            Some(true) => {
                // The item went in under `books`, which a getter takes before its last try.
                self.not_empty.wake_synced(false);
                Ok(())
            }
            not_put => {
                let item = slot.unwrap_or_else(|| unreachable!("an item not put is in the slot"));
                Err(if not_put.is_some() {
                    PutError::ShutDown(item)
                } else {
                    PutError::Full(item)
                })
            }
        }
    }

    fn get_until(&self, deadline: Option<Instant>) -> Result<S::Item, GetError> {
        let outcome = self.not_empty.wait_for(
            deadline,
            Some(&self.not_full),
            || self.sync_with_changers(),
            || match self.store.pop() {
                Some(item) => Some(Ok(item)),
                // Shut down: every put that went in did so before the flag was set, and is
                // seen now; look once more before saying ShutDown.
                None if self.is_shut() => Some(self.store.pop().ok_or(GetError::ShutDown)),
                None => None,
            },
        );
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

    /// Take and release `books`: a getter does so once it has counted itself asleep, before
    /// its last try, so that a put or a shutdown (changes made under `books`) needs no fence
    /// before it looks for sleepers (see `Parker::wake_synced`).
    fn sync_with_changers(&self) {
        drop(lock(&self.books));
    }

    fn is_shut(&self) -> bool {
        self.shut.load(Ordering::SeqCst)
    }

    /// Put an item, waiting for room as long as it takes. Replaces `q.put(item)`.
    ///
    /// # Errors
    ///
    /// [`PutError::ShutDown`] (with the item) if the queue is shut down, before or while
    /// waiting.
    pub fn put(&self, item: S::Item) -> Result<(), PutError<S::Item>> {
        self.put_until(item, None)
    }

    /// Put an item, waiting at most `timeout` for room. Replaces `q.put(item, timeout=...)`.
    /// A timeout too long to represent as a deadline (such as `Duration::MAX`) waits as long
    /// as it takes.
    ///
    /// # Errors
    ///
    /// [`PutError::Full`] if there was no room in time, [`PutError::ShutDown`] if the queue is
    /// shut down; the item comes back in either.
    pub fn put_timeout(&self, item: S::Item, timeout: Duration) -> Result<(), PutError<S::Item>> {
        self.put_until(item, deadline_after(timeout))
    }

    /// Put an item only if there is room now. Replaces `q.put_nowait(item)` /
    /// `q.put(item, block=False)`.
    ///
    /// # Errors
    ///
    /// As [`put_timeout`](Self::put_timeout).
    pub fn try_put(&self, item: S::Item) -> Result<(), PutError<S::Item>> {
        self.put_until(item, Some(Instant::now()))
    }

    /// Take the next item, waiting as long as it takes. Replaces `q.get()`. After
    /// [`Self::shutdown`] it still returns what is left, then `Err(ShutDown)`.
    ///
    /// # Errors
    ///
    /// [`GetError::ShutDown`] once the queue is shut down and empty.
    pub fn get(&self) -> Result<S::Item, GetError> {
        self.get_until(None)
    }

    /// Take the next item, waiting at most `timeout`. Replaces `q.get(timeout=...)`. A
    /// timeout too long to represent as a deadline (such as `Duration::MAX`) waits as long as
    /// it takes.
    ///
    /// # Errors
    ///
    /// [`GetError::Empty`] if nothing came in time, [`GetError::ShutDown`] once the queue is
    /// shut down and empty.
    pub fn get_timeout(&self, timeout: Duration) -> Result<S::Item, GetError> {
        self.get_until(deadline_after(timeout))
    }

    /// Take the next item only if there is one now. Replaces `q.get_nowait()` /
    /// `q.get(block=False)`.
    ///
    /// # Errors
    ///
    /// As [`get_timeout`](Self::get_timeout).
    pub fn try_get(&self) -> Result<S::Item, GetError> {
        self.get_until(Some(Instant::now()))
    }

    /// Say that one item taken from the queue has been dealt with. Replaces `q.task_done()`.
    ///
    /// # Errors
    ///
    /// [`TooManyTaskDone`] if nothing is unfinished: more calls than items put (Python's
    /// `ValueError`). Items thrown away by [`shutdown(true)`](Self::shutdown) count as done.
    pub fn task_done(&self) -> Result<(), TooManyTaskDone> {
        let mut books = lock(&self.books);
        if books.unfinished == 0 {
            return Err(TooManyTaskDone);
        }
        books.unfinished -= 1;
        let all_done = books.unfinished == 0;
        drop(books);
        if all_done {
            // Changed under `books`, which `join`'s every try takes.
            self.all_done.wake_synced(true);
        }
        Ok(())
    }

    /// How many items were put and not yet `task_done()` (Python's `unfinished_tasks`). An
    /// item counts from the moment it is in the queue; a put still waiting for room does not.
    pub fn unfinished(&self) -> usize {
        lock(&self.books).unfinished
    }

    /// Wait until every item put has been `task_done()`. Replaces `q.join()`.
    ///
    /// Not "until the queue is empty", as the seed says: the queue is empty as soon as the
    /// last item is *taken*; `join` returns only once it has been *dealt with*.
    pub fn join(&self) {
        self.all_done
            .wait_for(None, None, || {}, || (self.unfinished() == 0).then_some(()));
    }

    /// [`Self::join`], waiting at most `timeout`; `true` if all work was done. A timeout too
    /// long to represent as a deadline (such as `Duration::MAX`) waits as long as it takes.
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.all_done
            .wait_for(
                deadline_after(timeout),
                None,
                || {},
                || (self.unfinished() == 0).then_some(()),
            )
            .is_some()
    }

    /// Shut the queue down (Python 3.13's `q.shutdown(immediate)`). Once it returns, no `put`
    /// succeeds: they fail with `ShutDown`, blocked ones included. Getters, blocked ones
    /// included, take what is left and then get `ShutDown`. With `immediate`, what is left is
    /// thrown away (and counted as done, so `join` returns when the rest is done) and getters
    /// get `ShutDown` at once. Calling it again is allowed (`immediate` then drains).
    pub fn shutdown(&self, immediate: bool) {
        let mut thrown_away = Vec::new();
        {
            let mut books = lock(&self.books);
            self.shut.store(true, Ordering::SeqCst);
            if immediate {
                while let Some(item) = self.store.pop() {
                    thrown_away.push(item);
                    books.unfinished = books.unfinished.saturating_sub(1);
                }
            }
        }
        // Dropped outside `books`: an item's destructor may use the queue.
        drop(thrown_away);
        // All changed under `books`: a getter takes it before its last try, and the tries of
        // putters and of `join` take it.
        self.not_empty.wake_synced(true);
        self.not_full.wake_synced(true);
        self.all_done.wake_synced(true);
    }

    /// What this queue's waits have cost so far ([`WaitStats`]): parks, wake-ups, and waits
    /// that ended while spinning or right after a yield. Not in Python; for benchmarks and
    /// tuning.
    pub fn wait_stats(&self) -> WaitStats {
        let mut out = WaitStats::default();
        for p in [&self.not_empty, &self.not_full, &self.all_done] {
            let s = p.stats();
            out.parks += s.parks;
            out.wakeups += s.wakeups;
            out.spun += s.spun;
            out.yielded += s.yielded;
        }
        out
    }

    /// Whether [`Self::shutdown`] was called. Python's `q.is_shutdown`.
    pub fn is_shutdown(&self) -> bool {
        self.is_shut()
    }
}
