//! `Process` under faults, each caused at a chosen moment: a thread in a fork child, a child
//! SIGKILLed while the parent waits, a handle dropped in every state.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::time::Duration;

use lesson::within;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use processes::Process;

/// Longer than any of these children should take on a loaded machine; a bug that hangs fails
/// here instead of hanging the suite.
const LONG: Duration = Duration::from_secs(30);

/// Wait for `p` with a deadline; if it did not end, kill and reap it before failing, so a
/// failing test leaves nothing behind.
fn ended_within(p: &mut Process, limit: Duration) -> bool {
    let ended = p.join_timeout(limit).expect("join_timeout");
    if !ended {
        p.kill().expect("kill");
        p.join().expect("join after kill");
    }
    ended
}

/// Regression: the fork child held std's stdout and stderr locks (taken in the parent across
/// `fork`) for the whole body, so a thread the body started blocked on its first print, and a
/// body that joined that thread never ended.
#[test]
fn a_thread_started_in_a_fork_child_can_print_and_be_joined() {
    within(LONG * 2, "the child", || {
        let mut p = Process::new(|| -> Result<(), String> {
            let t = std::thread::spawn(|| {
                // What every print does, without writing to the test's output.
                drop(std::io::stdout().lock());
                drop(std::io::stderr().lock());
            });
            t.join()
                .map_err(|_| "the child's thread panicked".to_owned())
        });
        p.start().unwrap();
        assert!(
            ended_within(&mut p, LONG),
            "the child's thread waited for a lock its main thread kept"
        );
        assert_eq!(p.exitcode(), Some(0));
    });
}

/// Regression: a spawned child inherited every descriptor the parent had open without
/// close-on-exec (a `nix::unistd::pipe`, a socketpair without `SOCK_CLOEXEC`, whatever the
/// parent itself inherited), so it could keep a pipe's reader from ever seeing end-of-file.
/// Python's spawn passes the child only the descriptors it needs.
#[test]
fn a_spawned_child_has_only_stdin_stdout_and_stderr() {
    processes::register(processes::ENTRIES);
    // Opened without close-on-exec, as nix's pipe() does.
    let (r, w) = nix::unistd::pipe().unwrap();
    let n = within(LONG * 2, "the spawned child", || {
        let mut p = Process::spawn_entry("count-fds", &lesson::Cx::quiet(0.0).handoff())
            .unwrap()
            .exe(env!("CARGO_BIN_EXE_processes"));
        p.start().unwrap();
        assert!(ended_within(&mut p, LONG), "the spawned child hung");
        p.exitcode().unwrap()
    });
    drop((r, w));
    // The count is its exit code: 3 (stdin, stdout, stderr), fewer only if one of stdout or
    // stderr was closed when the test started.
    assert!(
        (1..=3).contains(&n),
        "the spawned child had {n} descriptors open"
    );
}

/// A pipe the child writes one byte to when it has reached the chosen moment.
fn ready_pipe() -> (std::io::PipeReader, std::io::PipeWriter) {
    std::io::pipe().expect("pipe")
}

/// Wait (with a deadline) until the child's ready byte arrives.
fn wait_ready(reader: &mut std::io::PipeReader) {
    let mut fds = [PollFd::new(reader.as_fd(), PollFlags::POLLIN)];
    let n = poll(&mut fds, PollTimeout::try_from(LONG).unwrap()).expect("poll");
    assert_eq!(n, 1, "the child never said it was ready");
    let mut byte = [0u8; 1];
    assert_eq!(
        reader.read(&mut byte).expect("read"),
        1,
        "the child died first"
    );
}

/// The child's side: say ready, then wait for a signal that never comes (until killed).
fn ready_then_wait(mut ready: std::io::PipeWriter) {
    let _ = ready.write_all(b"!");
    drop(ready);
    loop {
        std::thread::park();
    }
}

