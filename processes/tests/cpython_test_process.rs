//! CPython 3.11's `Lib/test/_test_multiprocessing.py`, the parts about processes, ported:
//! `_TestProcess`, `_TestSubclassingProcess`, and the module-level tests that concern starting
//! processes (`TestCloseFds`, `TestStartMethod`, `TestStdinBadfiledescriptor`). Each test is
//! named after its original; the README's conformance table lists every original with pass,
//! divergence or skipped, and why. What the originals check through a `Queue` or an `Event`
//! travels here through a plain pipe (the `ipc` chapter's types build on this crate, so they
//! cannot be used in its tests); every read has a deadline.
//!
//! Children forked here only serialize, write to pipes, sleep, spawn a thread or fork in turn
//! (glibc makes allocation safe after fork; see the `process` module docs), and each keeps only
//! the descriptors it uses (`keep_only_fds`), so no child holds a copy of another test's pipe.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use lesson::within;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::{getpid, getppid, gettid};
use processes::lessons::api;
use processes::{Process, Run, StartMethod};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Deadline for anything that should take milliseconds: a bug fails instead of hanging.
const LONG: Duration = Duration::from_secs(30);
const BIN: &str = env!("CARGO_BIN_EXE_processes");

// ---------------------------------------------------------------------------------------
// Plumbing: length-prefixed postcard frames over a pipe, read with a deadline.

fn pipe() -> (std::io::PipeReader, std::io::PipeWriter) {
    std::io::pipe().expect("pipe")
}

/// Send one value as a frame (what the originals do with `q.put` or `conn.send`).
fn send<T: Serialize>(w: &mut std::io::PipeWriter, value: &T) -> std::io::Result<()> {
    let bytes = postcard::to_allocvec(value).map_err(std::io::Error::other)?;
    let mut frame = (bytes.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&bytes);
    w.write_all(&frame)
}

/// Wait until `r` is readable or `deadline` passes.
fn readable_by(r: &impl AsFd, deadline: Instant) -> bool {
    let left = deadline.saturating_duration_since(Instant::now());
    let mut fds = [PollFd::new(r.as_fd(), PollFlags::POLLIN)];
    let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
    poll(&mut fds, timeout).expect("poll") == 1
}

fn read_exact_by(r: &mut std::io::PipeReader, buf: &mut [u8], deadline: Instant) {
    let mut got = 0;
    while got < buf.len() {
        assert!(readable_by(r, deadline), "nothing arrived within {LONG:?}");
        let n = r.read(&mut buf[got..]).expect("read");
        assert!(n > 0, "the pipe closed after {got} of {} bytes", buf.len());
        got += n;
    }
}

/// Receive one frame (the originals' `q.get()`), within [`LONG`].
fn recv<T: DeserializeOwned>(r: &mut std::io::PipeReader) -> T {
    let deadline = Instant::now() + LONG;
    let mut len = [0u8; 4];
    read_exact_by(r, &mut len, deadline);
    let mut bytes = vec![0u8; u32::from_le_bytes(len) as usize];
    read_exact_by(r, &mut bytes, deadline);
    postcard::from_bytes(&bytes).expect("a frame")
}

/// Whatever is in the pipe now, without waiting for end-of-file (a child forked meanwhile by
/// another test may hold a copy of the write end for a moment).
fn drain_now(r: &mut std::io::PipeReader) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while readable_by(r, Instant::now()) {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn raw(fd: &impl AsRawFd) -> RawFd {
    fd.as_raw_fd()
}

/// Whether descriptor `fd` is open in the calling process.
fn fd_open(fd: RawFd) -> bool {
    Path::new(&format!("/proc/self/fd/{fd}")).exists()
}

fn spawned(entry: &str, arg: &impl Serialize) -> Process {
    processes::register(processes::ENTRIES);
    Process::spawn_entry(entry, arg).unwrap().exe(BIN)
}

/// The argument of the chapter binary's `count-fds` entry: quiet narration, kept nowhere.
fn quiet() -> lesson::Handoff {
    lesson::Handoff {
        scale: 0.0,
        start_unix_nanos: 0,
        echo: false,
        sink: None,
        speaker: None,
    }
}

// ---------------------------------------------------------------------------------------
// _TestProcess

#[test]
fn test_set_executable() {
    // Python accepts str, bytes and os.PathLike; `exe` takes anything that becomes a PathBuf.
    let paths: [PathBuf; 3] = [
        BIN.into(),
        String::from(BIN).into(),
        std::ffi::OsString::from(BIN).into(),
    ];
    within(LONG, "spawned children", move || {
        for path in paths {
            let mut p = spawned("exit-with", &0).exe(path);
            p.start().unwrap();
            assert_eq!(p.join().unwrap(), 0);
        }
    });
}

/// Start a fork child that sends `arg` back; what it sent.
fn echo<T>(arg: T) -> T
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    let (mut r, w) = pipe();
    let keep = raw(&w);
    let mut p = Process::new(move || {
        let mut w = w;
        send(&mut w, &arg)
    })
    .daemon(true)
    .keep_only_fds(&[keep]);
    p.start().unwrap();
    let got = recv(&mut r);
    assert_eq!(p.join().unwrap(), 0);
    got
}

