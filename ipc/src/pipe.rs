//! [`Pipe`]: Python's `multiprocessing.Pipe()`: two connected ends, typed.

use std::fmt;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::frame::{self, DEFAULT_MAX_FRAME, FrameError};

/// One end of a [`Pipe`]: sends `S`, receives `R`. Replaces `multiprocessing.connection.Connection`.
///
/// Not `Clone`: an end belongs to one process. Give the child its end by moving it into the
/// child's closure, and use `processes::Process::close_in_child(&my_end)` so the child does not
/// keep the parent's end open (or the parent would never see end-of-file).
///
/// End-of-file comes when *every* copy of the peer's end is closed. In a program that forks
/// from several threads at once, a child forked by another thread inherits copies of whatever
/// was open at that instant, this end included, and end-of-file then waits for that child to
/// exit. Fork from one thread at a time (or use the spawn start method) where that matters.
pub struct Connection<S, R = S> {
    fd: OwnedFd,
    can_read: bool,
    can_write: bool,
    max: usize,
    _types: PhantomData<fn(S) -> R>,
}

impl<S, R> fmt::Debug for Connection<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("fd", &self.fd.as_raw_fd())
            .field("can_read", &self.can_read)
            .field("can_write", &self.can_write)
            .finish()
    }
}

/// The two ends of a duplex pipe: the first sends `A` and receives `B`.
pub type Duplex<A, B> = (Connection<A, B>, Connection<B, A>);
/// The two ends of a one-way pipe: the first only receives `T`, the second only sends it.
pub type OneWay<T> = (Connection<(), T>, Connection<T, ()>);

/// Makes connected pairs of [`Connection`]s.
#[derive(Debug, Clone, Copy)]
pub struct Pipe;

impl Pipe {
    /// Two ends that can both send and receive: `a` sends `A` and receives `B`, `b` the
    /// reverse. Replaces `Pipe()` / `Pipe(duplex=True)`. A Unix socket pair underneath.
    pub fn duplex<A, B>() -> Result<Duplex<A, B>, FrameError> {
        let (x, y) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        Ok((
            Connection::new(x, true, true),
            Connection::new(y, true, true),
        ))
    }

    /// A one-way pipe: the first end only receives, the second only sends. Replaces
    /// `Pipe(duplex=False)` (which returns them in the same order).
    pub fn oneway<T>() -> Result<OneWay<T>, FrameError> {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        Ok((
            Connection::new(r, true, false),
            Connection::new(w, false, true),
        ))
    }
}

impl<S, R> Connection<S, R> {
    fn new(fd: OwnedFd, can_read: bool, can_write: bool) -> Self {
        Connection {
            fd,
            can_read,
            can_write,
            max: DEFAULT_MAX_FRAME,
            _types: PhantomData,
        }
    }

    /// The largest message `recv` accepts (default [`DEFAULT_MAX_FRAME`]).
    pub fn with_max_frame(mut self, max: usize) -> Self {
        self.max = max;
        self
    }

    fn reader(&self) -> Result<BorrowedFd<'_>, FrameError> {
        if !self.can_read {
            return Err(FrameError::Io(std::io::Error::other(
                "this end cannot receive",
            )));
        }
        Ok(self.fd.as_fd())
    }

    fn writer(&self) -> Result<BorrowedFd<'_>, FrameError> {
        if !self.can_write {
            return Err(FrameError::Io(std::io::Error::other(
                "this end cannot send",
            )));
        }
        Ok(self.fd.as_fd())
    }

    /// Whether this end can receive (Python's `conn.readable`).
    pub fn readable(&self) -> bool {
        self.can_read
    }

    /// Whether this end can send (Python's `conn.writable`).
    pub fn writable(&self) -> bool {
        self.can_write
    }

    /// Wait at most `timeout` for something to read (a message, or end-of-file); `true` if
    /// there is. Replaces `conn.poll(timeout)`.
    pub fn poll(&self, timeout: Duration) -> Result<bool, FrameError> {
        wait_readable(self.reader()?, timeout)
    }

    /// Close this end (both directions); the peer's `recv` then sees end-of-file.
    /// Replaces `conn.close()`; dropping the end does the same.
    pub fn close(self) {}
}

