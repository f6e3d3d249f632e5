//! The forkserver start method: a [`ForkServer`] is a fresh copy of this binary (fork + exec,
//! so none of the parent's memory, threads or locks), started once, that forks every child on
//! request. Python's `multiprocessing.forkserver`.
//!
//! # The protocol
//!
//! The parent holds one end of a `SOCK_SEQPACKET` socket pair, the *control* socket; the server
//! has the other as its stdin. To start a child the parent makes a stream socket pair, the
//! child's *connection*, and sends the server one message: the request (entry, name, daemon,
//! the parent's name) with three descriptors attached (`SCM_RIGHTS`): the server's end of the
//! connection and the parent's stdout and stderr. Then it writes the argument on its end
//! (length-prefixed). The server forks; the child puts the stdout and stderr it was sent in
//! place, reads the argument, runs the entry and exits. The server answers on the connection
//! with the child's pid and a pidfd of it, and, when the child has exited and been reaped, its
//! exit code (Python's convention: minus the signal), then closes the connection. So the
//! parent's end of the connection is the child's sentinel: readable once the exit code is
//! there; and the pidfd lets the parent signal the child without racing a reused pid.
//!
//! The server is single-threaded: forking in it is always safe. It learns of its children's
//! exits by `SIGCHLD` on a signalfd. It ends when the parent does (it watches a pidfd of its
//! parent) and when the parent closes the control socket ([`ForkServer::shutdown`]), once the
//! children it started have been reported. Its daemon children die with it
//! (`PR_SET_PDEATHSIG`): so a daemon child dies when the parent dies, as with fork. If the server
//! is killed, the children's exit codes are lost: a `Process` then waits for the child itself to
//! end (on its pidfd) and reports 255, as Python does; the next start runs a new server.
//!
//! A forkserver child has stdin on `/dev/null`, the parent's stdout and stderr, its connection,
//! and descriptor 3: a pidfd of the parent (the [`parent_process`](super::parent_process)
//! sentinel). Nothing else of the parent: neither its memory (a value the parent made at run
//! time) nor its other descriptors.

use std::io::{IoSlice, IoSliceMut, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, socketpair,
};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::registry;
use super::spawn::SPAWN_FLAG;
use super::{Process, State, Work};

mod server;
pub(crate) use server::serve;

/// The name under which a chapter binary runs as a fork server (`BINARY --helper
/// processes-forkserver`); [`spawn_main`](super::spawn_main) recognises it. No entry may have it.
pub const FORKSERVER_ENTRY: &str = "processes-forkserver";

/// Where a forkserver child finds the pidfd of the process that asked for it.
pub(crate) const PARENT_PIDFD: RawFd = 3;

/// How long the parent waits for a server to say it is ready, or to answer a request.
const ANSWER_LIMIT: Duration = Duration::from_secs(30);

/// The largest request message (names are short; the argument travels on the connection).
const MAX_REQUEST: usize = 64 * 1024;

#[derive(Serialize, Deserialize)]
struct Request {
    entry: String,
    name: String,
    daemon: bool,
    parent_name: String,
}

/// A fork server: a clean process, this binary run afresh, that forks children on request.
/// Replaces `multiprocessing.forkserver` (whose one server per program is [`ForkServer::shared`]).
///
/// It starts on first use (or [`ForkServer::ensure_running`]) and again after it died. Dropping
/// the last handle on a server that [`ForkServer::new`] made shuts it down.
#[derive(Debug)]
pub struct ForkServer {
    exe: PathBuf,
    running: Mutex<Option<Arc<Running>>>,
}

#[derive(Debug)]
struct Running {
    pid: Pid,
    control: OwnedFd,
}

/// A child the server started: its pid, a pidfd of it (if the server could open one), and the
/// connection on which its exit code will arrive.
pub(crate) struct Started {
    pub pid: Pid,
    pub pidfd: Option<OwnedFd>,
    pub conn: OwnedFd,
}

static SHARED: Mutex<Vec<Arc<ForkServer>>> = Mutex::new(Vec::new());

fn shared_list() -> MutexGuard<'static, Vec<Arc<ForkServer>>> {
    SHARED.lock().unwrap_or_else(|e| e.into_inner())
}

impl ForkServer {
    /// A server that runs `exe` (a binary whose `main` calls
    /// [`spawn_main`](super::spawn_main) with the entries its children may run). Not started
    /// until first used.
    pub fn new(exe: impl Into<PathBuf>) -> ForkServer {
        ForkServer {
            exe: exe.into(),
            running: Mutex::new(None),
        }
    }

    /// The one server of this process for `exe` (by default this binary), made on first use.
    /// Python has one fork server per program; this has one per binary it runs.
    ///
    /// # Errors
    /// If no `exe` is given and this binary cannot be found.
    pub fn shared(exe: Option<&Path>) -> anyhow::Result<Arc<ForkServer>> {
        let exe = match exe {
            Some(e) => e.to_owned(),
            None => std::env::current_exe().context("finding this binary for the fork server")?,
        };
        let mut list = shared_list();
        if let Some(s) = list.iter().find(|s| s.exe == exe) {
            return Ok(Arc::clone(s));
        }
        let s = Arc::new(ForkServer::new(exe));
        list.push(Arc::clone(&s));
        Ok(s)
    }

