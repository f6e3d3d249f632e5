//! CPython 3.11's `concurrent.futures` tests, ported (the 3.11 file was not on this machine:
//! 3.10.13's `Lib/test/test_concurrent_futures.py`, the same tests but for 3.11's
//! `max_tasks_per_child`, taken from 3.13's split files): `WaitTests` and `AsCompletedTests`
//! here; `FutureTests` in `cpython_test_concurrent_futures_future.rs`, the executors' tests in
//! `cpython_test_concurrent_futures_executors.rs`.
//! Each test is named after its original and checks the same claim in Rust terms; the
//! conformance table is in `pool/README.md`.
//!
//! CPython's module-level futures in fixed states (`PENDING_FUTURE`, ...) are made through the
//! public API, as an executor would make them. Where CPython sleeps to keep a call running
//! (`time.sleep(1.5)`), the call here waits at a gate in shared memory (`support::Probe`)
//! that the test opens when it is done; where CPython relies on a call having finished in
//! time, the test waits for that call first. Each wait test runs on a `ThreadPoolExecutor`
//! and on a `ProcessPoolExecutor` (CPython runs them on the process pool's three start
//! methods; this crate forks).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lesson::within;
use pool::Task;
use pool::futures::{
    ALL_COMPLETED, AsCompletedTimeout, FIRST_COMPLETED, FIRST_EXCEPTION, Future, FutureState,
    ProcessPoolExecutor, ThreadPoolExecutor, as_completed, wait,
};
use support::fixed::{cancelled, cancelled_and_notified, exception, pending, running, successful};
use support::{LONG, Out, Work, probe, serial, sq};

/// An executor the wait tests submit `Work` to: threads run `Work::run` in-process.
trait Exec {
    fn go(&self, w: Work) -> Future<Out>;
}

impl Exec for ThreadPoolExecutor {
    fn go(&self, w: Work) -> Future<Out> {
        self.submit(move || w.run()).unwrap()
    }
}

impl Exec for ProcessPoolExecutor<Work> {
    fn go(&self, w: Work) -> Future<Out> {
        self.submit(w).unwrap()
    }
}

/// Run `check` on a thread pool and on a process pool of 5, each under the deadline; the
/// gate is opened after each, so the blocked calls end and the executor shuts down.
fn on_both(name: &str, check: fn(&dyn Exec)) {
    let _fork = serial();
    within(LONG, name, move || {
        probe().reset();
        let t = ThreadPoolExecutor::new(5).unwrap();
        check(&t);
        probe().gate.store(true, Ordering::SeqCst);
        drop(t);
        probe().reset();
        let p = ProcessPoolExecutor::<Work>::new(5).unwrap();
        check(&p);
        probe().gate.store(true, Ordering::SeqCst);
        drop(p);
    });
}

/// CPython's `time.sleep(1.5)` (or 2, 3, 6): a call that waits at the gate.
fn blocked(ex: &dyn Exec, i: u32) -> Future<Out> {
    ex.go(Work::Block(i))
}

/// The same futures, whatever the order (a future is equal only to itself).
fn same(a: &[Future<Out>], b: &[&Future<Out>]) -> bool {
    a.len() == b.len() && b.iter().all(|f| a.contains(f))
}

#[test]
fn test_20369() {
    on_both("test_20369", |ex| {
        let future = blocked(ex, 0);
        probe().gate.store(true, Ordering::SeqCst);
        let r = wait([future.clone(), future.clone()], None, ALL_COMPLETED);
        assert!(same(&r.done, &[&future]) && r.not_done.is_empty());
    });
}

#[test]
fn test_first_completed() {
    on_both("test_first_completed", |ex| {
        let c = cancelled();
        let future1 = ex.go(Work::Square(21));
        let future2 = blocked(ex, 1);
        let r = wait(
            [c.clone(), future1.clone(), future2.clone()],
            None,
            FIRST_COMPLETED,
        );
        assert!(same(&r.done, &[&future1]), "{r:?}");
        assert!(same(&r.not_done, &[&c, &future2]), "{r:?}");
    });
}

