//! CPython 3.11's `ExecutorDeadlockTest` for `ProcessPoolExecutor`, ported (see
//! `cpython_test_concurrent_futures.rs` for the notes on the port): a call that breaks while
//! its task is encoded, decoded or run, or while its result is: never a hang, and the error
//! CPython expects, or this crate's where it differs (`pool/README.md` says why). Each check
//! runs on a fresh executor of two workers, under the deadline, and leaves no child behind.

mod support;

use lesson::within;
use pool::TaskError;
use pool::futures::{ExecutorError, FutureError, ProcessPoolExecutor};
use support::calc::Calc;
use support::{LONG, Work, assert_no_children, serial};

/// What the one call `task` gave, on an executor of two workers.
fn check_crash<T: pool::Task>(task: T) -> Result<T::Output, FutureError>
where
    T::Output: Clone,
{
    let _fork = serial();
    let got = within(LONG, "a call that breaks", move || {
        let e: ProcessPoolExecutor<T> = ProcessPoolExecutor::new(2).unwrap();
        let got = e.submit(task).unwrap().result(Some(LONG));
        e.shutdown(true, false);
        got
    });
    assert_no_children();
    got
}

fn broken<O: std::fmt::Debug>(got: Result<O, FutureError>) {
    assert!(
        matches!(got, Err(FutureError::BrokenProcessPool(_))),
        "{got:?}"
    );
}

/// CPython: `PicklingError`. Here the task cannot be encoded: `TaskEncoding`, at once; it
/// never reaches a worker.
#[test]
fn test_error_at_task_pickle() {
    let got = check_crash(Work::Unsendable(0, ()));
    assert!(
        matches!(got, Err(FutureError::Raised(TaskError::TaskEncoding(_)))),
        "{got:?}"
    );
}

/// The worker exits while decoding the task: `BrokenProcessPool`.
#[test]
fn test_exit_at_task_unpickle() {
    broken(check_crash(Work::DeadlyDecode(0, support::KillOnDecode)));
}

/// Divergence: CPython's worker dies of the error (`BrokenProcessPool`); here a task that
/// fails to decode fails alone (`TaskEncoding`), and the worker lives on.
#[test]
fn test_error_at_task_unpickle() {
    let got = check_crash(Work::BadDecode(0, support::PanicOnDecode));
    assert!(
        matches!(got, Err(FutureError::Raised(TaskError::TaskEncoding(_)))),
        "{got:?}"
    );
}

/// The worker crashes while decoding the task (CPython: a segfault; here SIGKILL).
#[test]
fn test_crash_at_task_unpickle() {
    broken(check_crash(Work::DeadlyDecode(1, support::KillOnDecode)));
}

#[test]
fn test_crash_during_func_exec_on_worker() {
    broken(check_crash(Calc::Crash));
}

/// Divergence: CPython raises `SystemExit` in the caller (Python's exit is an exception);
/// `std::process::exit` ends the worker: `BrokenProcessPool`.
#[test]
fn test_exit_during_func_exec_on_worker() {
    broken(check_crash(Calc::Exit));
}

#[test]
fn test_error_during_func_exec_on_worker() {
    assert_eq!(
        check_crash(Calc::Raise),
        Err(FutureError::Raised(TaskError::Failed(
            "RuntimeError(123)".into()
        )))
    );
}

#[test]
fn test_crash_during_result_pickle_on_worker() {
    broken(check_crash(Calc::CrashAtPickle));
}

/// Divergence, as for the call: an exit while the result is encoded ends the worker.
#[test]
fn test_exit_during_result_pickle_on_worker() {
    broken(check_crash(Calc::ExitAtPickle));
}

/// CPython: `PicklingError`. Here `ResultEncoding` (its `MaybeEncodingError`); the worker
/// lives on.
#[test]
fn test_error_during_result_pickle_on_worker() {
    let got = check_crash(Work::BadResult(0));
    assert!(
        matches!(got, Err(FutureError::Raised(TaskError::ResultEncoding(_)))),
        "{got:?}"
    );
}

/// Divergence: CPython's result handler breaks the pool; here a result the parent cannot
/// decode is that call's `ResultEncoding`, and the pool goes on.
#[test]
fn test_error_during_result_unpickle_in_result_handler() {
    let got = check_crash(Calc::ErrorAtUnpickle);
    assert!(
        matches!(got, Err(FutureError::Raised(TaskError::ResultEncoding(_)))),
        "{got:?}"
    );
}

/// A worker crashes after `shutdown(wait=True)` began: the future fails with
/// `BrokenProcessPool`, and shutdown returns.
#[test]
fn test_shutdown_deadlock() {
    let _fork = serial();
    let got = within(LONG, "test_shutdown_deadlock", || {
        let e: ProcessPoolExecutor<Calc> = ProcessPoolExecutor::new(2).unwrap();
        let f = e.submit(Calc::Crash).unwrap();
        e.shutdown(true, false);
        f.result(None)
    });
    broken(got);
    assert_no_children();
}

/// A task that cannot be encoded, submitted just before `shutdown(wait=False)`: its future
/// gets the encoding error, and the executor's threads end (no child, no hang).
#[test]
fn test_shutdown_deadlock_pickle() {
    let _fork = serial();
    let got = within(LONG, "test_shutdown_deadlock_pickle", || {
        let e: ProcessPoolExecutor<Work> = ProcessPoolExecutor::new(2).unwrap();
        assert_eq!(
            e.submit(Work::Square(42)).unwrap().result(None),
            Ok(support::sq(42))
        );
        let f = e.submit(Work::Unsendable(1, ())).unwrap();
        e.shutdown(false, false);
        let got = f.result(Some(LONG));
        drop(e);
        got
    });
    assert!(
        matches!(got, Err(FutureError::Raised(TaskError::TaskEncoding(_)))),
        "{got:?}"
    );
    assert_no_children();
}

/// After a break, a new submission is refused at once, as CPython's is.
#[test]
fn a_broken_executor_refuses_at_once() {
    let _fork = serial();
    within(LONG, "broken refuses", || {
        let e: ProcessPoolExecutor<Calc> = ProcessPoolExecutor::new(2).unwrap();
        broken(e.submit(Calc::Crash).unwrap().result(None));
        assert!(e.broken());
        assert!(matches!(
            e.submit(Calc::Abs(1)),
            Err(ExecutorError::BrokenProcessPool(m)) if m.contains("terminated abruptly")
        ));
    });
    assert_no_children();
}
