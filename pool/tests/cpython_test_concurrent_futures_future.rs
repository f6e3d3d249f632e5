//! CPython 3.11's `concurrent.futures` tests, ported: `FutureTests` (see
//! `cpython_test_concurrent_futures.rs` for the notes on the port).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pool::TaskError;
use pool::futures::{FutureError, FutureState};
use support::fixed::{
    cancelled, cancelled_and_notified, exception, os_error, pending, running, successful,
};
use support::{LONG, Out, helper_is, run_helper};

#[test]
fn test_done_callback_with_result() {
    let got = Arc::new(Mutex::new(None));
    let g = got.clone();
    let f = pending::<i32>();
    f.add_done_callback(move |f| *g.lock().unwrap() = Some(f.result(None)));
    f.set_result(5).unwrap();
    assert_eq!(*got.lock().unwrap(), Some(Ok(5)));
}

#[test]
fn test_done_callback_with_exception() {
    let got = Arc::new(Mutex::new(None));
    let g = got.clone();
    let f = pending::<i32>();
    f.add_done_callback(move |f| *g.lock().unwrap() = Some(f.exception(None)));
    f.set_exception(os_error()).unwrap();
    assert_eq!(*got.lock().unwrap(), Some(Ok(Some(os_error()))));
}

#[test]
fn test_done_callback_with_cancel() {
    let got = Arc::new(Mutex::new(None));
    let g = got.clone();
    let f = pending::<i32>();
    f.add_done_callback(move |f| *g.lock().unwrap() = Some(f.cancelled()));
    assert!(f.cancel());
    assert_eq!(*got.lock().unwrap(), Some(true));
}

/// The raising callback is reported on stderr and the next one still runs (checked on the
/// stderr of a child process running the helper).
#[test]
fn test_done_callback_raises() {
    let out = run_helper("helper_done_callback_raises", LONG, |_| {});
    assert!(out.status.success(), "the helper failed (see its output)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("exception calling callback for <Future at"),
        "{err}"
    );
    assert!(err.contains("doh!"), "{err}");
}

#[test]
#[ignore = "run in a child process by test_done_callback_raises"]
fn helper_done_callback_raises() {
    if !helper_is("helper_done_callback_raises") {
        return;
    }
    let called = Arc::new(Mutex::new((false, false)));
    let (a, b) = (called.clone(), called.clone());
    let f = pending::<i32>();
    f.add_done_callback(move |_| {
        a.lock().unwrap().0 = true;
        panic!("doh!");
    });
    f.add_done_callback(move |_| b.lock().unwrap().1 = true);
    f.set_result(5).unwrap();
    assert_eq!(*called.lock().unwrap(), (true, true));
}

#[test]
fn test_done_callback_already_successful() {
    let got = Arc::new(Mutex::new(None));
    let g = got.clone();
    let f = pending::<i32>();
    f.set_result(5).unwrap();
    f.add_done_callback(move |f| *g.lock().unwrap() = Some(f.result(None)));
    assert_eq!(*got.lock().unwrap(), Some(Ok(5)));
}

#[test]
fn test_done_callback_already_failed() {
    let got = Arc::new(Mutex::new(None));
    let g = got.clone();
    let f = exception::<i32>();
    f.add_done_callback(move |f| *g.lock().unwrap() = Some(f.exception(None)));
    assert_eq!(*got.lock().unwrap(), Some(Ok(Some(os_error()))));
}

#[test]
fn test_done_callback_already_cancelled() {
    let got = Arc::new(Mutex::new(None));
    let g = got.clone();
    let f = cancelled::<i32>();
    f.add_done_callback(move |f| *g.lock().unwrap() = Some(f.cancelled()));
    assert_eq!(*got.lock().unwrap(), Some(true));
}

