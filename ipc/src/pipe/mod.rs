//! [`Pipe`]: Python's `multiprocessing.Pipe()`: two connected ends, typed.
//!
//! # Reading ahead
//!
//! An end reads whatever has arrived, up to 64 KiB at once, and keeps what it read past the
//! message it was asked for: a small message costs one `read` (header and body together), as
//! a raw socket ping-pong does, where reading the 4-byte header and then the body took two
//! (Python's `Connection` takes two as well). So a message can be waiting *inside* an end
//! while its descriptor is not readable: wait on ends with [`Connection::poll`] or
//! [`connection::wait`](crate::connection::wait), which look inside first, not with a bare
//! `poll(2)` on [`AsFd::as_fd`] (see there).

use std::fmt;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::frame::{self, DEFAULT_MAX_FRAME, FrameError, FrameReader};

/// One end of a [`Pipe`]: sends `S`, receives `R`. Replaces `multiprocessing.connection.Connection`.
///
/// Not `Clone`: an end belongs to one process. Give the child its end by moving it into the
/// child's closure (the parent's copy is then dropped as soon as the child is forked), and use
/// `processes::Process::close_in_child(&my_end)` so the child does not keep a copy of the
/// parent's end.
///
/// # Who must close what for end-of-file to come
///
/// A `recv` sees end-of-file when *every* copy of the **other** end is closed, in every
/// process. So:
///
/// - the **parent** sees end-of-file from the child only once the child's end is closed
///   everywhere: in the child (it exits, or closes it) *and* in the parent, which must not
///   keep a copy of the child's end (moving the end into the child's closure drops it);
/// - the **child** sees end-of-file from the parent only once the parent's end is closed
///   everywhere, *including the copy the child inherited* at the fork: that copy is what
///   `close_in_child(&parent_end)` closes. Left open, it stops the *child* from ever seeing
///   end-of-file; it does not stop the parent.
///
/// The `pipe` lesson shows both (`cargo run -p ipc -- pipe`).
///
/// In a program that forks from several threads at once, a child forked by another thread
/// inherits copies of whatever was open at that instant, this end included, and end-of-file
/// then waits for that child to exit. Fork from one thread at a time (or use the spawn start
/// method) where that matters.
pub struct Connection<S, R = S> {
    fd: OwnedFd,
    can_read: bool,
    can_write: bool,
    max: usize,
    /// What has been read from `fd` and not handed out yet (see "Reading ahead").
    inbox: Mutex<FrameReader>,
    /// How many bytes `inbox` holds, readable without its lock (for `poll`, while another
    /// thread may be blocked reading).
    pending: AtomicUsize,
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
            inbox: Mutex::new(FrameReader::new(DEFAULT_MAX_FRAME)),
            pending: AtomicUsize::new(0),
            _types: PhantomData,
        }
    }

    /// The largest message `recv` accepts (default [`DEFAULT_MAX_FRAME`]).
    pub fn with_max_frame(mut self, max: usize) -> Self {
        self.max = max;
        let inbox = self.inbox.get_mut().unwrap_or_else(|e| e.into_inner());
        inbox.set_max(max);
        self
    }

    /// The read-ahead buffer, and the descriptor to read from. A thread that panicked while
    /// holding it leaves it as its last complete step left it: the poison is ignored.
    fn inbox(&self) -> Result<(MutexGuard<'_, FrameReader>, BorrowedFd<'_>), FrameError> {
        let fd = self.reader()?;
        Ok((self.inbox.lock().unwrap_or_else(|e| e.into_inner()), fd))
    }

    /// Receive through the read-ahead buffer with `f`, and note what it holds afterwards.
    fn receive<T>(
        &self,
        f: impl FnOnce(&mut FrameReader, BorrowedFd<'_>) -> Result<T, FrameError>,
    ) -> Result<T, FrameError> {
        let (mut inbox, fd) = self.inbox()?;
        let out = f(&mut inbox, fd);
        inbox.trim_after(KEEP);
        self.pending.store(inbox.buffered(), Ordering::Release);
        out
    }

    /// Whether bytes already read from the descriptor wait in this end.
    pub(crate) fn has_buffered(&self) -> bool {
        self.pending.load(Ordering::Acquire) > 0
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
    /// there is. Replaces `conn.poll(timeout)`. A timeout too long to represent waits as long
    /// as it takes.
    ///
    /// # Errors
    /// [`FrameError::Io`] on an end that cannot receive, or if `poll(2)` fails.
    pub fn poll(&self, timeout: Duration) -> Result<bool, FrameError> {
        let fd = self.reader()?;
        if self.has_buffered() {
            return Ok(true);
        }
        wait_readable(fd, timeout)
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
        self.receive(|inbox, fd| {
            let len = inbox.next_len(&fd)?;
            inbox.take_growing(&fd, len)
        })
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
        if offset > buf.len() {
            return Err(FrameError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "offset {offset} is past the end of a buffer of {} bytes",
                    buf.len()
                ),
            )));
        }
        self.receive(|inbox, fd| {
            let len = inbox.next_len(&fd)?;
            let room = &mut buf[offset..];
            if len > room.len() {
                return Err(FrameError::BufferTooShort(inbox.take_growing(&fd, len)?));
            }
            inbox.take_into(&fd, &mut room[..len])?;
            Ok(len)
        })
    }
}