#[test]
fn sigkill_from_outside_once_ready_gives_minus_9_and_join_timeout_sees_it() {
    within(LONG * 2, "the killed child", || {
        let (mut r, w) = ready_pipe();
        let keep = w.as_raw_fd();
        // A daemon, so that if an assertion fails first, the drop ends it.
        let mut p = Process::new(move || ready_then_wait(w))
            .keep_only_fds(&[keep])
            .daemon(true);
        p.start().unwrap();
        wait_ready(&mut r);
        // The moment: running its body, not reaped, is_alive() true.
        assert!(p.is_alive());
        assert_eq!(p.exitcode(), None);
        assert!(!p.join_timeout(Duration::ZERO).unwrap(), "join(0)");
        let pid = Pid::from_raw(p.pid().unwrap());
        kill(pid, Signal::SIGKILL).unwrap();
        assert!(
            p.join_timeout(LONG).unwrap(),
            "a killed child was not seen to end"
        );
        assert_eq!(p.exitcode(), Some(-9));
        assert!(!p.is_alive());
        assert_eq!(p.pid(), None, "a reaped child has no pid to signal");
        // Joining again, and signalling a reaped child, change nothing.
        assert_eq!(p.join().unwrap(), -9);
        p.terminate().unwrap();
        p.kill().unwrap();
        assert_eq!(p.exitcode(), Some(-9));
    });
}

#[test]
fn sigkill_while_another_thread_waits_in_join_timeout_wakes_it() {
    within(LONG * 2, "the killed child", || {
        let (mut r, w) = ready_pipe();
        let keep = w.as_raw_fd();
        // A daemon, so that if an assertion fails first, the drop ends it.
        let mut p = Process::new(move || ready_then_wait(w))
            .keep_only_fds(&[keep])
            .daemon(true);
        p.start().unwrap();
        wait_ready(&mut r);
        let pid = Pid::from_raw(p.pid().unwrap());
        // The waiter sleeps in poll on the pidfd; whether the kill lands before or during
        // that wait, it returns true with -9.
        let waiter = std::thread::spawn(move || {
            let ended = p.join_timeout(LONG).unwrap();
            (ended, p.exitcode())
        });
        kill(pid, Signal::SIGKILL).unwrap();
        assert_eq!(waiter.join().unwrap(), (true, Some(-9)));
    });
}

#[test]
fn sigkill_right_after_start_before_the_body_runs_gives_minus_9() {
    within(LONG * 2, "the killed child", || {
        for _ in 0..20 {
            let mut p = Process::new(|| ());
            p.start().unwrap();
            kill(Pid::from_raw(p.pid().unwrap()), Signal::SIGKILL).unwrap();
            // Killed before or after its (empty) body ended.
            let code = p.join().unwrap();
            assert!(code == -9 || code == 0, "exit code {code}");
        }
    });
}

/// The child's side: block SIGTERM (so terminate() stays pending), then say ready and wait.
fn deaf_to_sigterm_then_wait(ready: std::io::PipeWriter) {
    let _ = SigSet::from(Signal::SIGTERM).thread_block();
    ready_then_wait(ready)
}

#[test]
fn a_child_deaf_to_sigterm_outlives_terminate_and_dies_of_kill() {
    within(LONG * 2, "the deaf child", || {
        let (mut r, w) = ready_pipe();
        let keep = w.as_raw_fd();
        // A daemon, so that if an assertion fails first, the drop ends it.
        let mut p = Process::new(move || deaf_to_sigterm_then_wait(w))
            .keep_only_fds(&[keep])
            .daemon(true);
        p.start().unwrap();
        wait_ready(&mut r);
        p.terminate().unwrap();
        // Only "nothing happened yet" is timed: a short wait that must not see it end.
        assert!(!p.join_timeout(Duration::from_millis(50)).unwrap());
        assert!(p.is_alive());
        p.kill().unwrap();
        assert!(p.join_timeout(LONG).unwrap());
        assert_eq!(p.exitcode(), Some(-9));
    });
}

