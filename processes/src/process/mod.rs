//! [`Process`]: Python's `multiprocessing.Process` for Rust on Linux, with the `fork`, `spawn`
//! and `forkserver` start methods, and the module functions around it: [`current_process`],
//! [`parent_process`], [`active_children`].
//!
//! # Fork safety: what binds you
//!
//! `fork()` copies the whole address space but only the calling thread. Any lock another thread
//! held at that instant stays locked forever in the child, and nobody is left to unlock it. So,
//! in the child of a multi-threaded parent, only async-signal-safe work is safe until it execs
//! or exits. This type makes its own part safe:
//!
//! - the parent takes std's stdout and stderr locks *before* forking and lets go after, so no
//!   other parent thread holds them at the instant of the fork; the child inherits them held
//!   by itself (same thread, same `ThreadId`) and unlocks them before the body runs, so the
//!   body's prints, its panic message and the threads it starts all find them free;
//! - the child leaves with `_exit`, so no destructor or `atexit` handler of the parent runs
//!   twice and no buffered output is written twice (the parent flushes before forking);
//! - `lesson::Cx::say` in a child prints without touching the narration records' mutex.
//! - a panic in a fork child (in the body or a thread it starts) does not go through std's
//!   default panic hook, which takes a private lock (the one that keeps two panic messages or
//!   backtraces apart) that another parent thread may have held at the fork, printing a panic
//!   or resolving a `Backtrace`. Before its first fork this crate wraps the installed hook
//!   once: in the parent it calls the hook it wrapped; in a fork child it writes the panic as
//!   one line ([`lesson::panic_line`]) to stderr itself (one `write`, no lock, no backtrace).
//!   A hook you install after the first fork replaces the wrapper: it then runs in children
//!   too.
//!
//! What is left to you: in a **fork** child of a multi-threaded parent, do not take a lock that
//! another parent thread may have held (your own mutexes, a channel other threads use, the
//! environment lock behind `std::env::set_var`, and std's backtrace lock: capturing a
//! `std::backtrace::Backtrace`, which `anyhow` does for each error when `RUST_BACKTRACE` or
//! `RUST_LIB_BACKTRACE` is set). Allocating is fine with glibc, whose `fork` resets malloc's
//! locks. If you cannot promise that, use [`StartMethod::Spawn`]: the child is
//! a fresh process running the same binary, with none of the parent's state (nor its locks).
//!
//! Python's third method, `forkserver`, starts one server process early, while the parent is
//! still single-threaded, and forks every child from it on request (over a Unix socket, passing
//! fds). It gives fork's speed without fork's danger, at the cost of a server round trip.
//! Python 3.14 made it the default on Linux for exactly the reason above.
//!
//! # Unsafe code: its rules, and what checks them
//!
//! - `fork` (in `fork.rs`): between fork and `_exit` the child calls only system calls
//!   (`close`, `close_range`, `prctl`, `getppid`), unlocks the two std locks it owns, runs the
//!   body under `catch_unwind`, flushes and `_exit`s. It never returns into the parent's code
//!   and never drops the parent's objects: their copies in the child are left to `_exit`.
//! - `close` of a `close_in_child` descriptor in the child: the descriptor belongs to an object
//!   of the parent whose copy in the child is never used or dropped, so nothing closes it twice.
//! - `pidfd_open` + `OwnedFd::from_raw_fd`: the kernel returns a new descriptor that nothing
//!   else owns; the `Process` owns it until the child is reaped.
//! - `pre_exec` (in `spawn.rs`, `forkserver/mod.rs`): between fork and exec only
//!   `close_range`, `prctl` and `getppid`, no allocation.
//! - The registry (`registry.rs`) is locked across every fork this crate makes, so the child
//!   inherits it held by its own thread and may change its copy. It borrows each running
//!   child's pidfd by number: a `Process` removes its entry (under the lock) before it can
//!   close that descriptor.
//! - The fork server (`forkserver/`) forks in a single-threaded process; its child keeps 0-3
//!   and its connection and `close_range`s the rest, and never returns into the server loop
//!   (it `exit`s, also after a panic of the entry). Descriptors received by `SCM_RIGHTS` are
//!   new and owned by whoever received them. A forkserver child is signalled through its pidfd
//!   (`pidfd_send_signal`), since the server, not we, reaps it and its pid could be reused.
//!
//! Checked by: `tests/no_children_left.rs` (`waitpid(-1)` finds no child after every kind this
//! crate makes), `tests/faults.rs` (a child killed at chosen moments, a handle dropped in
//! every state, a thread printing in a child, a spawned child's descriptors) and
//! `tests/rlimits.rs` (a refused start leaves no child and no descriptor),
//! `tests/cpython_test_start.rs` (the fork server killed or interrupted while a child runs, a
//! daemon child dying with it, the descriptors a forkserver child has) and
//! `tests/cpython_test_process_api.rs` (a child sees its own children only, sentinels stay
//! readable until `close`), all from inside the multi-threaded test harness.
//!
//! # Layout
//!
//! This module holds the [`Process`] type, its constructors and `start`; `wait.rs` the running
//! child's side (reaping, `join`, signals, `sentinel`, `close`, drop); `fork.rs` the fork
//! child's side; `spawn.rs` the spawn start method (the [`Entry`] table and the spawned child's
//! [`spawn_main`]); `forkserver/` the [`ForkServer`] (client in `mod.rs`, server in
//! `server.rs`); `registry.rs` who is who ([`current_process`], [`parent_process`],
//! [`active_children`]).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use nix::unistd::Pid;
use serde::Serialize;

