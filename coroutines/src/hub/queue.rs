//! [`Queue`]: gevent's `gevent.queue.Queue` (and `Channel`) for the hub's tasks. A `get` on an
//! empty queue, or a `put` on a full one, waits cooperatively: it suspends only the task that
//! called it (outside any task it runs the hub until it can go on), as every hub wait does.
//!
//! Why not `std::sync::mpsc` or crossbeam: their waits block the thread, and with it every task
//! of the hub; the one task that could fill the queue would never run. The queue's state is
//! plain `RefCell`s: the hub is single-threaded, so nothing else touches it between two waits.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use super::after;
use super::wait::{Missed, Waiters, wait_for};

/// Why a queue call gave no item (or took none).
#[derive(Debug)]
#[non_exhaustive]
pub enum QueueError {
    /// Nothing to get: `get_nowait` on an empty queue, or a `get_timeout` whose time passed
    /// (gevent's `queue.Empty`).
    Empty,
    /// No room: `put_nowait` on a full queue, or a `put_timeout` whose time passed (gevent's
    /// `queue.Full`).
    Full,
    /// The queue was shut down ([`Queue::shutdown`]; Python 3.13's `queue.ShutDown`).
    ShutDown,
    /// [`Queue::task_done`] was called more times than items were put (Python's `ValueError`).
    TooManyTaskDone,
    /// The hub wait failed: the deadline of a [`timeout`](super::timeout) block around it
    /// passed (`TimedOut`), no task could ever make it go on (`Deadlock`: gevent's `LoopExit`),
    /// a panic unwinds, or the hub is gone.
    Wait(io::Error),
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueError::Empty => f.write_str("the queue is empty"),
            QueueError::Full => f.write_str("the queue is full"),
            QueueError::ShutDown => f.write_str("the queue is shut down"),
            QueueError::TooManyTaskDone => f.write_str("task_done() called too many times"),
            QueueError::Wait(e) => write!(f, "waiting on the queue: {e}"),
        }
    }
}

impl std::error::Error for QueueError {}

impl From<QueueError> for io::Error {
    fn from(e: QueueError) -> io::Error {
        match e {
            QueueError::Wait(e) => e,
            QueueError::Empty | QueueError::Full => io::Error::new(io::ErrorKind::WouldBlock, e),
            other => io::Error::other(other),
        }
    }
}

/// A `put` that failed: why, and the item, given back.
pub struct PutError<T> {
    /// Why.
    pub error: QueueError,
    /// The item that was not put.
    pub item: T,
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PutError")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl<T> std::error::Error for PutError<T> {}

struct Inner<T> {
    /// The items, each with its number (a channel's putter waits until its number is gone).
    items: RefCell<VecDeque<(u64, T)>>,
    /// `None`: unbounded; `Some(0)`: a channel (a put waits for a getter to take the item).
    maxsize: Option<usize>,
    next: Cell<u64>,
    getters: Waiters,
    putters: Waiters,
    joiners: Waiters,
    unfinished: Cell<usize>,
    shut: Cell<bool>,
}

/// A FIFO queue for the hub's tasks. Replaces `gevent.queue.Queue` (which is also a
/// `JoinableQueue`: [`task_done`](Queue::task_done), [`join`](Queue::join)) and, made with
/// [`Queue::channel`], `gevent.queue.Channel`. Cloning gives another handle on the same queue.
///
/// ```
/// use coroutines::hub::{self, Queue};
///
/// let q = Queue::bounded(1);
/// let tx = q.clone();
/// let producer = hub::spawn(move || {
///     for i in 0..3 {
///         tx.put(i).unwrap(); // waits (only this task) while the queue is full
///     }
/// })?;
/// let got: Vec<i32> = (0..3).map(|_| q.get().unwrap()).collect(); // the root runs the hub
/// hub::joinall(&[&producer])?;
/// assert_eq!(got, [0, 1, 2]);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Queue<T> {
    inner: Rc<Inner<T>>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Queue<T> {
        Queue {
            inner: self.inner.clone(),
        }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("maxsize", &self.inner.maxsize)
            .field("qsize", &self.qsize())
            .finish()
    }
}

impl<T> Default for Queue<T> {
    fn default() -> Queue<T> {
        Queue::new()
    }
}

impl<T> Queue<T> {
    fn with(maxsize: Option<usize>) -> Queue<T> {
        Queue {
            inner: Rc::new(Inner {
                items: RefCell::new(VecDeque::new()),
                maxsize,
                next: Cell::new(0),
                getters: Waiters::default(),
                putters: Waiters::default(),
                joiners: Waiters::default(),
                unfinished: Cell::new(0),
                shut: Cell::new(false),
            }),
        }
    }

    /// An unbounded queue. Replaces `gevent.queue.Queue()`.
    pub fn new() -> Queue<T> {
        Queue::with(None)
    }

    /// A queue of at most `maxsize` items: a `put` waits while it is full. Replaces
    /// `Queue(maxsize)`; `maxsize` 0 makes a [`channel`](Queue::channel).
    pub fn bounded(maxsize: usize) -> Queue<T> {
        Queue::with(Some(maxsize))
    }

