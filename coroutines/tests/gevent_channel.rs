//! gevent's `Channel` tests (`gevent/tests/test__queue.py`, class TestChannel), ported to
//! the hub's `Queue::channel()`; the rest of that file is in `gevent_queue.rs` (split only to
//! keep files short). Each test is named after its original.

#![allow(non_snake_case)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use coroutines::hub::{self, Queue};
use lesson::within;

fn bounded<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    within(Duration::from_secs(60), name, f)
}

mod TestChannel {
    use super::*;

    /// A putter waits on the channel; a `get_nowait` from outside takes its item and frees it.
    #[test]
    fn test_get_nowait_unlock_channel() {
        bounded("channel get_nowait", || {
            let q = Queue::channel();
            let tx = q.clone();
            let p = hub::spawn(move || tx.put(5).unwrap()).unwrap();
            assert!(q.empty() && q.full());
            hub::sleep(Duration::from_millis(1)).unwrap();
            assert!(q.empty() && q.full());
            assert_eq!(q.get_nowait().unwrap(), 5);
            hub::sleep(Duration::from_millis(1)).unwrap();
            assert!(q.empty() && q.full());
            assert!(p.done());
        });
    }

    /// A sender waits until a receiver comes; then both finish.
    #[test]
    fn test_zero_max_size() {
        bounded("zero max size", || {
            let q = Queue::channel();
            let tx = q.clone();
            let p1 = hub::spawn(move || {
                tx.put("hi").unwrap();
                "done"
            })
            .unwrap();
            hub::sleep(Duration::from_millis(1)).unwrap();
            assert!(!p1.done());
            let rx = q.clone();
            let p2 = hub::spawn(move || rx.get().unwrap()).unwrap();
            hub::joinall(&[&p1, &p2]).unwrap();
            assert_eq!((p2.take(), p1.take()), (Some("hi"), Some("done")));
        });
    }

    /// The putter (the root) goes on only once the other task took each item.
    #[test]
    fn test_send() {
        bounded("send", || {
            let q = Queue::channel();
            let events = Rc::new(RefCell::new(Vec::new()));
            let (rx, e) = (q.clone(), events.clone());
            let g = hub::spawn(move || {
                for _ in 0..2 {
                    let v = rx.get().unwrap();
                    e.borrow_mut().push(v);
                }
            })
            .unwrap();
            events.borrow_mut().push("sending");
            q.put("hello").unwrap();
            events.borrow_mut().push("sent hello");
            q.put("world").unwrap();
            events.borrow_mut().push("sent world");
            assert_eq!(
                *events.borrow(),
                ["sending", "hello", "sent hello", "world", "sent world"]
            );
            hub::joinall(&[&g]).unwrap();
        });
    }

    /// The getter (the root) takes each item as the putter offers it; the putter goes on once
    /// the hub runs it again.
    #[test]
    fn test_wait() {
        bounded("wait", || {
            let q = Queue::channel();
            let events = Rc::new(RefCell::new(Vec::new()));
            let (tx, e) = (q.clone(), events.clone());
            let g = hub::spawn(move || {
                e.borrow_mut().push("sending hello");
                tx.put("hello").unwrap();
                e.borrow_mut().push("sending world");
                tx.put("world").unwrap();
                e.borrow_mut().push("sent world");
            })
            .unwrap();
            events.borrow_mut().push("waiting");
            let v = q.get().unwrap();
            events.borrow_mut().push(v);
            let v = q.get().unwrap();
            events.borrow_mut().push(v);
            let want = [
                "waiting",
                "sending hello",
                "hello",
                "sending world",
                "world",
            ];
            assert_eq!(*events.borrow(), want);
            hub::yield_now().unwrap();
            assert_eq!(events.borrow().len(), 6);
            assert_eq!(events.borrow()[5], "sent world");
            hub::joinall(&[&g]).unwrap();
        });
    }

    /// Iterating a channel ends when it is shut down (gevent: when `StopIteration` is put).
    #[test]
    fn test_iterable() {
        bounded("iterable", || {
            let q: Queue<u32> = Queue::channel();
            let s = q.clone();
            hub::spawn(move || s.shutdown(false)).unwrap();
            assert_eq!(q.collect::<Vec<_>>(), Vec::<u32>::new());
        });
    }
}