mod fork;
mod forkserver;
mod registry;
mod spawn;
mod wait;

use fork::fork_child;
pub use forkserver::{FORKSERVER_ENTRY, ForkServer};
pub use registry::{
    ChildInfo, CurrentProcess, MAIN_NAME, ParentProcess, active_children, current_process,
    parent_process,
};
use spawn::spawn_child;
pub use spawn::{Entry, SPAWN_FLAG, decode, register, spawn_main};
use wait::pidfd_open;

/// How long a daemon child gets to leave after SIGTERM, when its handle is dropped, before
/// SIGKILL.
const DAEMON_GRACE: Duration = Duration::from_secs(2);

static NEXT: AtomicUsize = AtomicUsize::new(1);

/// The seed's subclass style: a type whose `run` is the child's body. Replaces overriding
/// `Process.run`. The child runs it on its own copy of the value: changes to `self` in the
/// child never reach the parent.
pub trait Run {
    /// The child's body.
    fn run(&mut self) -> anyhow::Result<()>;
}

/// What a child's body may return: nothing, or a `Result` whose error becomes the child's
/// message on stderr and exit code 1.
pub trait Outcome {
    /// `Err(message)` if the body failed.
    fn into_outcome(self) -> Result<(), String>;
}

impl Outcome for () {
    fn into_outcome(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: std::fmt::Display> Outcome for Result<(), E> {
    fn into_outcome(self) -> Result<(), String> {
        self.map_err(|e| format!("{e:#}"))
    }
}

/// How a child process is made. Python's `multiprocessing.set_start_method(...)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartMethod {
    /// Copy this process (`fork()`): fast, inherits everything, unsafe to combine with threads
    /// (see the module docs). Python's Linux default up to 3.13.
    Fork,
    /// Run this binary again and call a registered [`Entry`] with a serialized argument:
    /// slower, inherits nothing, safe in a multi-threaded parent. Python's default on macOS
    /// and Windows.
    Spawn,
    /// Ask a [`ForkServer`] (this binary run afresh, once, single-threaded) to fork a child
    /// that calls a registered [`Entry`]: inherits nothing of the parent, as spawn, and starts
    /// about as fast as fork. Python's default on Linux since 3.14.
    Forkserver,
}

/// `Send`, so a `Process` can be handed to (and started or joined by) another thread.
type Body = Box<dyn FnOnce() -> Result<(), String> + Send>;

enum Work {
    Fork(Body),
    Spawn {
        entry: String,
        arg: Vec<u8>,
        exe: Option<PathBuf>,
    },
    Forkserver {
        entry: String,
        arg: Vec<u8>,
        exe: Option<PathBuf>,
        server: Option<Arc<ForkServer>>,
    },
}

enum State {
    New(Work),
    Running {
        pid: Pid,
        /// A pidfd of the child: readable once it has ended; also how a forkserver child is
        /// signalled without racing a reused pid.
        pidfd: Option<OwnedFd>,
        /// A forkserver child's connection to the server, on which its exit code arrives;
        /// `None` for fork and spawn, and once the server died.
        conn: Option<OwnedFd>,
    },
    Done {
        code: i32,
        /// What [`Process::sentinel`] returns: kept until [`Process::close`] or drop.
        sentinel: Option<OwnedFd>,
    },
    /// `start` failed: nothing runs, nothing to reap.
    Failed,
    /// [`Process::close`]d: only the exit code is left.
    Closed(Option<i32>),
}

/// A child process. Replaces `multiprocessing.Process`.
///
/// ```no_run
/// use processes::Process;
///
/// fn greet(name: &'static str) {
///     println!("hello {name}");
/// }
///
/// let mut p = Process::target(greet, "luck").named("greeter");   // Process(target=, args=)
/// p.start()?;                                                     // p.start()
/// assert_eq!(p.join()?, 0);                                       // p.join(); p.exitcode
/// # Ok::<(), anyhow::Error>(())
/// ```
///
/// # Threads in the child: not waited for (a divergence from Python)
///
/// A fork child has one thread, the one that runs the body. Threads the body starts are *not*
/// waited for: when the body returns, the child leaves with `_exit` at once and they die
/// wherever they are. Python's child joins its non-daemon threads before it exits (its
/// `test_wait_for_threads`). Join the threads whose work you need before the body returns;
/// the `api` lesson shows both. (A spawned child is an ordinary program: it ends when its entry
/// returns and `std::process::exit` runs, which does not wait for threads either.)
///
/// # Dropping
///
/// Dropping a `Process` that still runs waits for it (Python joins non-daemon children at
/// exit), or, for a daemon, terminates it first (SIGTERM, then SIGKILL after a grace period).
/// Either way it is reaped: no zombie is left. An unstarted `Process`, or one whose start
/// failed, has no child: dropping it returns at once. The closure was dropped in the parent
/// as soon as the child was forked (or the start failed), so the descriptors it captured do
/// not keep the child waiting. Descriptors held *elsewhere* can: if the child waits for
/// end-of-file on a pipe or socket whose other end the parent still holds, close that end
/// before the `Process` is dropped. Rust drops struct and tuple fields in declaration order,
/// so in a `(Process, End)` the `Process` waits before `End` is closed: a hang; put the end
/// first, or drop it explicitly.
pub struct Process {
    name: String,
    daemon: bool,
    method: StartMethod,
    close_in_child: Vec<RawFd>,
    keep_only: Option<Vec<RawFd>>,
    state: State,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("name", &self.name)
            .field("pid", &self.pid())
            .field("daemon", &self.daemon)
            .field("exitcode", &self.exitcode())
            .finish()
    }
}

