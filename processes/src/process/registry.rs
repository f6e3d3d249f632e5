//! Who is who: this process ([`current_process`]), the process that started it
//! ([`parent_process`]) and the children it started and that still run ([`active_children`]).
//!
//! One mutex holds both facts. It is held across every `fork` this crate makes (as std's stdout
//! and stderr locks are), so no other thread of the parent holds it at that instant; the child
//! inherits it held by itself, replaces "who am I" with its own answer, forgets its parent's
//! children, and lets go before its body runs.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::{Pid, getpid, getppid};

use super::StartMethod;

/// What a child process knows of itself and of its parent.
#[derive(Debug, Clone)]
pub(crate) struct Me {
    pub name: String,
    pub daemon: bool,
    pub method: StartMethod,
    pub parent_pid: i32,
    pub parent_name: String,
    /// A forkserver child's parent is not its kernel parent (the server is): it inherits a
    /// pidfd of the process that asked for it, at this descriptor.
    pub parent_pidfd: Option<RawFd>,
}

/// A child this process started and has not reaped.
#[derive(Debug)]
struct Child {
    name: String,
    daemon: bool,
    method: StartMethod,
    /// Its pidfd, owned by the `Process`, which removes this entry before it closes the fd.
    pidfd: Option<RawFd>,
}

#[derive(Debug)]
pub(crate) struct Registry {
    /// `None` in the main process.
    pub me: Option<Me>,
    /// Use through [`Registry::children`].
    children: BTreeMap<i32, Child>,
    /// Set in a new child: `children` are still its parent's, to be forgotten on first use.
    /// (Forgetting them at the fork would cost every child a walk over its parent's entries,
    /// and a copy of every page they are on.)
    inherited: bool,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    me: None,
    children: BTreeMap::new(),
    inherited: false,
});

/// The registry, locked. Every change is one insert, remove or assignment: a panic elsewhere
/// cannot leave it half-changed, so a poisoned lock is used as it is.
pub(crate) fn lock() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

impl Registry {
    /// In a new child, under the lock it inherited: it is `me` now, and has no children yet.
    pub(crate) fn become_child(&mut self, me: Me) {
        self.inherited = true;
        self.me = Some(me);
    }

    /// This process's children (its parent's are dropped on the first call in a child).
    fn children(&mut self) -> &mut BTreeMap<i32, Child> {
        if self.inherited {
            self.inherited = false;
            self.children.clear();
        }
        &mut self.children
    }

    pub(crate) fn add_child(
        &mut self,
        pid: i32,
        name: &str,
        daemon: bool,
        method: StartMethod,
        pidfd: Option<RawFd>,
    ) {
        self.children().insert(
            pid,
            Child {
                name: name.to_owned(),
                daemon,
                method,
                pidfd,
            },
        );
    }

    pub(crate) fn remove_child(&mut self, pid: i32) {
        self.children().remove(&pid);
    }

    /// This process's name: `MainProcess` in the main process, as in Python.
    pub(crate) fn my_name(&self) -> String {
        self.me
            .as_ref()
            .map_or_else(|| MAIN_NAME.to_owned(), |m| m.name.clone())
    }
}

/// The name of the main process, as Python calls it.
pub const MAIN_NAME: &str = "MainProcess";

/// What [`current_process`] tells about this process. Python's `current_process()` returns
/// the `Process` object itself; a Rust `Process` is the parent's handle on a child, so this is
/// a plain record instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentProcess {
    /// `MainProcess` in the main process; in a child, the name its parent gave it
    /// (`Process-N` by default). Python's `current_process().name`.
    pub name: String,
    /// This process's pid. Python's `current_process().pid` and `.ident`.
    pub pid: i32,
    /// Whether the parent made it a daemon. Python's `current_process().daemon`.
    pub daemon: bool,
    /// How it was started; `None` for the main process (nobody started it through this crate).
    pub start_method: Option<StartMethod>,
}

impl CurrentProcess {
    /// Always true: a process asking about itself is running. Python's `is_alive()`.
    pub fn is_alive(&self) -> bool {
        true
    }

    /// Always `None`: a running process has no exit code yet. Python's `exitcode`.
    pub fn exitcode(&self) -> Option<i32> {
        None
    }
}

/// This process: its name, pid, daemon flag and start method. Replaces
/// `multiprocessing.current_process()`. In a child started by this crate (fork, spawn or
/// forkserver) the name is the one its parent gave the `Process`; otherwise `MainProcess`.
pub fn current_process() -> CurrentProcess {
    let reg = lock();
    CurrentProcess {
        name: reg.my_name(),
        pid: getpid().as_raw(),
        daemon: reg.me.as_ref().is_some_and(|m| m.daemon),
        start_method: reg.me.as_ref().map(|m| m.method),
    }
}

/// A live child, as [`active_children`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildInfo {
    /// Its pid (compare with [`Process::pid`](super::Process::pid)).
    pub pid: i32,
    /// Its name.
    pub name: String,
    /// Whether it is a daemon.
    pub daemon: bool,
    /// How it was started.
    pub start_method: StartMethod,
}