#[test]
fn test_args_argument() {
    // Python: args given as a list or a tuple reach the child alike. Here the closure (or
    // `Process::target`'s argument) carries any value; each kind arrives whole.
    within(LONG, "children", || {
        assert_eq!(echo(1_i64), 1);
        assert_eq!(echo("str".to_owned()), "str");
        assert_eq!(echo(vec![1_i64]), [1]);
        assert_eq!(echo((1_i64,)), (1,));
        let (mut r, w) = pipe();
        let keep = raw(&w);
        fn put((mut w, a, b): (std::io::PipeWriter, i64, String)) -> std::io::Result<()> {
            send(&mut w, &(a, b))
        }
        let mut p = Process::target(put, (w, 7, "seven".to_owned())).keep_only_fds(&[keep]);
        p.start().unwrap();
        assert_eq!(recv::<(i64, String)>(&mut r), (7, "seven".to_owned()));
        assert_eq!(p.join().unwrap(), 0);
    });
}

#[test]
fn test_daemon_argument() {
    // Divergence: Python's default is the *current* process's daemon flag (and a daemonic
    // process may not start children); here the default is always false and a daemon may
    // start children.
    assert!(!Process::new(|| ()).is_daemon());
    assert!(Process::new(|| ()).daemon(true).is_daemon());
    assert!(!Process::new(|| ()).daemon(false).is_daemon());
}

#[test]
fn test_parent_process_attributes() {
    // Partial: there is no parent_process() object; its pid is getppid().
    let (mut r, w) = pipe();
    let keep = raw(&w);
    let mut p = Process::new(move || {
        let mut w = w;
        send(&mut w, &getppid().as_raw())
    })
    .keep_only_fds(&[keep]);
    p.start().unwrap();
    let parent: i32 = recv(&mut r);
    assert_eq!(p.join().unwrap(), 0);
    assert_eq!(parent, getpid().as_raw());
    assert_eq!(parent as u32, std::process::id());
}

#[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
struct Kwargs {
    hello: i64,
    bye: f64,
}

#[test]
fn test_process() {
    within(LONG, "the child", || {
        let (mut r, w) = pipe();
        // The parent's go: the child stays until the parent has read everything (the
        // original's Queue(1) holds the child the same way).
        let (go_r, mut go_w) = pipe();
        let keep = [raw(&w), raw(&go_r)];
        let name = "SomeProcess";
        // The original's child reads its name from current_process(); no such object here,
        // so the name travels with the arguments.
        let mut p = Process::new(move || -> std::io::Result<()> {
            let (mut w, mut go_r) = (w, go_r);
            send(&mut w, &(1_i64, 2_i64))?;
            send(
                &mut w,
                &Kwargs {
                    hello: 23,
                    bye: 2.54,
                },
            )?;
            send(&mut w, &name)?;
            send(&mut w, &getpid().as_raw())?;
            go_r.read_exact(&mut [0u8; 1])
        })
        .named(name)
        .daemon(true)
        .keep_only_fds(&keep);
        assert!(!p.is_alive());
        assert!(p.is_daemon());
        assert_eq!(p.exitcode(), None);

        p.start().unwrap();
        assert_eq!(p.exitcode(), None);
        // It waits for the go, which has not been sent.
        assert!(p.is_alive());

        assert_eq!(recv::<(i64, i64)>(&mut r), (1, 2));
        assert_eq!(
            recv::<Kwargs>(&mut r),
            Kwargs {
                hello: 23,
                bye: 2.54
            }
        );
        assert_eq!(recv::<String>(&mut r), p.name());
        assert_eq!(Some(recv::<i32>(&mut r)), p.pid());

        go_w.write_all(b"!").unwrap();
        assert_eq!(p.join().unwrap(), 0);
        assert_eq!(p.exitcode(), Some(0));
        assert!(!p.is_alive());
    });
}

