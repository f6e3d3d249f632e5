//! The hub's sockets: [`TcpStream`] and [`TcpListener`], non-blocking, whose waits suspend the
//! task (gevent's patched `socket`). The readiness bookkeeping they use (which socket is
//! registered, drained or closed) is the scheduler's, in the parent module.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, SockaddrIn, sockopt};

use super::run::with_hub;
use super::wait_io;
use crate::selectors::Selector;

/// A socket registered in the hub's epoll, and who waits on it.
///
/// A socket is registered once, edge-triggered, at its first wait, and stays registered until
/// it is dropped ([`release_fd`]): a wait then costs no `epoll_ctl` at all, where registering
/// and removing it at every wait cost two system calls per wait. Edge-triggered is right here
/// because a task only waits after its `read`, `write` or `accept` said `WouldBlock`: anything
/// that arrives after that is a new edge.
pub(super) struct FdWaiters {
    /// The task waiting to read (or accept), with the generation of its wait.
    pub(super) reader: Option<(u64, u64)>,
    /// The task waiting to write (or for a connect to finish).
    pub(super) writer: Option<(u64, u64)>,
    /// `false` once a read found the socket drained, until its next event: then a read can
    /// wait straight away instead of asking the kernel first to be told `WouldBlock`
    /// ([`TcpStream::read`]). Edge-triggered epoll reports every arrival of new data, so no
    /// data that comes after the draining read goes unnoticed.
    pub(super) readable: bool,
    /// The peer closed (or the socket failed): a read returns at once from now on (0, or
    /// the error), and no further event will say so. `readable` then stays `true`.
    pub(super) closed: bool,
}

impl Default for FdWaiters {
    fn default() -> FdWaiters {
        FdWaiters {
            reader: None,
            writer: None,
            readable: true,
            closed: false,
        }
    }
}

/// Whether a read on `fd` may find something: `false` only when the hub knows the last read
/// drained it and no event came since. A socket the hub does not know: `true`.
pub(super) fn may_read(fd: RawFd) -> bool {
    with_hub(|h| h.sel.get_map().get(&fd).is_none_or(|k| k.data.readable)).unwrap_or(true)
}

/// Note that a read drained `fd` (it returned less than it asked for).
pub(super) fn drained(fd: RawFd) {
    let _ = with_hub(|h| {
        if let Some(w) = h.sel.get_key_mut(fd).map(|k| &mut k.data)
            && !w.closed
        {
            w.readable = false;
        }
    });
}

/// Forget a socket that is about to be closed: out of the hub's epoll and its table (a later
/// socket may get the same number). Called by the sockets' `drop`; harmless if the socket
/// never waited, or if the hub is gone (at thread exit).
pub(super) fn release_fd(fd: RawFd) {
    let _ = with_hub(|hub| hub.sel.unregister(fd));
}

/// A TCP connection whose reads and writes wait cooperatively. Replaces gevent's patched
/// `socket.socket` (and what `requests` does over it).
#[derive(Debug)]
pub struct TcpStream {
    inner: std::net::TcpStream,
}

impl TcpStream {
    /// Connect without blocking the hub: a non-blocking `connect`, then a wait for the socket
    /// to become writable, then its error status.
    ///
    /// # Errors
    /// The connect's error (refused, unreachable), or the wait's (a `timeout` block around it
    /// passed, a panic unwinds, the hub is gone).
    pub fn connect(addr: SocketAddrV4) -> io::Result<TcpStream> {
        let fd: OwnedFd = socket::socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(io::Error::from)?;
        // From here on its drop releases the fd from the hub, however connect ends.
        let stream = TcpStream {
            inner: std::net::TcpStream::from(fd),
        };
        match socket::connect(stream.inner.as_raw_fd(), &SockaddrIn::from(addr)) {
            Ok(()) => {}
            Err(Errno::EINPROGRESS) => {
                wait_io(stream.inner.as_raw_fd(), true)?;
                let err = socket::getsockopt(&stream.inner, sockopt::SocketError)
                    .map_err(io::Error::from)?;
                if err != 0 {
                    return Err(io::Error::from_raw_os_error(err));
                }
            }
            Err(e) => return Err(e.into()),
        }
        Ok(stream)
    }

    fn from_std(inner: std::net::TcpStream) -> io::Result<TcpStream> {
        inner.set_nonblocking(true)?;
        Ok(TcpStream { inner })
    }

    /// Read some bytes, waiting cooperatively for them; 0 at end-of-file.
    ///
    /// A read that returns less than it asked for has emptied the socket's receive queue, so
    /// the next read waits for the socket's next event at once, without first asking the
    /// kernel only to hear `WouldBlock`: one system call less per message in an echo loop.
    ///
    /// # Errors
    /// The read's error (a reset), or the wait's (as [`TcpStream::connect`]).
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let fd = self.inner.as_raw_fd();
        if !buf.is_empty() && !may_read(fd) {
            wait_io(fd, false)?;
        }
        loop {
            match self.inner.read(buf) {
                Ok(n) if n > 0 && n < buf.len() => {
                    drained(fd);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    wait_io(fd, false)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    /// Read until end-of-file.
    ///
    /// # Errors
    /// As [`TcpStream::read`].
    pub fn read_to_end(&mut self, out: &mut Vec<u8>) -> io::Result<usize> {
        let mut buf = [0u8; 16 * 1024];
        let start = out.len();
        loop {
            match self.read(&mut buf)? {
                0 => return Ok(out.len() - start),
                n => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// Write all of `buf`, waiting cooperatively for room.
    ///
    /// # Errors
    /// The write's error (a reset, a closed peer), or the wait's (as [`TcpStream::connect`]).
    pub fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.inner.write(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    wait_io(self.inner.as_raw_fd(), true)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The underlying std stream (non-blocking).
    pub fn get_ref(&self) -> &std::net::TcpStream {
        &self.inner
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        release_fd(self.inner.as_raw_fd());
    }
}

impl AsFd for TcpStream {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

/// A listening socket whose `accept` waits cooperatively. Replaces gevent's `StreamServer`
/// building block.
#[derive(Debug)]
pub struct TcpListener {
    inner: std::net::TcpListener,
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        release_fd(self.inner.as_raw_fd());
    }
}

impl TcpListener {
    /// Bind (use port 0 for any free port).
    ///
    /// # Errors
    /// If the address cannot be parsed or bound.
    pub fn bind(addr: &str) -> io::Result<TcpListener> {
        let inner = std::net::TcpListener::bind(addr)?;
        inner.set_nonblocking(true)?;
        Ok(TcpListener { inner })
    }

    /// The address it listens on.
    ///
    /// # Errors
    /// As `std::net::TcpListener::local_addr`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Accept a connection, waiting cooperatively for one.
    ///
    /// # Errors
    /// The accept's error (out of descriptors), or the wait's (as [`TcpStream::connect`]).
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        loop {
            match self.inner.accept() {
                Ok((s, a)) => return Ok((TcpStream::from_std(s)?, a)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    wait_io(self.inner.as_raw_fd(), false)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}
