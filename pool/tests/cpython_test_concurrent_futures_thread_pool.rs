//! CPython 3.11's `concurrent.futures` tests for `ThreadPoolExecutor`, ported: `ExecutorTest`,
//! `ThreadPoolExecutorTest` and the two initializer mixins (the shutdown tests are in
//! `cpython_test_concurrent_futures_thread_shutdown.rs`; see
//! `cpython_test_concurrent_futures.rs` for the notes on the port).
//! A call that CPython keeps running with a sleep or a semaphore waits at the probe's gate
//! here. Tests that run a program to its end run this test binary again as a child process.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lesson::within;
use pool::TaskError;
use pool::futures::{ExecutorError, Future, FutureError, ThreadPoolExecutor};
use support::{LONG, eventually, probe, serial};

fn ex(n: usize) -> ThreadPoolExecutor {
    ThreadPoolExecutor::new(n).unwrap()
}

/// Python's `divmod(a, b)`: `ZeroDivisionError` for 0.
fn divmod(a: i64, b: i64) -> anyhow::Result<(i64, i64)> {
    anyhow::ensure!(
        b != 0,
        "ZeroDivisionError: integer division or modulo by zero"
    );
    Ok((a.div_euclid(b), a.rem_euclid(b)))
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

// ---- ExecutorTest ----

#[test]
fn test_submit() {
    test("test_submit", || {
        let f = ex(5).submit(|| Ok(2u64.pow(8))).unwrap();
        assert_eq!(f.result(None), Ok(256));
    });
}

/// Keyword arguments are a closure's captures; submitting without a function, CPython's
/// `TypeError`, does not compile.
#[test]
fn test_submit_keyword() {
    test("test_submit_keyword", || {
        let (x, y) = (2, 8);
        assert_eq!(
            ex(5).submit(move || Ok(x * y)).unwrap().result(None),
            Ok(16)
        );
    });
}

#[test]
fn test_map() {
    test("test_map", || {
        let e = ex(5);
        let want: Vec<u64> = (0..10u32).map(|i| u64::from(i).pow(i)).collect();
        let got: Vec<u64> = e
            .map(|i: u32| Ok(u64::from(i).pow(i)), 0..10, None)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, want);
    });
}

#[test]
fn test_map_exception() {
    test("test_map_exception", || {
        let e = ex(5);
        let mut i = e.map(|b| divmod(1, b), [2, 3, 0, 5], None).unwrap();
        assert_eq!(i.next(), Some(Ok((0, 1))));
        assert_eq!(i.next(), Some(Ok((0, 1))));
        assert!(matches!(
            i.next(),
            Some(Err(FutureError::Raised(TaskError::Failed(m)))) if m.starts_with("ZeroDivisionError")
        ));
        assert_eq!(i.next(), None, "the first error ends it");
    });
}

/// `map(sleep, [0, 0, 6], timeout)`: two results, then `TimeoutError`. The third call waits
/// at the gate; the test waits for the first two to finish, so a slow machine cannot turn
/// them into time-outs (a finished result is given even past the deadline).
#[test]
fn test_map_timeout() {
    test("test_map_timeout", || {
        let e = ex(5);
        let finished = Arc::new(AtomicUsize::new(0));
        let f = finished.clone();
        let it = e.map(
            move |s: u32| {
                if s > 0 {
                    probe().hold();
                }
                f.fetch_add(1, Ordering::SeqCst);
                Ok(())
            },
            [0, 0, 6],
            Some(Duration::from_millis(50)),
        );
        eventually("the two quick calls", || {
            finished.load(Ordering::SeqCst) == 2
        });
        let results: Vec<_> = it.unwrap().collect();
        assert_eq!(results, vec![Ok(()), Ok(()), Err(FutureError::Timeout)]);
        probe().gate.store(true, Ordering::SeqCst);
    });
}