/// A buffer given back once a message that needed more than this has been handed out: one
/// large message must not pin its memory for the life of the end.
const KEEP: usize = 1 << 20;

/// Wait until `fd` is readable (data, end-of-file or error); `false` on time-out.
pub(crate) fn wait_readable(fd: BorrowedFd<'_>, timeout: Duration) -> Result<bool, FrameError> {
    let deadline = crate::deadline::after(timeout);
    loop {
        let ms = crate::deadline::left(deadline).map_or(-1, crate::deadline::poll_ms);
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::NONE),
        ) {
            Ok(0) if deadline.is_some_and(|d| Instant::now() >= d) => return Ok(false),
            Ok(0) | Err(Errno::EINTR) => {}
            Ok(_) => return Ok(true),
            Err(e) => return Err(e.into()),
        }
    }
}

impl<S: Serialize, R> Connection<S, R> {
    /// Send one message. Replaces `conn.send(obj)`.
    ///
    /// # Errors
    /// [`FrameError::Encode`] or [`FrameError::TooLarge`] (nothing sent); [`FrameError::Io`]
    /// (`EPIPE` once the peer's end is closed everywhere; also on an end that cannot send).
    /// A peer that has gone gives an error
    /// (`EPIPE`), not a signal: Rust ignores SIGPIPE. Large byte strings in `msg` are written
    /// straight from it, not copied ([`frame::write_frame`]), so two threads sending on one
    /// end at once must take turns (a `Mutex`), as with Python's `Connection`.
    pub fn send(&self, msg: &S) -> Result<(), FrameError> {
        frame::write_frame(self.writer()?, msg, self.max)
    }
}

impl<S, R: DeserializeOwned> Connection<S, R> {
    /// Receive one message, waiting as long as it takes. Replaces `conn.recv()`; when every
    /// copy of the peer's end is closed this is [`FrameError::Eof`] (see "Who must close
    /// what" on [`Connection`]). One `read` usually brings a small message whole, and any
    /// messages behind it, which later calls hand out without reading. A large message that
    /// ends with a byte string (a 1 MiB `serde_bytes::ByteBuf`, or a struct whose last field
    /// is one) has that string read from the socket straight into it, not copied.
    ///
    /// # Errors
    /// [`FrameError::Eof`] at a clean end, [`FrameError::Truncated`] at an end mid-message,
    /// [`FrameError::TooLarge`] for a prefix over the limit, [`FrameError::Decode`] for a
    /// message that is not an `R` (it is consumed: the next one can be received),
    /// [`FrameError::Io`] otherwise (also on an end that cannot receive).
    pub fn recv(&self) -> Result<R, FrameError> {
        self.receive(|inbox, fd| inbox.read(fd))
    }

    /// Receive one message. Kept for code written before every end read ahead by itself:
    /// `reader` is no longer used, and this is [`Connection::recv`].
    ///
    /// # Errors
    /// As [`Connection::recv`].
    pub fn recv_buffered(&self, reader: &mut frame::FrameReader) -> Result<R, FrameError> {
        let _ = reader;
        self.recv()
    }

    /// Receive one message, waiting at most `timeout` for it to start.
    ///
    /// # Errors
    /// [`FrameError::Timeout`] if nothing arrived in time; otherwise as [`Connection::recv`].
    pub fn recv_timeout(&self, timeout: Duration) -> Result<R, FrameError> {
        if !self.poll(timeout)? {
            return Err(FrameError::Timeout);
        }
        self.recv()
    }
}

impl<S, R> AsFd for Connection<S, R> {
    /// The descriptor. To wait on several ends at once use
    /// [`connection::wait`](crate::connection::wait) (Python's
    /// `multiprocessing.connection.wait`): a message this end has already read ahead does not
    /// make the descriptor readable, so a bare `poll(2)` on it can wait for a message that is
    /// already here. Check [`Connection::poll`]`(Duration::ZERO)` first if you poll it yourself.
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
