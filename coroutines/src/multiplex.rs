//! `multiplex`: one thread serving many sockets with `select`, `poll` or `epoll` (the seed's
//! IO多路复用), as three small echo servers, and the level- versus edge-triggered wake-ups.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use anyhow::{Context, bail};
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::select::{FdSet, select};

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

/// The fds (listener first, then clients) that are readable now, by `backend`.
fn wait_readable(
    backend: Backend,
    epoll: Option<&Epoll>,
    listener: &TcpListener,
    clients: &[TcpStream],
) -> anyhow::Result<Vec<usize>> {
    match backend {
        Backend::Select => {
            let mut set = FdSet::new();
            check_select_fd(listener.as_fd())?;
            set.insert(listener.as_fd());
            for c in clients {
                check_select_fd(c.as_fd())?;
                set.insert(c.as_fd());
            }
            select(None, &mut set, None, None, None).context("select")?;
            let mut ready = Vec::new();
            if set.contains(listener.as_fd()) {
                ready.push(0);
            }
            for (i, c) in clients.iter().enumerate() {
                if set.contains(c.as_fd()) {
                    ready.push(i + 1);
                }
            }
            Ok(ready)
        }
        Backend::Poll => {
            let mut fds: Vec<PollFd<'_>> = std::iter::once(listener.as_fd())
                .chain(clients.iter().map(|c| c.as_fd()))
                .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
                .collect();
            poll(&mut fds, PollTimeout::NONE).context("poll")?;
            Ok(fds
                .iter()
                .enumerate()
                .filter(|(_, f)| f.revents().is_some_and(|r| !r.is_empty()))
                .map(|(i, _)| i)
                .collect())
        }
        Backend::Epoll => {
            let epoll = epoll.context("no epoll")?;
            let mut events = vec![EpollEvent::empty(); 64];
            let n = epoll
                .wait(&mut events, EpollTimeout::NONE)
                .context("epoll_wait")?;
            // Tokens are fds; map them back to positions.
            Ok(events[..n]
                .iter()
                .filter_map(|e| {
                    let fd = e.data() as i32;
                    if fd == listener.as_raw_fd() {
                        Some(0)
                    } else {
                        clients
                            .iter()
                            .position(|c| c.as_raw_fd() == fd)
                            .map(|i| i + 1)
                    }
                })
                .collect())
        }
    }
}

/// Serve echo on `listener` with `backend` until `clients` connections have come and gone.
pub fn serve(backend: Backend, listener: TcpListener, clients: usize) -> anyhow::Result<Served> {
    listener.set_nonblocking(true)?;
    let epoll = match backend {
        Backend::Epoll => {
            let e = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
            e.add(
                listener.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, listener.as_raw_fd() as u64),
            )?;
            Some(e)
        }
        _ => None,
    };
    let mut open: Vec<TcpStream> = Vec::new();
    let mut served = Served::default();
    let mut buf = [0u8; 4096];
    while served.accepted < clients || !open.is_empty() {
        let ready = wait_readable(backend, epoll.as_ref(), &listener, &open)?;
        served.waits += 1;
        let mut closed = Vec::new();
        for &i in &ready {
            if i == 0 {
                loop {
                    match listener.accept() {
                        Ok((s, _)) => {
                            s.set_nonblocking(true)?;
                            if let Some(e) = &epoll {
                                e.add(
                                    s.as_fd(),
                                    EpollEvent::new(EpollFlags::EPOLLIN, s.as_raw_fd() as u64),
                                )?;
                            }
                            open.push(s);
                            served.accepted += 1;
                            served.most_open = served.most_open.max(open.len());
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e).context("accept"),
                    }
                }
                continue;
            }
            let c = &mut open[i - 1];
            match c.read(&mut buf) {
                Ok(0) => closed.push(i - 1),
                Ok(n) => {
                    c.set_nonblocking(false)?;
                    c.write_all(&buf[..n])?;
                    c.set_nonblocking(true)?;
                    served.echoed += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => closed.push(i - 1),
            }
        }
        closed.sort_unstable();
        for i in closed.into_iter().rev() {
            let c = open.swap_remove(i);
            if let Some(e) = &epoll {
                let _ = e.delete(c.as_fd());
            }
        }
    }
    Ok(served)
}

/// Connect `n` clients to `addr` at once, each sending its own line and reading it back.
/// How many got exactly their bytes back.
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

/// Level- against edge-triggered: two bytes arrive; each wake-up reads one. Three waits:
/// the number of wake-ups (level: 2, the data is still there; edge: 1, nothing new arrived).
pub fn wakeups(edge: bool) -> anyhow::Result<usize> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC)?;
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    let flags = if edge {
        EpollFlags::EPOLLIN | EpollFlags::EPOLLET
    } else {
        EpollFlags::EPOLLIN
    };
    epoll.add(r.as_fd(), EpollEvent::new(flags, 1))?;
    nix::unistd::write(&w, b"ab")?;
    let mut events = [EpollEvent::empty(); 4];
    let mut woken = 0;
    for _ in 0..3 {
        let n = epoll.wait(&mut events, EpollTimeout::from(50u16))?;
        if n > 0 {
            woken += 1;
            let mut one = [0u8; 1];
            let _ = nix::unistd::read(&r, &mut one);
        }
    }
    Ok(woken)
}