#[test]
fn test_shutdown_race_issue12456() {
    test("test_shutdown_race_issue12456", || {
        let e = ex(5);
        let _ = e.map(|x: u32| Ok(x.to_string()), [2; 6], None).unwrap();
        e.shutdown(true, false);
    });
}

/// The executor lets go of a call (and what it captured) once it has run.
#[test]
fn test_no_stale_references() {
    test("test_no_stale_references", || {
        let e = ex(5);
        let my_object = Arc::new(());
        let mine = my_object.clone();
        // Deliberately discarding the future.
        drop(e.submit(move || {
            let _ = &mine;
            Ok(())
        }));
        eventually("the call's capture is dropped", || {
            Arc::strong_count(&my_object) == 1
        });
    });
}

/// 0 is the `ValueError`; -1 does not compile (`usize`).
#[test]
fn test_max_workers_negative() {
    assert_eq!(
        ThreadPoolExecutor::new(0).map(|_| ()),
        Err(ExecutorError::Invalid(
            "max_workers must be greater than 0".into()
        ))
    );
}

/// A value that counts its drops (Python's weakref check).
struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The result iterator keeps no result once it gave it.
#[test]
fn test_free_reference() {
    test("test_free_reference", || {
        let e = ex(5);
        let dropped = Arc::new(AtomicUsize::new(0));
        let d = dropped.clone();
        let results = e
            .map(move |_: u32| Ok(Tracked(d.clone())), 0..10, None)
            .unwrap();
        for (i, obj) in results.enumerate() {
            drop(obj);
            assert_eq!(dropped.load(Ordering::SeqCst), i + 1);
        }
    });
}

// ---- ThreadPoolExecutorTest ----

#[test]
fn test_map_submits_without_iteration() {
    test("test_map_submits_without_iteration", || {
        let e = ex(5);
        let finished = Arc::new(Mutex::new(Vec::new()));
        let f = finished.clone();
        let _results = e
            .map(
                move |n: u32| {
                    f.lock().unwrap().push(n);
                    Ok(())
                },
                0..10,
                None,
            )
            .unwrap();
        e.shutdown(true, false);
        let mut got = finished.lock().unwrap().clone();
        got.sort_unstable();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
    });
}

#[test]
fn test_default_workers() {
    let e = ThreadPoolExecutor::builder().build().unwrap();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(e.max_workers(), (cpus + 4).min(32));
}

#[test]
fn test_saturation() {
    test("test_saturation", || {
        let e = ex(4);
        let fs: Vec<_> = (0..15 * e.max_workers()).map(|_| blocked(&e)).collect();
        assert_eq!(e.threads(), e.max_workers());
        probe().gate.store(true, Ordering::SeqCst);
        e.shutdown(true, false);
        assert!(fs.iter().all(Future::done));
    });
}

#[test]
fn test_idle_thread_reuse() {
    test("test_idle_thread_reuse", || {
        let e = ThreadPoolExecutor::builder().build().unwrap();
        assert_eq!(e.submit(|| Ok(21 * 2)).unwrap().result(None), Ok(42));
        assert_eq!(e.submit(|| Ok(6 * 7)).unwrap().result(None), Ok(42));
        assert_eq!(e.submit(|| Ok(3 * 14)).unwrap().result(None), Ok(42));
        assert_eq!(e.threads(), 1);
        e.shutdown(true, false);
    });
}

/// A call that keeps submitting itself while the test forks fifty one-worker process pools
/// (CPython's bpo-45021: a lock held across the fork hung the children).
#[test]
fn test_hang_global_shutdown_lock() {
    test("test_hang_global_shutdown_lock", || {
        fn again(pool: Arc<ThreadPoolExecutor>) -> anyhow::Result<()> {
            let next = pool.clone();
            // Refused once the pool shuts down: the chain ends.
            let _ = pool.submit(move || again(next));
            Ok(())
        }
        let pool = Arc::new(ex(1));
        let p = pool.clone();
        pool.submit(move || again(p)).unwrap();
        for i in 0..50u64 {
            let workers =
                pool::futures::ProcessPoolExecutor::<pool::lessons::tasks::Square>::new(1).unwrap();
            let f = workers.submit(pool::lessons::tasks::Square(i)).unwrap();
            assert_eq!(f.result(Some(LONG)), Ok(i * i));
        }
        pool.shutdown(true, false);
    });
}

