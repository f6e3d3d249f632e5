//! `multiplex`: one thread serving many sockets with `select`, `poll` or `epoll` (the seed's
//! IO多路复用), as three small echo servers, and the level- versus edge-triggered wake-ups.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use anyhow::{Context, bail};
use nix::libc;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

use crate::selectors::{EpollSelector, Events, PollSelector, SelectSelector, Selector};

/// Which system call waits for the sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `select`: a bitmap of fds below 1024, rebuilt and scanned every time (O(n)).
    Select,
    /// `poll`: an array of (fd, events), passed in full every time (O(n)); no fd limit.
    Poll,
    /// `epoll`: the kernel keeps the interest list; a wait returns only the ready fds.
    Epoll,
}

/// What an echo server did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Served {
    /// Connections accepted.
    pub accepted: usize,
    /// Bytes echoed back.
    pub echoed: usize,
    /// Most connections open at once.
    pub most_open: usize,
    /// How many times the server waited.
    pub waits: usize,
}

/// `select` can only watch fds below FD_SETSIZE (1024); nix's `FdSet::insert` panics past it.
/// This returns an error instead.
///
/// # Errors
/// If `fd` is 1024 or above.
pub fn check_select_fd(fd: BorrowedFd<'_>) -> anyhow::Result<()> {
    if fd.as_raw_fd() >= libc::FD_SETSIZE as i32 {
        bail!(
            "select cannot watch fd {}: it only handles fds below {} (use poll or epoll)",
            fd.as_raw_fd(),
            libc::FD_SETSIZE
        );
    }
    Ok(())
}

/// A duplicate of `fd` numbered `lowest` or above (`fcntl(F_DUPFD_CLOEXEC)`), owned: to show
/// what `select` does with a descriptor past its limit, as the `select-poll-epoll` lesson does.
///
/// # Errors
/// The `fcntl` error (for example `EMFILE` or `EINVAL` past the process's open-file limit).
pub fn dup_at_or_above(fd: BorrowedFd<'_>, lowest: i32) -> io::Result<OwnedFd> {
    let raw = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(lowest))?;
    // SAFETY: F_DUPFD_CLOEXEC has just made this descriptor for us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

impl Backend {
    /// A selector on this system call.
    ///
    /// # Errors
    /// If the selector cannot be made (epoll: out of descriptors).
    pub fn selector<T: 'static>(self) -> io::Result<Box<dyn Selector<T>>> {
        Ok(match self {
            Backend::Select => Box::new(SelectSelector::new()),
            Backend::Poll => Box::new(PollSelector::new()),
            Backend::Epoll => Box::new(EpollSelector::new()?),
        })
    }
}

/// Serve echo on `listener` with a selector on `backend` until `clients` connections have
/// come and gone: the program Python's `selectors` docs show, the same whichever backend.
///
/// # Errors
/// If the selector, an accept, a read or a write fails (a client's reset only closes it).
pub fn serve(backend: Backend, listener: TcpListener, clients: usize) -> anyhow::Result<Served> {
    listener.set_nonblocking(true)?;
    let mut sel = backend.selector::<()>()?;
    sel.register(listener.as_fd(), Events::READ, ())
        .context("registering the listener")?;
    let mut open: HashMap<RawFd, TcpStream> = HashMap::new();
    let mut served = Served::default();
    let mut buf = [0u8; 4096];
    let mut ready = Vec::new();
    while served.accepted < clients || !open.is_empty() {
        sel.select_into(None, &mut ready).context("select")?;
        served.waits += 1;
        for &(fd, _) in &ready {
            if fd == listener.as_raw_fd() {
                accept_all(&listener, &mut open, &mut served, |s| {
                    sel.register(s.as_fd(), Events::READ, ())?;
                    Ok(())
                })?;
                continue;
            }
            let Some(c) = open.get_mut(&fd) else {
                continue;
            };
            let close = echo_once(c, &mut buf, &mut served)?;
            if close {
                sel.unregister(fd)?;
                open.remove(&fd);
            }
        }
    }
    Ok(served)
}

