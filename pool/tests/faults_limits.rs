//! Faults at chosen moments (issue 19), under limits lowered in a child process (this test
//! binary run again): no replacement can be forked, `Pool::new` under a descriptor or a
//! process limit, the `pool` lesson under a process limit. The checks are those of
//! `faults.rs`: one result per task in its place, no hang, no child left, no descriptor leaked.

mod support;

use std::time::Duration;

use pool::{Pool, PoolError, TaskError};
use support::{
    Work, assert_no_children, eventually, eventually_within, exited, helper_is, kill_now, probe,
    run_helper, serial, sq,
};

/// Issue 19, item 3 (run in a child process as user `nobody` with RLIMIT_NPROC lowered, so no
/// replacement can be forked): a dead worker's pid leaves `worker_pids()` (it is never
/// signalled again); the surviving worker runs everything; with none left, tasks fail with
/// `NoWorker` instead of hanging; once forking works again, the pool recovers.
#[test]
fn without_replacements_only_live_workers_are_listed_and_nothing_hangs() {
    let _fork = serial();
    let out = run_helper("helper_no_replacements", Duration::from_secs(120), |_| {});
    assert!(out.status.success(), "the helper failed (see its output)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("helper done"), "{stdout}");
}

fn become_nobody() {
    use nix::unistd::{Gid, Uid, setgid, setgroups, setuid};
    setgroups(&[]).expect("setgroups");
    setgid(Gid::from_raw(65534)).expect("setgid nobody");
    setuid(Uid::from_raw(65534)).expect("setuid nobody");
}

fn set_nproc(soft: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NPROC).expect("getrlimit");
    setrlimit(Resource::RLIMIT_NPROC, soft.min(hard), hard).expect("setrlimit");
}

