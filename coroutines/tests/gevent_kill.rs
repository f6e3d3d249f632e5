//! gevent's tests of killing and linking tasks (`gevent/tests/test__greenlet.py`: TestKill and
//! its variants, TestRef, TestLink, TestReturn_link), ported to the hub; each test keeps its
//! original's name. What was left out, and why, is in the README's conformance table.
//!
//! gevent's `Greenlet(f)` can exist unscheduled; a hub task is scheduled when spawned, so the
//! base TestKill (kill before `start`) and TestKillAfterStart (kill after `start`, before it
//! runs) are the same case here. `killall([g])` is a loop of `kill` (there is no `killall`).

#![allow(non_snake_case)]

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use coroutines::hub::{self, Queue, Spawned};
use lesson::within;

fn bounded<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    within(Duration::from_secs(60), name, f)
}

const LARGE_TICK: Duration = Duration::from_millis(200);

/// `__assertKilled(g, successful=True)`: dead, ready, successful with the exit as its value
/// (here: `killed()`), no exception; and the same after spinning the loop.
fn assert_killed<T>(g: &Spawned<T>) {
    for _ in 0..2 {
        assert!(g.done(), "not dead");
        assert!(g.killed(), "not killed");
        assert!(g.successful(), "a killed task counts as successful");
        assert_eq!(g.exception(), None);
        hub::sleep(Duration::from_millis(10)).unwrap();
    }
}

/// TestKill's `_do_test`: a task that would note that it ran, with a link noting its handle,
/// started by `start` (nothing, spawned, or spawned later), killed (twice: the second must not
/// hurt); it never ran, and its link ran once, with it.
fn do_test(start: fn(Rc<RefCell<Vec<u32>>>) -> Spawned<()>, after_kill: fn()) {
    let result = Rc::new(RefCell::new(Vec::new()));
    let links = Rc::new(RefCell::new(Vec::new()));
    let g = start(result.clone());
    let l = links.clone();
    g.link(move |g| l.borrow_mut().push(g.id()));
    g.kill().unwrap();
    assert_killed(&g);
    g.kill().unwrap();
    assert_killed(&g);
    after_kill();
    assert!(result.borrow().is_empty(), "the function ran");
    assert_eq!(*links.borrow(), [g.id()]);
}

fn spawned(result: Rc<RefCell<Vec<u32>>>) -> Spawned<()> {
    hub::spawn(move || result.borrow_mut().push(1)).unwrap()
}

fn spawned_later(result: Rc<RefCell<Vec<u32>>>) -> Spawned<()> {
    hub::spawn_later(LARGE_TICK, move || result.borrow_mut().push(1)).unwrap()
}

fn spawned_sleeping(result: Rc<RefCell<Vec<u32>>>) -> Spawned<()> {
    let g = hub::spawn(move || {
        let _ = hub::sleep(Duration::from_secs(10));
        result.borrow_mut().push(1);
    })
    .unwrap();
    hub::yield_now().unwrap(); // it runs, and sleeps
    g
}

fn nothing() {}

fn spin() {
    hub::sleep(Duration::from_millis(10)).unwrap();
}

mod TestKill {
    use super::*;

    #[test]
    fn test_block() {
        bounded("block", || do_test(spawned, nothing));
    }

    /// `kill(block=False)`: the same call here (a suspended task is resumed at once).
    #[test]
    fn test_non_block() {
        bounded("non block", || do_test(spawned, spin));
    }

    /// `gevent.killall([g])`: a loop of `kill` here.
    #[test]
    fn test_block_killall() {
        bounded("killall", || {
            do_test(spawned, nothing);
            do_test(spawned_sleeping, nothing);
        });
    }
}

mod TestKillAfterStartLater {
    use super::*;

    #[test]
    fn test_block() {
        bounded("block", || do_test(spawned_later, nothing));
    }

    #[test]
    fn test_non_block() {
        bounded("non block", || do_test(spawned_later, spin));
    }
}

mod TestKillWhileRunning {
    use super::*;

    /// Killed in its `sleep(10)`: the exit raised there ends it; the line after never runs.
    #[test]
    fn test_block() {
        bounded("block", || do_test(spawned_sleeping, spin));
    }

    #[test]
    fn test_non_block() {
        bounded("non block", || do_test(spawned_sleeping, spin));
    }
}

