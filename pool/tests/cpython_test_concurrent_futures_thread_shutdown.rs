//! CPython 3.11's `concurrent.futures` shutdown tests for `ThreadPoolExecutor`, ported:
//! `ExecutorShutdownTest` and `ThreadPoolShutdownTest` (see
//! `cpython_test_concurrent_futures.rs` for the notes on the port). A call that CPython keeps
//! running with a sleep or a semaphore waits at the probe's gate here; tests that run a
//! program to its end run this test binary again as a child process.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use lesson::within;
use pool::futures::{ExecutorError, Future, ThreadPoolExecutor};
use support::{LONG, eventually, helper_is, probe, run_helper, serial};

fn ex(n: usize) -> ThreadPoolExecutor {
    ThreadPoolExecutor::new(n).unwrap()
}

/// Run `f` holding the fork lock (the probe's gate is shared), under the deadline, with the
/// gate closed.
fn test(name: &str, f: impl FnOnce() + Send + 'static) {
    let _fork = serial();
    probe().reset();
    within(LONG, name, f);
}

/// A call that waits at the gate.
fn blocked(ex: &ThreadPoolExecutor) -> Future<()> {
    ex.submit(|| {
        probe().hold();
        Ok(())
    })
    .unwrap()
}

#[test]
fn test_run_after_shutdown() {
    let e = ex(5);
    e.shutdown(true, false);
    assert_eq!(
        e.submit(|| Ok(2u64.pow(5))).map(|_| ()),
        Err(ExecutorError::Shutdown)
    );
    assert_eq!(
        ExecutorError::Shutdown.to_string(),
        "cannot schedule new futures after shutdown"
    );
}

/// A program that submits a call and ends without shutting down: the call still runs to its
/// end (Python's atexit hook; here the executor's drop at the end of `main`).
#[test]
fn test_interpreter_shutdown() {
    let out = run_helper("helper_submit_and_end", LONG, |c| {
        c.env("SHUTDOWN", "none");
    });
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("apple"));
}

/// The same after `shutdown(wait=False)` (CPython gh-83386): no hang at the end.
#[test]
fn test_hang_gh83386() {
    let out = run_helper("helper_submit_and_end", LONG, |c| {
        c.env("SHUTDOWN", "nowait");
    });
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("apple"));
}

/// And after `shutdown(wait=False, cancel_futures=True)` once the call runs: a running call
/// is not cancelled.
#[test]
fn test_cancel_futures_wait_false() {
    let out = run_helper("helper_submit_and_end", LONG, |c| {
        c.env("SHUTDOWN", "cancel");
    });
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("apple"));
}

#[test]
#[ignore = "run in a child process by test_interpreter_shutdown and its kin"]
fn helper_submit_and_end() {
    if !helper_is("helper_submit_and_end") {
        return;
    }
    let t = ex(3);
    let f = t
        .submit(|| {
            std::thread::sleep(Duration::from_millis(100));
            println!("apple");
            Ok(())
        })
        .unwrap();
    match std::env::var("SHUTDOWN").as_deref() {
        Ok("nowait") => t.shutdown(false, false),
        Ok("cancel") => {
            eventually("the call runs", || f.running());
            t.shutdown(false, true);
        }
        _ => {}
    }
}

#[test]
fn test_hang_issue12364() {
    test("test_hang_issue12364", || {
        let e = ex(5);
        let fs: Vec<_> = (0..50)
            .map(|_| {
                e.submit(|| {
                    std::thread::sleep(Duration::from_millis(1));
                    Ok(())
                })
                .unwrap()
            })
            .collect();
        e.shutdown(true, false);
        assert!(fs.iter().all(|f| f.result(None).is_ok()));
    });
}

