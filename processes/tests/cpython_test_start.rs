//! CPython 3.11's `Lib/test/_test_multiprocessing.py`, continued (see `cpython_test_process.rs`):
//! the stdio flushing tests of `_TestProcess`, `_TestSubclassingProcess`, and the module-level
//! tests about starting processes (`TestCloseFds`, `TestStartMethod`,
//! `TestStdinBadfiledescriptor`), with the forkserver start method's. Each test is named after
//! its original; the README's conformance table lists them.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use lesson::within;
use processes::{Process, Run, StartMethod};

mod common;
use common::*;

/// A write end whose every write fails: a pipe whose reader is gone (EPIPE; Rust programs
/// ignore SIGPIPE), or `/dev/full` (ENOSPC).
fn broken_sink(kind: &str) -> OwnedFd {
    match kind {
        "no reader" => {
            let (r, w) = nix::unistd::pipe().unwrap();
            drop(r);
            w
        }
        "full" => std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
            .into(),
        _ => unreachable!(),
    }
}

#[test]
fn test_error_on_stdio_flush_2() {
    // The child breaks its own stdout or stderr, leaves output unwritten in stdout's buffer
    // (or fails, whose message goes to stderr), and must still exit with its body's code.
    within(LONG * 2, "children with broken streams", || {
        for stream in ["stdout", "stderr"] {
            for kind in ["no reader", "full"] {
                for fail in [false, true] {
                    let mut p = Process::new(move || -> Result<(), String> {
                        let sink = broken_sink(kind);
                        let broken = match stream {
                            "stdout" => nix::unistd::dup2_stdout(&sink),
                            _ => nix::unistd::dup2_stderr(&sink),
                        };
                        broken.map_err(|e| e.to_string())?;
                        // To the broken stream; on stdout with no newline, so it waits in
                        // the buffer for the final flush.
                        let _ = match stream {
                            "stdout" => write!(std::io::stdout(), "unwritten"),
                            _ => write!(std::io::stderr(), "unwritten"),
                        };
                        if fail {
                            return Err("a message nobody can read".into());
                        }
                        Ok(())
                    });
                    p.start().unwrap();
                    let want = if fail { 1 } else { 0 };
                    assert_eq!(p.join().unwrap(), want, "{stream}, {kind}, fail {fail}");
                }
            }
        }
    });
}

// ---------------------------------------------------------------------------------------
// Tests that change this process's own stdout run in a fresh copy of this binary (the
// "role"), so the harness's output and the other tests are not disturbed.

#[test]
fn test_error_on_stdio_flush_1() {
    // The parent's stdout or stderr is broken, with output waiting in stdout's buffer, when it
    // starts a child: start() must not fail and the child must exit 0.
    if !is_role("test_error_on_stdio_flush_1") {
        let out = run_role("test_error_on_stdio_flush_1");
        assert!(out.contains("ROLE: 4 children exited 0"), "{out}");
        return;
    }
    let saved_out = std::io::stdout().as_fd().try_clone_to_owned().unwrap();
    let saved_err = std::io::stderr().as_fd().try_clone_to_owned().unwrap();
    let mut codes = Vec::new();
    for stream in ["stdout", "stderr"] {
        for kind in ["no reader", "full"] {
            let sink = broken_sink(kind);
            match stream {
                "stdout" => nix::unistd::dup2_stdout(&sink).unwrap(),
                _ => nix::unistd::dup2_stderr(&sink).unwrap(),
            }
            let _ = write!(std::io::stdout(), "unwritten");
            let mut p = Process::new(|| ());
            p.start().unwrap();
            codes.push(p.join().unwrap());
            nix::unistd::dup2_stdout(&saved_out).unwrap();
            nix::unistd::dup2_stderr(&saved_err).unwrap();
        }
    }
    assert_eq!(codes, [0, 0, 0, 0]);
    println!();
    println!("ROLE: {} children exited 0", codes.len());
}