/// Accept every connection waiting on the (non-blocking) `listener`: each made non-blocking,
/// handed to `watch` (to register it), then kept in `open` and counted.
fn accept_all(
    listener: &TcpListener,
    open: &mut HashMap<RawFd, TcpStream>,
    served: &mut Served,
    mut watch: impl FnMut(&TcpStream) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(true)?;
                watch(&s)?;
                open.insert(s.as_raw_fd(), s);
                served.accepted += 1;
                served.most_open = served.most_open.max(open.len());
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e).context("accept"),
        }
    }
}

/// Echo what one read of the ready connection `c` brings (written back whole, blocking for
/// the write); whether the connection is done (end-of-file or an error such as a reset).
fn echo_once(c: &mut TcpStream, buf: &mut [u8], served: &mut Served) -> anyhow::Result<bool> {
    Ok(match c.read(buf) {
        Ok(0) => true,
        Ok(n) => {
            c.set_nonblocking(false)?;
            c.write_all(&buf[..n])?;
            c.set_nonblocking(true)?;
            served.echoed += n;
            false
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
        Err(_) => true,
    })
}

/// The echo server by hand on nix's `Epoll`, with no selector in between: the floor the hub's
/// echo bench is measured against (what a loop on epoll costs, nothing more).
///
/// # Errors
/// If epoll, an accept, a read or a write fails (a client's reset only closes it).
pub fn serve_raw_epoll(listener: TcpListener, clients: usize) -> anyhow::Result<Served> {
    listener.set_nonblocking(true)?;
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    let lfd = listener.as_raw_fd();
    epoll.add(
        listener.as_fd(),
        EpollEvent::new(EpollFlags::EPOLLIN, lfd as u64),
    )?;
    let mut open: HashMap<RawFd, TcpStream> = HashMap::new();
    let mut served = Served::default();
    let mut buf = [0u8; 4096];
    let mut events = vec![EpollEvent::empty(); 64];
    while served.accepted < clients || !open.is_empty() {
        let n = epoll
            .wait(&mut events, EpollTimeout::NONE)
            .context("epoll_wait")?;
        served.waits += 1;
        for ev in &events[..n] {
            let fd = ev.data() as RawFd;
            if fd == lfd {
                accept_all(&listener, &mut open, &mut served, |s| {
                    let ev = EpollEvent::new(EpollFlags::EPOLLIN, s.as_raw_fd() as u64);
                    epoll.add(s.as_fd(), ev)?;
                    Ok(())
                })?;
                continue;
            }
            let Some(c) = open.get_mut(&fd) else {
                continue;
            };
            let close = echo_once(c, &mut buf, &mut served)?;
            if close && let Some(c) = open.remove(&fd) {
                let _ = epoll.delete(c.as_fd());
            }
        }
    }
    Ok(served)
}

/// Connect `n` clients to `addr` at once, each sending its own line and reading it back.
/// How many got exactly their bytes back.
///
/// # Errors
/// If a client cannot connect, write or read (within 30 s).
pub fn run_clients(addr: SocketAddr, n: usize) -> anyhow::Result<usize> {
    let mut conns = Vec::new();
    for i in 0..n {
        let s = TcpStream::connect(addr).with_context(|| format!("client {i} connecting"))?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
        conns.push(s);
    }
    let mut ok = 0;
    for (i, s) in conns.iter_mut().enumerate() {
        let msg = format!("client {i} says hello\n");
        s.write_all(msg.as_bytes())?;
        let mut back = vec![0u8; msg.len()];
        s.read_exact(&mut back)?;
        if back == msg.as_bytes() {
            ok += 1;
        }
    }
    Ok(ok)
}

/// How a reader reads after a wake-up, in the trigger walk-through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// One byte per wake-up.
    OneByte,
    /// Until the read says `WouldBlock` (drained): what edge triggering needs.
    Drain,
}

