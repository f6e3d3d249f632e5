//! gevent's queue tests (`gevent/tests/test__queue.py`), ported to the hub's `Queue`: one
//! module per original class, each test named after its original. Tests of the mixins that
//! the original runs for several classes run here for `Queue` and for `Queue::channel()` where
//! the original does. gevent's `loop.run_callback(f)` (run `f` from the hub) becomes a call
//! from the root, which is what a callback is: code outside any task. What was left out, and
//! why, is in the README's conformance table.

#![allow(non_snake_case)]

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use coroutines::hub::{self, Elapsed, Queue, QueueError};
use lesson::within;

const SHORT: Duration = Duration::from_millis(20);
const LONG: Duration = Duration::from_secs(600);

fn bounded<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    within(Duration::from_secs(60), name, f)
}

fn is_kind(e: &QueueError, kind: io::ErrorKind) -> bool {
    matches!(e, QueueError::Wait(e) if e.kind() == kind)
}

/// `UsesOnlyOneItemMixin`, for `Queue` (`channel: false`) and `Channel` (`channel: true`).
mod UsesOnlyOneItemMixin {
    use super::*;

    fn make(channel: bool, maxsize: Option<usize>) -> Queue<u32> {
        match (channel, maxsize) {
            (true, _) => Queue::channel(),
            (false, Some(n)) => Queue::bounded(n),
            (false, None) => Queue::new(),
        }
    }

    /// Two `put_nowait`s on a queue of one: the first fits, the second is `Full`. A channel
    /// with no getter takes neither.
    fn put_nowait_simple(channel: bool) {
        let q = make(channel, Some(1));
        let first = q.put_nowait(2);
        let second = q.put_nowait(3);
        assert_eq!(first.is_ok(), !channel, "{first:?}");
        assert!(matches!(second, Err(e) if matches!(e.error, QueueError::Full)));
    }

    #[test]
    fn test_put_nowait_simple() {
        bounded("queue", || put_nowait_simple(false));
        bounded("channel", || put_nowait_simple(true));
    }

    /// A task waits in `get`; a `put_nowait` from outside wakes it, and it has the item once
    /// the hub runs.
    fn put_nowait_unlock(channel: bool) {
        let q = make(channel, None);
        let g = q.clone();
        let p = hub::spawn(move || g.get().unwrap()).unwrap();
        assert!(q.empty());
        assert_eq!(q.full(), channel);
        hub::sleep(Duration::from_millis(1)).unwrap();
        assert!(q.empty());
        assert_eq!(q.full(), channel);
        assert!(q.put_nowait(10).is_ok());
        assert!(!p.done());
        hub::sleep(Duration::from_millis(1)).unwrap();
        assert!(p.done());
        assert_eq!(p.take(), Some(10));
        assert_eq!(q.full(), channel);
        assert!(q.empty());
    }

    #[test]
    fn test_put_nowait_unlock() {
        bounded("queue", || put_nowait_unlock(false));
        bounded("channel", || put_nowait_unlock(true));
    }

    /// A waiter under a time-out that must not fire gets the item put after it started
    /// waiting.
    fn send_last(channel: bool) {
        let q = make(channel, None);
        let g = q.clone();
        let p = hub::spawn(move || {
            hub::timeout(LONG, || assert_eq!(g.get().unwrap(), 2)).unwrap();
            "OK"
        })
        .unwrap();
        hub::sleep(Duration::from_millis(10)).unwrap();
        q.put(2).unwrap();
        hub::sleep(Duration::from_millis(10)).unwrap();
        assert_eq!(p.take(), Some("OK"));
    }

    #[test]
    fn test_send_last() {
        bounded("queue", || send_last(false));
        bounded("channel", || send_last(true));
    }
}

/// `TestSimpleQueue`, run for `Queue` (gevent runs it for both).
mod TestQueue {
    use super::*;

    #[test]
    fn test_get_nowait_simple() {
        bounded("get_nowait", || {
            let q = Queue::bounded(1);
            q.put(4).unwrap();
            assert_eq!(q.get_nowait().unwrap(), 4);
            assert!(matches!(q.get_nowait(), Err(QueueError::Empty)));
        });
    }

    /// A task waits in `put` on a full queue; a `get_nowait` from outside frees it.
    #[test]
    fn test_get_nowait_unlock() {
        bounded("get_nowait unlock", || {
            let q = Queue::bounded(1);
            let tx = q.clone();
            let p = hub::spawn(move || tx.put(5).unwrap()).unwrap();
            assert!(q.empty());
            hub::yield_now().unwrap();
            assert!(q.full());
            assert_eq!(q.get_nowait().unwrap(), 5);
            hub::yield_now().unwrap();
            assert!(q.empty());
            assert!(p.done());
        });
    }

    #[test]
    fn test_send_first() {
        let q = Queue::new();
        q.put("hi").unwrap();
        assert_eq!(q.peek().unwrap(), "hi");
        assert_eq!(q.get().unwrap(), "hi");
    }