// ---------------------------------------------------------------------------------------
// _TestSubclassingProcess

/// The original's `_UpperCaser`: a process type whose run() answers each line in capitals
/// until its connection closes.
struct UpperCaser {
    conn: UnixStream,
}

impl Run for UpperCaser {
    fn run(&mut self) -> anyhow::Result<()> {
        let mut reader = BufReader::new(self.conn.try_clone()?);
        let mut line = String::new();
        while reader.read_line(&mut line)? > 0 {
            self.conn.write_all(line.to_uppercase().as_bytes())?;
            line.clear();
        }
        Ok(())
    }
}

#[test]
fn test_subclassing() {
    within(LONG * 2, "the upper-caser", || {
        let (parent, child) = UnixStream::pair().unwrap();
        let keep = raw(&child);
        let mut uppercaser = Process::from_run(UpperCaser { conn: child })
            .daemon(true)
            .keep_only_fds(&[keep]);
        uppercaser.start().unwrap();
        parent.set_read_timeout(Some(LONG)).unwrap();
        let mut replies = BufReader::new(parent.try_clone().unwrap());
        let mut submit = |s: &str| {
            (&parent).write_all(format!("{s}\n").as_bytes()).unwrap();
            let mut reply = String::new();
            replies.read_line(&mut reply).unwrap();
            reply.trim_end().to_owned()
        };
        assert_eq!(submit("hello"), "HELLO");
        assert_eq!(submit("world"), "WORLD");
        // stop(): close the parent's end; the child sees end-of-file and returns.
        drop(replies);
        drop(parent);
        assert!(uppercaser.join_timeout(LONG).unwrap());
        assert_eq!(uppercaser.exitcode(), Some(0));
    });
}

#[test]
fn test_stderr_flush() {
    // The whole message of a child's failure reaches its stderr (here a pipe the child puts
    // in place of fd 2, as the original replaces sys.stderr with a file).
    let (mut r, w) = pipe();
    let keep = raw(&w);
    let mut p = Process::new(move || -> () {
        nix::unistd::dup2_stderr(&w).unwrap();
        panic!("attempt to divide by zero # MARKER");
    })
    .named("flusher")
    .keep_only_fds(&[keep]);
    p.start().unwrap();
    assert_eq!(p.join().unwrap(), 1);
    let err = drain_now(&mut r);
    assert!(err.contains("Process flusher (pid "), "{err}");
    assert!(err.contains("panicked"), "{err}");
    assert!(err.contains("divide by zero # MARKER"), "{err}");
}

#[test]
fn test_sys_exit() {
    // Python's sys.exit(reason) with a non-integer reason: exit code 1, the reason on stderr.
    // Here: the body returns Err(reason).
    for reason in ["[1, 2, 3]", "ignore this"] {
        let (mut r, w) = pipe();
        let keep = raw(&w);
        let mut p = Process::new(move || -> Result<(), String> {
            nix::unistd::dup2_stderr(&w).map_err(|e| e.to_string())?;
            Err(reason.to_owned())
        })
        .daemon(true)
        .keep_only_fds(&[keep]);
        p.start().unwrap();
        assert!(p.join_timeout(LONG).unwrap());
        assert_eq!(p.exitcode(), Some(1));
        let content = drain_now(&mut r);
        assert!(content.trim_end().ends_with(reason), "{content}");
    }
    // sys.exit(True / False / None / ()) -> 1 / 0 / 0 / 0: a body's Err or Ok.
    let mut ok = Process::new(|| ());
    ok.start().unwrap();
    assert_eq!(ok.join().unwrap(), 0);
    // sys.exit(8) -> 8: a fork body cannot choose its exit code (see the README); a spawned
    // child is a program of its own and can.
    within(LONG, "spawned children", || {
        for code in [8, 1, 0] {
            let mut p = spawned("exit-with", &code).daemon(true);
            p.start().unwrap();
            assert_eq!(p.join().unwrap(), code);
        }
    });
}