    /// Shut down every shared server ([`ForkServer::shared`]) and reap it: each ends once the
    /// children it started have ended. The next use starts a new one.
    ///
    /// # Errors
    /// As [`ForkServer::shutdown`], for the first server that fails.
    pub fn shutdown_shared() -> anyhow::Result<()> {
        let servers: Vec<Arc<ForkServer>> = std::mem::take(&mut *shared_list());
        for s in servers {
            s.shutdown()?;
        }
        Ok(())
    }

    /// The binary it runs.
    pub fn exe(&self) -> &Path {
        &self.exe
    }

    fn slot(&self) -> MutexGuard<'_, Option<Arc<Running>>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The server's pid, if it runs (it may have died since).
    pub fn pid(&self) -> Option<i32> {
        self.slot().as_ref().map(|r| r.pid.as_raw())
    }

    /// Start the server unless it runs; its pid. A server found dead is reaped and replaced.
    /// Replaces `multiprocessing.forkserver.ensure_running()`.
    ///
    /// # Errors
    /// If the binary cannot be started, or does not answer as a fork server within 30 s (its
    /// `main` does not call `spawn_main`), or the socket pair cannot be made.
    pub fn ensure_running(&self) -> anyhow::Result<i32> {
        self.running().map(|r| r.pid.as_raw())
    }

    fn running(&self) -> anyhow::Result<Arc<Running>> {
        let mut slot = self.slot();
        if let Some(r) = slot.as_ref() {
            match waitpid(r.pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => return Ok(Arc::clone(r)),
                // Dead (now reaped), or reaped by someone else: start another.
                _ => *slot = None,
            }
        }
        let r = Arc::new(launch(&self.exe)?);
        *slot = Some(Arc::clone(&r));
        Ok(r)
    }

    /// A server whose sockets were closed is dying or dead: make sure (SIGKILL), reap it, and
    /// clear the slot, so the next request starts a new one.
    fn forget(&self, dead: &Arc<Running>) {
        let mut slot = self.slot();
        if slot.as_ref().is_some_and(|r| Arc::ptr_eq(r, dead)) {
            *slot = None;
            let _ = nix::sys::signal::kill(dead.pid, Signal::SIGKILL);
            while let Err(Errno::EINTR) = waitpid(dead.pid, None) {}
        }
    }

    /// Stop the server and reap it. It stops taking requests at once and ends when the
    /// children it started have ended (their exit codes still reach their handles). Python's
    /// server is stopped this way at exit.
    ///
    /// # Errors
    /// If waiting for the server fails (it was reaped elsewhere).
    pub fn shutdown(&self) -> anyhow::Result<()> {
        let Some(r) = self.slot().take() else {
            return Ok(());
        };
        let pid = r.pid;
        // The control socket closes when the last request in flight lets go of it.
        drop(r);
        loop {
            match waitpid(pid, None) {
                Err(Errno::EINTR) => continue,
                Err(Errno::ECHILD) => return Ok(()),
                Err(e) => return Err(e).context("waiting for the fork server"),
                Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) => return Ok(()),
                Ok(_) => continue,
            }
        }
    }

    /// Ask the server to start a child running `entry` with `arg`; one retry with a new server
    /// if the old one turned out dead.
    pub(crate) fn start_child(
        &self,
        name: &str,
        daemon: bool,
        entry: &str,
        arg: &[u8],
    ) -> anyhow::Result<Started> {
        let request = Request {
            entry: entry.to_owned(),
            name: name.to_owned(),
            daemon,
            parent_name: registry::lock().my_name(),
        };
        let bytes = postcard::to_allocvec(&request).context("encoding the request")?;
        anyhow::ensure!(
            bytes.len() <= MAX_REQUEST,
            "process {name}: request too large"
        );
        let mut last = None;
        for _ in 0..2 {
            let server = self.running()?;
            match request_child(&server, &bytes, arg) {
                Ok(started) => return Ok(started),
                Err(Failure::ServerGone(e)) => {
                    self.forget(&server);
                    last = Some(e);
                }
                Err(Failure::Other(e)) => {
                    return Err(e).with_context(|| format!("process {name}: fork server"));
                }
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("unknown")))
            .with_context(|| format!("process {name}: the fork server died, twice"))
    }
}

impl Process {
    /// A process (start method forkserver) that runs the registered entry `entry` with `arg`,
    /// forked by this binary's shared [`ForkServer`] (started on first use; see
    /// [`Process::exe`] and [`Process::via`] for another). The entry must be registered (see
    /// [`register`](super::register)); [`Process::start`] checks. Replaces `Process(...)` under
    /// `set_start_method('forkserver')`.
    ///
    /// # Errors
    ///
    /// If `arg` cannot be serialized.
    pub fn forkserver_entry<T: Serialize + ?Sized>(
        entry: &str,
        arg: &T,
    ) -> anyhow::Result<Process> {
        let arg = postcard::to_allocvec(arg).context("serializing the child's argument")?;
        Ok(Process::with_work(Work::Forkserver {
            entry: entry.to_owned(),
            arg,
            exe: None,
            server: None,
        }))
    }