#[test]
fn test_process_mainthread_native_id() {
    let (mut r, w) = pipe();
    let keep = raw(&w);
    let mut p = Process::new(move || {
        let mut w = w;
        // The forked thread is the child's main thread: its tid is the child's pid.
        send(&mut w, &(gettid().as_raw(), getpid().as_raw()))
    })
    .keep_only_fds(&[keep]);
    p.start().unwrap();
    let (child_tid, child_pid): (i32, i32) = recv(&mut r);
    assert_eq!(p.join().unwrap(), 0);
    // This process's main thread has tid == our pid.
    assert_ne!(child_tid, getpid().as_raw());
    assert_eq!(child_tid, child_pid);
}

/// The original's `_kill_process`: a daemon that sleeps, checked, signalled by `meth`,
/// joined; its exit code.
fn kill_process(meth: fn(&Process) -> anyhow::Result<()>) -> i32 {
    within(LONG * 2, "the signalled child", move || {
        let mut p = Process::new(|| std::thread::sleep(Duration::from_secs(100))).daemon(true);
        p.start().unwrap();
        assert!(p.is_alive());
        assert_eq!(p.exitcode(), None);
        // join(0): returns at once, still alive. (join(-1) has no Rust form: a Duration is
        // never negative.)
        let t = Instant::now();
        assert!(!p.join_timeout(Duration::ZERO).unwrap());
        assert!(t.elapsed() < LONG);
        assert!(p.is_alive());

        meth(&p).unwrap();
        assert!(p.join_timeout(LONG).unwrap(), "join took too long");
        assert!(!p.is_alive());
        p.join().unwrap()
    })
}

#[test]
fn test_terminate() {
    assert_eq!(kill_process(Process::terminate), -15);
}

#[test]
fn test_kill() {
    assert_eq!(kill_process(Process::kill), -9);
}

#[test]
fn test_cpu_count() {
    // Python's cpu_count() counts the machine's CPUs; Rust's available_parallelism() follows
    // the affinity mask and cgroup quota. Both are at least 1.
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(n >= 1);
}

/// The original's `_test_recursion`: send `id`, then (two levels deep) start two children,
/// one after the other, each joined before the next.
fn recursion(w: &mut std::io::PipeWriter, id: Vec<u8>) -> anyhow::Result<()> {
    send(w, &id)?;
    if id.len() < 2 {
        for i in 0..2 {
            let mut w2 = w.try_clone()?;
            let keep = raw(&w2);
            let mut child_id = id.clone();
            child_id.push(i);
            let mut p = Process::new(move || recursion(&mut w2, child_id)).keep_only_fds(&[keep]);
            p.start()?;
            anyhow::ensure!(p.join()? == 0, "child {i} of {id:?} failed");
        }
    }
    Ok(())
}

#[test]
fn test_recursion() {
    within(LONG * 2, "the process tree", || {
        let (mut r, mut w) = pipe();
        recursion(&mut w, vec![]).unwrap();
        let got: Vec<Vec<u8>> = (0..7).map(|_| recv(&mut r)).collect();
        let expected: Vec<Vec<u8>> = vec![
            vec![],
            vec![0],
            vec![0, 0],
            vec![0, 1],
            vec![1],
            vec![1, 0],
            vec![1, 1],
        ];
        assert_eq!(got, expected);
    });
}

#[test]
fn test_close() {
    // Divergence: there is no close(). Dropping the handle is close: a drop of a running
    // child waits for it (Python's close() raises ValueError), and nothing can be called on a
    // dropped handle (Python raises ValueError at run time; here it does not compile). What
    // carries over: after join, the state is final, and the drop releases the closure.
    let token = Arc::new(());
    let weak: Weak<()> = Arc::downgrade(&token);
    let (r, w) = pipe();
    let keep = raw(&r);
    let mut p = Process::new(move || {
        let _token = token;
        let mut r = r;
        // Waits for the parent's go (the original's q.get()).
        r.read(&mut [0u8; 1]).map(drop)
    })
    .daemon(true)
    .keep_only_fds(&[keep]);
    p.start().unwrap();
    assert!(p.is_alive());
    let mut w = w;
    w.write_all(b"!").unwrap();
    assert_eq!(p.join().unwrap(), 0);
    assert!(!p.is_alive());
    assert_eq!(p.exitcode(), Some(0));
    drop(p);
    assert!(weak.upgrade().is_none());
}