// ---------------------------------------------------------------------------------------
// Module-level tests about starting processes

#[test]
fn test_closefd() {
    // TestCloseFds: a descriptor >= 50 opened without close-on-exec is usable in a fork
    // child, and absent from a spawn child.
    let sock = UnixStream::pair().unwrap().0;
    let high = nix::fcntl::fcntl(&sock, nix::fcntl::FcntlArg::F_DUPFD(50)).unwrap();
    // SAFETY: F_DUPFD just returned this new descriptor; nothing else owns it.
    let high = unsafe { OwnedFd::from_raw_fd(high) };
    let fd = raw(&high);
    assert!(fd >= 50);
    within(LONG * 2, "children", move || {
        let mut forked = Process::new(move || -> Result<(), String> {
            if fd_open(fd) {
                Ok(())
            } else {
                Err(format!("fd {fd} is not open in the fork child"))
            }
        });
        forked.start().unwrap();
        assert_eq!(forked.join().unwrap(), 0);
        let mut spawn = spawned("count-fds", &quiet());
        spawn.start().unwrap();
        // Its descriptor count: stdin, stdout, stderr, and not the high one.
        assert!(spawn.join().unwrap() <= 3);
        drop(high);
    });
}

/// Regression: `start_method()` answered `None` once the process had been started.
#[test]
fn test_context() {
    // TestStartMethod.test_context, the part that maps: a process knows its start method
    // before and after it starts. (Contexts, set_start_method and forkserver have no
    // counterpart: the method is chosen per Process by its constructor.)
    let mut f = Process::new(|| ());
    assert_eq!(f.start_method(), Some(StartMethod::Fork));
    f.start().unwrap();
    assert_eq!(f.start_method(), Some(StartMethod::Fork));
    f.join().unwrap();
    assert_eq!(f.start_method(), Some(StartMethod::Fork));
    let mut s = spawned("exit-with", &0);
    assert_eq!(s.start_method(), Some(StartMethod::Spawn));
    let mut fs = forkserved("exit-with", &0);
    assert_eq!(fs.start_method(), Some(StartMethod::Forkserver));
    within(LONG, "the spawned child", move || {
        s.start().unwrap();
        assert_eq!(s.start_method(), Some(StartMethod::Spawn));
        s.join().unwrap();
        assert_eq!(s.start_method(), Some(StartMethod::Spawn));
        fs.start().unwrap();
        assert_eq!(fs.start_method(), Some(StartMethod::Forkserver));
        fs.join().unwrap();
        assert_eq!(fs.start_method(), Some(StartMethod::Forkserver));
    });
}

#[test]
fn test_flushing() {
    // TestStdinBadfiledescriptor.test_flushing: output the parent buffered before start()
    // is written once, by the parent, not a second time by the child's copy of the buffer.
    if !is_role("test_flushing") {
        let out = run_role("test_flushing");
        assert_eq!(out.matches("buffered-before-start").count(), 1, "{out}");
        return;
    }
    let _ = write!(std::io::stdout(), "buffered-before-start");
    let mut p = Process::new(|| ());
    p.start().unwrap();
    assert_eq!(p.join().unwrap(), 0);
    println!();
}

// ---------------------------------------------------------------------------------------
// The forkserver start method