    /// A channel: it holds no item of its own, and a `put` waits until a getter has taken its
    /// item. Replaces `gevent.queue.Channel()`.
    pub fn channel() -> Queue<T> {
        Queue::with(Some(0))
    }

    fn is_channel(&self) -> bool {
        self.inner.maxsize == Some(0)
    }

    /// The most items it holds (`None`: no limit; `Some(0)`: a channel).
    pub fn maxsize(&self) -> Option<usize> {
        self.inner.maxsize
    }

    /// How many items it holds (a channel: always 0). Replaces `q.qsize()`.
    pub fn qsize(&self) -> usize {
        if self.is_channel() {
            0
        } else {
            self.inner.items.borrow().len()
        }
    }

    /// Whether it holds no item (a channel: always). Replaces `q.empty()`.
    pub fn empty(&self) -> bool {
        self.qsize() == 0
    }

    /// Whether a `put` would wait (a channel: always, unless a getter waits). Replaces
    /// `q.full()`.
    pub fn full(&self) -> bool {
        match self.inner.maxsize {
            None => false,
            Some(0) => true,
            Some(n) => self.inner.items.borrow().len() >= n,
        }
    }

    /// Whether a put can go in now without waiting.
    fn has_room(&self) -> bool {
        match self.inner.maxsize {
            None => true,
            // A channel takes an item at once only for a getter that waits for one.
            Some(0) => self.inner.getters.len() > self.inner.items.borrow().len(),
            Some(n) => self.inner.items.borrow().len() < n,
        }
    }

    fn push(&self, item: T) -> u64 {
        let n = self.inner.next.get();
        self.inner.next.set(n + 1);
        self.inner.items.borrow_mut().push_back((n, item));
        self.inner.unfinished.set(self.inner.unfinished.get() + 1);
        self.inner.getters.wake_one();
        n
    }