#[test]
fn a_stopped_child_dies_of_terminate_once_continued() {
    within(LONG * 2, "the stopped child", || {
        let (mut r, w) = ready_pipe();
        let keep = w.as_raw_fd();
        // A daemon, so that if an assertion fails first, the drop ends it.
        let mut p = Process::new(move || ready_then_wait(w))
            .keep_only_fds(&[keep])
            .daemon(true);
        p.start().unwrap();
        wait_ready(&mut r);
        let pid = p.pid().unwrap();
        kill(Pid::from_raw(pid), Signal::SIGSTOP).unwrap();
        wait_until_stopped(pid);
        // A single-threaded process that is stopped keeps SIGTERM pending: the kernel does not
        // wake it for a signal it would handle by dying (SIGKILL is the exception). So
        // terminate() alone does not end it...
        p.terminate().unwrap();
        // Only "nothing happened yet" is timed: a short wait that must not see it end.
        assert!(!p.join_timeout(Duration::from_millis(50)).unwrap());
        assert!(p.is_alive());
        // ...and it dies of that SIGTERM as soon as it runs again.
        kill(Pid::from_raw(pid), Signal::SIGCONT).unwrap();
        assert!(p.join_timeout(LONG).unwrap());
        assert_eq!(p.exitcode(), Some(-15));
    });
}

