//! The `Thread` type: values, panics, join with a timeout, names, the Run trait.

use std::sync::mpsc;
use std::time::Duration;

use threads::{Run, Thread};

const LONG: Duration = Duration::from_secs(30);

#[test]
fn join_timeout_returns_while_alive_and_a_later_join_gets_the_value() {
    let (tx, rx) = mpsc::channel::<u32>();
    let t = Thread::builder()
        .name("waiter")
        .spawn(move || rx.recv_timeout(LONG).map(|v| v * 2))
        .unwrap();
    assert!(!t.join_timeout(Duration::from_millis(20)));
    assert!(t.is_alive());
    tx.send(21).unwrap();
    assert!(t.join_timeout(LONG));
    assert!(!t.is_alive());
    assert_eq!(t.join().unwrap(), Ok(42));
}

#[test]
fn a_panicking_threads_join_is_an_error_carrying_the_message() {
    let t = Thread::builder()
        .name("doomed")
        .spawn(|| -> () { panic!("boom {}", 7) })
        .unwrap();
    let err = t.join().unwrap_err();
    assert_eq!(err.thread, "doomed");
    assert_eq!(err.message, "boom 7");
    assert_eq!(err.to_string(), "thread doomed panicked: boom 7");
    let t = Thread::spawn(|| -> () { std::panic::panic_any(5_u8) }).unwrap();
    assert!(t.join().unwrap_err().message.contains("non-string"));
}

#[test]
fn a_panicking_thread_is_no_longer_alive() {
    let t = Thread::spawn(|| -> () { panic!("x") }).unwrap();
    assert!(t.join_timeout(LONG));
    assert!(!t.is_alive());
    assert!(t.join().is_err());
}

#[test]
fn default_names_count_like_python_and_the_os_thread_gets_the_name() {
    let t = Thread::spawn(|| std::thread::current().name().map(str::to_owned)).unwrap();
    let name = t.name().to_owned();
    let n: u64 = name
        .strip_prefix("Thread-")
        .expect("Thread-N")
        .parse()
        .unwrap();
    assert_eq!(n, t.ident());
    assert_eq!(t.join().unwrap(), Some(name));
}

struct WhereAmI;

impl Run for WhereAmI {
    type Output = std::thread::ThreadId;
    fn run(self) -> Self::Output {
        std::thread::current().id()
    }
}

#[test]
fn run_called_directly_stays_on_the_callers_thread_start_does_not() {
    let me = std::thread::current().id();
    assert_eq!(WhereAmI.run(), me);
    let started = Thread::start(WhereAmI).unwrap().join().unwrap();
    assert_ne!(started, me);
}

/// Regression: `join_timeout(Duration::MAX)` (a user's "no limit") panicked computing its
/// deadline ("overflow when adding duration to instant").
#[test]
fn join_timeout_with_a_timeout_too_large_for_a_deadline_waits_without_a_limit() {
    let (tx, rx) = mpsc::channel::<()>();
    let t = Thread::spawn(move || rx.recv_timeout(LONG).is_ok()).unwrap();
    tx.send(()).unwrap();
    assert!(t.join_timeout(Duration::MAX));
    assert!(t.join().unwrap());
}
