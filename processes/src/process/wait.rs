//! The running child's side of [`Process`]: reaping (`is_alive`, `join`, `join_timeout`),
//! signals (`terminate`, `kill`), and what a drop does.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::{DAEMON_GRACE, Process, StartMethod, State, registry};

impl Process {
    /// Reap the child if it has exited (`block`: wait until it has). `Some(exitcode)` once
    /// it is done.
    fn reap(&mut self, block: bool) -> anyhow::Result<Option<i32>> {
        let pid = match &self.state {
            State::Running { pid, .. } => *pid,
            State::Done { code, .. } => return Ok(Some(*code)),
            State::New(_) => bail!("process {} was not started", self.name),
            State::Failed => bail!(
                "process {}: its start failed, so there is no child",
                self.name
            ),
            State::Closed(_) => bail!("process {} is closed", self.name),
        };
        let code = if self.method == StartMethod::Forkserver {
            match self.server_report(block)? {
                Some(code) => code,
                None => return Ok(None),
            }
        } else {
            let flags = (!block).then_some(WaitPidFlag::WNOHANG);
            loop {
                match waitpid(pid, flags) {
                    Ok(WaitStatus::StillAlive) => return Ok(None),
                    Ok(WaitStatus::Exited(_, code)) => break code,
                    Ok(WaitStatus::Signaled(_, signal, _)) => break -(signal as i32),
                    Ok(_) | Err(Errno::EINTR) => continue,
                    Err(e) => {
                        return Err(e).with_context(|| {
                            format!("waiting for process {} (pid {pid})", self.name)
                        });
                    }
                }
            }
        };
        // Out of the registry before its pidfd can be closed (the registry borrows it).
        registry::lock().remove_child(pid.as_raw());
        let old = std::mem::replace(&mut self.state, State::Failed);
        let sentinel = match old {
            State::Running {
                conn: Some(conn), ..
            } => Some(conn),
            State::Running { pidfd, .. } => pidfd,
            _ => None,
        };
        self.state = State::Done { code, sentinel };
        Ok(Some(code))
    }

    /// A forkserver child's exit code, as the server reports it on the connection. If the
    /// server died (the connection ends with no code), the code is lost: wait for the child
    /// itself on its pidfd, then report 255, as Python does.
    fn server_report(&mut self, block: bool) -> anyhow::Result<Option<i32>> {
        let State::Running { pidfd, conn, .. } = &mut self.state else {
            return Ok(None);
        };
        if let Some(c) = conn.as_ref() {
            if !block && !ready(c.as_fd(), Duration::ZERO)? {
                return Ok(None);
            }
            let mut code = [0u8; 4];
            let mut got = 0;
            while got < 4 {
                match nix::unistd::read(c.as_fd(), &mut code[got..]) {
                    // End of file, or reset (the server died with bytes unread): gone.
                    Ok(0) | Err(Errno::ECONNRESET) => break,
                    Ok(n) => got += n,
                    Err(Errno::EINTR) => {}
                    Err(e) => return Err(e).context("reading the fork server's report"),
                }
            }
            if got == 4 {
                return Ok(Some(i32::from_le_bytes(code)));
            }
            // The server is gone: from now on the pidfd tells when the child ends.
            *conn = None;
        }
        match pidfd.as_ref() {
            Some(fd) => {
                let wait = if block { Duration::MAX } else { Duration::ZERO };
                Ok(ready(fd.as_fd(), wait)?.then_some(255))
            }
            // No pidfd either: nothing can tell any more.
            None => Ok(Some(255)),
        }
    }

    /// Whether the child is still running (reaping it if it has ended). Replaces
    /// `p.is_alive()`; `false` before `start`.
    pub fn is_alive(&mut self) -> bool {
        matches!(self.state, State::Running { .. }) && matches!(self.reap(false), Ok(None))
    }

    /// Wait for the child to end and return its exit code. Replaces `p.join()` (then
    /// `p.exitcode`).
    ///
    /// # Errors
    ///
    /// If it was never started (or its start failed), or if the child was reaped by someone
    /// else (a `waitpid(-1)` elsewhere, or SIGCHLD set to be ignored).
    pub fn join(&mut self) -> anyhow::Result<i32> {
        match self.reap(true)? {
            Some(code) => Ok(code),
            None => unreachable!("a blocking wait returns an exit status"),
        }
    }