    /// `peek` on an empty queue from the root, with no task to fill it: `LoopExit` (here
    /// `Deadlock`); in a task, with a time-out: `Empty`.
    #[test]
    fn test_peek_empty() {
        bounded("peek empty", || {
            let q: Queue<u32> = Queue::new();
            let e = q.peek().unwrap_err();
            assert!(is_kind(&e, io::ErrorKind::Deadlock), "{e:?}");
            let g = q.clone();
            let w = hub::spawn(move || g.peek_timeout(Duration::from_millis(10))).unwrap();
            hub::joinall(&[&w]).unwrap();
            assert!(matches!(w.take(), Some(Err(QueueError::Empty))));
        });
    }

    #[test]
    fn test_peek_multi_greenlet() {
        bounded("peek multi", || {
            let q = Queue::new();
            let g = q.clone();
            let p = hub::spawn(move || g.peek().unwrap()).unwrap();
            hub::yield_now().unwrap();
            q.put(1).unwrap();
            hub::joinall(&[&p]).unwrap();
            assert_eq!(p.exception(), None);
            assert_eq!(p.take(), Some(1));
            assert_eq!(q.peek().unwrap(), 1);
        });
    }

    /// A putter of three items on a queue of two runs until the third; each `get` lets it on.
    #[test]
    fn test_max_size() {
        bounded("max size", || {
            let q = Queue::bounded(2);
            let results = Rc::new(RefCell::new(Vec::new()));
            let (tx, r) = (q.clone(), results.clone());
            let p = hub::spawn(move || {
                for item in ["a", "b", "c"] {
                    tx.put(item).unwrap();
                    r.borrow_mut().push(item);
                }
                "OK"
            })
            .unwrap();
            hub::yield_now().unwrap();
            assert_eq!(*results.borrow(), ["a", "b"]);
            assert_eq!(q.get().unwrap(), "a");
            hub::yield_now().unwrap();
            assert_eq!(*results.borrow(), ["a", "b", "c"]);
            assert_eq!(q.get().unwrap(), "b");
            assert_eq!(q.get().unwrap(), "c");
            hub::joinall(&[&p]).unwrap();
            assert_eq!(p.take(), Some("OK"));
        });
    }

    /// Four waiters; each item put reaches exactly one of them.
    #[test]
    fn test_multiple_waiters() {
        bounded("multiple waiters", || {
            let q = Queue::new();
            let results = Rc::new(RefCell::new(BTreeSet::new()));
            let tasks: Vec<_> = (0..4)
                .map(|_| {
                    let (g, r) = (q.clone(), results.clone());
                    hub::spawn(move || {
                        let item = g.get().unwrap();
                        r.borrow_mut().insert(item);
                    })
                    .unwrap()
                })
                .collect();
            hub::sleep(Duration::from_millis(10)).unwrap(); // all waiting
            q.put("1").unwrap();
            hub::yield_now().unwrap();
            assert_eq!(results.borrow().len(), 1);
            q.put("2").unwrap();
            hub::yield_now().unwrap();
            assert_eq!(results.borrow().len(), 2);
            q.put("3").unwrap();
            q.put("4").unwrap();
            hub::yield_now().unwrap();
            assert_eq!(results.borrow().len(), 4);
            let refs: Vec<&dyn hub::Joinable> = tasks.iter().map(|t| t as _).collect();
            hub::joinall(&refs).unwrap();
        });
    }