/// 50 calls on 5 threads, `shutdown(cancel_futures=True)`: those still queued are cancelled,
/// the running ones finish without an exception. CPython's calls sleep; these wait at the gate
/// (opened once the queue is cancelled), so the counts are exact: 45 and 5.
#[test]
fn test_cancel_futures() {
    test("test_cancel_futures", || {
        let e = ex(5);
        let fs: Vec<_> = (0..50).map(|_| blocked(&e)).collect();
        eventually("five calls run", || {
            fs.iter().filter(|f| f.running()).count() == 5
        });
        let watch = fs.clone();
        let opener = std::thread::spawn(move || {
            eventually("the queue is cancelled", || {
                watch.iter().filter(|f| f.cancelled()).count() == 45
            });
            probe().gate.store(true, Ordering::SeqCst);
        });
        e.shutdown(true, true);
        opener.join().unwrap();
        let cancelled = fs.iter().filter(|f| f.cancelled()).count();
        assert!(cancelled > 20);
        let others: Vec<_> = fs.iter().filter(|f| !f.cancelled()).collect();
        assert!(!others.is_empty());
        for f in others {
            assert!(f.done());
            assert_eq!(f.exception(None), Ok(None));
        }
    });
}

/// A future cancelled just before `shutdown(wait=True)` does not hang it (gh-94440).
#[test]
fn test_hang_gh94440() {
    test("test_hang_gh94440", || {
        let e = ex(1);
        e.submit(|| Ok(0)).unwrap().result(None).unwrap();
        e.submit(|| Ok(0)).unwrap().cancel();
        e.shutdown(true, false);
    });
}

/// The names of the threads that ran `n` calls of a `map` on `e`.
fn names(e: &ThreadPoolExecutor, n: i64) -> Vec<String> {
    e.map(
        |_: i64| Ok(std::thread::current().name().unwrap_or("").to_owned()),
        -n..n,
        None,
    )
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

#[test]
fn test_threads_terminate() {
    test("test_threads_terminate", || {
        let e = ex(5);
        let fs: Vec<_> = (0..3).map(|_| blocked(&e)).collect();
        assert_eq!(e.threads(), 3);
        probe().gate.store(true, Ordering::SeqCst);
        e.shutdown(true, false);
        assert_eq!(e.threads(), 0, "joined");
        assert!(fs.iter().all(Future::done));
    });
}

#[test]
fn test_context_manager_shutdown() {
    test("test_context_manager_shutdown", || {
        let e = ex(5);
        let got: Vec<i64> = e
            .map(|x: i64| Ok(x.abs()), -5..5, None)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, [5, 4, 3, 2, 1, 0, 1, 2, 3, 4]);
        drop(e); // `with`: shutdown(wait=True), every thread joined
    });
}

#[test]
fn test_del_shutdown() {
    test("test_del_shutdown", || {
        let e = ex(5);
        let res = e.map(|x: i64| Ok(x.abs()), -5..5, None).unwrap();
        drop(e);
        let got: Vec<i64> = res.map(Result::unwrap).collect();
        assert_eq!(got, [5, 4, 3, 2, 1, 0, 1, 2, 3, 4]);
    });
}

#[test]
fn test_shutdown_no_wait() {
    test("test_shutdown_no_wait", || {
        let e = ex(5);
        let res = e.map(|x: i64| Ok(x.abs()), -5..5, None).unwrap();
        e.shutdown(false, false);
        let got: Vec<i64> = res.map(Result::unwrap).collect();
        assert_eq!(got, [5, 4, 3, 2, 1, 0, 1, 2, 3, 4]);
    });
}

#[test]
fn test_thread_names_assigned() {
    test("test_thread_names_assigned", || {
        let e = ThreadPoolExecutor::builder()
            .max_workers(5)
            .thread_name_prefix("SpecialPool")
            .build()
            .unwrap();
        for name in names(&e, 5) {
            let n = name
                .strip_prefix("SpecialPool_")
                .unwrap_or_else(|| panic!("{name}"));
            assert!(n.parse::<u32>().is_ok_and(|n| n < 5), "{name}");
        }
    });
}

#[test]
fn test_thread_names_default() {
    test("test_thread_names_default", || {
        for name in names(&ex(5), 5) {
            let rest = name
                .strip_prefix("ThreadPoolExecutor-")
                .unwrap_or_else(|| panic!("{name}"));
            let (pool, thread) = rest.split_once('_').unwrap_or_else(|| panic!("{name}"));
            assert!(pool.parse::<u32>().is_ok(), "{name}");
            assert!(thread.parse::<u32>().is_ok_and(|n| n < 5), "{name}");
        }
    });
}