/// `map(..., timeout=0)` behind a call that holds the only thread: the time-out cancels the
/// call it waited for and the rest, so neither ever starts.
#[test]
fn test_executor_map_current_future_cancel() {
    test("test_executor_map_current_future_cancel", || {
        let log = Arc::new(Mutex::new(Vec::new()));
        let log_n_wait = |log: &Arc<Mutex<Vec<String>>>| {
            let log = log.clone();
            move |ident: &'static str| {
                log.lock().unwrap().push(format!("ident='{ident}' started"));
                probe().hold();
                log.lock().unwrap().push(format!("ident='{ident}' stopped"));
                Ok(())
            }
        };
        let pool = ex(1);
        let first = log_n_wait(&log);
        let fut = pool.submit(move || first("first")).unwrap();
        let mut results = pool
            .map(log_n_wait(&log), ["second", "third"], Some(Duration::ZERO))
            .unwrap();
        assert_eq!(results.next(), Some(Err(FutureError::Timeout)));
        drop(results);
        probe().gate.store(true, Ordering::SeqCst);
        assert_eq!(fut.result(None), Ok(()));
        pool.shutdown(true, false);
        assert_eq!(
            *log.lock().unwrap(),
            ["ident='first' started", "ident='first' stopped"]
        );
    });
}

// ---- InitializerMixin, FailingInitializerMixin ----

thread_local! {
    static INITIALIZER_STATUS: std::cell::RefCell<&'static str> =
        const { std::cell::RefCell::new("uninitialized") };
}

/// Each thread ran the initializer (CPython's status is one global; here each thread's own).
#[test]
fn test_initializer() {
    test("test_initializer", || {
        let e = ThreadPoolExecutor::builder()
            .max_workers(2)
            .initializer(|| {
                INITIALIZER_STATUS.with(|s| *s.borrow_mut() = "initialized");
                Ok(())
            })
            .build()
            .unwrap();
        let fs: Vec<_> = (0..2)
            .map(|_| {
                e.submit(|| Ok(INITIALIZER_STATUS.with(|s| *s.borrow())))
                    .unwrap()
            })
            .collect();
        for f in fs {
            assert_eq!(f.result(None), Ok("initialized"));
        }
    });
}

/// CPython's `FailingInitializerMixin.test_initializer`.
mod failing_initializer {
    use super::*;

    /// A failing initializer breaks the pool: the call submitted fails (or `submit` refuses) with
    /// `BrokenThreadPool`, whose message carries the initializer's error (CPython checks its log),
    /// and every later `submit` is refused.
    #[test]
    fn test_initializer() {
        super::test("FailingInitializerMixin.test_initializer", || {
            let e = ThreadPoolExecutor::builder()
                .max_workers(2)
                .initializer(|| anyhow::bail!("ValueError: error in initializer"))
                .build()
                .unwrap();
            match e.submit(|| Ok(())) {
                Err(ExecutorError::BrokenThreadPool(_)) => {}
                Err(other) => panic!("{other:?}"),
                Ok(f) => match f.result(Some(LONG)) {
                    Err(FutureError::BrokenThreadPool(m)) => {
                        assert!(m.contains("error in initializer"), "{m}");
                    }
                    other => panic!("{other:?}"),
                },
            }
            eventually("the pool is broken", || {
                matches!(e.submit(|| Ok(())), Err(ExecutorError::BrokenThreadPool(_)))
            });
        });
    }
}