    /// Put `item` in, waiting (cooperatively) while the queue is full; on a channel, until a
    /// getter has taken it. Replaces `q.put(item)`.
    ///
    /// # Errors
    /// The item comes back with [`QueueError::ShutDown`], or [`QueueError::Wait`] if the wait
    /// failed (a `timeout` block around it passed, or no task could ever make room).
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_until(item, None)
    }

    /// [`put`](Queue::put), waiting at most `d`. Replaces `q.put(item, timeout=d)`.
    ///
    /// # Errors
    /// As [`put`](Queue::put), and [`QueueError::Full`] when `d` passes first.
    pub fn put_timeout(&self, item: T, d: Duration) -> Result<(), PutError<T>> {
        self.put_until(item, Some(d))
    }

    /// [`put`](Queue::put) without waiting. Replaces `q.put_nowait(item)`.
    ///
    /// # Errors
    /// [`QueueError::Full`] (or [`QueueError::ShutDown`]), with the item.
    pub fn put_nowait(&self, item: T) -> Result<(), PutError<T>> {
        if self.inner.shut.get() {
            return Err(PutError {
                error: QueueError::ShutDown,
                item,
            });
        }
        if !self.has_room() {
            return Err(PutError {
                error: QueueError::Full,
                item,
            });
        }
        self.push(item);
        Ok(())
    }

    fn put_until(&self, item: T, d: Option<Duration>) -> Result<(), PutError<T>> {
        let own = d.map(after);
        let shut = || self.inner.shut.get();
        if !self.is_channel() {
            return match wait_for(&|| shut() || self.has_room(), &self.inner.putters, own) {
                Ok(()) if !shut() => {
                    self.push(item);
                    Ok(())
                }
                Ok(()) => Err(PutError {
                    error: QueueError::ShutDown,
                    item,
                }),
                Err(m) => Err(PutError {
                    error: missed(m, QueueError::Full),
                    item,
                }),
            };
        }
        if shut() {
            return Err(PutError {
                error: QueueError::ShutDown,
                item,
            });
        }
        // A channel: the item waits in the queue until a getter takes it.
        let n = self.push(item);
        let taken = || !self.inner.items.borrow().iter().any(|(m, _)| *m == n);
        let r = wait_for(&|| taken() || shut(), &self.inner.putters, own);
        if taken() {
            return Ok(());
        }
        let mut items = self.inner.items.borrow_mut();
        let at = items.iter().position(|(m, _)| *m == n);
        let item = at.and_then(|i| items.remove(i)).map(|(_, item)| item);
        drop(items);
        self.inner
            .unfinished
            .set(self.inner.unfinished.get().saturating_sub(1));
        let error = match r {
            Ok(()) => QueueError::ShutDown,
            Err(m) => missed(m, QueueError::Full),
        };
        match item {
            Some(item) => Err(PutError { error, item }),
            None => Ok(()),
        }
    }

    fn pop(&self) -> Option<T> {
        let (_, item) = self.inner.items.borrow_mut().pop_front()?;
        if self.is_channel() {
            self.inner.putters.wake_all();
        } else {
            self.inner.putters.wake_one();
        }
        Some(item)
    }

    /// Take the first item, waiting (cooperatively) while there is none. Replaces `q.get()`.
    ///
    /// # Errors
    /// [`QueueError::ShutDown`] once it is shut down and empty; [`QueueError::Wait`] if the
    /// wait failed (a `timeout` block around it passed, or no task could ever put an item:
    /// gevent's `LoopExit`).
    pub fn get(&self) -> Result<T, QueueError> {
        self.get_until(None)
    }

    /// [`get`](Queue::get), waiting at most `d`. Replaces `q.get(timeout=d)`.
    ///
    /// # Errors
    /// As [`get`](Queue::get), and [`QueueError::Empty`] when `d` passes first.
    pub fn get_timeout(&self, d: Duration) -> Result<T, QueueError> {
        self.get_until(Some(d))
    }

    /// [`get`](Queue::get) without waiting. Replaces `q.get_nowait()`.
    ///
    /// # Errors
    /// [`QueueError::Empty`], or [`QueueError::ShutDown`] once shut down and empty.
    pub fn get_nowait(&self) -> Result<T, QueueError> {
        match self.pop() {
            Some(item) => Ok(item),
            None if self.inner.shut.get() => Err(QueueError::ShutDown),
            None => Err(QueueError::Empty),
        }
    }

    fn get_until(&self, d: Option<Duration>) -> Result<T, QueueError> {
        let ready = || self.inner.shut.get() || !self.inner.items.borrow().is_empty();
        wait_for(&ready, &self.inner.getters, d.map(after))
            .map_err(|m| missed(m, QueueError::Empty))?;
        self.get_nowait()
    }

    /// A copy of the first item, without taking it, waiting while there is none. Replaces
    /// `q.peek()`.
    ///
    /// # Errors
    /// As [`get`](Queue::get).
    pub fn peek(&self) -> Result<T, QueueError>
    where
        T: Clone,
    {
        self.peek_until(None)
    }

    /// [`peek`](Queue::peek), waiting at most `d`. Replaces `q.peek(timeout=d)`.
    ///
    /// # Errors
    /// As [`get_timeout`](Queue::get_timeout).
    pub fn peek_timeout(&self, d: Duration) -> Result<T, QueueError>
    where
        T: Clone,
    {
        self.peek_until(Some(d))
    }

    fn peek_until(&self, d: Option<Duration>) -> Result<T, QueueError>
    where
        T: Clone,
    {
        let ready = || self.inner.shut.get() || !self.inner.items.borrow().is_empty();
        wait_for(&ready, &self.inner.getters, d.map(after))
            .map_err(|m| missed(m, QueueError::Empty))?;
        let first = self.inner.items.borrow().front().map(|(_, v)| v.clone());
        // A peek takes nothing: the next getter may go on too.
        self.inner.getters.wake_one();
        first.ok_or(QueueError::ShutDown)
    }

    /// Say that an item taken with `get` has been dealt with. Replaces `q.task_done()`.
    ///
    /// # Errors
    /// [`QueueError::TooManyTaskDone`] if every item put has been marked done already.
    pub fn task_done(&self) -> Result<(), QueueError> {
        let n = self.inner.unfinished.get();
        if n == 0 {
            return Err(QueueError::TooManyTaskDone);
        }
        self.inner.unfinished.set(n - 1);
        if n == 1 {
            self.inner.joiners.wake_all();
        }
        Ok(())
    }

    /// Items put and not yet marked done. Replaces `q.unfinished_tasks`.
    pub fn unfinished_tasks(&self) -> usize {
        self.inner.unfinished.get()
    }

    /// Wait until every item put has been marked done. Replaces `q.join()`.
    ///
    /// # Errors
    /// If the wait failed (as [`get`](Queue::get)'s).
    pub fn join(&self) -> io::Result<()> {
        let done = || self.inner.unfinished.get() == 0;
        wait_for(&done, &self.inner.joiners, None).map_err(|m| missed(m, QueueError::Empty).into())
    }

    /// Shut the queue down (Python 3.13's `q.shutdown(immediate)`): `put` fails from now on,
    /// and `get` fails once the queue is empty; with `immediate`, the items left are dropped
    /// (and counted done) at once. Every task waiting on the queue wakes up.
    pub fn shutdown(&self, immediate: bool) {
        self.inner.shut.set(true);
        if immediate {
            let dropped = std::mem::take(&mut *self.inner.items.borrow_mut());
            let n = self.inner.unfinished.get().saturating_sub(dropped.len());
            self.inner.unfinished.set(n);
            drop(dropped);
        }
        self.inner.getters.wake_all();
        self.inner.putters.wake_all();
        if self.inner.unfinished.get() == 0 {
            self.inner.joiners.wake_all();
        }
    }
}

/// A missed wait as a queue error: its own deadline becomes `own` (`Empty` or `Full`).
fn missed(m: Missed, own: QueueError) -> QueueError {
    match m {
        Missed::Deadline => own,
        Missed::Hub(e) => QueueError::Wait(e),
    }
}

/// A queue is an iterator of its items until it is shut down and empty (gevent's
/// `for item in q`, which ends at `StopIteration`; here, at [`Queue::shutdown`]). A failed wait
/// ends it too.
impl<T> Iterator for Queue<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.get().ok()
    }
}