/// Whether a child has ended (it may not be reaped yet): its pidfd is readable, or, without
/// one, `waitid` with `WNOWAIT` sees its exit without reaping it.
fn has_ended(pid: i32, child: &Child) -> bool {
    if let Some(raw) = child.pidfd {
        // SAFETY: the descriptor is owned by the child's `Process`, which removes this entry
        // (under the lock we hold) before it closes the descriptor: it is open for as long as
        // this borrow, which ends before the lock is released.
        let fd = unsafe { BorrowedFd::borrow_raw(raw) };
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        return matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0);
    }
    if child.method == StartMethod::Forkserver {
        // Not our kernel child, and no pidfd: assume it runs until its handle learns otherwise.
        return false;
    }
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    !matches!(
        waitid(Id::Pid(Pid::from_raw(pid)), flags),
        Ok(WaitStatus::StillAlive)
    )
}

/// The children this process started (fork, spawn or forkserver) that are still running,
/// oldest pid first. Replaces `multiprocessing.active_children()`. Unlike Python's, it does not
/// reap the ones that ended: their `Process` handles do, in `join`, `is_alive` or drop. Threads
/// other than the caller's see the same list: it is the process's, not the thread's.
pub fn active_children() -> Vec<ChildInfo> {
    let mut reg = lock();
    reg.children()
        .iter()
        .filter(|(pid, child)| !has_ended(**pid, child))
        .map(|(&pid, c)| ChildInfo {
            pid,
            name: c.name.clone(),
            daemon: c.daemon,
            start_method: c.method,
        })
        .collect()
}

/// The process that started this one, as [`parent_process`] returns it. Replaces Python's
/// `multiprocessing.parent_process()` object (`pid`, `name`, `is_alive()`, `join(timeout)`,
/// `sentinel`).
#[derive(Debug)]
pub struct ParentProcess {
    pid: i32,
    name: String,
    /// A pidfd of the parent, readable once it has ended; `None` if it had ended already when
    /// asked, or where pidfds are unavailable.
    pidfd: Option<OwnedFd>,
    /// Whether the parent is our kernel parent (fork, spawn), so `getppid` can tell.
    kernel_parent: bool,
}

impl ParentProcess {
    /// The parent's pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The parent's name (`MainProcess`, or the name its own parent gave it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the parent is still running. Replaces `parent_process().is_alive()`.
    pub fn is_alive(&self) -> bool {
        match &self.pidfd {
            Some(fd) => {
                let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                matches!(poll(&mut fds, PollTimeout::ZERO), Ok(0))
            }
            // Once the parent dies, this process is handed to a reaper: getppid changes.
            None => self.kernel_parent && getppid().as_raw() == self.pid,
        }
    }

    /// Wait at most `timeout` for the parent to end; `true` if it has. Replaces
    /// `parent_process().join(timeout)` (which returns `None` either way).
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if !self.is_alive() {
                return true;
            }
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            if left.is_zero() {
                return false;
            }
            match &self.pidfd {
                Some(fd) => {
                    let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
                    let t = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
                    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                    match poll(&mut fds, t) {
                        Ok(_) | Err(Errno::EINTR) => {}
                        // Cannot wait on it: check by getppid below, every few milliseconds.
                        Err(_) => std::thread::sleep(left.min(Duration::from_millis(5))),
                    }
                }
                None => std::thread::sleep(left.min(Duration::from_millis(5))),
            }
        }
    }

    /// A descriptor that becomes readable when the parent ends (a pidfd), to wait on beside
    /// others with `poll`. Replaces `parent_process().sentinel`. `None` if the parent had ended
    /// already when [`parent_process`] was called, or where pidfds are unavailable.
    pub fn sentinel(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(AsFd::as_fd)
    }
}

/// The process that started this one through this crate, or `None` in the main process.
/// Replaces `multiprocessing.parent_process()`. For a forkserver child it is the process that
/// asked for it (its kernel parent is the server), as in Python.
pub fn parent_process() -> Option<ParentProcess> {
    let me = lock().me.clone()?;
    if let Some(raw) = me.parent_pidfd {
        // SAFETY: a forkserver child inherits this pidfd from the server at a fixed number and
        // nothing in this crate closes it; it is duplicated here, not taken.
        let fd = unsafe { BorrowedFd::borrow_raw(raw) };
        return Some(ParentProcess {
            pid: me.parent_pid,
            name: me.parent_name,
            pidfd: fd.try_clone_to_owned().ok(),
            kernel_parent: false,
        });
    }
    // A pidfd names the process for as long as it is open; it names *our parent* if our
    // parent is still that pid after it was opened (a dead parent's pid is not reused while
    // we are still its child, and once it dies we are handed to a reaper).
    let pidfd = super::wait::pidfd_open(Pid::from_raw(me.parent_pid))
        .filter(|_| getppid().as_raw() == me.parent_pid);
    Some(ParentProcess {
        pid: me.parent_pid,
        name: me.parent_name,
        pidfd,
        kernel_parent: true,
    })
}

/// The raw descriptor of an optional owned one, for the registry.
pub(crate) fn raw(fd: &Option<OwnedFd>) -> Option<RawFd> {
    fd.as_ref().map(AsRawFd::as_raw_fd)
}
