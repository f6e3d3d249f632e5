//! [`Queue`]: Python's `multiprocessing.Queue`, for a process and the children it forks.

use std::fmt;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::frame::{self, DEFAULT_MAX_FRAME, FrameError};
use crate::pipe::wait_readable;
use crate::shm::{Lock, LockError};

struct Inner {
    read: OwnedFd,
    write: OwnedFd,
    /// Writers take it for a whole frame: the pipe only guarantees that writes of at most
    /// PIPE_BUF (4096) bytes are not interleaved with other writers', and frames can be larger.
    wlock: Lock,
    /// Readers take it for a whole frame, so two readers never split one between them.
    rlock: Lock,
}

/// A queue of `T` between processes: any process holding a clone (made before `fork`) may put
/// and get. Replaces `multiprocessing.Queue`.
///
/// A pipe carries length-prefixed frames; a process-shared writer lock keeps each frame whole
/// against other writers (the pipe alone only promises that for writes up to PIPE_BUF), and a
/// reader lock keeps each frame to one reader.
///
/// # Python's trap, and this queue's answer
///
/// Python's `put` hands the item to a background *feeder thread* and returns at once; the
/// process then cannot exit until the feeder has written everything into the pipe. So a
/// parent that `join()`s a child before reading what the child put deadlocks as soon as the
/// items exceed the pipe's buffer (64 KiB): the child waits for the parent to read, the parent
/// waits for the child to exit. The docs warn about it; it still bites.
///
/// Here `put` writes into the pipe itself: no feeder thread, no hidden buffer. A full pipe makes
/// `put` block *in the producer*, where you can see it, and [`Queue::put_timeout`] turns that
/// into an error instead of a hang. The rule stays the same as Python's: drain the queue before
/// you join its producers (or join with a timeout: `Process::join_timeout`).
pub struct Queue<T> {
    inner: Arc<Inner>,
    max: usize,
    closed: bool,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            inner: self.inner.clone(),
            max: self.max,
            closed: false,
            _t: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ipc::Queue")
    }
}

fn lock_err(e: LockError) -> FrameError {
    FrameError::Io(std::io::Error::other(e.to_string()))
}

impl<T> Queue<T> {
    /// A new, empty queue. Make it before forking the processes that will use it.
    pub fn new() -> Result<Queue<T>, FrameError> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        let lock = |_| lock_err(LockError::Os(std::io::Error::other("cannot make a lock")));
        Ok(Queue {
            inner: Arc::new(Inner {
                read,
                write,
                wlock: Lock::new().map_err(lock)?,
                rlock: Lock::new().map_err(lock)?,
            }),
            max: DEFAULT_MAX_FRAME,
            closed: false,
            _t: PhantomData,
        })
    }

    /// Say this handle will put nothing more: later `put`s through it fail. Replaces
    /// `q.close()`. (The pipe itself closes when the last handle in every process is gone.)
    pub fn close(&mut self) {
        self.closed = true;
    }

    fn check_open(&self) -> Result<(), FrameError> {
        if self.closed {
            return Err(FrameError::Io(std::io::Error::other(
                "put on a closed queue",
            )));
        }
        Ok(())
    }
}

impl<T: Serialize> Queue<T> {
    /// Put an item; waits while the pipe is full. Replaces `q.put(item)`.
    pub fn put(&self, item: &T) -> Result<(), FrameError> {
        self.check_open()?;
        let _w = self.inner.wlock.acquire().map_err(lock_err)?;
        frame::write_frame(self.inner.write.as_fd(), item, self.max)
    }

    /// Put an item if that can start within `timeout`: waiting for the writer lock and for
    /// room in the pipe. On time-out nothing was written ([`FrameError::Timeout`]). Once part of
    /// the frame is in the pipe, the rest is written however long it takes: a frame is never
    /// left half-written.
    pub fn put_timeout(&self, item: &T, timeout: Duration) -> Result<(), FrameError> {
        self.check_open()?;
        let buf = frame::encode(item, self.max)?;
        let deadline = Instant::now() + timeout;
        let Some(_w) = self
            .inner
            .wlock
            .acquire_timeout(timeout)
            .map_err(lock_err)?
        else {
            return Err(FrameError::Timeout);
        };
        // Non-blocking while we hold the writer lock: every writer takes that lock, so no
        // other writer sees the flag, and it is cleared again before the lock is released.
        let fd = self.inner.write.as_fd();
        set_nonblocking(fd, true)?;
        let outcome = write_until(fd, &buf, deadline);
        set_nonblocking(fd, false)?;
        outcome
    }
}

fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> Result<(), FrameError> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    let flags = if on {
        flags | OFlag::O_NONBLOCK
    } else {
        flags - OFlag::O_NONBLOCK
    };
    fcntl(fd, FcntlArg::F_SETFL(flags))?;
    Ok(())
}

/// Write `buf` to a non-blocking pipe: give up at `deadline` only if nothing was written yet.
fn write_until(fd: BorrowedFd<'_>, buf: &[u8], deadline: Instant) -> Result<(), FrameError> {
    let mut written = 0;
    while written < buf.len() {
        match nix::unistd::write(fd, &buf[written..]) {
            Ok(n) => written += n,
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let wait = if written == 0 {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(FrameError::Timeout);
                    }
                    PollTimeout::try_from(left.as_millis().clamp(1, i32::MAX as u128) as i32)
                        .unwrap_or(PollTimeout::MAX)
                } else {
                    PollTimeout::NONE
                };
                let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
                match poll(&mut fds, wait) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

impl<T: DeserializeOwned> Queue<T> {
    /// Take the next item, waiting as long as it takes. Replaces `q.get()`.
    pub fn get(&self) -> Result<T, FrameError> {
        let _r = self.inner.rlock.acquire().map_err(lock_err)?;
        frame::read_frame(self.inner.read.as_fd(), self.max)
    }

    /// Take the next item, waiting at most `timeout`. Replaces `q.get(timeout=...)`
    /// ([`FrameError::Timeout`] where Python raises `queue.Empty`).
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, FrameError> {
        let deadline = Instant::now() + timeout;
        let Some(_r) = self
            .inner
            .rlock
            .acquire_timeout(timeout)
            .map_err(lock_err)?
        else {
            return Err(FrameError::Timeout);
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if !wait_readable(self.inner.read.as_fd(), left)? {
            return Err(FrameError::Timeout);
        }
        frame::read_frame(self.inner.read.as_fd(), self.max)
    }

    /// Take an item only if one is there now. Replaces `q.get_nowait()`.
    pub fn try_get(&self) -> Result<T, FrameError> {
        self.get_timeout(Duration::ZERO)
    }
}
