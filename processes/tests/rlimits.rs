//! `Process::start` at an exhausted limit: the user's process limit (RLIMIT_NPROC) and the
//! descriptor limit (RLIMIT_NOFILE). Each test runs its body in a fresh copy of this test
//! binary (the "role" process, started with `--exact TEST` and an environment variable), since
//! a limit, a changed user id and a table full of descriptors belong to the whole process and
//! would break the other tests running beside it. The role checks, after the failures, that
//! nothing was left behind: no child (running or zombie) and no descriptor more than before.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::Command;
use std::time::Duration;

use lesson::within;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::{Uid, geteuid, setresuid};
use processes::Process;

const ROLE: &str = "PROCESSES_RLIMIT_ROLE";
const LONG: Duration = Duration::from_secs(30);
/// A user id no one on the machine runs as, so its process count is ours alone.
const LONELY_UID: u32 = 54_321;

/// Whether this process is the role process for `role`.
fn is_role(role: &str) -> bool {
    std::env::var(ROLE).is_ok_and(|r| r == role)
}

/// Run test `test` of this binary in a fresh process as `role`; its stdout.
fn run_role(test: &str, role: &str) -> String {
    let exe = std::env::current_exe().expect("this test binary");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE, role);
    let out = lesson::output_within(&mut cmd, LONG * 4).expect("the role process");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "role {role} failed: {}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains(&format!("ROLE {role}: ")),
        "role {role} did not run:\n{stdout}\n{stderr}"
    );
    for line in stdout.lines().filter(|l| l.contains("ROLE")) {
        eprintln!("{line}");
    }
    stdout
}

/// The descriptors open in this process (not counting the one used to list them).
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
        - 1
}

/// Whether this process has any child left, running or zombie.
fn any_child_left() -> bool {
    waitpid(None, Some(WaitPidFlag::WNOHANG)) != Err(Errno::ECHILD)
}

/// A child that says it is ready on a pipe, then waits until its parent's end closes.
fn ready_child(name: &str) -> (Process, std::io::PipeReader, std::io::PipeWriter) {
    let (ready_r, ready_w) = std::io::pipe().unwrap();
    let (hold_r, hold_w) = std::io::pipe().unwrap();
    let keep = [ready_w.as_raw_fd(), hold_r.as_raw_fd()];
    let p = Process::new(move || {
        let (mut ready_w, mut hold_r) = (ready_w, hold_r);
        let _ = ready_w.write_all(b"!");
        let _ = hold_r.read_to_end(&mut Vec::new());
    })
    .named(name)
    .keep_only_fds(&keep);
    (p, ready_r, hold_w)
}

fn wait_ready(r: &mut std::io::PipeReader) {
    let mut fds = [PollFd::new(r.as_fd(), PollFlags::POLLIN)];
    assert_eq!(
        poll(&mut fds, PollTimeout::try_from(LONG).unwrap()).unwrap(),
        1,
        "the child never said it was ready"
    );
    assert_eq!(r.read(&mut [0u8; 1]).unwrap(), 1);
}

