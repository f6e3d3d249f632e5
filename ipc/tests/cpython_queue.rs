//! CPython 3.11's `_TestQueue` and `TestSimpleQueue` (`Lib/test/_test_multiprocessing.py`),
//! ported to `ipc::Queue`; each test is named after its original. Python's events become
//! one-way pipes; `queue.Full` and `queue.Empty` are `FrameError::Timeout`. Where the original
//! asserts that a timed call took about its timeout, this port asserts only that it did not
//! return before it (a lower bound cannot fail on a loaded machine). What is not ported, and
//! why, is in the chapter README's conformance table.

use std::time::{Duration, Instant};

use ipc::{FrameError, Pipe, Queue};
use lesson::within;
use processes::Process;
use serde::{Serialize, Serializer};

const LONG: Duration = Duration::from_secs(60);
const TIMEOUT1: Duration = Duration::from_millis(100);
const TIMEOUT3: Duration = Duration::from_millis(300);

static FORK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    FORK.lock().unwrap_or_else(|e| e.into_inner())
}

fn is_timeout<T: std::fmt::Debug>(r: Result<T, FrameError>) -> bool {
    matches!(r, Err(FrameError::Timeout))
}

/// `f()` returned `Timeout`, and not before `at_least` had passed.
fn times_out<T: std::fmt::Debug>(at_least: Duration, f: impl FnOnce() -> Result<T, FrameError>) {
    let t = Instant::now();
    let r = f();
    assert!(is_timeout(r), "expected a time-out");
    assert!(t.elapsed() >= at_least, "returned after {:?}", t.elapsed());
}

#[test]
fn test_put() {
    let _fork = serial();
    within(LONG, "test_put", || {
        const MAXSIZE: usize = 6;
        let queue: Queue<i32> = Queue::with_maxsize(MAXSIZE).unwrap();
        let (child_can_start, start) = Pipe::oneway::<()>().unwrap();
        let (parent_can_continue, done) = Pipe::oneway::<()>().unwrap();
        let q = queue.clone();
        let mut proc = Process::new(move || -> anyhow::Result<()> {
            child_can_start.recv()?;
            for _ in 0..6 {
                q.get()?;
            }
            done.send(&())?;
            Ok(())
        });
        proc.start().unwrap();
        assert!(queue.is_empty());
        assert!(!queue.is_full());
        queue.put(&1).unwrap();
        queue.put(&2).unwrap();
        queue.put_timeout(&3, LONG).unwrap();
        queue.try_put(&4).unwrap();
        queue.try_put(&5).unwrap();
        queue.try_put(&6).unwrap();
        assert!(!queue.is_empty());
        assert!(queue.is_full());
        assert!(is_timeout(queue.try_put(&7)));
        times_out(TIMEOUT1, || queue.put_timeout(&7, TIMEOUT1));
        assert!(is_timeout(queue.try_put(&7)));
        times_out(TIMEOUT3, || queue.put_timeout(&7, TIMEOUT3));
        start.send(&()).unwrap();
        parent_can_continue.recv_timeout(LONG).unwrap();
        assert!(queue.is_empty());
        assert!(!queue.is_full());
        assert_eq!(proc.join().unwrap(), 0);
    });
}

#[test]
fn test_get() {
    let _fork = serial();
    within(LONG, "test_get", || {
        let queue: Queue<i32> = Queue::new().unwrap();
        let (child_can_start, start) = Pipe::oneway::<()>().unwrap();
        let (parent_can_continue, done) = Pipe::oneway::<()>().unwrap();
        let q = queue.clone();
        let mut proc = Process::new(move || -> anyhow::Result<()> {
            child_can_start.recv()?;
            for i in 2..=5 {
                q.put(&i)?;
            }
            done.send(&())?;
            Ok(())
        });
        proc.start().unwrap();
        assert!(queue.is_empty());
        start.send(&()).unwrap();
        parent_can_continue.recv_timeout(LONG).unwrap();
        assert!(!queue.is_empty());
        assert_eq!(queue.get().unwrap(), 2);
        assert_eq!(queue.get_timeout(LONG).unwrap(), 3);
        assert_eq!(queue.get_timeout(Duration::from_secs(1)).unwrap(), 4);
        assert_eq!(queue.try_get().unwrap(), 5);
        assert!(queue.is_empty());
        assert!(is_timeout(queue.try_get()));
        times_out(TIMEOUT1, || queue.get_timeout(TIMEOUT1));
        assert!(is_timeout(queue.try_get()));
        times_out(TIMEOUT3, || queue.get_timeout(TIMEOUT3));
        assert_eq!(proc.join().unwrap(), 0);
    });
}

