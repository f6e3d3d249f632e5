//! [`Process`]: Python's `multiprocessing.Process` for Rust on Linux, with the `fork` and
//! `spawn` start methods.
//!
//! # Fork safety: what binds you
//!
//! `fork()` copies the whole address space but only the calling thread. Any lock another thread
//! held at that instant stays locked forever in the child, and nobody is left to unlock it. So,
//! in the child of a multi-threaded parent, only async-signal-safe work is safe until it execs
//! or exits. This type makes its own part safe:
//!
//! - the parent takes std's stdout and stderr locks *before* forking and lets go after, so the
//!   child inherits them held by itself (same thread, same `ThreadId`): `println!` and the
//!   panic message re-enter them and can never block;
//! - the child leaves with `_exit`, so no destructor or `atexit` handler of the parent runs
//!   twice and no buffered output is written twice (the parent flushes before forking);
//! - `lesson::Cx::say` in a child prints without touching the narration records' mutex.
//!
//! What is left to you: in a **fork** child of a multi-threaded parent, do not take a lock that
//! another parent thread may have held (your own mutexes, a channel other threads use, the
//! environment lock behind `std::env::set_var`). Allocating is fine with glibc, whose `fork`
//! resets malloc's locks. If you cannot promise that, use [`StartMethod::Spawn`]: the child is
//! a fresh process running the same binary, with none of the parent's state (nor its locks).
//!
//! Python's third method, `forkserver`, starts one server process early, while the parent is
//! still single-threaded, and forks every child from it on request (over a Unix socket, passing
//! fds). It gives fork's speed without fork's danger, at the cost of a server round trip.
//! Python 3.14 made it the default on Linux for exactly the reason above.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid, getppid};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The argument that tells a binary it was started as a spawned child (see [`spawn_main`]).
pub const SPAWN_FLAG: &str = "--spawn-entry";

/// How long a daemon child gets to leave after SIGTERM, when its handle is dropped, before
/// SIGKILL.
const DAEMON_GRACE: Duration = Duration::from_secs(2);

static NEXT: AtomicUsize = AtomicUsize::new(1);
static ENTRIES: OnceLock<&'static [Entry]> = OnceLock::new();

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
}

/// A function a spawned child can run, registered under a name (Python's spawn finds the
/// target by importing the main module; a Rust binary cannot import itself, so it keeps a
/// table).
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// The name the parent asks for.
    pub name: &'static str,
    /// The body; its argument is the bytes the parent serialized (see [`decode`]).
    pub run: fn(&[u8]) -> anyhow::Result<()>,
}

/// Decode a spawn argument made by [`Process::spawn_entry`].
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> anyhow::Result<T> {
    postcard::from_bytes(bytes).context("decoding the spawned child's argument")
}

/// Register the entries this binary offers to spawned children. Call it (or [`spawn_main`])
/// once, early; the parent checks names against it before starting anything.
pub fn register(entries: &'static [Entry]) {
    let _ = ENTRIES.set(entries);
}

fn registered() -> &'static [Entry] {
    ENTRIES.get().copied().unwrap_or(&[])
}

/// The first line of a binary's `main` when it offers spawn entries: registers `entries`, and,
/// if this process was started as a spawned child (`SPAWN_FLAG NAME`), runs that entry with
/// the argument read from stdin and exits (0, or 1 with the error on stderr). Otherwise it
/// returns and `main` goes on.
pub fn spawn_main(entries: &'static [Entry]) {
    register(entries);
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() != Some(SPAWN_FLAG) {
        return;
    }
    let name = args.next().unwrap_or_default();
    let code = match entries.iter().find(|e| e.name == name) {
        None => {
            eprintln!("spawned child: no entry named {name:?}");
            2
        }
        Some(entry) => {
            let mut arg = Vec::new();
            let outcome = io::stdin()
                .read_to_end(&mut arg)
                .context("reading the argument from the parent")
                .and_then(|_| (entry.run)(&arg));
            match outcome {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("spawned child {name} (pid {}): {e:#}", std::process::id());
                    1
                }
            }
        }
    };
    let _ = io::stdout().flush();
    std::process::exit(code);
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
}

