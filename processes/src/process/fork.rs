//! The fork start method: the parent's side ([`fork_child`]) and everything the child does
//! between `fork` and `_exit` ([`child_main`]). The rules the child lives by are in the
//! [`process`](super) module docs.

use std::io::{self, Write};
use std::os::fd::RawFd;
use std::panic::{AssertUnwindSafe, PanicHookInfo, catch_unwind};
use std::sync::Once;
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::Context;
use nix::errno::Errno;
use nix::libc;
use nix::sys::signal::Signal;
use nix::unistd::{ForkResult, Pid, fork, getpid, getppid};

use super::Body;
use super::registry::{self, Me};

/// What a failed fork (or the fork inside a spawn) most likely ran into, for its message.
pub(super) fn why(e: Errno) -> &'static str {
    match e {
        Errno::EAGAIN => {
            " (a process limit was reached: this user's RLIMIT_NPROC, the cgroup's pids.max or \
             the system's threads-max)"
        }
        Errno::ENOMEM => " (out of memory for the copy)",
        _ => "",
    }
}

fn exit_now(code: i32) -> ! {
    // SAFETY: _exit ends this (child) process at once. It runs no atexit handlers and no
    // destructors, which belong to the parent's copy of this memory and must run only there.
    unsafe { libc::_exit(code) }
}

/// The process that wrapped the panic hook: any other process running the wrapper is a fork
/// child (or a child's child), whose panics are told by [`child_panic`]. A pid compared at the
/// panic rather than a flag set after each fork: the child writes nothing for it (a write to a
/// page it shares with the parent costs a page copy, on every fork).
static HOOK_PID: AtomicI32 = AtomicI32::new(0);

/// Wrap the installed panic hook, once per process, before the first fork (see the module docs
/// of [`process`](super), "Fork safety"): the parent keeps its hook; a fork child tells its
/// panics without std's default hook and its lock.
fn wrap_panic_hook() {
    static WRAPPED: Once = Once::new();
    if std::thread::panicking() {
        return; // set_hook would panic; the next fork wraps it
    }
    WRAPPED.call_once(|| {
        HOOK_PID.store(getpid().as_raw(), Ordering::Relaxed);
        let parent_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if getpid().as_raw() == HOOK_PID.load(Ordering::Relaxed) {
                parent_hook(info);
            } else {
                child_panic(info);
            }
        }));
    });
}

/// A fork child's panic message ([`lesson::panic_line`], with the child's pid), written with
/// one `write(2)` to stderr: no lock that a thread of the parent may have held at the fork, and
/// no backtrace (resolving one takes such a lock).
fn child_panic(info: &PanicHookInfo<'_>) {
    let mut text = lesson::panic_line(info, Some(&format!("(pid {})", getpid())));
    text.push('\n');
    let _ = nix::unistd::write(io::stderr(), text.as_bytes());
}

/// Fork a child that runs `body` (closing `close`, or all but `keep_only`, first); its pid.
/// `me` is what the child will know of itself ([`current_process`](super::current_process)).
pub(super) fn fork_child(
    me: Me,
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
    wrap_panic_hook();
    // Flush first, so nothing the parent buffered is in the copy the child gets.
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    // Hold both locks across fork (see the module docs): the child inherits them held by
    // itself, so its prints re-enter them instead of waiting for a thread that is not there.
    let out = io::stdout().lock();
    let err = io::stderr().lock();
    // The registry's lock too: the child changes its copy before anything else can want it.
    let reg = registry::lock();
    let parent = getpid();
    // SAFETY: fork is unsafe because the child of a multi-threaded process may only do
    // async-signal-safe work until it exits. The child below does: it replaces its copy of the
    // registry (a free and a move, under the registry lock it inherited as its owner; glibc's
    // fork resets malloc's locks), close/close_range and prctl/getppid (system calls), unlocks
    // the three locks it inherited as their owner, runs the body (whose duty is documented on
    // `Process` and the module), flushes, and _exits.
    match unsafe { fork() } {
        Err(e) => {
            drop(reg);
            Err(e).with_context(|| format!("process {name}: fork failed{}", why(e)))
        }
        Ok(ForkResult::Parent { child }) => {
            drop(reg);
            drop(err);
            drop(out);
            drop(me);
            Ok(child)
        }
        Ok(ForkResult::Child) => {
            // Held by this thread since before the fork; nothing else here can be waiting.
            let mut reg = reg;
            reg.become_child(me);
            drop(reg);
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
    out: io::StdoutLock<'static>,
    err: io::StderrLock<'static>,
) -> ! {
    // The parent held these across fork so that no other parent thread held them at that
    // instant. Here this thread owns them; let go before the body runs, or a thread the body
    // starts would block on its first print (and a body that joined it, forever). Unlocking a
    // lock this thread holds is safe after fork: nothing else in this process can be waiting.
    drop(err);
    drop(out);
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
            let _ = writeln!(io::stderr(), "Process {name} (pid {}): {message}", getpid());
            1
        }
        Err(payload) => {
            let message = lesson::panic_message(payload.as_ref());
            let _ = writeln!(
                io::stderr(),
                "Process {name} (pid {}) panicked: {message}",
                getpid()
            );
            1
        }
    };
    // What the body printed without a newline is still in stdout's buffer. Errors (a closed
    // or broken stdout) are ignored: the body's outcome decides the exit code. This waits only
    // if a thread of the body is inside a print at this instant.
    let _ = io::stdout().flush();
    exit_now(code)
}
