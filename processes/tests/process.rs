//! `Process` from inside the (multi-threaded) test harness. The children here only sleep,
//! return, panic or exit: work that is safe after fork (see the `process` module docs).

use std::time::{Duration, Instant};

use lesson::{Cx, within};
use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use processes::Process;
use processes::lessons::{api, pids};

const LONG: Duration = Duration::from_secs(60);

fn cx() -> Cx {
    Cx::quiet(0.02).with_exe(env!("CARGO_BIN_EXE_processes"))
}

#[test]
fn children_have_distinct_pids_and_we_are_their_parent() {
    let pids = within(LONG, "pids", || pids::children(&cx()).unwrap());
    assert_eq!(pids.len(), 4);
    let mut sorted = pids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 4);
    assert!(!pids.contains(&(std::process::id() as i32)));
}

#[test]
fn join_timeout_returns_with_the_child_alive_then_join_gives_0() {
    within(LONG, "join_timeout", || {
        let mut p = Process::new(|| std::thread::sleep(Duration::from_millis(300)));
        p.start().unwrap();
        let t = Instant::now();
        assert!(!p.join_timeout(Duration::from_millis(20)).unwrap());
        assert!(
            t.elapsed() < Duration::from_millis(290),
            "join_timeout overslept"
        );
        assert!(p.is_alive());
        assert_eq!(p.exitcode(), None);
        assert_eq!(p.join().unwrap(), 0);
        assert_eq!(p.exitcode(), Some(0));
        assert!(!p.is_alive());
        // And a short child is seen ending within a generous timeout.
        let mut q = Process::new(|| ());
        q.start().unwrap();
        assert!(q.join_timeout(LONG).unwrap());
    });
}

#[test]
fn terminate_and_kill_give_minus_the_signal() {
    within(LONG, "terminate", || {
        let mut p = Process::new(|| std::thread::sleep(Duration::from_secs(60)));
        p.start().unwrap();
        p.terminate().unwrap();
        assert_eq!(p.join().unwrap(), -15);
        let mut k = Process::new(|| std::thread::sleep(Duration::from_secs(60)));
        k.start().unwrap();
        k.kill().unwrap();
        assert_eq!(k.join().unwrap(), -9);
        // Signalling a reaped process is a no-op, never a signal to a reused pid.
        k.terminate().unwrap();
    });
}

#[test]
fn a_panicking_or_failing_child_exits_1_and_a_normal_one_0() {
    within(LONG, "exit codes", || {
        let mut p = Process::new(|| -> () { panic!("child panic") });
        p.start().unwrap();
        assert_eq!(p.join().unwrap(), 1);
        let mut e = Process::new(|| Err::<(), _>("bad input"));
        e.start().unwrap();
        assert_eq!(e.join().unwrap(), 1);
        let mut ok = Process::target(|x: u32| assert_eq!(x, 7), 7);
        ok.start().unwrap();
        assert_eq!(ok.join().unwrap(), 0);
    });
}

#[test]
fn a_dropped_unjoined_process_is_reaped() {
    let pid = within(LONG, "drop joins", || {
        let mut p = Process::new(|| std::thread::sleep(Duration::from_millis(50)));
        p.start().unwrap();
        let pid = p.pid().unwrap();
        drop(p);
        pid
    });
    // Already reaped by the drop: not our child any more, and gone from /proc.
    assert_eq!(
        waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)),
        Err(Errno::ECHILD)
    );
    assert!(!api::exists(pid));
}

#[test]
fn a_dropped_daemon_is_terminated_and_reaped() {
    let pid = within(LONG, "daemon drop", || {
        let mut p = Process::new(|| std::thread::sleep(Duration::from_secs(60))).daemon(true);
        p.start().unwrap();
        let pid = p.pid().unwrap();
        let t = Instant::now();
        drop(p);
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "drop waited for the daemon"
        );
        pid
    });
    assert!(!api::exists(pid));
}

#[test]
fn daemons_die_when_the_parent_returns_or_is_killed() {
    let (daemon, worker, text) = within(LONG, "daemon parent", || {
        api::daemon_when_parent_returns(&cx()).unwrap()
    });
    assert!(text.contains("worker done"), "{text}");
    assert!(!text.contains("daemon done"), "{text}");
    assert!(!api::exists(daemon) && !api::exists(worker));
    let (daemon, how) = within(LONG, "daemon parent killed", || {
        api::daemon_when_parent_is_killed(&cx()).unwrap()
    });
    // Either the kernel's death signal killed it, or (when the parent died before the child
    // had armed that signal) the child's own re-check made it leave: both mean it did not
    // outlive its parent. "gone" is an orphan handed to another reaper.
    assert!(
        how == "killed by SIGKILL (PR_SET_PDEATHSIG)"
            || how == api::EXITED_ON_RECHECK
            || how == "gone",
        "{how}"
    );
    assert!(!api::exists(daemon));
}

#[test]
fn spawn_delivers_its_argument_and_unknown_entries_fail_in_the_parent() {
    processes::register(processes::ENTRIES);
    within(LONG, "spawn", || {
        for code in [0, 7, 42] {
            let mut p = Process::spawn_entry("exit-with", &code)
                .unwrap()
                .exe(env!("CARGO_BIN_EXE_processes"));
            p.start().unwrap();
            assert_eq!(p.join().unwrap(), code);
        }
        let mut p = Process::spawn_entry("no-such-entry", &()).unwrap();
        let err = p.start().unwrap_err().to_string();
        assert!(
            err.contains("no spawn entry named \"no-such-entry\""),
            "{err}"
        );
        assert!(err.contains("exit-with"), "{err}");
        assert!(p.join().is_err(), "nothing was started, so nothing to join");
    });
}

#[test]
fn a_process_starts_once_and_cannot_be_joined_before_start() {
    let mut p = Process::new(|| ());
    assert!(p.join().is_err());
    assert!(!p.is_alive());
    p.start().unwrap();
    assert!(p.start().is_err());
    assert_eq!(p.join().unwrap(), 0);
}

#[test]
fn keep_only_fds_closes_everything_else_in_the_child() {
    use std::os::fd::AsRawFd;
    let (r, w) = nix::unistd::pipe().unwrap();
    let (kept, closed) = (r.as_raw_fd(), w.as_raw_fd());
    // SAFETY: F_GETFD only reads the descriptor's flags; on a closed descriptor it fails with
    // EBADF, which is what we probe for.
    let open = |fd: i32| unsafe { nix::libc::fcntl(fd, nix::libc::F_GETFD) } != -1;
    within(LONG, "keep_only_fds", move || {
        let mut p = Process::new(move || -> Result<(), String> {
            if !open(kept) {
                return Err("the kept descriptor was closed".into());
            }
            if open(closed) {
                return Err("a descriptor not kept is still open".into());
            }
            Ok(())
        })
        .keep_only_fds(&[kept]);
        p.start().unwrap();
        assert_eq!(p.join().unwrap(), 0);
    });
    // The parent's copies are untouched.
    assert!(open(r.as_raw_fd()) && open(w.as_raw_fd()));
}