#[test]
fn test_done_callback_raises_already_succeeded() {
    let out = run_helper("helper_raises_already_succeeded", LONG, |_| {});
    assert!(out.status.success(), "the helper failed (see its output)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("exception calling callback for"), "{err}");
    assert!(err.contains("doh!"), "{err}");
}

#[test]
#[ignore = "run in a child process by test_done_callback_raises_already_succeeded"]
fn helper_raises_already_succeeded() {
    if !helper_is("helper_raises_already_succeeded") {
        return;
    }
    let f = pending::<i32>();
    f.set_result(5).unwrap();
    f.add_done_callback(|_| panic!("doh!"));
}

/// Python's `repr`, in `Debug`: the type name of a result is Rust's (`Out`, `i32`), an
/// exception's is the error's kind.
#[test]
fn test_repr() {
    let re = |f: String, tail: &str| {
        let rest = f
            .strip_prefix("<Future at 0x")
            .unwrap_or_else(|| panic!("{f}"));
        let (hex, after) = rest.split_once(' ').unwrap();
        assert!(hex.chars().all(|c| c.is_ascii_hexdigit()), "{f}");
        assert_eq!(after, tail, "{f}");
    };
    re(format!("{:?}", pending::<Out>()), "state=pending>");
    re(format!("{:?}", running::<Out>()), "state=running>");
    re(format!("{:?}", cancelled::<Out>()), "state=cancelled>");
    re(
        format!("{:?}", cancelled_and_notified::<Out>()),
        "state=cancelled>",
    );
    re(
        format!("{:?}", exception::<Out>()),
        "state=finished raised Failed>",
    );
    re(
        format!("{:?}", successful()),
        "state=finished returned Out>",
    );
}

#[test]
fn test_cancel() {
    let f1 = pending::<i32>();
    let f2 = running::<i32>();
    let f3 = cancelled::<i32>();
    let f4 = cancelled_and_notified::<i32>();
    let f5 = exception::<i32>();
    let f6 = pending::<i32>();
    f6.set_result(5).unwrap();
    assert!(f1.cancel());
    assert_eq!(f1.state(), FutureState::Cancelled);
    assert!(!f2.cancel());
    assert_eq!(f2.state(), FutureState::Running);
    assert!(f3.cancel());
    assert_eq!(f3.state(), FutureState::Cancelled);
    assert!(f4.cancel());
    assert_eq!(f4.state(), FutureState::CancelledAndNotified);
    assert!(!f5.cancel());
    assert_eq!(f5.state(), FutureState::Finished);
    assert!(!f6.cancel());
    assert_eq!(f6.state(), FutureState::Finished);
}

#[test]
fn test_cancelled() {
    assert!(!pending::<i32>().cancelled());
    assert!(!running::<i32>().cancelled());
    assert!(cancelled::<i32>().cancelled());
    assert!(cancelled_and_notified::<i32>().cancelled());
    assert!(!exception::<i32>().cancelled());
    assert!(!successful().cancelled());
}

#[test]
fn test_done() {
    assert!(!pending::<i32>().done());
    assert!(!running::<i32>().done());
    assert!(cancelled::<i32>().done());
    assert!(cancelled_and_notified::<i32>().done());
    assert!(exception::<i32>().done());
    assert!(successful().done());
}

#[test]
fn test_running() {
    assert!(!pending::<i32>().running());
    assert!(running::<i32>().running());
    assert!(!cancelled::<i32>().running());
    assert!(!cancelled_and_notified::<i32>().running());
    assert!(!exception::<i32>().running());
    assert!(!successful().running());
}

#[test]
fn test_result_with_timeout() {
    let zero = Some(Duration::ZERO);
    assert_eq!(pending::<Out>().result(zero), Err(FutureError::Timeout));
    assert_eq!(running::<Out>().result(zero), Err(FutureError::Timeout));
    assert_eq!(cancelled::<Out>().result(zero), Err(FutureError::Cancelled));
    assert_eq!(
        cancelled_and_notified::<Out>().result(zero),
        Err(FutureError::Cancelled)
    );
    assert_eq!(exception::<Out>().result(zero), Err(os_error()));
    assert_eq!(successful().result(zero), Ok(Out::N(42)));
}

/// CPython's thread sleeps 1 s so that the main thread waits first; here the result comes
/// whenever the thread runs, and the claim (the waiter gets it) holds either way.
#[test]
fn test_result_with_success() {
    let f1 = pending::<i32>();
    let f = f1.clone();
    let t = std::thread::spawn(move || f.set_result(42).unwrap());
    assert_eq!(f1.result(Some(LONG)), Ok(42));
    t.join().unwrap();
}

#[test]
fn test_result_with_cancel() {
    let f1 = pending::<i32>();
    let f = f1.clone();
    let t = std::thread::spawn(move || assert!(f.cancel()));
    assert_eq!(f1.result(Some(LONG)), Err(FutureError::Cancelled));
    t.join().unwrap();
}

#[test]
fn test_exception_with_timeout() {
    let zero = Some(Duration::ZERO);
    assert_eq!(pending::<i32>().exception(zero), Err(FutureError::Timeout));
    assert_eq!(running::<i32>().exception(zero), Err(FutureError::Timeout));
    assert_eq!(
        cancelled::<i32>().exception(zero),
        Err(FutureError::Cancelled)
    );
    assert_eq!(
        cancelled_and_notified::<i32>().exception(zero),
        Err(FutureError::Cancelled)
    );
    assert_eq!(exception::<i32>().exception(zero), Ok(Some(os_error())));
    assert_eq!(successful().exception(zero), Ok(None));
}

#[test]
fn test_exception_with_success() {
    let f1 = pending::<i32>();
    let f = f1.clone();
    let t = std::thread::spawn(move || f.set_exception(os_error()).unwrap());
    assert_eq!(f1.exception(Some(LONG)), Ok(Some(os_error())));
    t.join().unwrap();
}

#[test]
fn test_multiple_set_result() {
    let f = pending::<i32>();
    f.set_result(1).unwrap();
    let e = f.set_result(2).unwrap_err();
    assert!(e.0.starts_with("FINISHED: <Future at 0x"), "{e}");
    assert!(e.0.ends_with("state=finished returned i32>"), "{e}");
    assert!(f.done());
    assert_eq!(f.result(None), Ok(1));
}

#[test]
fn test_multiple_set_exception() {
    let f = pending::<i32>();
    let e = FutureError::Raised(TaskError::Failed("ValueError()".into()));
    f.set_exception(e.clone()).unwrap();
    let err = f.set_exception(os_error()).unwrap_err();
    assert!(err.0.starts_with("FINISHED: <Future at 0x"), "{err}");
    assert!(err.0.ends_with("state=finished raised Failed>"), "{err}");
    assert_eq!(f.exception(None), Ok(Some(e)));
}