#[test]
fn test_first_completed_some_already_completed() {
    on_both("test_first_completed_some_already_completed", |ex| {
        let (cn, ok) = (cancelled_and_notified(), successful());
        let future1 = blocked(ex, 0);
        let r = wait(
            [cn.clone(), ok.clone(), future1.clone()],
            None,
            FIRST_COMPLETED,
        );
        assert!(same(&r.done, &[&cn, &ok]), "{r:?}");
        assert!(same(&r.not_done, &[&future1]), "{r:?}");
    });
}

#[test]
fn test_first_exception() {
    on_both("test_first_exception", |ex| {
        let future1 = ex.go(Work::Square(2));
        let future2 = ex.go(Work::Fail(1, 8));
        let future3 = blocked(ex, 2);
        assert_eq!(future1.result(Some(LONG)), Ok(sq(2)));
        let r = wait(
            [future1.clone(), future2.clone(), future3.clone()],
            None,
            FIRST_EXCEPTION,
        );
        assert!(same(&r.done, &[&future1, &future2]), "{r:?}");
        assert!(same(&r.not_done, &[&future3]), "{r:?}");
    });
}

#[test]
fn test_first_exception_some_already_complete() {
    on_both("test_first_exception_some_already_complete", |ex| {
        let (ok, c, cn) = (successful(), cancelled(), cancelled_and_notified());
        let future1 = ex.go(Work::Fail(0, 3));
        let future2 = blocked(ex, 1);
        let all = [
            ok.clone(),
            c.clone(),
            cn.clone(),
            future1.clone(),
            future2.clone(),
        ];
        let r = wait(all, None, FIRST_EXCEPTION);
        assert!(same(&r.done, &[&ok, &cn, &future1]), "{r:?}");
        assert!(same(&r.not_done, &[&c, &future2]), "{r:?}");
    });
}

#[test]
fn test_first_exception_one_already_failed() {
    on_both("test_first_exception_one_already_failed", |ex| {
        let e = exception();
        let future1 = blocked(ex, 0);
        let r = wait([e.clone(), future1.clone()], None, FIRST_EXCEPTION);
        assert!(same(&r.done, &[&e]), "{r:?}");
        assert!(same(&r.not_done, &[&future1]), "{r:?}");
    });
}

#[test]
fn test_all_completed() {
    on_both("test_all_completed", |ex| {
        let (ok, cn, e) = (successful(), cancelled_and_notified(), exception());
        let future1 = ex.go(Work::Fail(0, 3));
        let future2 = ex.go(Work::Square(21));
        let all = [
            ok.clone(),
            cn.clone(),
            e.clone(),
            future1.clone(),
            future2.clone(),
        ];
        let r = wait(all, None, ALL_COMPLETED);
        assert!(same(&r.done, &[&ok, &cn, &e, &future1, &future2]), "{r:?}");
        assert!(r.not_done.is_empty());
    });
}

#[test]
fn test_timeout() {
    on_both("test_timeout", |ex| {
        let (cn, e, ok) = (cancelled_and_notified(), exception(), successful());
        let future1 = ex.go(Work::Square(6));
        let future2 = blocked(ex, 1);
        assert_eq!(future1.result(Some(LONG)), Ok(sq(6)));
        let all = [
            cn.clone(),
            e.clone(),
            ok.clone(),
            future1.clone(),
            future2.clone(),
        ];
        let r = wait(all, Some(Duration::from_millis(50)), ALL_COMPLETED);
        assert!(same(&r.done, &[&cn, &e, &ok, &future1]), "{r:?}");
        assert!(same(&r.not_done, &[&future2]), "{r:?}");
    });
}

