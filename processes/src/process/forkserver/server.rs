//! The fork server's side: [`serve`] runs in the fresh copy of the binary, forks a child per
//! request and reports each child's exit code. The protocol is in the parent module's docs.

use std::collections::HashMap;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use anyhow::Context;
use nix::errno::Errno;
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid, getppid};

use super::{MAX_REQUEST, PARENT_PIDFD, Request};
use crate::process::registry::{self, Me};
use crate::process::{Entry, StartMethod};

/// Run as the fork server (called by `spawn_main`, single-threaded, stdin the control socket).
/// Never returns.
pub(crate) fn serve(entries: &'static [Entry]) -> ! {
    let code = match server_loop(entries) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("fork server (pid {}): {e:#}", getpid());
            1
        }
    };
    std::process::exit(code)
}

fn server_loop(entries: &'static [Entry]) -> anyhow::Result<()> {
    let parent = getppid();
    // The parent's pidfd, at PARENT_PIDFD (close-on-exec: a child that execs does not keep it).
    let pidfd = crate::process::wait::pidfd_open(parent).context("a pidfd of the parent")?;
    if getppid() != parent {
        return Ok(()); // the parent died already
    }
    if pidfd.as_raw_fd() != PARENT_PIDFD {
        // SAFETY: dup3 makes PARENT_PIDFD a copy of our pidfd; nothing else in this fresh,
        // single-threaded process uses that number (it had only 0, 1 and 2 open).
        let r = unsafe { libc::dup3(pidfd.as_raw_fd(), PARENT_PIDFD, libc::O_CLOEXEC) };
        anyhow::ensure!(r == PARENT_PIDFD, "dup3: {}", Errno::last());
    }
    // SAFETY: PARENT_PIDFD is open (just made) and owned by nobody else.
    let parent_fd = unsafe { OwnedFd::from_raw_fd(PARENT_PIDFD) };
    if pidfd.as_raw_fd() == PARENT_PIDFD {
        std::mem::forget(pidfd); // the same descriptor, now owned by parent_fd
    }
    // Ctrl-C reaches the whole foreground process group: the server ignores it, as Python's
    // does, and leaves it to the parent (whose death ends the server). Children restore it.
    // SAFETY: setting a disposition of SIG_IGN installs no handler code.
    unsafe { nix::sys::signal::signal(Signal::SIGINT, nix::sys::signal::SigHandler::SigIgn) }
        .context("ignoring SIGINT")?;
    // SIGCHLD through a signalfd: blocked here (children unblock it before running).
    let mut chld = SigSet::empty();
    chld.add(Signal::SIGCHLD);
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&chld), None).context("blocking SIGCHLD")?;
    let sigfd = SignalFd::with_flags(&chld, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .context("a signalfd for SIGCHLD")?;
    // SAFETY: fd 0 is the control socket our parent gave us as stdin; we own it from here.
    let stdin = unsafe { OwnedFd::from_raw_fd(0) };
    // Move it off 0 (and above 3), and put /dev/null on 0: descriptors received later then
    // never land on 0..=3, which every child keeps.
    let moved = nix::fcntl::fcntl(&stdin, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(4))
        .context("moving the control socket")?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
    let control = unsafe { OwnedFd::from_raw_fd(moved) };
    let devnull = std::fs::File::open("/dev/null").context("opening /dev/null")?;
    nix::unistd::dup2_stdin(&devnull).context("/dev/null as stdin")?;
    // fd 0 is /dev/null now; `stdin` must not close it.
    std::mem::forget(stdin);
    nix::sys::socket::send(control.as_raw_fd(), b"ready", MsgFlags::MSG_NOSIGNAL)
        .context("saying ready")?;

    let mut children: HashMap<i32, OwnedFd> = HashMap::new();
    let mut accepting = true;
    let mut buf = vec![0u8; MAX_REQUEST];
    while accepting || !children.is_empty() {
        let (ctl_ready, chld_ready, parent_gone) = {
            let mut fds = vec![
                PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
                PollFd::new(parent_fd.as_fd(), PollFlags::POLLIN),
            ];
            if accepting {
                fds.push(PollFd::new(control.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e).context("poll"),
                Ok(_) => {}
            }
            let hit = |f: &PollFd| f.any().unwrap_or(false);
            (fds.get(2).is_some_and(hit), hit(&fds[0]), hit(&fds[1]))
        };
        if parent_gone {
            // Our daemon children die with us (PR_SET_PDEATHSIG); nobody is left to report to.
            return Ok(());
        }
        if chld_ready {
            while let Ok(Some(_)) = sigfd.read_signal() {}
            reap_all(&mut children);
        }
        if ctl_ready {
            match next_request(&control, &mut buf)? {
                None => accepting = false,
                Some((req, fds)) => {
                    // The child closes the control socket and the signalfd with every other
                    // descriptor above its own (close_range).
                    let server = Server {
                        devnull: &devnull,
                        parent,
                    };
                    if let Some((pid, conn)) = fork_one(entries, &req, fds, &server)? {
                        children.insert(pid, conn);
                    }
                }
            }
        }
    }
    Ok(())
}

/// What a child needs of the server: stdin's replacement and who asked for it.
struct Server<'a> {
    devnull: &'a std::fs::File,
    parent: Pid,
}

/// Reap every child that has ended and send each its exit code.
fn reap_all(children: &mut HashMap<i32, OwnedFd>) {
    loop {
        let (pid, code) = match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => (pid, code),
            Ok(WaitStatus::Signaled(pid, signal, _)) => (pid, -(signal as i32)),
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
            Err(Errno::EINTR) | Ok(_) => continue,
            Err(_) => return,
        };
        if let Some(conn) = children.remove(&pid.as_raw()) {
            // The parent may be gone, or not reading: a failed write loses only this code.
            let _ = nix::sys::socket::send(
                conn.as_raw_fd(),
                &code.to_le_bytes(),
                MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
            );
        }
    }
}