/// Regression (the message): a fork refused at the process limit said only "fork failed:
/// EAGAIN", without the process or the limit.
#[test]
fn an_exhausted_process_limit_fails_start_with_a_clear_error_and_leaks_nothing() {
    const TEST: &str =
        "an_exhausted_process_limit_fails_start_with_a_clear_error_and_leaks_nothing";
    if !is_role("nproc") {
        run_role(TEST, "nproc");
        return;
    }
    // RLIMIT_NPROC does not bind root (CAP_SYS_RESOURCE): become a user no one else is,
    // keeping root as the saved id only. Its effective capabilities are gone with it.
    if geteuid().is_root() {
        let lonely = Uid::from_raw(LONELY_UID);
        if let Err(e) = setresuid(lonely, lonely, Uid::from_raw(0)) {
            println!("ROLE nproc: skipped: root cannot change its user id here ({e})");
            return;
        }
        // Changing ids makes /proc/self owned by root; make it ours again to count fds.
        nix::sys::prctl::set_dumpable(true).unwrap();
    }
    processes::register(processes::ENTRIES);
    let fds_before = open_fds();
    let (_, hard) = getrlimit(Resource::RLIMIT_NPROC).unwrap();

    within(LONG * 2, "the nproc role", move || {
        // Two children start under the limit ...
        let (mut a, mut a_ready, a_hold) = ready_child("under-the-limit-a");
        let (mut b, mut b_ready, b_hold) = ready_child("under-the-limit-b");
        a.start().unwrap();
        b.start().unwrap();
        wait_ready(&mut a_ready);
        wait_ready(&mut b_ready);

        // ... then the limit drops to what already runs, and no more start.
        setrlimit(Resource::RLIMIT_NPROC, 0, hard).unwrap();
        let mut forked = Process::new(|| ()).named("over-the-limit");
        let err = format!("{:#}", forked.start().unwrap_err());
        println!("ROLE nproc: fork: {err}");
        assert!(err.contains("process over-the-limit"), "{err}");
        assert!(err.contains("RLIMIT_NPROC"), "{err}");
        assert_eq!((forked.pid(), forked.is_alive()), (None, false));
        assert!(forked.join().is_err());

        let mut spawned = Process::spawn_entry("exit-with", &0)
            .unwrap()
            .exe(env!("CARGO_BIN_EXE_processes"))
            .named("spawn-over-the-limit");
        let err = format!("{:#}", spawned.start().unwrap_err());
        println!("ROLE nproc: spawn: {err}");
        assert!(err.contains("process spawn-over-the-limit"), "{err}");
        assert!(err.contains("RLIMIT_NPROC"), "{err}");

        // Dropped together, as a pool that failed half-way drops its workers: the ends the
        // children wait on go first, then every Process returns from its drop.
        let unstarted = Process::new(|| ());
        drop((a_hold, b_hold));
        drop(vec![a, forked, spawned, unstarted]);
        assert_eq!(b.join().unwrap(), 0);
        drop(b);
    });
    assert!(!any_child_left(), "a child was left behind");
    assert_eq!(open_fds(), fds_before, "a descriptor was leaked");
    println!("ROLE nproc: done");
}

/// At the descriptor limit a spawn (which needs a pipe) fails with a clear error; a fork needs
/// no descriptor and still starts and joins (without a pidfd, `join_timeout` polls).
#[test]
fn an_exhausted_descriptor_limit_fails_spawn_clearly_and_fork_still_works() {
    const TEST: &str = "an_exhausted_descriptor_limit_fails_spawn_clearly_and_fork_still_works";
    if !is_role("nofile") {
        run_role(TEST, "nofile");
        return;
    }
    processes::register(processes::ENTRIES);
    let fds_before = open_fds();
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, 64, hard).unwrap();
    // Fill the table: every descriptor below the limit is taken.
    let stdin = std::io::stdin();
    let mut filler: Vec<OwnedFd> = Vec::new();
    loop {
        match stdin.as_fd().try_clone_to_owned() {
            Ok(fd) => filler.push(fd),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(Errno::EMFILE as i32), "{e}");
                break;
            }
        }
    }

    let mut spawned = Process::spawn_entry("exit-with", &0)
        .unwrap()
        .exe(env!("CARGO_BIN_EXE_processes"))
        .named("spawn-without-fds");
    let err = format!("{:#}", spawned.start().unwrap_err());
    assert!(err.contains("process spawn-without-fds"), "{err}");
    assert!(err.contains("Too many open files"), "{err}");
    drop(spawned);

    let mut forked = Process::new(|| ()).named("fork-without-fds");
    forked.start().unwrap();
    assert!(forked.join_timeout(LONG).unwrap());
    assert_eq!(forked.exitcode(), Some(0));
    drop(forked);

    drop(filler);
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard).unwrap();
    println!("ROLE nofile: spawn: {err}");
    assert!(!any_child_left(), "a child was left behind");
    assert_eq!(open_fds(), fds_before, "a descriptor was leaked");
    println!("ROLE nofile: done");
}