/// What one read in the walk-through returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadResult {
    /// A byte.
    Byte(u8),
    /// `EAGAIN`: nothing left; it ends a drain.
    WouldBlock,
}

/// One step of the trigger walk-through: bytes written, or a wait and the reads after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The writer wrote these bytes into the pipe.
    Wrote(&'static [u8]),
    /// `epoll_wait` (10 ms at most) returned this many events (0: it timed out, nothing
    /// reported), and the reader then read these.
    Waited {
        /// Events `epoll_wait` returned (0 or 1: one pipe is watched).
        events: usize,
        /// The reads made after it (none after an empty wait).
        reads: Vec<ReadResult>,
    },
}

/// The script of the walk-through: two bytes arrive, three waits, one more byte, one wait.
const SCRIPT: [Option<&[u8]>; 6] = [Some(b"ab"), None, None, None, Some(b"c"), None];

/// Level- against edge-triggered epoll, step by step: a pipe watched for reading, with `edge`
/// triggering or not; `ab` is written, the reader waits three times (reading as `reading`
/// says after each wake-up), then `c` is written and it waits once more.
///
/// # Errors
/// If the pipe, epoll or a read fails otherwise than `WouldBlock`.
pub fn walk(edge: bool, reading: Reading) -> anyhow::Result<Vec<Step>> {
    walk_with(edge, reading, &mut |_| {})
}

/// [`walk`], telling `seen` each step as it happens.
///
/// # Errors
/// As [`walk`].
pub fn walk_with(
    edge: bool,
    reading: Reading,
    seen: &mut dyn FnMut(&Step),
) -> anyhow::Result<Vec<Step>> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC)?;
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    let flags = if edge {
        EpollFlags::EPOLLIN | EpollFlags::EPOLLET
    } else {
        EpollFlags::EPOLLIN
    };
    epoll.add(r.as_fd(), EpollEvent::new(flags, 1))?;
    let mut events = [EpollEvent::empty(); 4];
    let mut steps = Vec::new();
    for step in SCRIPT {
        if let Some(bytes) = step {
            nix::unistd::write(&w, bytes)?;
            seen(&Step::Wrote(bytes));
            steps.push(Step::Wrote(bytes));
            continue;
        }
        // Nothing else writes: a wait that reports nothing would report nothing however
        // long it waited; 10 ms only makes it a real wait.
        let n = epoll.wait(&mut events, EpollTimeout::from(10u16))?;
        let mut reads = Vec::new();
        // After an empty wait, no read; after a wake-up, one or (draining) until WouldBlock.
        while n > 0 && reads.last() != Some(&ReadResult::WouldBlock) {
            let mut one = [0u8; 1];
            match nix::unistd::read(&r, &mut one) {
                Ok(1) => reads.push(ReadResult::Byte(one[0])),
                Ok(_) | Err(nix::errno::Errno::EAGAIN) => {
                    reads.push(ReadResult::WouldBlock);
                    continue;
                }
                Err(e) => return Err(e).context("read"),
            }
            if reading == Reading::OneByte {
                break;
            }
        }
        let step = Step::Waited { events: n, reads };
        seen(&step);
        steps.push(step);
    }
    Ok(steps)
}

/// Level- against edge-triggered, in one number: how many of the three waits after `ab`
/// arrived woke the reader, one byte read per wake-up (level: 2, the data is still there;
/// edge: 1, nothing new arrived).
///
/// # Errors
/// As [`walk`].
pub fn wakeups(edge: bool) -> anyhow::Result<usize> {
    Ok(walk(edge, Reading::OneByte)?
        .iter()
        .skip(1)
        .take(3)
        .filter(|s| matches!(s, Step::Waited { events, .. } if *events > 0))
        .count())
}
