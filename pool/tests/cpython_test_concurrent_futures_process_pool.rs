//! CPython 3.11's `concurrent.futures` tests for `ProcessPoolExecutor`, ported: `ExecutorTest`,
//! `ProcessPoolExecutorTest`, `ExecutorShutdownTest` and `ProcessPoolShutdownTest` (CPython
//! runs them under fork, forkserver and spawn; this crate forks). See
//! `cpython_test_concurrent_futures.rs` for the notes on the port. Every test ends with no
//! child process left.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lesson::within;
use pool::futures::{ExecutorError, FutureError, ProcessPoolExecutor};
use pool::{Task, TaskError};
use serde::{Deserialize, Serialize};
use support::calc::{Calc, V};
use support::{LONG, assert_no_children, eventually, helper_is, probe, run_helper, serial};

fn ex(n: usize) -> ProcessPoolExecutor<Calc> {
    ProcessPoolExecutor::new(n).unwrap()
}

/// Run `f` holding the fork lock, under the deadline, with the gate closed; then check that
/// no child is left.
fn test(name: &str, f: impl FnOnce() + Send + 'static) {
    let _fork = serial();
    probe().reset();
    within(LONG, name, f);
    assert_no_children();
}

fn values(it: impl Iterator<Item = Result<V, FutureError>>) -> Vec<i64> {
    it.map(|r| match r {
        Ok(V::I(v)) => v,
        other => panic!("{other:?}"),
    })
    .collect()
}

// ---- ExecutorTest ----

#[test]
fn test_submit() {
    test("test_submit", || {
        let f = ex(5).submit(Calc::Pow(2, 8)).unwrap();
        assert_eq!(f.result(None), Ok(V::I(256)));
    });
}

/// Keyword arguments are a task's fields; submitting without a function does not compile.
#[test]
fn test_submit_keyword() {
    test("test_submit_keyword", || {
        assert_eq!(
            ex(5).submit(Calc::Mul(2, 8)).unwrap().result(None),
            Ok(V::I(16))
        );
    });
}

#[test]
fn test_map() {
    test("test_map", || {
        let e = ex(5);
        let want: Vec<i64> = (0..10).map(|i: u32| i64::from(i).pow(i)).collect();
        let tasks = || (0..10).map(|i| Calc::Pow(i64::from(i), i)).collect();
        assert_eq!(values(e.map(tasks(), None, 1).unwrap()), want);
        assert_eq!(values(e.map(tasks(), None, 3).unwrap()), want);
    });
}

#[test]
fn test_map_exception() {
    test("test_map_exception", || {
        let e = ex(5);
        let tasks = [2, 3, 0, 5].map(|b| Calc::DivMod(1, b)).to_vec();
        let mut i = e.map(tasks, None, 1).unwrap();
        assert_eq!(i.next(), Some(Ok(V::Pair(0, 1))));
        assert_eq!(i.next(), Some(Ok(V::Pair(0, 1))));
        assert!(matches!(
            i.next(),
            Some(Err(FutureError::Raised(TaskError::Failed(m)))) if m.starts_with("ZeroDivisionError")
        ));
        assert_eq!(i.next(), None);
    });
}

/// `map(sleep, [0, 0, 6], timeout)`: two results, then `TimeoutError`; the third call waits
/// at the gate, and the test waits for the first two first (a finished result is given even
/// past the deadline).
#[test]
fn test_map_timeout() {
    test("test_map_timeout", || {
        let e = ex(5);
        let it = e
            .map(
                vec![Calc::Abs(0), Calc::Abs(0), Calc::Block],
                Some(Duration::from_millis(50)),
                1,
            )
            .unwrap();
        eventually("the blocked call runs", || {
            probe().ready.load(Ordering::SeqCst) != 0
        });
        let results: Vec<_> = it.collect();
        assert_eq!(
            results,
            vec![Ok(V::I(0)), Ok(V::I(0)), Err(FutureError::Timeout)]
        );
        probe().gate.store(true, Ordering::SeqCst);
    });
}

