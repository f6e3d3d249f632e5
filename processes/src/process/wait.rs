//! The running child's side of [`Process`]: reaping (`is_alive`, `join`, `join_timeout`),
//! signals (`terminate`, `kill`), and what a drop does.

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::{DAEMON_GRACE, Process, State};

impl Process {
    /// Reap the child if it has exited (`block`: wait until it has). `Some(exitcode)` once
    /// it is done.
    fn reap(&mut self, block: bool) -> anyhow::Result<Option<i32>> {
        let pid = match &self.state {
            State::Running { pid, .. } => *pid,
            State::Done(code) => return Ok(Some(*code)),
            State::New(_) => bail!("process {} was not started", self.name),
            State::Failed => bail!(
                "process {}: its start failed, so there is no child",
                self.name
            ),
        };
        let flags = (!block).then_some(WaitPidFlag::WNOHANG);
        loop {
            let code = match waitpid(pid, flags) {
                Ok(WaitStatus::StillAlive) => return Ok(None),
                Ok(WaitStatus::Exited(_, code)) => code,
                Ok(WaitStatus::Signaled(_, signal, _)) => -(signal as i32),
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("waiting for process {} (pid {pid})", self.name));
                }
            };
            // The pidfd (if any) is closed with the old state.
            self.state = State::Done(code);
            return Ok(Some(code));
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
            match &self.state {
                State::Running {
                    pidfd: Some(fd), ..
                } => {
                    // Round up, so a sub-millisecond remainder still sleeps instead of spinning;
                    // a wait longer than poll can express is cut into several.
                    let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
                    let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
                    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                    match poll(&mut fds, timeout) {
                        Ok(_) | Err(Errno::EINTR) => {}
                        Err(e) => return Err(e).context("poll on the child's pidfd"),
                    }
                }
                // No pidfd (a kernel before 5.3): check every few milliseconds.
                _ => std::thread::sleep(left.min(Duration::from_millis(5))),
            }
        }
    }

    fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        // Only while not yet reaped: then the pid is still ours (a zombie at worst) and cannot
        // have been reused by another process.
        if let State::Running { pid, .. } = &self.state {
            kill(*pid, signal)
                .with_context(|| format!("sending {signal} to process {}", self.name))?;
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
    /// If `kill(2)` fails (the child was reaped by someone else and its pid is gone).
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