impl<S, R> Connection<S, R> {
    /// Send raw bytes as one message, without encoding. Replaces `conn.send_bytes(buf)`; the
    /// peer must read it with [`Connection::recv_bytes`] or [`Connection::recv_bytes_into`].
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<(), FrameError> {
        frame::write_bytes(self.writer()?, bytes, self.max)
    }

    /// Receive one message sent with `send_bytes`. Replaces `conn.recv_bytes()`.
    ///
    /// # Errors
    /// As [`Connection::recv`], without `Decode`.
    pub fn recv_bytes(&self) -> Result<Vec<u8>, FrameError> {
        let mut buf = Vec::new();
        frame::read_bytes_into(self.reader()?, &mut buf, self.max)?;
        Ok(buf)
    }

    /// Receive one message sent with `send_bytes` into `buf[offset..]`, and return its length.
    /// Replaces `conn.recv_bytes_into(buf, offset)`.
    ///
    /// # Errors
    /// [`FrameError::BufferTooShort`] when the message does not fit in `buf[offset..]`: the
    /// error carries the whole message, as Python's `BufferTooShort` does, and the next
    /// message can be received. An `offset` past the end of `buf` is an
    /// `InvalidInput` [`FrameError::Io`], before anything is read. Otherwise as
    /// [`Connection::recv`].
    pub fn recv_bytes_into(&self, buf: &mut [u8], offset: usize) -> Result<usize, FrameError> {
        frame::read_bytes_at(self.reader()?, buf, offset, self.max)
    }
}

/// Wait until `fd` is readable (data, end-of-file or error); `false` on time-out.
pub(crate) fn wait_readable(fd: BorrowedFd<'_>, timeout: Duration) -> Result<bool, FrameError> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) if Instant::now() >= deadline => return Ok(false),
            Ok(0) | Err(Errno::EINTR) => {}
            Ok(_) => return Ok(true),
            Err(e) => return Err(e.into()),
        }
    }
}

impl<S: Serialize, R> Connection<S, R> {
    /// Send one message. Replaces `conn.send(obj)`. A peer that has gone gives an error
    /// (`EPIPE`), not a signal: Rust ignores SIGPIPE. Large byte strings in `msg` are written
    /// straight from it, not copied ([`frame::write_frame`]), so two threads sending on one
    /// end at once must take turns (a `Mutex`), as with Python's `Connection`.
    pub fn send(&self, msg: &S) -> Result<(), FrameError> {
        frame::write_frame(self.writer()?, msg, self.max)
    }
}

impl<S, R: DeserializeOwned> Connection<S, R> {
    /// Receive one message, waiting as long as it takes. Replaces `conn.recv()`; when the
    /// peer has closed its end (or exited) this is [`FrameError::Eof`], never a hang.
    pub fn recv(&self) -> Result<R, FrameError> {
        frame::read_frame(self.reader()?, self.max)
    }

    /// Receive one message through `reader`, which keeps what it read ahead for the next
    /// call: one `read` can bring a whole batch of messages. Only for an end that one thread
    /// alone reads, always through the same `reader` (see [`frame::FrameReader`]).
    pub fn recv_buffered(&self, reader: &mut frame::FrameReader) -> Result<R, FrameError> {
        reader.read(self.reader()?)
    }

    /// Receive one message, waiting at most `timeout` for it to start.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<R, FrameError> {
        if !self.poll(timeout)? {
            return Err(FrameError::Timeout);
        }
        self.recv()
    }
}

impl<S, R> AsFd for Connection<S, R> {
    /// The descriptor, to wait on it with `poll` or `select` beside others (Python's
    /// `multiprocessing.connection.wait`).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl<S, R> AsRawFd for Connection<S, R> {
    /// The descriptor, for `processes::Process::close_in_child`.
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
