//! Faults for `ProcessPoolExecutor`: a worker SIGKILLed at a chosen moment (a call says it is
//! running through shared memory, then its worker, or another, is killed). With Python's rule
//! every future not done fails with `BrokenProcessPool` (counted exactly), `wait` and
//! `as_completed` end, later submissions are refused, and nothing hangs or is left behind;
//! with this crate's rule only the running call fails.

mod support;

use std::sync::atomic::Ordering;

use lesson::within;
use pool::TaskError;
use pool::futures::{
    ALL_COMPLETED, ExecutorError, Future, FutureError, ProcessPoolExecutor, WorkerDeath,
    as_completed, wait,
};
use support::{LONG, Out, Work, assert_no_children, eventually, kill_now, probe, serial, sq};

fn executor(n: usize, rule: WorkerDeath) -> ProcessPoolExecutor<Work> {
    ProcessPoolExecutor::<Work>::builder()
        .max_workers(n)
        .on_worker_death(rule)
        .build()
        .unwrap()
}

fn is_broken(r: &Result<Out, FutureError>) -> bool {
    matches!(r, Err(FutureError::BrokenProcessPool(m)) if m.contains("signal 9"))
}

#[test]
fn a_worker_killed_mid_call_breaks_every_future_not_done() {
    let _fork = serial();
    probe().reset();
    within(LONG, "a worker killed mid-call", || {
        let e = executor(3, WorkerDeath::BreakPool);
        let before: Vec<Future<Out>> = (0..2).map(|i| e.submit(Work::Square(i)).unwrap()).collect();
        for (i, f) in (0..2).zip(&before) {
            assert_eq!(f.result(None), Ok(sq(i)));
        }
        let blocked: Vec<Future<Out>> = (10..13)
            .map(|i| e.submit(Work::Block(i)).unwrap())
            .collect();
        let pending: Vec<Future<Out>> = (20..40)
            .map(|i| e.submit(Work::Square(i)).unwrap())
            .collect();
        let victim = probe().wait_ready();
        assert!(pending[5].cancel(), "a pending call can still be cancelled");
        kill_now(victim);
        for f in blocked.iter().chain(&pending) {
            let r = f.result(Some(LONG));
            if f == &pending[5] {
                assert_eq!(r, Err(FutureError::Cancelled));
            } else {
                assert!(is_broken(&r), "{r:?}");
            }
        }
        // Exactly the 22 not done at the kill (one of 23 was cancelled): the 2 done before
        // keep their values.
        let all: Vec<Future<Out>> = before
            .iter()
            .chain(&blocked)
            .chain(&pending)
            .cloned()
            .collect();
        let lost = all.iter().filter(|f| is_broken(&f.result(None))).count();
        assert_eq!(lost, 22);
        assert!(
            before
                .iter()
                .enumerate()
                .all(|(i, f)| f.result(None) == Ok(sq(i as u32)))
        );
        // Nothing waits for ever: the cancelled one is notified, every other is finished.
        let r = wait(all.clone(), Some(LONG), ALL_COMPLETED);
        assert_eq!((r.done.len(), r.not_done.len()), (all.len(), 0));
        assert_eq!(
            as_completed(all, Some(LONG)).filter(Result::is_ok).count(),
            25
        );
        assert!(e.broken());
        assert!(matches!(
            e.submit(Work::Square(1)),
            Err(ExecutorError::BrokenProcessPool(_))
        ));
        eventually("every worker is stopped and reaped", || {
            e.workers().is_empty()
        });
        drop(e);
    });
    assert_no_children();
}

#[test]
fn an_idle_worker_killed_breaks_the_pool_as_in_python() {
    let _fork = serial();
    probe().reset();
    within(LONG, "an idle worker killed", || {
        let e = executor(2, WorkerDeath::BreakPool);
        let running = e.submit(Work::Block(0)).unwrap();
        let busy = probe().wait_ready();
        let idle = *e
            .worker_pids()
            .iter()
            .find(|&&p| p != busy)
            .expect("a second worker");
        kill_now(idle);
        // The call on the healthy worker fails too: the pool is broken, as Python's is.
        assert!(is_broken(&running.result(Some(LONG))));
        eventually("refused", || {
            matches!(
                e.submit(Work::Square(2)),
                Err(ExecutorError::BrokenProcessPool(_))
            )
        });
    });
    assert_no_children();
}

#[test]
fn with_fail_task_only_the_running_call_fails_and_the_rest_run() {
    let _fork = serial();
    probe().reset();
    within(LONG, "FailTask", || {
        let e = executor(2, WorkerDeath::FailTask);
        let doomed = e.submit(Work::Block(0)).unwrap();
        let victim = probe().wait_ready();
        let rest: Vec<Future<Out>> = (1..30)
            .map(|i| e.submit(Work::Square(i)).unwrap())
            .collect();
        kill_now(victim);
        match doomed.result(Some(LONG)) {
            Err(FutureError::Raised(TaskError::WorkerDied { pid, signal, .. })) => {
                assert_eq!((pid, signal), (victim, Some(9)));
            }
            other => panic!("{other:?}"),
        }
        for (i, f) in (1..30).zip(&rest) {
            assert_eq!(f.result(Some(LONG)), Ok(sq(i)));
        }
        assert!(!e.broken());
        eventually("a new worker", || e.workers().len() == 2);
        assert!(!e.worker_pids().contains(&victim));
        assert_eq!(e.submit(Work::Square(7)).unwrap().result(None), Ok(sq(7)));
    });
    assert_no_children();
}

/// A kill during `map`: the results before come, then one `BrokenProcessPool`, and the
/// iteration ends; `shutdown(wait=True)` returns.
#[test]
fn a_worker_killed_during_map_ends_the_iteration() {
    let _fork = serial();
    probe().reset();
    within(LONG, "a kill during map", || {
        let e = executor(2, WorkerDeath::BreakPool);
        let tasks: Vec<Work> = (0..20)
            .map(|i| {
                if i == 5 {
                    Work::Block(i)
                } else {
                    Work::Square(i)
                }
            })
            .collect();
        let mut it = e.map(tasks, None, 2).unwrap();
        let victim = probe().wait_ready();
        for i in 0..4 {
            assert_eq!(it.next(), Some(Ok(sq(i))));
        }
        kill_now(victim);
        let next = it.next();
        assert!(
            matches!(next, Some(Err(FutureError::BrokenProcessPool(_)))),
            "{next:?}"
        );
        assert_eq!(it.next(), None);
        e.shutdown(true, false);
    });
    assert_no_children();
}

/// Rounds of kills at different moments (before any call, mid-call, after shutdown began):
/// every round ends, every future is done, nothing is left.
#[test]
fn kills_at_any_moment_never_hang() {
    let _fork = serial();
    for round in 0..6 {
        probe().reset();
        within(LONG, "kill rounds", move || {
            let e = executor(2, WorkerDeath::BreakPool);
            let fs: Vec<Future<Out>> = (0..8)
                .map(|i| {
                    e.submit(if i == 3 {
                        Work::Block(i)
                    } else {
                        Work::Nap(i, 200)
                    })
                    .unwrap()
                })
                .collect();
            match round % 3 {
                0 => kill_now(e.worker_pids()[0]),
                1 => kill_now(probe().wait_ready()),
                _ => {
                    let victim = probe().wait_ready();
                    e.shutdown(false, false);
                    kill_now(victim);
                }
            }
            drop(e);
            assert!(fs.iter().all(Future::done));
            probe().gate.store(true, Ordering::SeqCst);
        });
        assert_no_children();
    }
}