#[test]
fn test_many_processes() {
    within(LONG * 4, "many children", || {
        // fork: N = 100, as the original.
        let n = 100;
        let mut procs: Vec<Process> = (0..n)
            .map(|_| Process::new(|| std::thread::sleep(Duration::from_millis(10))))
            .collect();
        for p in &mut procs {
            p.start().unwrap();
        }
        for p in &mut procs {
            assert_eq!(p.join().unwrap(), 0);
        }

        let mut procs: Vec<Process> = (0..n)
            .map(|_| Process::new(|| std::thread::sleep(Duration::from_secs(100))))
            .collect();
        for p in &mut procs {
            p.start().unwrap();
        }
        for p in &mut procs {
            p.terminate().unwrap();
        }
        for p in &mut procs {
            assert_eq!(p.join().unwrap(), -15);
        }

        // spawn: N = 5, as the original. (Only the first half: the chapter binary has no
        // entry that sleeps, and one that has already exited cannot be terminated.)
        let mut procs: Vec<Process> = (0..5).map(|_| spawned("exit-with", &0)).collect();
        for p in &mut procs {
            p.start().unwrap();
        }
        for p in &mut procs {
            assert_eq!(p.join().unwrap(), 0);
        }
    });
}

struct DummyCallable;

#[test]
fn test_lose_target_ref() {
    // The parent's copy of the target is dropped when the child is forked: no reference to it
    // outlives start() in the parent (the original checks after join, with a weakref).
    let c = Arc::new(DummyCallable);
    let wr = Arc::downgrade(&c);
    let (mut r, w) = pipe();
    let keep = raw(&w);
    let mut p = Process::new(move || {
        let _c: Arc<DummyCallable> = c;
        let mut w = w;
        send(&mut w, &5_i32)
    })
    .keep_only_fds(&[keep]);
    p.start().unwrap();
    assert!(wr.upgrade().is_none(), "the parent kept the target");
    assert_eq!(recv::<i32>(&mut r), 5);
    assert_eq!(p.join().unwrap(), 0);
}

#[test]
fn test_child_fd_inflation() {
    // Spawn only, as the original ("the fork method by design inherits all fds"). Five
    // children started before any is joined: the parent holds what it keeps per running child
    // (a pidfd each) while it starts the next; none of that may reach a later child. Each
    // reports its count as its exit code.
    let codes = within(LONG * 2, "spawned children", || {
        let mut procs: Vec<Process> = (0..5).map(|_| spawned("count-fds", &quiet())).collect();
        for p in &mut procs {
            p.start().unwrap();
        }
        procs
            .iter_mut()
            .map(|p| p.join().unwrap())
            .collect::<Vec<i32>>()
    });
    assert!(codes.iter().all(|&c| c == codes[0]), "{codes:?}");
}

#[test]
fn test_wait_for_threads() {
    // Divergence, documented on `Process` and shown in the `api` lesson: the original's child
    // waits for its non-daemon thread, so its event is set after join. Here the child leaves
    // when its body returns: a child whose thread never ends is joined at once with exit
    // code 0 (Python's would never end) ...
    let code = within(LONG * 2, "the child", || {
        api::child_leaves_its_thread(LONG).unwrap()
    });
    assert_eq!(code, Some(0), "the child waited for its thread");
    // ... and Python's behaviour is had by joining the thread in the body.
    let cx = lesson::Cx::quiet(0.02);
    assert!(within(LONG * 2, "the child", move || {
        api::child_joins_its_thread(&cx).unwrap()
    }));
}

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

const ROLE: &str = "PROCESSES_CPYTHON_ROLE";

fn is_role(test: &str) -> bool {
    std::env::var(ROLE).is_ok_and(|r| r == test)
}

/// Run test `test` alone in a fresh process with the role set; its stdout.
fn run_role(test: &str) -> String {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE, test);
    let out = lesson::output_within(&mut cmd, LONG * 4).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{test} failed in its own process: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

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
    within(LONG, "the spawned child", move || {
        s.start().unwrap();
        assert_eq!(s.start_method(), Some(StartMethod::Spawn));
        s.join().unwrap();
        assert_eq!(s.start_method(), Some(StartMethod::Spawn));
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