    /// Wait at most `timeout`; `true` if the child has ended (its code is then in
    /// [`Process::exitcode`]). Replaces `p.join(timeout)`. It sleeps in `poll` on a pidfd,
    /// which becomes readable when the child exits: no busy loop. A timeout too large to
    /// make a deadline (`Duration::MAX`) waits without a limit.
    ///
    /// # Errors
    ///
    /// As [`Process::join`].
    pub fn join_timeout(&mut self, timeout: Duration) -> anyhow::Result<bool> {
        // A timeout too large to add to now (`Duration::MAX`) means no limit.
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if self.reap(false)?.is_some() {
                return Ok(true);
            }
            let now = Instant::now();
            let left = match deadline {
                Some(deadline) if now >= deadline => return Ok(false),
                Some(deadline) => deadline - now,
                None => Duration::MAX,
            };
            match self.sentinel() {
                Some(fd) => {
                    ready(fd, left)?;
                }
                // No pidfd (a kernel before 5.3): check every few milliseconds.
                None => std::thread::sleep(left.min(Duration::from_millis(5))),
            }
        }
    }

    fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        match &self.state {
            // A forkserver child is not ours to reap: its pid could be reused once the server
            // reaped it. Its pidfd names it for sure (ESRCH: it has ended, nothing to do).
            State::Running {
                pidfd: Some(fd), ..
            } if self.method == StartMethod::Forkserver => {
                // SAFETY: pidfd_send_signal(2) reads only its integer arguments (no siginfo).
                let r = unsafe {
                    libc::syscall(
                        libc::SYS_pidfd_send_signal,
                        fd.as_raw_fd(),
                        signal as libc::c_int,
                        std::ptr::null::<libc::siginfo_t>(),
                        0u32,
                    )
                };
                if r < 0 && Errno::last() != Errno::ESRCH {
                    return Err(Errno::last())
                        .with_context(|| format!("sending {signal} to process {}", self.name));
                }
            }
            // Only while not yet reaped: then the pid is still ours (a zombie at worst) and
            // cannot have been reused by another process.
            State::Running { pid, .. } => {
                kill(*pid, signal)
                    .with_context(|| format!("sending {signal} to process {}", self.name))?;
            }
            State::Closed(_) => bail!("process {} is closed", self.name),
            _ => {}
        }
        Ok(())
    }

    /// Ask the child to stop: SIGTERM. Replaces `p.terminate()`. Its destructors and `finally`
    /// blocks do not run, and a lock or queue it was using may be left broken. Before start
    /// and after the child has been reaped it does nothing (the pid may belong to another
    /// process by then).
    ///
    /// # Errors
    ///
    /// If `kill(2)` fails (the child was reaped by someone else and its pid is gone), or the
    /// process was [closed](Process::close).
    pub fn terminate(&self) -> anyhow::Result<()> {
        self.signal(Signal::SIGTERM)
    }

    /// Stop the child now: SIGKILL. Replaces `p.kill()`. As [`Process::terminate`] otherwise.
    ///
    /// # Errors
    ///
    /// As [`Process::terminate`].
    pub fn kill(&self) -> anyhow::Result<()> {
        self.signal(Signal::SIGKILL)
    }
}

impl Process {
    /// Release what the handle holds (the sentinel, the closure's leftovers); afterwards only
    /// [`Process::exitcode`] answers, `join` and the signals fail, `is_alive` is false, and
    /// closing again does nothing. Replaces `p.close()`.
    ///
    /// # Errors
    ///
    /// If the child is still running (join or terminate it first), as Python's `ValueError`.
    pub fn close(&mut self) -> anyhow::Result<()> {
        if matches!(self.state, State::Running { .. }) && self.reap(false)?.is_none() {
            bail!(
                "process {} is still running: join() or terminate() it before close()",
                self.name
            );
        }
        let code = self.exitcode();
        // An unstarted process's closure, or a finished one's sentinel, is dropped here.
        self.state = State::Closed(code);
        Ok(())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if !matches!(self.state, State::Running { .. }) {
            return;
        }
        if self.daemon {
            let _ = self.terminate();
            if !matches!(self.join_timeout(DAEMON_GRACE), Ok(true)) {
                let _ = self.kill();
            }
        }
        let _ = self.reap(true);
        if let State::Running { pid, .. } = &self.state {
            // Reaped elsewhere (the reap failed): still leave the registry before the pidfd
            // closes.
            registry::lock().remove_child(pid.as_raw());
        }
    }
}

/// Whether `fd` becomes readable within `wait` (`Duration::MAX`: no limit).
fn ready(fd: BorrowedFd<'_>, wait: Duration) -> anyhow::Result<bool> {
    let deadline = Instant::now().checked_add(wait);
    loop {
        let left = deadline.map_or(Duration::MAX, |d| {
            d.saturating_duration_since(Instant::now())
        });
        // Round up, so a sub-millisecond remainder still sleeps instead of spinning; a wait
        // longer than poll can express is cut into several.
        let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(n) if n > 0 => return Ok(true),
            Ok(_) if left.is_zero() || deadline.is_some_and(|d| Instant::now() >= d) => {
                return Ok(false);
            }
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e).context("poll on a child's sentinel"),
        }
    }
}

/// Open a pidfd for `pid`: an fd that polls readable when the process exits.
pub(super) fn pidfd_open(pid: Pid) -> Option<OwnedFd> {
    // SAFETY: pidfd_open(2) takes a pid and a flags word, touches no memory of ours, and
    // returns a new file descriptor (close-on-exec) or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel just created this descriptor for us; nothing else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