enum State {
    New(Work),
    Running {
        pid: Pid,
        pidfd: Option<OwnedFd>,
    },
    Done(i32),
    /// `start` failed: nothing runs, nothing to reap.
    Failed,
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
/// Dropping a `Process` that still runs waits for it (Python joins non-daemon children at
/// exit), or, for a daemon, terminates it first. Either way it is reaped: no zombie is left.
pub struct Process {
    name: String,
    daemon: bool,
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
    /// that only the parent uses. Otherwise the child keeps a copy open, and the parent's
    /// reader never sees end-of-file while the child lives. The parent's own copy is untouched.
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
    /// must call [`spawn_main`] with the same entries.
    pub fn exe(mut self, path: impl Into<PathBuf>) -> Process {
        if let State::New(Work::Spawn { exe, .. }) = &mut self.state {
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

    /// How it is (or will be) started.
    pub fn start_method(&self) -> Option<StartMethod> {
        match &self.state {
            State::New(Work::Fork(_)) => Some(StartMethod::Fork),
            State::New(Work::Spawn { .. }) => Some(StartMethod::Spawn),
            _ => None,
        }
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
            State::Done(code) => Some(code),
            _ => None,
        }
    }

    /// Start the child. Replaces `p.start()`; a process can be started once.
    pub fn start(&mut self) -> anyhow::Result<()> {
        let work = match std::mem::replace(&mut self.state, State::Failed) {
            State::New(work) => work,
            other => {
                self.state = other;
                bail!("process {} was already started", self.name);
            }
        };
        let pid = match work {
            Work::Fork(body) => fork_child(
                &self.name,
                self.daemon,
                &self.close_in_child,
                self.keep_only.as_deref(),
                body,
            ),
            Work::Spawn { entry, arg, exe } => {
                spawn_child(&self.name, self.daemon, &entry, &arg, exe)
            }
        }?;
        self.state = State::Running {
            pid,
            pidfd: pidfd_open(pid),
        };
        Ok(())
    }

    /// Reap the child if it has exited (`block`: wait until it has). `Some(exitcode)` once
    /// it is done.
    fn reap(&mut self, block: bool) -> anyhow::Result<Option<i32>> {
        let pid = match &self.state {
            State::Running { pid, .. } => *pid,
            State::Done(code) => return Ok(Some(*code)),
            State::New(_) | State::Failed => bail!("process {} was not started", self.name),
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
    pub fn join(&mut self) -> anyhow::Result<i32> {
        match self.reap(true)? {
            Some(code) => Ok(code),
            None => unreachable!("a blocking wait returns an exit status"),
        }
    }

    /// Wait at most `timeout`; `true` if the child has ended (its code is then in
    /// [`Process::exitcode`]). Replaces `p.join(timeout)`. It sleeps in `poll` on a pidfd,
    /// which becomes readable when the child exits: no busy loop.
    pub fn join_timeout(&mut self, timeout: Duration) -> anyhow::Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.reap(false)?.is_some() {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            let left = deadline - now;
            match &self.state {
                State::Running {
                    pidfd: Some(fd), ..
                } => {
                    // Round up, so a sub-millisecond remainder still sleeps instead of spinning.
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
    /// blocks do not run, and a lock or queue it was using may be left broken.
    pub fn terminate(&self) -> anyhow::Result<()> {
        self.signal(Signal::SIGTERM)
    }

    /// Stop the child now: SIGKILL. Replaces `p.kill()`.
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
fn pidfd_open(pid: Pid) -> Option<OwnedFd> {
    // SAFETY: pidfd_open(2) takes a pid and a flags word, touches no memory of ours, and
    // returns a new file descriptor (close-on-exec) or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel just created this descriptor for us; nothing else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn exit_now(code: i32) -> ! {
    // SAFETY: _exit ends this (child) process at once. It runs no atexit handlers and no
    // destructors, which belong to the parent's copy of this memory and must run only there.
    unsafe { libc::_exit(code) }
}

fn fork_child(
    name: &str,
    daemon: bool,
    close: &[RawFd],
    keep_only: Option<&[RawFd]>,
    body: Body,
) -> anyhow::Result<Pid> {
    // Computed before the fork: the child must not allocate to sort.
    let keep: Option<Vec<RawFd>> = keep_only.map(|k| {
        let mut k: Vec<RawFd> = k.iter().copied().filter(|&fd| fd > 2).collect();
        k.sort_unstable();
        k.dedup();
        k
    });
    // Flush first, so nothing the parent buffered is in the copy the child gets.
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    // Hold both locks across fork (see the module docs): the child inherits them held by
    // itself, so its prints re-enter them instead of waiting for a thread that is not there.
    let out = io::stdout().lock();
    let err = io::stderr().lock();
    let parent = getpid();
    // SAFETY: fork is unsafe because the child of a multi-threaded process may only do
    // async-signal-safe work until it exits. The child below does: prctl/getppid (system
    // calls), the body (whose duty is documented on `Process` and the module), writes through
    // the locks it already holds, and _exit.
    match unsafe { fork() } {
        Err(e) => Err(e).context("fork failed"),
        Ok(ForkResult::Parent { child }) => {
            drop(err);
            drop(out);
            Ok(child)
        }
        Ok(ForkResult::Child) => {
            if let Some(keep) = &keep {
                close_all_but(keep);
            }
            for &fd in close {
                // SAFETY: close(2) is async-signal-safe. The fd belongs to the parent's object,
                // whose copy in this child is never used or dropped (the child leaves with
                // _exit), so nothing here closes it again or reads through it.
                unsafe { libc::close(fd) };
            }
            child_main(name, daemon, parent, body, out, err)
        }
    }
}

/// Close every descriptor above 2 except those in `keep` (sorted, each > 2), with
/// close_range(2): one system call per gap, async-signal-safe, no allocation.
fn close_all_but(keep: &[RawFd]) {
    let mut from: u32 = 3;
    for &fd in keep {
        let fd = fd as u32;
        if fd > from {
            // SAFETY: close_range closes descriptors of this (child) process only; the kept
            // ones are outside the range.
            unsafe { libc::syscall(libc::SYS_close_range, from, fd - 1, 0u32) };
        }
        from = fd + 1;
    }
    // SAFETY: as above, everything above the last kept descriptor.
    unsafe { libc::syscall(libc::SYS_close_range, from, u32::MAX, 0u32) };
}

fn child_main(
    name: &str,
    daemon: bool,
    parent: Pid,
    body: Body,
    mut out: io::StdoutLock<'static>,
    mut err: io::StderrLock<'static>,
) -> ! {
    if daemon {
        // Die with the parent. If it died between fork and here, the signal was never
        // armed: the parent pid we see is then no longer the one that forked us.
        let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
        if getppid() != parent {
            exit_now(1);
        }
    }
    let code = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => 0,
        Ok(Err(message)) => {
            let _ = writeln!(err, "Process {name} (pid {}): {message}", getpid());
            1
        }
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-string panic".to_owned());
            let _ = writeln!(err, "Process {name} (pid {}) panicked: {message}", getpid());
            1
        }
    };
    let _ = out.flush();
    let _ = err.flush();
    exit_now(code)
}

fn spawn_child(
    name: &str,
    daemon: bool,
    entry: &str,
    arg: &[u8],
    exe: Option<PathBuf>,
) -> anyhow::Result<Pid> {
    let entries = registered();
    if !entries.iter().any(|e| e.name == entry) {
        let names: Vec<&str> = entries.iter().map(|e| e.name).collect();
        bail!(
            "process {name}: no spawn entry named {entry:?} (registered: {})",
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        );
    }
    let exe = match exe {
        Some(exe) => exe,
        None => std::env::current_exe().context("finding this binary to spawn it")?,
    };
    let mut cmd = Command::new(&exe);
    cmd.arg(SPAWN_FLAG).arg(entry).stdin(Stdio::piped());
    if daemon {
        let parent = getpid();
        // SAFETY: the hook runs in the child between fork and exec, where only
        // async-signal-safe calls are allowed: prctl and getppid are plain system calls, and
        // it allocates nothing (the error is built from an errno code).
        unsafe {
            cmd.pre_exec(move || {
                let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
                if getppid() != parent {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("process {name}: starting {}", exe.display()))?;
    let pid = Pid::from_raw(child.id() as i32);
    if let Some(mut stdin) = child.stdin.take() {
        // A child that died at once closes its end: that shows in its exit code, not here.
        match stdin.write_all(arg) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
            Err(e) => {
                let _ = kill(pid, Signal::SIGKILL);
                let _ = waitpid(pid, None);
                return Err(e).context("sending the argument to the spawned child");
            }
        }
    }
    // From here the pid is ours to wait for; std's Child neither waits nor kills on drop.
    drop(child);
    Ok(pid)
}