fn default_name() -> String {
    format!("Process-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

impl Process {
    fn with_work(work: Work) -> Process {
        Process {
            name: default_name(),
            daemon: false,
            method: match work {
                Work::Fork(_) => StartMethod::Fork,
                Work::Spawn { .. } => StartMethod::Spawn,
                Work::Forkserver { .. } => StartMethod::Forkserver,
            },
            close_in_child: Vec::new(),
            keep_only: None,
            state: State::New(work),
        }
    }

    /// A process (start method fork) that runs `f`; the closure captures the arguments.
    /// Replaces `Process(target=f)`.
    pub fn new<F, R>(f: F) -> Process
    where
        F: FnOnce() -> R + Send + 'static,
        R: Outcome,
    {
        Process::with_work(Work::Fork(Box::new(move || f().into_outcome())))
    }

    /// A process (start method fork) that runs `f(args)`. Replaces
    /// `Process(target=f, args=(...))`; pass several arguments as a tuple.
    pub fn target<A: Send + 'static, R: Outcome + 'static>(f: fn(A) -> R, args: A) -> Process {
        Process::new(move || f(args))
    }

    /// A process (start method fork) that runs `runner.run()`: the subclass style.
    pub fn from_run<T: Run + Send + 'static>(mut runner: T) -> Process {
        Process::new(move || runner.run())
    }

    /// A process (start method spawn) that runs this binary's registered entry `entry` with
    /// `arg`, serialized now and sent to the child's stdin. The entry must be registered (see
    /// [`register`]); [`Process::start`] checks.
    ///
    /// # Errors
    ///
    /// If `arg` cannot be serialized.
    pub fn spawn_entry<T: Serialize + ?Sized>(entry: &str, arg: &T) -> anyhow::Result<Process> {
        let arg = postcard::to_allocvec(arg).context("serializing the child's argument")?;
        Ok(Process::with_work(Work::Spawn {
            entry: entry.to_owned(),
            arg,
            exe: None,
        }))
    }

    /// Set the name (Python's `name=`; by default `Process-N`).
    pub fn named(mut self, name: impl Into<String>) -> Process {
        self.name = name.into();
        self
    }

    /// Make it a daemon (Python's `daemon=True`): terminated and reaped when its handle is
    /// dropped, and killed by the kernel (`PR_SET_PDEATHSIG`) if the parent dies first.
    /// Caveat: the kernel sends that signal when the *thread* that started the child ends, so
    /// start daemons from a thread that lives as long as they should.
    pub fn daemon(mut self, daemon: bool) -> Process {
        self.daemon = daemon;
        self
    }

    /// Close `fd` in the child (fork method) before its body runs: the end of a pipe or socket
    /// that only the parent uses. A reader sees end-of-file only once every copy of the write
    /// end is closed, so a copy of the parent's write end left in the child keeps the *child's*
    /// reader from ever seeing end-of-file (the child holds the pipe open to itself); a copy of
    /// the parent's read end left in the child keeps a writer from ever getting `EPIPE`. (The
    /// parent's own end-of-file waits for the copies of the *child's* write end: the parent
    /// closes its copy after the fork.) The parent's own copy is untouched.
    pub fn close_in_child(mut self, fd: &impl AsRawFd) -> Process {
        self.close_in_child.push(fd.as_raw_fd());
        self
    }

    /// In the child (fork method), close every descriptor except stdin, stdout, stderr and
    /// `keep`, before the body runs (Python's `close_fds`). A child forked while other pipes
    /// and sockets are open otherwise holds copies of them, and their readers wait for it to
    /// exit before they see end-of-file.
    pub fn keep_only_fds(mut self, keep: &[RawFd]) -> Process {
        self.keep_only = Some(keep.to_vec());
        self
    }

    /// For a spawned process: the binary to run (by default this one, `current_exe()`). It
    /// must call [`spawn_main`] with the same entries, first thing in `main`: that is what
    /// reads the argument. A binary that neither reads its stdin nor exits keeps
    /// [`Process::start`] waiting once the argument is larger than a pipe holds (64 KiB), as
    /// Python's spawn would. For a forkserver process: the binary the shared [`ForkServer`]
    /// runs. On a fork process this does nothing.
    pub fn exe(mut self, path: impl Into<PathBuf>) -> Process {
        if let State::New(Work::Spawn { exe, .. } | Work::Forkserver { exe, .. }) = &mut self.state
        {
            *exe = Some(path.into());
        }
        self
    }

    /// The name. Python's `p.name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it is a daemon. Python's `p.daemon`.
    pub fn is_daemon(&self) -> bool {
        self.daemon
    }

    /// How it is (or will be, or was) started: fixed by the constructor, so always `Some`
    /// (the `Option` stays for the signature's sake). Python's `ctx.get_start_method()`.
    pub fn start_method(&self) -> Option<StartMethod> {
        Some(self.method)
    }

    /// The child's pid once started and until reaped. Python's `p.pid`.
    pub fn pid(&self) -> Option<i32> {
        match &self.state {
            State::Running { pid, .. } => Some(pid.as_raw()),
            _ => None,
        }
    }

    /// The exit code once the child has been reaped: its `exit` status, or minus the signal
    /// that killed it (-15 after [`Process::terminate`]). Python's `p.exitcode`.
    pub fn exitcode(&self) -> Option<i32> {
        match self.state {
            State::Done { code, .. } => Some(code),
            State::Closed(code) => code,
            _ => None,
        }
    }

    /// A descriptor that becomes readable when the child has ended, to wait on several
    /// processes (and pipes, sockets) at once with `poll`. Replaces `p.sentinel`. For fork and
    /// spawn it is a pidfd of the child; for forkserver, the connection on which the server
    /// reports the exit code. It stays valid (and readable) after `join`, until
    /// [`Process::close`] or drop. `None` before start, after a failed start or `close`, and
    /// where no pidfd could be opened (a kernel before 5.3, the descriptor limit); Python
    /// raises `ValueError` before start.
    pub fn sentinel(&self) -> Option<BorrowedFd<'_>> {
        match &self.state {
            State::Running { conn: Some(fd), .. }
            | State::Running {
                conn: None,
                pidfd: Some(fd),
                ..
            }
            | State::Done {
                sentinel: Some(fd), ..
            } => Some(fd.as_fd()),
            _ => None,
        }
    }

    /// Start the child. Replaces `p.start()`; a process can be started once.
    ///
    /// # Errors
    ///
    /// If it was started before (also when that start failed); if `fork` is refused (a
    /// process limit, memory: the message names the likely limit); for spawn, if the entry is
    /// not registered or this binary cannot be found or run (for example at the descriptor
    /// limit). After an error no child exists and the closure has been dropped.
    pub fn start(&mut self) -> anyhow::Result<()> {
        let work = match std::mem::replace(&mut self.state, State::Failed) {
            State::New(work) => work,
            State::Failed => bail!(
                "process {}: its start failed, and a Process is started once (make a new one)",
                self.name
            ),
            State::Closed(code) => {
                self.state = State::Closed(code);
                bail!("process {} is closed", self.name);
            }
            other => {
                self.state = other;
                bail!("process {} was already started", self.name);
            }
        };
        let (pid, pidfd, conn) = match work {
            Work::Fork(body) => {
                let me = registry::Me {
                    name: self.name.clone(),
                    daemon: self.daemon,
                    method: StartMethod::Fork,
                    parent_pid: nix::unistd::getpid().as_raw(),
                    parent_name: registry::lock().my_name(),
                    parent_pidfd: None,
                };
                let pid = fork_child(
                    me,
                    &self.name,
                    self.daemon,
                    &self.close_in_child,
                    self.keep_only.as_deref(),
                    body,
                )?;
                (pid, pidfd_open(pid), None)
            }
            Work::Spawn { entry, arg, exe } => {
                let pid = spawn_child(&self.name, self.daemon, &entry, &arg, exe)?;
                (pid, pidfd_open(pid), None)
            }
            Work::Forkserver {
                entry,
                arg,
                exe,
                server,
            } => {
                spawn::check_entry(&self.name, &entry)?;
                let server = match server {
                    Some(s) => s,
                    None => ForkServer::shared(exe.as_deref())?,
                };
                let started = server.start_child(&self.name, self.daemon, &entry, &arg)?;
                (started.pid, started.pidfd, Some(started.conn))
            }
        };
        registry::lock().add_child(
            pid.as_raw(),
            &self.name,
            self.daemon,
            self.method,
            registry::raw(&pidfd),
        );
        self.state = State::Running { pid, pidfd, conn };
        Ok(())
    }
}