    /// For a forkserver process: start it through `server` instead of the shared one. On other
    /// start methods this does nothing.
    pub fn via(mut self, server: &Arc<ForkServer>) -> Process {
        if let State::New(Work::Forkserver { server: s, .. }) = &mut self.state {
            *s = Some(Arc::clone(server));
        }
        self
    }
}

impl Drop for ForkServer {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

enum Failure {
    ServerGone(anyhow::Error),
    Other(anyhow::Error),
}

fn stream_pair() -> nix::Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
}

fn request_child(server: &Running, request: &[u8], arg: &[u8]) -> Result<Started, Failure> {
    let other = |e: anyhow::Error| Failure::Other(e);
    let (mine, theirs) = stream_pair()
        .context("making the child's connection")
        .map_err(other)?;
    let fds = [theirs.as_raw_fd(), libc::STDOUT_FILENO, libc::STDERR_FILENO];
    let sent = sendmsg::<()>(
        server.control.as_raw_fd(),
        &[IoSlice::new(request)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    );
    match sent {
        Ok(_) => {}
        Err(e @ (Errno::EPIPE | Errno::ECONNRESET | Errno::ECONNREFUSED)) => {
            return Err(Failure::ServerGone(anyhow::Error::from(e)));
        }
        Err(e) => return Err(other(anyhow::Error::from(e).context("sending the request"))),
    }
    drop(theirs);
    let mut conn = UnixStream::from(mine);
    // The argument, length-prefixed. A server that died now closes the connection: the write
    // fails with EPIPE (std ignores SIGPIPE) or the answer below never comes.
    let mut framed = (arg.len() as u32).to_le_bytes().to_vec();
    framed.extend_from_slice(arg);
    if let Err(e) = conn.write_all(&framed) {
        return Err(Failure::ServerGone(e.into()));
    }
    let mut pid = [0u8; 4];
    let mut iov = [IoSliceMut::new(&mut pid)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    if !readable_within(&conn, ANSWER_LIMIT) {
        return Err(other(anyhow::anyhow!(
            "the fork server did not answer within {ANSWER_LIMIT:?}"
        )));
    }
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| match e {
        Errno::ECONNRESET => Failure::ServerGone(e.into()),
        e => other(anyhow::Error::from(e).context("reading the fork server's answer")),
    })?;
    let mut pidfd = None;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::ScmRights(fds) = c {
                for fd in fds {
                    // SAFETY: the kernel just installed this descriptor in this process for
                    // this message; nothing else owns it.
                    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                    pidfd.get_or_insert(owned);
                }
            }
        }
    }
    let bytes = msg.bytes;
    if bytes == 0 {
        return Err(Failure::ServerGone(anyhow::anyhow!(
            "the fork server closed the connection without an answer"
        )));
    }
    if bytes < 4 {
        return Err(other(anyhow::anyhow!("a short answer ({bytes} bytes)")));
    }
    let pid = i32::from_le_bytes(pid);
    if pid <= 0 {
        let e = Errno::from_raw(-pid);
        return Err(other(anyhow::Error::from(e).context(format!(
            "fork failed in the fork server{}",
            super::fork::why(e)
        ))));
    }
    Ok(Started {
        pid: Pid::from_raw(pid),
        pidfd,
        conn: OwnedFd::from(conn),
    })
}

fn readable_within(fd: &impl AsFd, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let t = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, t) {
            Ok(n) => return n > 0,
            Err(Errno::EINTR) if !left.is_zero() => continue,
            Err(_) => return false,
        }
    }
}

/// Start a server: run `exe` afresh with the control socket as its stdin, and wait for its
/// ready message.
fn launch(exe: &Path) -> anyhow::Result<Running> {
    let (control, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("making the fork server's control socket")?;
    let mut cmd = Command::new(exe);
    cmd.arg(SPAWN_FLAG)
        .arg(FORKSERVER_ENTRY)
        .stdin(Stdio::from(theirs));
    // SAFETY: between fork and exec only close_range (a system call, no allocation): the
    // server gets stdin (the control socket), stdout and stderr, nothing else of ours.
    unsafe {
        cmd.pre_exec(|| {
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("starting the fork server {}", exe.display()));
    // The command holds our copy of the server's end: let go, or a server that exits at once
    // would never show as end-of-file here.
    drop(cmd);
    let child = child?;
    let pid = Pid::from_raw(child.id() as i32);
    // From here the pid is ours to wait for; std's Child neither waits nor kills on drop.
    drop(child);
    let running = Running { pid, control };
    let mut hello = [0u8; 8];
    let ready = readable_within(&running.control, ANSWER_LIMIT)
        && matches!(
            nix::sys::socket::recv(running.control.as_raw_fd(), &mut hello, MsgFlags::empty()),
            Ok(n) if hello[..n] == *b"ready"
        );
    if !ready {
        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
        bail!(
            "{} did not start as a fork server (its main must call processes::spawn_main first)",
            exe.display()
        );
    }
    Ok(running)
}