/// 100 calls that wait for one event, then `wait(ALL_COMPLETED)` on them: no lost wake-up.
#[test]
fn test_pending_calls_race() {
    let _fork = serial();
    within(LONG, "test_pending_calls_race", || {
        probe().reset();
        let ex = ThreadPoolExecutor::new(5).unwrap();
        let fs: Vec<Future<Out>> = (0..100).map(|i| blocked(&ex, i)).collect();
        probe().gate.store(true, Ordering::SeqCst);
        let r = wait(fs, None, ALL_COMPLETED);
        assert_eq!((r.done.len(), r.not_done.len()), (100, 0));
    });
}

#[test]
fn test_no_timeout() {
    on_both("test_no_timeout", |ex| {
        let (cn, e, ok) = (cancelled_and_notified(), exception(), successful());
        let future1 = ex.go(Work::Square(21));
        let future2 = ex.go(Work::Square(7));
        let all = [
            cn.clone(),
            e.clone(),
            ok.clone(),
            future1.clone(),
            future2.clone(),
        ];
        let completed: Vec<Future<Out>> = as_completed(all, None).map(Result::unwrap).collect();
        assert!(same(&completed, &[&cn, &e, &ok, &future1, &future2]));
    });
}

#[test]
fn test_zero_timeout() {
    on_both("test_zero_timeout", |ex| {
        let (cn, e, ok) = (cancelled_and_notified(), exception(), successful());
        let future1 = blocked(ex, 0);
        let all = [cn.clone(), e.clone(), ok.clone(), future1];
        let mut completed = Vec::new();
        for f in as_completed(all, Some(Duration::ZERO)) {
            match f {
                Ok(f) => completed.push(f),
                Err(t) => assert_eq!(t.unfinished, 1),
            }
        }
        assert!(same(&completed, &[&cn, &e, &ok]));
    });
}

#[test]
fn test_duplicate_futures() {
    on_both("test_duplicate_futures", |ex| {
        let future1 = blocked(ex, 0);
        probe().gate.store(true, Ordering::SeqCst);
        let n = as_completed(std::iter::repeat_n(future1, 3), None).count();
        assert_eq!(n, 1);
    });
}

/// A value that counts its drops: Python's weakref check, in Rust terms.
struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The iterator keeps no reference to a future it gave: once the test lets go of it, its
/// value is freed while the iterator lives on.
#[test]
fn test_free_reference_yielded_future() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let value = || Tracked(dropped.clone());
    let mut futures: Vec<Future<Tracked>> = (0..8).map(|_| Future::new()).collect();
    futures.push(cancelled_and_notified());
    let done = Future::new();
    done.set_result(value()).unwrap();
    futures.push(done);
    // Let go of `f` (given by the iterator): its value, if it has one, is freed at once.
    let let_go = |f: Future<Tracked>, futures: &mut Vec<Future<Tracked>>| {
        let had = f.state() == FutureState::Finished;
        futures.retain(|x| x != &f);
        let before = dropped.load(Ordering::SeqCst);
        drop(f);
        assert_eq!(dropped.load(Ordering::SeqCst), before + usize::from(had));
    };
    let mut timed_out = false;
    let mut it = as_completed(futures.clone(), Some(Duration::ZERO));
    for r in it.by_ref() {
        match r {
            Ok(f) => let_go(f, &mut futures),
            Err(_) => timed_out = true,
        }
    }
    drop(it);
    assert!(timed_out);
    assert_eq!(futures.len(), 8);
    futures[0].set_result(value()).unwrap();
    for r in as_completed(futures.clone(), None) {
        let_go(r.unwrap(), &mut futures);
        if let Some(next) = futures.first() {
            next.set_result(value()).unwrap();
        }
    }
    assert!(futures.is_empty());
    assert_eq!(dropped.load(Ordering::SeqCst), 9);
}

#[test]
fn test_correct_timeout_exception_msg() {
    let fs: Vec<Future<Out>> = vec![cancelled_and_notified(), pending(), running(), successful()];
    let errors: Vec<AsCompletedTimeout> = as_completed(fs, Some(Duration::ZERO))
        .filter_map(Result::err)
        .collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].to_string(), "2 (of 4) futures unfinished");
}