    /// `with Timeout(0)` around a `get`: it fails at once ('timed out'); the queue still works.
    fn do_receive(q: &Queue<&'static str>) -> &'static str {
        match hub::timeout(Duration::ZERO, || q.get()) {
            Err(Elapsed) => "timed out",
            Ok(r) => r.unwrap(),
        }
    }

    #[test]
    fn test_waiters_that_cancel() {
        bounded("waiters that cancel", || {
            let q = Queue::new();
            let g = q.clone();
            let evt = hub::spawn(move || do_receive(&g)).unwrap();
            hub::joinall(&[&evt]).unwrap();
            assert_eq!(evt.take(), Some("timed out"));
            q.put("hi").unwrap();
            assert_eq!(q.get().unwrap(), "hi");
        });
    }

    #[test]
    fn test_senders_that_die() {
        bounded("senders that die", || {
            let q = Queue::new();
            let tx = q.clone();
            hub::spawn(move || tx.put("sent").unwrap()).unwrap();
            assert_eq!(q.get().unwrap(), "sent");
        });
    }

    #[test]
    fn test_two_waiters_one_dies() {
        bounded("two waiters one dies", || {
            let q = Queue::new();
            let (g1, g2) = (q.clone(), q.clone());
            let dying = hub::spawn(move || do_receive(&g1)).unwrap();
            let waiting = hub::spawn(move || g2.get().unwrap()).unwrap();
            hub::sleep(Duration::from_millis(10)).unwrap();
            q.put("hi").unwrap();
            hub::joinall(&[&dying, &waiting]).unwrap();
            assert_eq!(dying.take(), Some("timed out"));
            assert_eq!(waiting.take(), Some("hi"));
        });
    }

    #[test]
    fn test_two_bogus_waiters() {
        bounded("two bogus waiters", || {
            let q = Queue::new();
            let (g1, g2) = (q.clone(), q.clone());
            let e1 = hub::spawn(move || do_receive(&g1)).unwrap();
            let e2 = hub::spawn(move || do_receive(&g2)).unwrap();
            hub::sleep(Duration::from_millis(10)).unwrap();
            q.put("sent").unwrap();
            hub::joinall(&[&e1, &e2]).unwrap();
            assert_eq!(
                (e1.take(), e2.take()),
                (Some("timed out"), Some("timed out"))
            );
            assert_eq!(q.get().unwrap(), "sent");
        });
    }

    #[test]
    fn test_task_done() {
        bounded("task done", || {
            let q = Queue::new();
            let tx = q.clone();
            hub::spawn(move || tx.put("X").unwrap()).unwrap();
            assert_eq!(q.get().unwrap(), "X");
            assert_eq!(q.unfinished_tasks(), 1);
            q.task_done().unwrap();
            assert_eq!(q.unfinished_tasks(), 0);
        });
    }

    fn shutdown_all_methods_in_one_thread(immediate: bool) {
        let q = Queue::new();
        q.put("L").unwrap();
        q.put_nowait("O").unwrap();
        q.shutdown(immediate);
        assert!(matches!(q.put("E"), Err(e) if matches!(e.error, QueueError::ShutDown)));
        assert!(matches!(q.put_nowait("W"), Err(e) if matches!(e.error, QueueError::ShutDown)));
        if immediate {
            assert!(matches!(q.get(), Err(QueueError::ShutDown)));
            assert!(matches!(q.get_nowait(), Err(QueueError::ShutDown)));
            assert!(matches!(q.task_done(), Err(QueueError::TooManyTaskDone)));
            q.join().unwrap();
        } else {
            assert!("LO".contains(q.get().unwrap()));
            q.task_done().unwrap();
            assert!("LO".contains(q.get().unwrap()));
            q.task_done().unwrap();
            q.join().unwrap();
            assert!(matches!(q.get(), Err(QueueError::ShutDown)));
            assert!(matches!(q.get_nowait(), Err(QueueError::ShutDown)));
            assert!(matches!(
                q.get_timeout(Duration::from_secs(1)),
                Err(QueueError::ShutDown)
            ));
        }
    }

    #[test]
    fn test_shutdown_all_methods_in_one_thread() {
        bounded("shutdown", || shutdown_all_methods_in_one_thread(false));
    }

    #[test]
    fn test_shutdown_immediate_all_methods_in_one_thread() {
        bounded("shutdown immediate", || {
            shutdown_all_methods_in_one_thread(true);
        });
    }

    /// `join()` on a queue that never had an item returns at once.
    #[test]
    fn test_issue_45() {
        bounded("issue 45", || Queue::<u32>::new().join().unwrap());
    }
}

/// `TestGetInterrupt` (for Queue and Channel) and `TestPutInterrupt` (for Queue(1) and Channel):
/// a wait with a time-out of its own ends with `Empty` / `Full` after about that long; an
/// outer `Timeout` that fires first is not lost (the block gets `Elapsed`).
mod TestInterrupt {
    use super::*;

    /// A wait with its own time-out: `own` error, after at least that long.
    fn by_number(wait: impl Fn(Duration) -> Result<(), QueueError>, own: fn(&QueueError) -> bool) {
        let start = Instant::now();
        let e = wait(SHORT).unwrap_err();
        assert!(own(&e), "{e:?}");
        assert!(start.elapsed() >= SHORT);
    }

    /// An outer time-out that fires first: the block gets `Elapsed`, the wait `TimedOut`.
    fn outer(wait: impl Fn(Duration) -> Result<(), QueueError>) {
        let mut inner = None;
        let outer = hub::timeout(Duration::from_millis(1), || inner = Some(wait(LONG)));
        assert_eq!(outer, Err(Elapsed));
        let inner = inner.unwrap().unwrap_err();
        assert!(is_kind(&inner, io::ErrorKind::TimedOut), "{inner:?}");
    }

    /// Each kind of wait, for a queue and a channel, with `check`.
    fn each(check: fn(&dyn Fn(Duration) -> Result<(), QueueError>, bool)) {
        for channel in [false, true] {
            let q: Queue<u32> = if channel {
                Queue::channel()
            } else {
                Queue::new()
            };
            check(&|d| q.get_timeout(d).map(drop), false);
            let q: Queue<u32> = if channel {
                Queue::channel()
            } else {
                Queue::bounded(1)
            };
            while !q.full() {
                q.put(1).unwrap();
            }
            check(&|d| q.put_timeout(2, d).map_err(|e| e.error), true);
            assert!(channel || q.qsize() == 1, "the timed-out item stayed in");
        }
    }

    #[test]
    fn test_raises_timeout_number() {
        bounded("interrupt", || {
            each(|wait, put| {
                if put {
                    by_number(wait, |e| matches!(e, QueueError::Full));
                } else {
                    by_number(wait, |e| matches!(e, QueueError::Empty));
                }
            });
        });
    }

    #[test]
    fn test_outer_timeout_is_not_lost() {
        bounded("outer timeout", || each(|wait, _| outer(wait)));
    }
}