#[test]
#[ignore = "run in a child process by without_replacements_only_live_workers_are_listed_and_nothing_hangs"]
fn helper_no_replacements() {
    if !helper_is("helper_no_replacements") {
        return;
    }
    become_nobody();
    let pr = probe();
    pr.reset();
    let mut p: Pool<Work> = Pool::new(2).unwrap();
    let pids = p.worker_pids();
    assert_eq!(pids.len(), 2);
    let h = p.apply_async(Work::Block(0)).unwrap();
    let victim = pr.wait_ready();
    let survivor = *pids.iter().find(|&&pid| pid != victim).unwrap();
    set_nproc(1);
    kill_now(victim);
    assert!(matches!(h.get(), Err(TaskError::WorkerDied { .. })));
    eventually_within(
        Duration::from_secs(20),
        "the dead worker leaves worker_pids",
        || !p.worker_pids().contains(&victim),
    );
    for (i, r) in (0..4)
        .map(|i| p.apply_async(Work::Square(i)).unwrap())
        .map(|h| h.get())
        .enumerate()
    {
        assert_eq!(r, Ok(sq(i as u32)));
    }
    assert_eq!(p.worker_pids(), vec![survivor]);
    assert_eq!(p.live_workers(), 1);
    for pid in p.worker_pids() {
        assert!(!exited(pid), "a listed worker is not alive");
    }
    kill_now(survivor);
    eventually("no worker is listed", || p.worker_pids().is_empty());
    for h in (0..3)
        .map(|i| p.apply_async(Work::Square(i)).unwrap())
        .collect::<Vec<_>>()
    {
        match h.get() {
            Err(TaskError::NoWorker(why)) => {
                assert!(why.contains("fork"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }
    set_nproc(u64::MAX);
    assert_eq!(p.apply(Work::Square(9)), Ok(sq(9)));
    assert!(p.live_workers() >= 1);
    p.terminate();
    assert_no_children();
    println!("helper done");
}

/// Issue 19, item 5: `Pool::new` under a descriptor limit (in a child process): an error
/// naming the cause, every worker it had started reaped, no hang, no descriptor leaked.
#[test]
fn pool_new_under_a_descriptor_limit_fails_cleanly() {
    let _fork = serial();
    let out = run_helper("helper_nofile", Duration::from_secs(120), |_| {});
    assert!(out.status.success(), "the helper failed (see its output)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("refused:") && stdout.contains("started:"),
        "{stdout}"
    );
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

#[test]
#[ignore = "run in a child process by pool_new_under_a_descriptor_limit_fails_cleanly"]
fn helper_nofile() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if !helper_is("helper_nofile") {
        return;
    }
    probe();
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let base = open_fds() as u64;
    let (mut refused, mut started) = (0, 0);
    for extra in 0..24 {
        setrlimit(Resource::RLIMIT_NOFILE, base + extra, hard).unwrap();
        let made = Pool::<Work>::new(5);
        setrlimit(Resource::RLIMIT_NOFILE, soft, hard).unwrap();
        match made {
            Ok(mut p) => {
                started += 1;
                assert_eq!(p.apply(Work::Square(3)), Ok(sq(3)));
                p.close();
                p.join().unwrap();
            }
            Err(PoolError::Start(why)) => {
                refused += 1;
                assert!(why.contains("Too many open files"), "{why}");
            }
            Err(e) => panic!("{e}"),
        }
        assert_no_children();
        assert_eq!(
            open_fds() as u64,
            base,
            "descriptors leaked at limit {}",
            base + extra
        );
    }
    println!("refused: {refused}, started: {started}");
    assert!(refused > 0 && started > 0);
}

/// Issue 19, item 5: `Pool::new` under a process limit (in a child process running as
/// `nobody`, where RLIMIT_NPROC applies): forks and thread starts fail at every point in
/// turn; each time an error or a working pool, never a hang, never a child left.
#[test]
fn pool_new_under_a_process_limit_fails_cleanly() {
    let _fork = serial();
    let out = run_helper("helper_nproc", Duration::from_secs(120), |_| {});
    assert!(out.status.success(), "the helper failed (see its output)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("refused:"), "{stdout}");
}

#[test]
#[ignore = "run in a child process by pool_new_under_a_process_limit_fails_cleanly"]
fn helper_nproc() {
    if !helper_is("helper_nproc") {
        return;
    }
    probe();
    become_nobody();
    let mut refused = 0;
    for limit in 1..=16 {
        set_nproc(limit);
        let made = Pool::<Work>::new(5);
        set_nproc(u64::MAX);
        match made {
            Ok(mut p) => {
                assert_eq!(p.apply(Work::Square(3)), Ok(sq(3)));
                p.close();
                p.join().unwrap();
            }
            Err(PoolError::Start(why)) => {
                refused += 1;
                assert!(
                    why.contains("Resource temporarily unavailable") || why.contains("fork"),
                    "{why}"
                );
            }
            Err(e) => panic!("{e}"),
        }
        assert_no_children();
    }
    println!("refused: {refused}");
    assert!(refused > 0);
}

/// Issue 19, item 5: the `pool` lesson under RLIMIT_NPROC 10 to 16 (as `nobody`): it ends,
/// with its narration or with a clear error, never hangs.
#[test]
fn the_pool_lesson_ends_under_a_process_limit() {
    use std::os::unix::process::CommandExt;
    let _fork = serial();
    for limit in [10u64, 12, 14, 16] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_pool"));
        cmd.args(["pool", "--scale", "0.01", "--count", "10"]);
        // SAFETY: the hook runs in the forked child before exec and only makes system calls
        // (setgroups, setgid, setuid, setrlimit): async-signal-safe, no allocation, no lock.
        unsafe {
            cmd.pre_exec(move || {
                use nix::sys::resource::{Resource, setrlimit};
                use nix::unistd::{Gid, Uid, setgid, setgroups, setuid};
                setgroups(&[])?;
                setgid(Gid::from_raw(65534))?;
                setuid(Uid::from_raw(65534))?;
                setrlimit(Resource::RLIMIT_NPROC, limit, limit)?;
                Ok(())
            });
        }
        let out = lesson::output_within(&mut cmd, Duration::from_secs(120))
            .unwrap_or_else(|e| panic!("nproc {limit}: {e:#}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => {}
            Some(1) => assert!(stderr.contains("cannot start the pool"), "{stderr}"),
            other => panic!("nproc {limit}: exit {other:?}: {stderr}"),
        }
    }
}