mod TestRef {
    use super::*;

    /// Killing a task that is only scheduled.
    #[test]
    fn test_kill_scheduled() {
        bounded("kill scheduled", || {
            let g = hub::spawn(|| hub::sleep(LARGE_TICK)).unwrap();
            g.kill().unwrap();
            assert!(g.done() && g.killed());
        });
    }

    /// Killing a task that has started and sleeps.
    #[test]
    fn test_kill_started() {
        bounded("kill started", || {
            let g = hub::spawn(|| hub::sleep(LARGE_TICK)).unwrap();
            hub::sleep(Duration::from_millis(1)).unwrap();
            g.kill().unwrap();
            assert!(g.done() && g.killed());
        });
    }
}

mod TestLink {
    use super::*;

    /// `p.link(q.put)`: the link hands the task to a queue; linking again after it ended runs
    /// at once.
    #[test]
    fn test_link_to_queue() {
        bounded("link to queue", || {
            let p = hub::spawn(|| 100).unwrap();
            let q: Queue<Spawned<i32>> = Queue::new();
            let tx = q.clone();
            p.link(move |g| tx.put(g.clone()).unwrap());
            assert_eq!(q.get().unwrap().value(), Some(100));
            for _ in 0..3 {
                let tx = q.clone();
                p.link(move |g| tx.put(g.clone()).unwrap());
                assert_eq!(q.get().unwrap().value(), Some(100));
            }
        });
    }

    /// Three tasks linked to one channel: each handle comes through it.
    #[test]
    fn test_link_to_channel() {
        bounded("link to channel", || {
            let q: Queue<Spawned<i32>> = Queue::channel();
            let ps: Vec<_> = [101, 102, 103]
                .into_iter()
                .map(|v| hub::spawn(move || v).unwrap())
                .collect();
            for p in &ps {
                let tx = q.clone();
                p.link(move |g| tx.put(g.clone()).unwrap());
            }
            let mut results: Vec<i32> = (0..3).map(|_| q.get().unwrap().value().unwrap()).collect();
            results.sort_unstable();
            assert_eq!(results, [101, 102, 103]);
        });
    }
}

mod TestReturn_link {
    use super::*;

    /// A task returning 25: its links see the value, each once.
    #[test]
    fn test_return() {
        bounded("return", || {
            let p = hub::spawn(|| 25).unwrap();
            let seen = Rc::new(Cell::new(0));
            for _ in 0..3 {
                let s = seen.clone();
                p.link(move |g| {
                    assert_eq!(g.value(), Some(25));
                    s.set(s.get() + 1);
                });
            }
            hub::joinall(&[&p]).unwrap();
            assert_eq!(seen.get(), 3);
            assert!(p.successful() && !p.killed());
        });
    }

    /// A killed task: its links run, and see it killed with no value.
    #[test]
    fn test_kill() {
        bounded("kill", || {
            let p = hub::spawn(|| hub::sleep(Duration::from_millis(50)).map(|()| 1)).unwrap();
            let seen = Rc::new(Cell::new(0));
            let s = seen.clone();
            p.link(move |g| {
                assert!(g.killed() && g.take().is_none());
                s.set(s.get() + 1);
            });
            hub::yield_now().unwrap();
            p.kill().unwrap();
            hub::sleep(Duration::from_millis(1)).unwrap();
            assert_eq!(seen.get(), 1);
            assert!(p.done() && p.killed());
        });
    }
}

/// `TestStuff.test_joinall_count_raise_error`'s clean-up: a task that sleeps for ever in a
/// loop is killed, and is then ready.
#[test]
fn test_joinall_count_raise_error_cleanup() {
    bounded("kill a sleeper", || {
        let sleeper = hub::spawn(|| {
            loop {
                hub::sleep(Duration::from_millis(100))?;
            }
            #[allow(unreachable_code)]
            Ok::<(), std::io::Error>(())
        })
        .unwrap();
        let raiser = hub::spawn(|| -> i32 { panic!("count") }).unwrap();
        hub::joinall(&[&raiser]).unwrap();
        assert!(raiser.done() && !sleeper.done());
        sleeper.kill().unwrap();
        assert!(sleeper.done() && sleeper.killed());
    });
}
