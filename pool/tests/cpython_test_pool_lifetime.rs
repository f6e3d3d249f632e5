//! CPython 3.11's pool tests (`Lib/test/_test_multiprocessing.py`), the second part: errors
//! in workers (`_TestPoolWorkerErrors`), a worker's lifetime (`_TestPoolWorkerLifetime`), the
//! pool at exit, and `TestPoolNotLeakOnFailure`. The first part, with the module's notes, is
//! `cpython_test_pool.rs`.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lesson::within;
use pool::{Pool, PoolError, Task, TaskError};
use serde::{Deserialize, Serialize};
use support::{
    LONG, Work, assert_no_children, eventually, exited, helper_is, run_helper, serial, sq,
};

/// CPython's `sqr(x)`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sqr {
    x: u64,
}

impl Task for Sqr {
    type Output = u64;
    fn run(self) -> anyhow::Result<u64> {
        Ok(self.x * self.x)
    }
}

fn squares(n: u64) -> Vec<u64> {
    (0..n).map(|x| x * x).collect()
}

fn sqrs(n: u64) -> Vec<Sqr> {
    (0..n).map(|x| Sqr { x }).collect()
}

/// A result that cannot be encoded is `ResultEncoding` (MaybeEncodingError), to `get` and to
/// the error callback, twenty times; and no worker is lost to it (CPython checks the pool still
/// works; here the workers' pids do not change either).
#[test]
fn test_unpickleable_result() {
    let _fork = serial();
    within(LONG, "test_unpickleable_result", || {
        let mut p: Pool<Work> = Pool::new(2).unwrap();
        let pids = p.worker_pids();
        for i in 0..20 {
            let scratchpad: Arc<Mutex<Option<TaskError>>> = Arc::default();
            let pad = scratchpad.clone();
            let res = p
                .apply_async_with(
                    Work::BadResult(i),
                    |_| {},
                    move |e| *pad.lock().unwrap() = Some(e.clone()),
                )
                .unwrap();
            let got = res.get();
            assert!(
                matches!(&got, Err(TaskError::ResultEncoding(m)) if !m.is_empty()),
                "{got:?}"
            );
            assert_eq!(scratchpad.lock().unwrap().as_ref(), got.as_ref().err());
        }
        assert_eq!(p.worker_pids(), pids);
        p.close();
        p.join().unwrap();
    });
}

#[test]
fn test_pool_worker_lifetime() {
    let _fork = serial();
    within(LONG, "test_pool_worker_lifetime", || {
        let mut p: Pool<Sqr> = Pool::<Sqr>::builder()
            .processes(3)
            .maxtasksperchild(10)
            .build()
            .unwrap();
        let orig = p.worker_pids();
        assert_eq!(orig.len(), 3);
        let results: Vec<_> = (0..100)
            .map(|x| p.apply_async(Sqr { x }).unwrap())
            .collect();
        for (j, res) in results.into_iter().enumerate() {
            assert_eq!(res.get(), Ok((j * j) as u64));
        }
        eventually("all three workers alive", || {
            p.live_workers() == 3 && p.worker_pids().len() == 3
        });
        let mut before = orig.clone();
        let mut after = p.worker_pids();
        before.sort_unstable();
        after.sort_unstable();
        assert_ne!(before, after);
        p.close();
        p.join().unwrap();
    });
}

#[test]
fn test_pool_worker_lifetime_early_close() {
    let _fork = serial();
    within(LONG, "test_pool_worker_lifetime_early_close", || {
        let mut p: Pool<Work> = Pool::<Work>::builder()
            .processes(3)
            .maxtasksperchild(1)
            .build()
            .unwrap();
        let results: Vec<_> = (0..6)
            .map(|i| p.apply_async(Work::Nap(i, 30_000)).unwrap())
            .collect();
        p.close();
        p.join().unwrap();
        for (j, res) in results.into_iter().enumerate() {
            assert_eq!(res.get(), Ok(sq(j as u32)));
        }
    });
}

/// 0 is the ValueError; -1, 0.5 and "12" do not compile (`usize`).
#[test]
fn test_pool_maxtasksperchild_invalid() {
    assert!(matches!(
        Pool::<Sqr>::builder()
            .processes(3)
            .maxtasksperchild(0)
            .build::<Sqr>(),
        Err(PoolError::Invalid(_))
    ));
}