/// The original's `check_forkserver_death`: kill the server while a child runs; the child's
/// handle still learns that it ended, and the next process starts on a new server. A server of
/// the test's own, so that the other tests' (shared) server is not the one killed.
fn check_forkserver_death(signal: nix::sys::signal::Signal) -> (i32, bool) {
    let server = std::sync::Arc::new(processes::ForkServer::new(BIN));
    let first = server.ensure_running().unwrap();
    let mut proc1 = forkserved("sleep-ms", &60_000_u64).via(&server);
    proc1.start().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(first), signal).unwrap();
    let mut proc2 = forkserved("exit-with", &0).via(&server);
    let survived = if signal == nix::sys::signal::Signal::SIGKILL {
        // The first child outlives its server (it is no daemon), and its handle can still end
        // it (by its pidfd); its exit code was lost with the server: 255, as in Python.
        proc1.terminate().unwrap();
        assert_eq!(proc1.join().unwrap(), 255);
        proc2.start().unwrap();
        assert_ne!(server.pid(), Some(first), "a new server");
        false
    } else {
        proc2.start().unwrap();
        proc1.terminate().unwrap();
        assert_eq!(proc1.join().unwrap(), -15);
        server.pid() == Some(first)
    };
    let code = proc2.join().unwrap();
    server.shutdown().unwrap();
    (code, survived)
}

#[test]
fn test_forkserver_sigint() {
    // The server ignores SIGINT (Ctrl-C reaches the whole process group), as Python's: it goes
    // on serving, and the exit codes still arrive.
    let (code, survived) = within(LONG * 2, "the fork server", || {
        check_forkserver_death(nix::sys::signal::Signal::SIGINT)
    });
    assert_eq!(code, 0);
    assert!(survived, "the server died of SIGINT");
}

#[test]
fn test_forkserver_sigkill() {
    let (code, _) = within(LONG * 2, "the fork server", || {
        check_forkserver_death(nix::sys::signal::Signal::SIGKILL)
    });
    assert_eq!(code, 0);
}

#[test]
fn forkserver_daemon_children_die_with_their_server() {
    // Beyond the original: a daemon child of a killed server dies with it (PR_SET_PDEATHSIG),
    // so a daemon never outlives the chain that would have killed it.
    within(LONG * 2, "the fork server", || {
        let server = std::sync::Arc::new(processes::ForkServer::new(BIN));
        let pid = server.ensure_running().unwrap();
        let mut p = forkserved("sleep-ms", &60_000_u64)
            .daemon(true)
            .via(&server);
        p.start().unwrap();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        // Ends without being signalled by us: the kernel killed it; its code was lost.
        assert!(p.join_timeout(LONG).unwrap());
        assert_eq!(p.exitcode(), Some(255));
    });
}

#[test]
fn forkserver_children_inherit_no_descriptor_and_report_failures() {
    // As TestCloseFds for spawn: a descriptor >= 50 without close-on-exec stays out of a
    // forkserver child, which has 0, 1, 2 and its parent's pidfd (3) only.
    let sock = UnixStream::pair().unwrap().0;
    let high = nix::fcntl::fcntl(&sock, nix::fcntl::FcntlArg::F_DUPFD(50)).unwrap();
    // SAFETY: F_DUPFD just returned this new descriptor; nothing else owns it.
    let high = unsafe { OwnedFd::from_raw_fd(high) };
    within(LONG * 2, "forkserver children", move || {
        let mut p = forkserved("count-fds", &quiet());
        p.start().unwrap();
        assert_eq!(p.join().unwrap(), 4);
        // An entry that fails: exit code 1 (its message goes to our stderr); one that exits
        // with a code: that code.
        for code in [0, 1, 8] {
            let mut p = forkserved("exit-with", &code);
            p.start().unwrap();
            assert_eq!(p.join().unwrap(), code);
        }
        let mut p = forkserved("parent-of", &-1);
        p.start().unwrap();
        assert_eq!(p.join().unwrap(), 1);
        drop(high);
    });
}

#[test]
fn forkserver_refuses_a_binary_that_is_not_one() {
    // /bin/true exits at once without answering: a clear error, no hang, nothing left.
    let server = processes::ForkServer::new("/bin/true");
    let err = server.ensure_running().unwrap_err();
    assert!(
        err.to_string().contains("did not start as a fork server"),
        "{err}"
    );
    let _ = Duration::ZERO;
}
