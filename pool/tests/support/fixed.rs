//! CPython's module-level futures in fixed states (`PENDING_FUTURE`, `RUNNING_FUTURE`, ...),
//! made through the public API as an executor would make them.

use pool::TaskError;
use pool::futures::{Future, FutureError};

use super::Out;

pub fn pending<T>() -> Future<T> {
    Future::new()
}

pub fn running<T>() -> Future<T> {
    let f = Future::new();
    assert_eq!(f.set_running_or_notify_cancel(), Ok(true));
    f
}

pub fn cancelled<T>() -> Future<T> {
    let f = Future::new();
    assert!(f.cancel());
    f
}

pub fn cancelled_and_notified<T>() -> Future<T> {
    let f = cancelled();
    assert_eq!(f.set_running_or_notify_cancel(), Ok(false));
    f
}

pub fn os_error() -> FutureError {
    FutureError::Raised(TaskError::Failed("OSError()".into()))
}

pub fn exception<T>() -> Future<T> {
    let f = Future::new();
    f.set_exception(os_error()).unwrap();
    f
}

pub fn successful() -> Future<Out> {
    let f = Future::new();
    f.set_result(Out::N(42)).unwrap();
    f
}
