//! [`Queue`]: Python's `multiprocessing.Queue`, for a process and the children it forks.
//!
//! Split along its seams: the handle and its API (here), the ring in shared memory and how
//! items cross it, including every recovery from a killed process (`ring.rs`), and the futex
//! waits (`futex.rs`).

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::frame::{self, DEFAULT_MAX_FRAME, FrameError};

mod futex;
mod ring;

pub use ring::CAPACITY;
use ring::{Ring, lock_err};

/// A queue of `T` between processes: any process holding a clone (made before `fork`) may put
/// and get. Replaces `multiprocessing.Queue`.
///
/// # How it is built
///
/// Python's queue is a pipe plus a lock. This one is a ring of [`CAPACITY`] bytes in shared
/// memory (an anonymous `MAP_SHARED` mapping, inherited by `fork`): a `put` copies the item's
/// encoding in and publishes it by moving a counter, a `get` copies it out and moves another.
/// Neither makes a system call unless it has to sleep (a futex, on a full or empty ring), where
/// a pipe costs a `write` per item and a `read` or two per item; that is most of why this
/// queue is several times faster than one built on a pipe.
///
/// # Killed processes
///
/// Items stay whole: writers take a process-shared writer lock for a whole item, readers a
/// reader lock, both robust (a process killed while holding one does not wedge the queue). An
/// item that fits in the ring is published in one step, so a producer killed mid-`put` leaves
/// nothing of it. A larger item streams through in chunks; if its producer or its consumer is
/// killed in the middle, that one item is lost: the next `get` discards what is left of it,
/// finds the start of the next item, and returns [`FrameError::Lost`] (saying who died and how
/// many bytes it discarded), and the `get` after that goes on normally. No `get` waits for a
/// dead producer. How, in `ring.rs`.
///
/// # Python's trap, and this queue's answer
///
/// Python's `put` hands the item to a background *feeder thread* and returns at once; the
/// process then cannot exit until the feeder has written everything into the pipe. So a
/// parent that `join()`s a child before reading what the child put deadlocks as soon as the
/// items exceed the pipe's buffer (64 KiB): the child waits for the parent to read, the parent
/// waits for the child to exit. The docs warn about it; it still bites.
///
/// Here `put` writes into the ring itself: no feeder thread, no hidden buffer. A full ring
/// makes `put` wait *in the producer*, where you can see it, and [`Queue::put_timeout`] turns
/// that into an error instead of a hang. The rule stays the same as Python's: drain the queue
/// before you join its producers (or join with a timeout: `Process::join_timeout`).
pub struct Queue<T> {
    ring: Arc<Ring>,
    max: usize,
    closed: bool,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Queue<T> {
    /// Another handle on the same queue (open, even if this one was closed).
    fn clone(&self) -> Self {
        Queue {
            ring: self.ring.clone(),
            max: self.max,
            closed: false,
            _t: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ipc::Queue")
            .field("bytes_queued", &self.ring.queued())
            .field("items", &self.ring.items())
            .field("closed", &self.closed)
            .finish()
    }
}

impl<T> Queue<T> {
    /// A new, empty queue, limited only by its ring's [`CAPACITY`] bytes. Make it before
    /// forking the processes that will use it. Replaces `Queue()`.
    ///
    /// # Errors
    /// If the shared memory or its locks cannot be made ([`FrameError::Io`]).
    pub fn new() -> Result<Queue<T>, FrameError> {
        Queue::with_maxsize(0)
    }

    /// A new queue that holds at most `maxsize` items (0: no limit but the ring's bytes):
    /// `put` waits while it is full. Replaces `Queue(maxsize)`.
    ///
    /// # Errors
    /// As [`Queue::new`].
    pub fn with_maxsize(maxsize: usize) -> Result<Queue<T>, FrameError> {
        Ok(Queue {
            ring: Arc::new(Ring::new(maxsize).map_err(FrameError::Io)?),
            max: DEFAULT_MAX_FRAME,
            closed: false,
            _t: PhantomData,
        })
    }

    /// Say this handle will put and get nothing more: later calls through it fail with
    /// [`FrameError::Closed`] (Python's `ValueError: Queue is closed`). Other handles, in this
    /// process or others, are not affected; the shared memory goes when the last handle in
    /// every process is gone. Replaces `q.close()`.
    pub fn close(&mut self) {
        self.closed = true;
    }

    fn check_open(&self) -> Result<(), FrameError> {
        if self.closed {
            return Err(FrameError::Closed);
        }
        Ok(())
    }

    /// How many items are waiting. Approximate while other processes put and get, as
    /// Python's `q.qsize()` is. An item whose producer or consumer died mid-item may stay
    /// counted until a `get` discards it.
    pub fn qsize(&self) -> usize {
        self.ring.items()
    }

    /// Whether nothing is waiting (as approximate as [`Queue::qsize`]). Replaces `q.empty()`.
    pub fn is_empty(&self) -> bool {
        self.ring.queued() == 0
    }

    /// Whether a queue made with a `maxsize` holds that many items (as approximate as
    /// [`Queue::qsize`]); always `false` without one (then only an item's size decides
    /// whether it fits). Replaces `q.full()`.
    pub fn is_full(&self) -> bool {
        let max = self.ring.maxsize();
        max > 0 && self.ring.items() >= max
    }
}

impl<T: Serialize> Queue<T> {
    /// Put an item; waits while the queue is full. Replaces `q.put(item)`.
    ///
    /// # Errors
    /// [`FrameError::Closed`] on a closed handle; [`FrameError::Encode`] or
    /// [`FrameError::TooLarge`] for an item that cannot be encoded within the frame limit;
    /// [`FrameError::Io`] if the writer lock fails.
    pub fn put(&self, item: &T) -> Result<(), FrameError> {
        self.check_open()?;
        frame::with_frame(item, self.max, |buf| {
            let _w = self.ring.wlock.acquire().map_err(lock_err)?;
            self.ring.write(buf, None)
        })
    }

    /// Put an item if that can be done within `timeout`: waiting for the writer lock and for
    /// room. On time-out ([`FrameError::Timeout`], Python's `queue.Full`) the item was not put:
    /// an item larger than the ring that was part-way in is taken back, and no `get` sees any
    /// of it.
    ///
    /// # Errors
    /// As [`Queue::put`], and [`FrameError::Timeout`].
    pub fn put_timeout(&self, item: &T, timeout: Duration) -> Result<(), FrameError> {
        self.check_open()?;
        let deadline = crate::deadline::after(timeout);
        frame::with_frame(item, self.max, |buf| {
            let Some(_w) = self.ring.wlock.acquire_timeout(timeout).map_err(lock_err)? else {
                return Err(FrameError::Timeout);
            };
            self.ring.write(buf, deadline)
        })
    }

    /// Put an item only if there is room now. Replaces `q.put_nowait(item)`.
    ///
    /// # Errors
    /// As [`Queue::put_timeout`].
    pub fn try_put(&self, item: &T) -> Result<(), FrameError> {
        self.put_timeout(item, Duration::ZERO)
    }
}

impl<T: DeserializeOwned> Queue<T> {
    /// Take the next item, waiting as long as it takes. Replaces `q.get()`.
    ///
    /// # Errors
    /// [`FrameError::Closed`] on a closed handle; [`FrameError::Lost`] once for an item whose
    /// producer or consumer died in the middle of it (the next `get` goes on);
    /// [`FrameError::Decode`] for an item that is not a `T` (it is consumed);
    /// [`FrameError::TooLarge`] for one over the frame limit (discarded); [`FrameError::Io`]
    /// if the reader lock fails.
    pub fn get(&self) -> Result<T, FrameError> {
        self.check_open()?;
        let _r = self.ring.rlock.acquire().map_err(lock_err)?;
        self.read(None)
    }

    /// Take the next item, waiting at most `timeout` for one to start. Replaces
    /// `q.get(timeout=...)` ([`FrameError::Timeout`] where Python raises `queue.Empty`). An
    /// item that has started to arrive is waited for to its end as long as its producer lives
    /// (as Python's `get` reads a whole message once one has begun).
    ///
    /// # Errors
    /// As [`Queue::get`], and [`FrameError::Timeout`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, FrameError> {
        self.check_open()?;
        let deadline = crate::deadline::after(timeout);
        let Some(_r) = self.ring.rlock.acquire_timeout(timeout).map_err(lock_err)? else {
            return Err(FrameError::Timeout);
        };
        self.read(deadline)
    }

    /// Take an item only if one is there now. Replaces `q.get_nowait()`.
    ///
    /// # Errors
    /// As [`Queue::get_timeout`].
    pub fn try_get(&self) -> Result<T, FrameError> {
        self.get_timeout(Duration::ZERO)
    }

    /// Read and decode one item (the caller holds the reader lock).
    fn read(&self, deadline: Option<Instant>) -> Result<T, FrameError> {
        frame::with_scratch(|buf| {
            let len = self.ring.read(buf, self.max, deadline)?;
            frame::decode(&buf[..len])
        })
    }
}