/// Wait until `/proc/<pid>/stat` shows the process stopped (state `T`).
fn wait_until_stopped(pid: i32) {
    let deadline = std::time::Instant::now() + LONG;
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        // The state follows the command name, which is in parentheses.
        let state = stat.rsplit(')').next().unwrap().split_whitespace().next();
        if state == Some("T") {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{pid} never stopped: {stat}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Whether `pid` is still our child (running or zombie): `waitpid` on a reaped pid fails with
/// ECHILD. (Asking reaps a zombie, so ask once, at the end of a test.)
fn still_our_child(pid: i32) -> bool {
    waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) != Err(Errno::ECHILD)
}

#[test]
fn dropping_an_unstarted_process_drops_its_closure_and_starts_nothing() {
    let token = Arc::new(());
    let weak = Arc::downgrade(&token);
    let p = Process::new(move || drop(token));
    assert_eq!(p.pid(), None);
    drop(p);
    assert!(weak.upgrade().is_none(), "the closure outlived its Process");
}

#[test]
fn a_failed_start_drops_the_closure_and_leaves_nothing_to_wait_for() {
    processes::register(processes::ENTRIES);
    let mut p = Process::spawn_entry("exit-with", &0)
        .unwrap()
        .exe("/nonexistent/processes-binary")
        .named("doomed-spawn");
    let err = format!("{:#}", p.start().unwrap_err());
    assert!(
        err.contains("doomed-spawn") && err.contains("/nonexistent/processes-binary"),
        "{err}"
    );
    assert_eq!((p.pid(), p.exitcode(), p.is_alive()), (None, None, false));
    assert!(p.join().is_err());
    assert!(!p.join_timeout(Duration::ZERO).is_ok_and(|ended| ended));
    within(LONG, "dropping it", move || drop(p));
}

/// Regression: starting a Process again after its start failed said "was already started",
/// as if a child were running.
#[test]
fn a_process_whose_start_failed_says_so_when_started_or_joined() {
    let mut p = Process::spawn_entry("exit-with", &0)
        .unwrap()
        .exe("/nonexistent/processes-binary");
    assert!(p.start().is_err());
    for err in [p.start().unwrap_err(), p.join().unwrap_err()] {
        let err = err.to_string();
        assert!(err.contains("start failed"), "{err}");
    }
}

#[test]
fn the_parent_drops_the_closure_at_start_so_the_child_sees_end_of_file() {
    // The write end lives only in the closure: the child drops its copy first thing, and the
    // parent's copy goes with the parent's copy of the closure, at start. If the parent kept
    // the closure until the Process was dropped, this child would never see end-of-file and
    // the drop would wait forever.
    let (r, w) = ready_pipe();
    let keep = [r.as_raw_fd(), w.as_raw_fd()];
    let token = Arc::new(());
    let weak = Arc::downgrade(&token);
    let mut p = Process::new(move || -> std::io::Result<()> {
        let _token = token;
        drop(w);
        let mut r = r;
        r.read_to_end(&mut Vec::new())?;
        Ok(())
    })
    .keep_only_fds(&keep);
    p.start().unwrap();
    assert!(weak.upgrade().is_none(), "the parent kept the closure");
    let pid = p.pid().unwrap();
    within(LONG, "dropping it", move || drop(p));
    assert!(!still_our_child(pid));
}

#[test]
fn a_dropped_process_whose_child_has_ended_is_reaped_at_once() {
    let (mut r, w) = ready_pipe();
    let keep = w.as_raw_fd();
    let mut p = Process::new(move || {
        let mut w = w;
        let _ = w.write_all(b"!");
    })
    .keep_only_fds(&[keep]);
    p.start().unwrap();
    wait_ready(&mut r);
    let pid = p.pid().unwrap();
    within(LONG, "dropping it", move || drop(p));
    assert!(!still_our_child(pid), "a zombie was left");
}

#[test]
fn a_dropped_daemon_deaf_to_sigterm_is_killed_after_the_grace_and_reaped() {
    let (mut r, w) = ready_pipe();
    let keep = w.as_raw_fd();
    let mut p = Process::new(move || deaf_to_sigterm_then_wait(w))
        .keep_only_fds(&[keep])
        .daemon(true);
    p.start().unwrap();
    wait_ready(&mut r);
    let pid = p.pid().unwrap();
    within(LONG, "dropping the daemon", move || drop(p));
    assert!(!still_our_child(pid));
}

#[test]
fn a_dropped_process_waits_for_its_child_once_the_end_it_reads_is_closed_first() {
    // The pool's shape: a child that runs until its parent's end of a pipe closes. Dropped
    // as `(end, process)`, the end closes first and the drop returns; the other order,
    // `(process, end)`, would wait forever (see `Process`'s docs on dropping).
    let (r, w) = ready_pipe();
    let keep = r.as_raw_fd();
    let mut p = Process::new(move || -> std::io::Result<()> {
        let mut r = r;
        r.read_to_end(&mut Vec::new())?;
        Ok(())
    })
    .keep_only_fds(&[keep]);
    p.start().unwrap();
    let pid = p.pid().unwrap();
    let pair = (w, p);
    within(LONG, "dropping (end, process)", move || drop(pair));
    assert!(!still_our_child(pid));
}

/// Regression: `join_timeout(Duration::MAX)` (a user's "no limit") panicked computing its
/// deadline ("overflow when adding duration to instant").
#[test]
fn join_timeout_with_a_timeout_too_large_for_a_deadline_waits_without_a_limit() {
    within(LONG, "the child", || {
        let mut p = Process::new(|| ());
        p.start().unwrap();
        assert!(p.join_timeout(Duration::MAX).unwrap());
        assert_eq!(p.exitcode(), Some(0));
    });
}

/// A fork child that panics while another thread of the parent was printing a panic or
/// resolving a backtrace at the instant of the fork: std's default panic hook takes a private
/// lock (the one that keeps two panic messages apart); the child's copy of that lock was held
/// by a thread that does not exist in the child, so the child's panic blocked for ever (seen as
/// a Manager server that never answered a call whose method panicked). Here a parent thread
/// holds that lock almost all the time (resolving backtraces), and each child must still panic,
/// say so, and end.
#[test]
fn a_child_panics_and_ends_while_a_parent_thread_holds_the_panic_lock() {
    use std::sync::atomic::{AtomicBool, Ordering};
    within(LONG * 4, "the children", || {
        let stop = Arc::new(AtomicBool::new(false));
        let busy = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // Resolving a backtrace holds std's backtrace lock (the panic hook's) for
                    // about a millisecond.
                    let text = std::backtrace::Backtrace::force_capture().to_string();
                    std::hint::black_box(text);
                }
            })
        };
        // The first child that hangs is killed (and reaped) and ends the loop.
        let mut ended = 0;
        for _ in 0..40 {
            let mut p = Process::new(|| -> Result<(), String> { panic!("on purpose") });
            p.start().expect("start");
            if !ended_within(&mut p, Duration::from_secs(10)) {
                break;
            }
            assert_eq!(p.exitcode(), Some(1), "a panicking body exits 1");
            ended += 1;
        }
        stop.store(true, Ordering::Relaxed);
        busy.join().unwrap();
        assert_eq!(ended, 40, "child {} hung in its panic", ended + 1);
    });
}