/// The next request and its three descriptors (connection, stdout, stderr); `None` once the
/// parent closed the control socket.
fn next_request(
    control: &OwnedFd,
    buf: &mut [u8],
) -> anyhow::Result<Option<(Request, [OwnedFd; 3])>> {
    loop {
        let mut iov = [IoSliceMut::new(buf)];
        let mut space = nix::cmsg_space!([RawFd; 3]);
        let msg = match recvmsg::<()>(
            control.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).context("reading a request"),
            Ok(m) => m,
        };
        let mut fds: Vec<OwnedFd> = Vec::new();
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                if let ControlMessageOwned::ScmRights(raw) = c {
                    // SAFETY: each was just installed in this process for this message.
                    fds.extend(
                        raw.into_iter()
                            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                    );
                }
            }
        }
        let n = msg.bytes;
        if n == 0 && fds.is_empty() {
            return Ok(None);
        }
        let Ok(req) = postcard::from_bytes::<Request>(&buf[..n]) else {
            continue; // not a request: dropped (its descriptors close)
        };
        let Ok(three) = <[OwnedFd; 3]>::try_from(fds) else {
            continue;
        };
        return Ok(Some((req, three)));
    }
}

/// Fork one child for `req`. In the server: its pid and connection, after the pid and a pidfd
/// were sent on it (`None` if the fork failed and that was reported). The child never returns.
fn fork_one(
    entries: &'static [Entry],
    req: &Request,
    [conn, out, err]: [OwnedFd; 3],
    server: &Server<'_>,
) -> anyhow::Result<Option<(i32, OwnedFd)>> {
    let me = getpid();
    // SAFETY: this process is single-threaded (the server starts no threads), so the child may
    // do anything a fresh process may.
    match unsafe { fork() } {
        Err(e) => {
            let _ = nix::sys::socket::send(
                conn.as_raw_fd(),
                &(-(e as i32)).to_le_bytes(),
                MsgFlags::MSG_NOSIGNAL,
            );
            Ok(None)
        }
        Ok(ForkResult::Child) => child(entries, req, conn, [out, err], server, me),
        Ok(ForkResult::Parent { child }) => {
            drop((out, err));
            let pidfd = crate::process::wait::pidfd_open(child);
            let raw: Vec<RawFd> = pidfd.iter().map(AsRawFd::as_raw_fd).collect();
            let cmsg = [ControlMessage::ScmRights(&raw)];
            let _ = sendmsg::<()>(
                conn.as_raw_fd(),
                &[IoSlice::new(&child.as_raw().to_le_bytes())],
                if raw.is_empty() { &[] } else { &cmsg },
                MsgFlags::MSG_NOSIGNAL,
                None,
            );
            Ok(Some((child.as_raw(), conn)))
        }
    }
}

/// The forkserver child: stdio in place, the server's descriptors closed, the argument read,
/// the entry run; exits with its outcome.
fn child(
    entries: &'static [Entry],
    req: &Request,
    conn: OwnedFd,
    [out, err]: [OwnedFd; 2],
    server: &Server<'_>,
    server_pid: Pid,
) -> ! {
    let parent = server.parent;
    let _ = nix::unistd::dup2_stdin(server.devnull);
    let _ = nix::unistd::dup2_stdout(&out);
    let _ = nix::unistd::dup2_stderr(&err);
    drop((out, err));
    // Keep 0, 1, 2, the parent's pidfd (3) and the connection; close the rest (the control
    // socket, the signalfd, /dev/null, other children's connections).
    let keep = conn.as_raw_fd();
    // SAFETY: close_range closes descriptors of this child only; the kept ones are outside the
    // ranges. The objects that owned the closed ones are never used again here (this function
    // ends in exit).
    unsafe {
        if keep > PARENT_PIDFD + 1 {
            libc::syscall(
                libc::SYS_close_range,
                (PARENT_PIDFD + 1) as u32,
                (keep - 1) as u32,
                0u32,
            );
        }
        libc::syscall(libc::SYS_close_range, (keep + 1) as u32, u32::MAX, 0u32);
    }
    let mut chld = SigSet::empty();
    chld.add(Signal::SIGCHLD);
    let _ = sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&chld), None);
    // SAFETY: restoring the default disposition installs no handler code.
    let _ =
        unsafe { nix::sys::signal::signal(Signal::SIGINT, nix::sys::signal::SigHandler::SigDfl) };
    if req.daemon {
        // Die with the server. If it died between our fork and here, the signal was never
        // armed: our parent is then no longer the server.
        let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
        if getppid() != server_pid {
            std::process::exit(1);
        }
    }
    registry::lock().become_child(Me {
        name: req.name.clone(),
        daemon: req.daemon,
        method: StartMethod::Forkserver,
        parent_pid: parent.as_raw(),
        parent_name: req.parent_name.clone(),
        parent_pidfd: Some(PARENT_PIDFD),
    });
    let mut conn = UnixStream::from(conn);
    let code = match read_arg(&mut conn) {
        Err(e) => {
            eprintln!(
                "Process {} (pid {}): reading its argument: {e}",
                req.name,
                getpid()
            );
            1
        }
        Ok(arg) => {
            drop(conn);
            crate::process::spawn::run_entry(entries, &req.entry, &arg, &req.name)
        }
    };
    let _ = io::stdout().flush();
    std::process::exit(code)
}

fn read_arg(conn: &mut UnixStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    conn.read_exact(&mut len)?;
    let mut arg = vec![0u8; u32::from_le_bytes(len) as usize];
    conn.read_exact(&mut arg)?;
    Ok(arg)
}