#[test]
fn test_fork() {
    let _fork = serial();
    within(LONG, "test_fork", || {
        let queue: Queue<i32> = Queue::new().unwrap();
        for i in 0..10 {
            queue.put(&i).unwrap();
        }
        let q = queue.clone();
        let mut p = Process::new(move || -> Result<(), FrameError> {
            for i in 10..20 {
                q.put(&i)?;
            }
            Ok(())
        });
        p.start().unwrap();
        for i in 0..20 {
            assert_eq!(queue.get_timeout(LONG).unwrap(), i);
        }
        assert!(is_timeout(queue.try_get()));
        assert_eq!(p.join().unwrap(), 0);
    });
}

#[test]
fn test_qsize() {
    let q: Queue<i32> = Queue::new().unwrap();
    assert_eq!(q.qsize(), 0);
    q.put(&1).unwrap();
    assert_eq!(q.qsize(), 1);
    q.put(&5).unwrap();
    assert_eq!(q.qsize(), 2);
    q.get().unwrap();
    assert_eq!(q.qsize(), 1);
    q.get().unwrap();
    assert_eq!(q.qsize(), 0);
}

#[test]
fn test_timeout() {
    let q: Queue<i32> = Queue::new().unwrap();
    times_out(Duration::from_millis(100), || {
        q.get_timeout(Duration::from_millis(200))
    });
}

/// Python's `NotSerializable`: an item whose encoding fails.
#[derive(Debug, PartialEq, serde::Deserialize)]
enum Item {
    Value(bool),
    NotSerializable,
}

impl Serialize for Item {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Item::Value(b) => s.serialize_newtype_variant("Item", 0, "Value", b),
            Item::NotSerializable => Err(serde::ser::Error::custom("cannot be serialized")),
        }
    }
}

#[test]
fn test_queue_feeder_donot_stop_onexc() {
    // Python's feeder thread must survive an item it cannot pickle. Here `put` encodes the
    // item itself and returns the error; the queue goes on.
    let q: Queue<Item> = Queue::new().unwrap();
    assert!(matches!(
        q.put(&Item::NotSerializable),
        Err(FrameError::Encode(_))
    ));
    q.put(&Item::Value(true)).unwrap();
    assert_eq!(q.get_timeout(LONG).unwrap(), Item::Value(true));
    // bpo-33078: the size stays right after the error.
    let q: Queue<Item> = Queue::with_maxsize(1).unwrap();
    assert!(q.put(&Item::NotSerializable).is_err());
    q.put(&Item::Value(true)).unwrap();
    assert_eq!(q.qsize(), 1);
    assert_eq!(q.get_timeout(LONG).unwrap(), Item::Value(true));
    assert!(q.is_empty());
}

#[test]
fn test_closed_queue_put_get_exceptions() {
    let mut q: Queue<String> = Queue::new().unwrap();
    q.close();
    let err = q.put(&"foo".to_owned()).unwrap_err();
    assert!(matches!(err, FrameError::Closed));
    assert!(err.to_string().contains("is closed"));
    assert!(matches!(q.get(), Err(FrameError::Closed)));
}

// TestSimpleQueue

#[test]
fn test_empty() {
    let _fork = serial();
    within(LONG, "test_empty", || {
        let queue: Queue<bool> = Queue::new().unwrap();
        let (child_can_start, start) = Pipe::oneway::<()>().unwrap();
        let (parent_can_continue, done) = Pipe::oneway::<()>().unwrap();
        let q = queue.clone();
        let mut proc = Process::new(move || -> anyhow::Result<()> {
            child_can_start.recv()?;
            q.put(&q.is_empty())?;
            q.put(&q.is_empty())?;
            done.send(&())?;
            Ok(())
        });
        proc.start().unwrap();
        assert!(queue.is_empty());
        start.send(&()).unwrap();
        parent_can_continue.recv_timeout(LONG).unwrap();
        assert!(!queue.is_empty());
        assert!(queue.get().unwrap());
        assert!(!queue.get().unwrap());
        assert!(queue.is_empty());
        assert_eq!(proc.join().unwrap(), 0);
    });
}

#[test]
fn test_close() {
    let mut queue: Queue<u8> = Queue::new().unwrap();
    queue.close();
    // Closing a queue twice does not fail.
    queue.close();
}