/// CPython: a pool left in a global at interpreter exit must not hang it. Here: a process
/// that exits without closing its pool (leaked) ends, and its workers, seeing end-of-file,
/// leave too.
#[test]
fn test_worker_finalization_via_atexit_handler_of_multiprocessing() {
    let _fork = serial();
    let out = run_helper("helper_leaked_pool", Duration::from_secs(60), |_| {});
    assert!(out.status.success(), "the helper failed (see its output)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let pids: Vec<i32> = stdout
        .lines()
        .find_map(|l| l.split("worker pids: ").nth(1))
        .expect("the helper names its workers")
        .split(',')
        .map(|p| p.trim().parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 1);
    eventually("the leaked pool's workers left", || {
        pids.iter().all(|&pid| exited(pid))
    });
}

#[test]
#[ignore = "run in a child process by test_worker_finalization_via_atexit_handler_of_multiprocessing"]
fn helper_leaked_pool() {
    if !helper_is("helper_leaked_pool") {
        return;
    }
    let p: Pool<Sqr> = Pool::new(1).unwrap();
    assert_eq!(p.map(sqrs(10), 1), Ok(squares(10)));
    let pids: Vec<String> = p.worker_pids().iter().map(i32::to_string).collect();
    println!("worker pids: {}", pids.join(","));
    std::mem::forget(p);
    std::process::exit(0);
}

/// CPython fails the 4th process start (a mocked Process) and checks no started one is left
/// alive. Here the descriptor limit (lowered in a child process) leaves room for three
/// workers: `Pool::new(5)` fails with the cause, and no child and no descriptor is left.
#[test]
fn test_release_unused_processes() {
    let _fork = serial();
    let out = run_helper("helper_fourth_fails", Duration::from_secs(60), |_| {});
    assert!(out.status.success(), "the helper failed (see its output)");
    assert!(String::from_utf8_lossy(&out.stdout).contains("failed at the 4th"));
}

/// Open descriptors, not counting the one that lists them.
fn open_fds() -> Vec<u64> {
    let mut fds: Vec<u64> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    fds.sort_unstable();
    // The last one listed was the listing's own, closed by now.
    let listing = fds
        .iter()
        .copied()
        .find(|fd| !std::path::Path::new(&format!("/proc/self/fd/{fd}")).exists());
    fds.retain(|fd| Some(*fd) != listing);
    fds
}

/// The descriptor limit that leaves exactly `free` descriptor numbers free (new descriptors
/// take the lowest free number, and the limit bounds the number, not the count).
fn limit_with_free(free: u64) -> u64 {
    let open = open_fds();
    let mut left = free;
    let mut fd = 0;
    loop {
        if !open.contains(&fd) {
            if left == 0 {
                return fd;
            }
            left -= 1;
        }
        fd += 1;
    }
}

#[test]
#[ignore = "run in a child process by test_release_unused_processes"]
fn helper_fourth_fails() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if !helper_is("helper_fourth_fails") {
        return;
    }
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let base = open_fds();
    // Each worker keeps two descriptors in the parent (its socket end, its pidfd) and needs
    // a socket pair (two at once) to start: with 7 free, three fit and the fourth does not.
    setrlimit(Resource::RLIMIT_NOFILE, limit_with_free(7), hard).unwrap();
    let made = Pool::<Sqr>::new(5);
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard).unwrap();
    match made {
        Err(PoolError::Start(why)) => assert!(why.contains("Too many open files"), "{why}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("five workers started under the limit"),
    }
    assert_no_children();
    assert_eq!(open_fds(), base);
    // And with room for four, but not five: the same.
    setrlimit(Resource::RLIMIT_NOFILE, limit_with_free(9), hard).unwrap();
    let made = Pool::<Sqr>::new(5);
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard).unwrap();
    assert!(matches!(made, Err(PoolError::Start(_))));
    assert_no_children();
    assert_eq!(open_fds(), base);
    // With room for five, it starts: the count above is right.
    setrlimit(Resource::RLIMIT_NOFILE, limit_with_free(10), hard).unwrap();
    let made = Pool::<Sqr>::new(5);
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard).unwrap();
    let mut p = made.expect("five workers fit in 10 free descriptors");
    p.close();
    p.join().unwrap();
    assert_no_children();
    println!("failed at the 4th and the 5th, nothing left");
}