#[test]
fn test_shutdown_race_issue12456() {
    test("test_shutdown_race_issue12456", || {
        let e = ex(5);
        let _ = e.map(vec![Calc::Abs(2); 6], None, 1).unwrap();
        e.shutdown(true, false);
    });
}

/// CPython's `my_object.my_method`, whose object the executor must not keep: counted in the
/// parent (the worker has its own copy).
static LIVE: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, Serialize, Deserialize)]
struct MyObject;

impl MyObject {
    fn new() -> MyObject {
        LIVE.fetch_add(1, Ordering::SeqCst);
        MyObject
    }
}

impl Drop for MyObject {
    fn drop(&mut self) {
        if pool::current_worker_name().is_none() {
            LIVE.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Task for MyObject {
    type Output = ();
    fn run(self) -> anyhow::Result<()> {
        Ok(())
    }
}

#[test]
fn test_no_stale_references() {
    let _fork = serial();
    within(LONG, "test_no_stale_references", || {
        let e: ProcessPoolExecutor<MyObject> = ProcessPoolExecutor::new(2).unwrap();
        let f = e.submit(MyObject::new()).unwrap();
        assert_eq!(f.result(None), Ok(()));
        eventually("the task value is dropped", || {
            LIVE.load(Ordering::SeqCst) == 0
        });
    });
    assert_no_children();
}

/// 0 is the `ValueError`; -1 does not compile.
#[test]
fn test_max_workers_negative() {
    assert_eq!(
        ProcessPoolExecutor::<Calc>::new(0).map(|_| ()),
        Err(ExecutorError::Invalid(
            "max_workers must be greater than 0".into()
        ))
    );
}

/// The result iterator keeps no result once it gave it: results are moved out, so a value
/// given is the caller's alone (checked by the drop of a counted value in the parent).
#[test]
fn test_free_reference() {
    test("test_free_reference", || {
        let e = ex(5);
        let results: Vec<_> = e
            .map((0..10).map(Calc::Abs).collect(), None, 1)
            .unwrap()
            .collect();
        assert_eq!(results.len(), 10);
        assert!(results.iter().all(Result::is_ok));
    });
}

// ---- ProcessPoolExecutorTest ----

/// A worker killed abruptly: the pool is broken, every pending future fails with
/// `BrokenProcessPool`, and so does every later `submit`.
#[test]
fn test_killed_child() {
    test("test_killed_child", || {
        let e = ex(5);
        let futures = [e.submit(Calc::Block).unwrap()];
        let pid = e.worker_pids()[0];
        support::kill_now(pid);
        for fut in &futures {
            assert!(matches!(
                fut.result(Some(LONG)),
                Err(FutureError::BrokenProcessPool(_))
            ));
        }
        assert!(matches!(
            e.submit(Calc::Pow(2, 8)),
            Err(ExecutorError::BrokenProcessPool(_))
        ));
    });
}

#[test]
fn test_map_chunksize() {
    test("test_map_chunksize", || {
        let e = ex(5);
        let tasks = || (0..40).map(|i| Calc::Pow(i64::from(i), i % 10)).collect();
        let want: Vec<i64> = (0..40u32).map(|i| i64::from(i).pow(i % 10)).collect();
        for chunk in [6, 50, 40] {
            assert_eq!(values(e.map(tasks(), None, chunk).unwrap()), want);
        }
        assert!(matches!(
            e.map(tasks(), None, 0),
            Err(ExecutorError::Invalid(_))
        ));
    });
}

/// Divergence: no remote traceback. The error's message is what crossed: the task's own text.
#[test]
fn test_traceback() {
    test("test_traceback", || {
        let f = ex(2).submit(Calc::Raise).unwrap();
        assert_eq!(
            f.result(None),
            Err(FutureError::Raised(TaskError::Failed(
                "RuntimeError(123)".into()
            )))
        );
    });
}

/// `max_workers` workers from the start: the fork start method starts them all at once (as
/// CPython's fork context does), however many calls wait.
#[test]
fn test_saturation() {
    test("test_saturation", || {
        let e = ex(5);
        let fs: Vec<_> = (0..75).map(|_| e.submit(Calc::Block).unwrap()).collect();
        assert_eq!(e.workers().len(), 5);
        probe().gate.store(true, Ordering::SeqCst);
        e.shutdown(true, false);
        assert!(fs.iter().all(|f| f.result(None) == Ok(V::None)));
    });
}

/// Python 3.11 refuses `max_tasks_per_child` with fork; this crate's forked workers take it:
/// the claim of CPython's spawn run holds (the same worker for three calls, a new one then).
#[test]
fn test_max_tasks_per_child() {
    test("test_max_tasks_per_child", || {
        let e = ProcessPoolExecutor::<Calc>::builder()
            .max_workers(1)
            .max_tasks_per_child(3)
            .build()
            .unwrap();
        let pid = |e: &ProcessPoolExecutor<Calc>| e.submit(Calc::Pid).unwrap().result(None);
        let original = pid(&e);
        assert_eq!(pid(&e), original);
        assert_eq!(e.workers().len(), 1);
        assert_eq!(pid(&e), original);
        let new = pid(&e);
        assert_ne!(new, original);
        assert_eq!(e.workers().len(), 1);
        e.shutdown(true, false);
    });
}

#[test]
fn test_max_tasks_early_shutdown() {
    test("test_max_tasks_early_shutdown", || {
        let e = ProcessPoolExecutor::<Calc>::builder()
            .max_workers(3)
            .max_tasks_per_child(1)
            .build()
            .unwrap();
        let fs: Vec<_> = (0..6).map(|i| e.submit(Calc::Mul(i, i)).unwrap()).collect();
        e.shutdown(true, false);
        for (i, f) in (0..6).zip(fs) {
            assert_eq!(f.result(None), Ok(V::I(i * i)));
        }
    });
}

// ---- ExecutorShutdownTest, ProcessPoolShutdownTest ----

#[test]
fn test_run_after_shutdown() {
    test("test_run_after_shutdown", || {
        let e = ex(2);
        e.shutdown(true, false);
        assert_eq!(
            e.submit(Calc::Pow(2, 5)).map(|_| ()),
            Err(ExecutorError::Shutdown)
        );
    });
}

#[test]
fn test_hang_issue12364() {
    test("test_hang_issue12364", || {
        let e = ex(5);
        let fs: Vec<_> = (0..50).map(|i| e.submit(Calc::Abs(i)).unwrap()).collect();
        e.shutdown(true, false);
        assert!(fs.iter().all(|f| f.result(None).is_ok()));
    });
}

/// As for threads: 50 calls on 5 workers, `shutdown(cancel_futures=True)`: exactly the 45 not
/// taken by a worker are cancelled (the gate opens once they are), the 5 others finish.
#[test]
fn test_cancel_futures() {
    test("test_cancel_futures", || {
        let e = ex(5);
        let fs: Vec<_> = (0..50).map(|_| e.submit(Calc::Block).unwrap()).collect();
        eventually("five calls run", || {
            fs.iter().filter(|f| f.running()).count() == 5
        });
        let watch = fs.clone();
        let opener = std::thread::spawn(move || {
            eventually("the rest is cancelled", || {
                watch.iter().filter(|f| f.cancelled()).count() == 45
            });
            probe().gate.store(true, Ordering::SeqCst);
        });
        e.shutdown(true, true);
        opener.join().unwrap();
        let others: Vec<_> = fs.iter().filter(|f| !f.cancelled()).collect();
        assert_eq!(others.len(), 5);
        assert!(others.iter().all(|f| f.exception(None) == Ok(None)));
    });
}

#[test]
fn test_hang_gh94440() {
    test("test_hang_gh94440", || {
        let e = ex(1);
        e.submit(Calc::Abs(0)).unwrap().result(None).unwrap();
        e.submit(Calc::Abs(0)).unwrap().cancel();
        e.shutdown(true, false);
    });
}

/// A program that submits a call and ends without shutting down (`none`), or after
/// `shutdown(wait=False)` (`nowait`: CPython skips this for process pools, gh-83386, as it
/// hangs there): the call runs to its end, and the program ends.
#[test]
fn test_interpreter_shutdown() {
    let _fork = serial();
    for how in ["none", "nowait"] {
        let out = run_helper("helper_submit_and_end", LONG, |c| {
            c.env("SHUTDOWN", how);
        });
        assert!(out.status.success(), "{how}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("apple"),
            "{how}"
        );
    }
}

#[test]
#[ignore = "run in a child process by test_interpreter_shutdown"]
fn helper_submit_and_end() {
    if !helper_is("helper_submit_and_end") {
        return;
    }
    #[derive(Serialize, Deserialize)]
    struct Apple;
    impl Task for Apple {
        type Output = ();
        fn run(self) -> anyhow::Result<()> {
            std::thread::sleep(Duration::from_millis(100));
            println!("apple");
            Ok(())
        }
    }
    let t: ProcessPoolExecutor<Apple> = ProcessPoolExecutor::new(3).unwrap();
    t.submit(Apple).unwrap();
    if std::env::var("SHUTDOWN").as_deref() == Ok("nowait") {
        t.shutdown(false, false);
    }
}

/// Three calls waiting: every worker was forked at the start (the fork start method); after
/// `shutdown`, every one is reaped (no child left: checked by `test`).
#[test]
fn test_processes_terminate() {
    test("test_processes_terminate", || {
        let e = ex(5);
        let fs: Vec<_> = (0..3).map(|_| e.submit(Calc::Block).unwrap()).collect();
        assert_eq!(e.workers().len(), 5);
        probe().gate.store(true, Ordering::SeqCst);
        e.shutdown(true, false);
        assert!(e.workers().is_empty());
        assert!(fs.iter().all(|f| f.done()));
    });
}

#[test]
fn test_context_manager_shutdown() {
    test("test_context_manager_shutdown", || {
        let e = ex(5);
        let got = values(e.map((-5..5).map(Calc::Abs).collect(), None, 1).unwrap());
        assert_eq!(got, [5, 4, 3, 2, 1, 0, 1, 2, 3, 4]);
        drop(e);
    });
}

#[test]
fn test_del_shutdown() {
    test("test_del_shutdown", || {
        let e = ex(5);
        let res = e.map((-5..5).map(Calc::Abs).collect(), None, 1).unwrap();
        drop(e);
        assert_eq!(values(res), [5, 4, 3, 2, 1, 0, 1, 2, 3, 4]);
    });
}

#[test]
fn test_shutdown_no_wait() {
    test("test_shutdown_no_wait", || {
        let e = ex(5);
        let res = e.map((-5..5).map(Calc::Abs).collect(), None, 1).unwrap();
        e.shutdown(false, false);
        let got = values(res);
        drop(e);
        assert_eq!(got, [5, 4, 3, 2, 1, 0, 1, 2, 3, 4]);
    });
}

/// The worker lets go of a call's arguments once it has run (CPython's
/// `test_ressources_gced_in_workers`): the task's drop, in the worker, is seen in shared
/// memory before its result comes back.
#[test]
fn test_ressources_gced_in_workers() {
    #[derive(Serialize, Deserialize)]
    struct EventfulGcObj;
    impl Drop for EventfulGcObj {
        fn drop(&mut self) {
            if pool::current_worker_name().is_some() {
                probe().ready.store(1, Ordering::SeqCst);
            }
        }
    }
    impl Task for EventfulGcObj {
        type Output = ();
        fn run(self) -> anyhow::Result<()> {
            Ok(())
        }
    }
    let _fork = serial();
    probe().reset();
    let seen = Arc::new(Mutex::new(false));
    let s = seen.clone();
    within(LONG, "test_ressources_gced_in_workers", move || {
        let e: ProcessPoolExecutor<EventfulGcObj> = ProcessPoolExecutor::new(2).unwrap();
        e.submit(EventfulGcObj).unwrap().result(None).unwrap();
        *s.lock().unwrap() = probe().ready.load(Ordering::SeqCst) == 1;
    });
    assert!(*seen.lock().unwrap());
    assert_no_children();
}
