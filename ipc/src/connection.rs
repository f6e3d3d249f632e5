//! Python's `multiprocessing.connection` beyond one end: [`wait`] for whichever of several
//! [`Connection`]s (and other descriptors: a process's sentinel, a socket) has something to
//! read.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::deadline;
use crate::frame::FrameError;
pub use crate::pipe::{Connection, Pipe};

/// A process's sentinel: a descriptor that becomes readable once process `pid` has exited (a
/// pidfd), to [`wait`] on beside connections. Python's `p.sentinel`. Take it while the child
/// runs (before it is joined: a reaped pid may be given to another process). This worktree's
/// `processes::Process` has no `sentinel()` of its own: use `sentinel(p.pid()?)`.
///
/// # Errors
/// `ESRCH` if there is no such process; `ENOSYS` on a kernel before 5.3.
pub fn sentinel(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open(2) takes a pid and flags, touches no memory of ours, and returns a
    // new descriptor (close-on-exec) or -1.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd =
        i32::try_from(fd).map_err(|_| io::Error::other("pidfd_open: a descriptor out of range"))?;
    // SAFETY: the kernel just made this descriptor for us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Something [`wait`] can wait on: a descriptor that becomes readable, and (for a
/// [`Connection`]) what was already read ahead into it.
pub trait Waitable {
    /// The descriptor to poll.
    fn fd(&self) -> BorrowedFd<'_>;

    /// Whether something is ready without looking at the descriptor (a message a
    /// [`Connection`] has already read ahead).
    fn ready_now(&self) -> bool {
        false
    }
}

impl<S, R> Waitable for Connection<S, R> {
    fn fd(&self) -> BorrowedFd<'_> {
        self.as_fd()
    }

    fn ready_now(&self) -> bool {
        self.has_buffered()
    }
}

/// A process sentinel (a pidfd: readable once the process has exited), or any descriptor.
impl Waitable for OwnedFd {
    fn fd(&self) -> BorrowedFd<'_> {
        self.as_fd()
    }
}

impl Waitable for BorrowedFd<'_> {
    fn fd(&self) -> BorrowedFd<'_> {
        self.as_fd()
    }
}

impl Waitable for UnixStream {
    fn fd(&self) -> BorrowedFd<'_> {
        self.as_fd()
    }
}

impl Waitable for std::net::TcpStream {
    fn fd(&self) -> BorrowedFd<'_> {
        self.as_fd()
    }
}

impl<T: Waitable + ?Sized> Waitable for &T {
    fn fd(&self) -> BorrowedFd<'_> {
        (**self).fd()
    }

    fn ready_now(&self) -> bool {
        (**self).ready_now()
    }
}

/// Wait until at least one of `objects` is ready, or `timeout` has passed (`None`: as long as
/// it takes; a timeout too long to represent is the same); the indices of those ready, in
/// order (empty on time-out). Replaces `multiprocessing.connection.wait(object_list,
/// timeout)`, which returns the objects themselves.
///
/// Ready means: a [`Connection`] has a message (or end-of-file, or an error) to receive, so
/// its `recv` does not block; a process sentinel's process has exited; any other descriptor
/// is readable. A message a [`Connection`] already read ahead counts, though its descriptor
/// is not readable.
///
/// Mix kinds with `&dyn Waitable`:
///
/// ```
/// use ipc::connection::{Waitable, wait};
/// use std::time::Duration;
///
/// let (a, b) = ipc::Pipe::duplex::<u8, u8>()?;
/// let (c, d) = ipc::Pipe::duplex::<u8, u8>()?;
/// d.send(&7)?;
/// let ready = wait(&[&b as &dyn Waitable, &c], Some(Duration::from_secs(5)))?;
/// assert_eq!(ready, [1]);
/// assert_eq!(c.recv()?, 7);
/// assert!(wait(&[&b as &dyn Waitable, &c], Some(Duration::ZERO))?.is_empty());
/// # drop(a);
/// # Ok::<(), ipc::FrameError>(())
/// ```
///
/// # Errors
/// [`FrameError::Io`] if `poll(2)` fails (more descriptors than the process may poll, say).
pub fn wait<W: Waitable + ?Sized>(
    objects: &[&W],
    timeout: Option<Duration>,
) -> Result<Vec<usize>, FrameError> {
    let buffered: Vec<usize> = (0..objects.len())
        .filter(|&i| objects[i].ready_now())
        .collect();
    // Something is here already: report it with whatever else is ready now, without waiting.
    let deadline = if buffered.is_empty() {
        timeout.and_then(deadline::after)
    } else {
        Some(Instant::now())
    };
    let forever = buffered.is_empty() && deadline.is_none();
    let mut fds: Vec<PollFd<'_>> = objects
        .iter()
        .map(|o| PollFd::new(o.fd(), PollFlags::POLLIN))
        .collect();
    loop {
        let ms = if forever {
            -1
        } else {
            deadline::left(deadline).map_or(-1, deadline::poll_ms)
        };
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::NONE),
        ) {
            Ok(0) if !forever && deadline.is_some_and(|d| Instant::now() >= d) => break,
            Ok(0) | Err(Errno::EINTR) => {}
            Ok(_) => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok((0..objects.len())
        .filter(|&i| buffered.contains(&i) || fds[i].revents().is_some_and(|r| !r.is_empty()))
        .collect())
}
