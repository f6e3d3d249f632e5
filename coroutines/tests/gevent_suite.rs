//! gevent's own tests of `spawn`, `joinall`, `sleep(0)` and `Timeout`, ported to the hub
//! (gevent 26.9, `gevent/tests/`): one module per original file, each test named after its
//! original. What was left out, and why, is in the README's conformance table.
//!
//! Every test runs on its own test thread, so with its own hub; every test is bounded by
//! `lesson::within`, so a hang fails it. Deadlines are short only where they must pass
//! (a sleep of a minute under a time-out of milliseconds): no test depends on how fast the
//! machine is.

// The modules keep gevent's file names (`test__joinall.py` is `test__joinall`).
#![allow(non_snake_case)]

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use coroutines::hub::{self, Elapsed, Joinable};
use lesson::within;

/// A sleep that a test never lets finish.
const FOREVER: Duration = Duration::from_secs(3600);
/// A time-out that must fire.
const SHORT: Duration = Duration::from_millis(20);
/// A time-out that must not fire.
const LONG: Duration = Duration::from_secs(600);

fn bounded<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    within(Duration::from_secs(60), name, f)
}

fn is_timed_out(r: &io::Result<()>) -> bool {
    r.as_ref()
        .is_err_and(|e| e.kind() == io::ErrorKind::TimedOut)
}

mod test__joinall {
    use super::*;

    /// `joinall([a, b, a])`: a task named twice is waited for once, and both finish.
    #[test]
    fn test() {
        bounded("joinall", || {
            let a = hub::spawn(|| ()).unwrap();
            let b = hub::spawn(|| ()).unwrap();
            hub::joinall(&[&a, &b, &a]).unwrap();
            assert!(a.done() && b.done());
        });
    }
}

mod test__sleep0 {
    use super::*;

    /// `with Timeout(0.01, False): while True: sleep(0)`, from the main greenlet: `sleep(0)`
    /// there must run the hub (and so let the time-out fire), not spin.
    #[test]
    fn test() {
        let rounds = bounded("sleep0", || {
            let mut rounds = 0u64;
            let r = hub::timeout(Duration::from_millis(10), || {
                loop {
                    rounds += 1;
                    if hub::yield_now().is_err() {
                        break;
                    }
                }
            });
            assert_eq!(r, Err(Elapsed));
            rounds
        });
        assert!(rounds > 0);
    }

    /// The same in a task, where `yield_now` suspends the task; another task runs meanwhile.
    #[test]
    fn test_in_a_task() {
        bounded("sleep0 in a task", || {
            let other_ran = Rc::new(RefCell::new(0u32));
            let o = other_ran.clone();
            let other = hub::spawn(move || {
                while hub::yield_now().is_ok() {
                    *o.borrow_mut() += 1;
                    if *o.borrow() == 3 {
                        break;
                    }
                }
            })
            .unwrap();
            let t = hub::spawn(|| {
                hub::timeout(
                    Duration::from_millis(10),
                    || {
                        while hub::yield_now().is_ok() {}
                    },
                )
            })
            .unwrap();
            hub::joinall(&[&t, &other]).unwrap();
            assert_eq!(t.take(), Some(Err(Elapsed)));
            assert_eq!(*other_ran.borrow(), 3);
        });
    }
}

mod test__api_timeout {
    use super::*;

    /// Nothing happens if the block ends before the deadline; a sleep past it raises (here:
    /// the sleep fails with `TimedOut`, and the block says `Elapsed`); a silenced time-out
    /// (`Timeout(t, False)`) just ends the block.
    #[test]
    fn test_api() {
        bounded("test_api", || {
            let r = hub::timeout(LONG, || hub::sleep(Duration::from_millis(1)));
            assert!(matches!(r, Ok(Ok(()))), "{r:?}");
            let mut slept = None;
            let r = hub::timeout(SHORT, || slept = Some(hub::sleep(FOREVER)));
            assert_eq!(r, Err(Elapsed));
            assert!(is_timed_out(slept.as_ref().unwrap()));
            // Silenced: the caller ignores the Elapsed.
            let _ = hub::timeout(SHORT, || hub::sleep(FOREVER));
            // After a block, its deadline no longer applies.
            assert!(hub::sleep(Duration::from_millis(30)).is_ok());
        });
    }

    /// Nested time-outs: the earlier deadline fires, and only its block reports it.
    #[test]
    fn test_nested_timeout() {
        bounded("nested", || {
            // The outer deadline is the earlier.
            let mut inner = None;
            let outer = hub::timeout(SHORT, || {
                inner = Some(hub::timeout(LONG, || hub::sleep(FOREVER)));
            });
            assert_eq!(outer, Err(Elapsed));
            let inner = inner
                .unwrap()
                .expect("the inner block's deadline did not pass");
            assert!(is_timed_out(&inner));
            // The inner deadline is the earlier.
            let outer = hub::timeout(LONG, || hub::timeout(SHORT, || hub::sleep(FOREVER)));
            let inner = outer.expect("the outer block's deadline did not pass");
            assert_eq!(inner.map(|r| r.is_ok()), Err(Elapsed));
            // After the inner block, the outer deadline is back: a short sleep is fine.
            let outer = hub::timeout(LONG, || {
                let _ = hub::timeout(SHORT, || hub::sleep(FOREVER));
                hub::sleep(Duration::from_millis(1))
            });
            assert!(matches!(outer, Ok(Ok(()))));
        });
    }
}

mod test__timeout {
    use super::*;

    /// A started `Timeout` raises at the hub wait it interrupts, and again once restarted.
    #[test]
    fn test_expires() {
        bounded("expires", || {
            for _ in 0..2 {
                let r = hub::timeout(SHORT, || {
                    hub::sleep(FOREVER).expect_err("the sleep was not interrupted")
                });
                assert_eq!(r.map(|_| ()), Err(Elapsed));
            }
        });
    }

    /// `Timeout(t, False)`: the same, silenced by the caller.
    #[test]
    fn test_expires_false() {
        bounded("expires false", || {
            for _ in 0..2 {
                let r = hub::timeout(SHORT, || hub::sleep(FOREVER)).ok();
                assert!(r.is_none());
            }
        });
    }

    /// As a context manager around a wait that never ends by itself: a task that never
    /// finishes, joined.
    #[test]
    fn test_context_manager() {
        bounded("context manager", || {
            let never = hub::spawn(|| hub::sleep(FOREVER)).unwrap();
            let r = hub::timeout(SHORT, || hub::joinall(&[&never]));
            assert_eq!(r.map(|_| ()), Err(Elapsed));
            assert!(!never.done());
        });
    }

    /// The same, silenced.
    #[test]
    fn test_context_manager_false() {
        bounded("context manager false", || {
            let never = hub::spawn(|| hub::sleep(FOREVER)).unwrap();
            let _ = hub::timeout(SHORT, || hub::joinall(&[&never]));
            assert!(!never.done());
        });
    }

    /// `gevent.with_timeout(t, f, timeout_value=X)`: X when the time-out fires first, `f`'s
    /// value otherwise.
    #[test]
    fn test_with_timeout() {
        bounded("with_timeout", || {
            let r = hub::timeout(SHORT, || hub::sleep(FOREVER));
            assert_eq!(r.map(|_| ()), Err(Elapsed));
            let x = "X";
            let r = hub::timeout(SHORT, || hub::sleep(FOREVER)).map_or(x, |_| "slept");
            assert_eq!(r, "X");
            let r =
                hub::timeout(LONG, || hub::sleep(Duration::from_millis(1))).map_or(x, |_| "slept");
            assert_eq!(r, "slept");
        });
    }
}

mod test__api {
    use super::*;

    /// `with_timeout(0.1, func)` where func does `with_timeout(0.2, sleep, 2, timeout_value=1)`:
    /// the outer time-out comes first and is raised; the inner block does not take it.
    #[test]
    fn test_nested_with_timeout() {
        bounded("nested with_timeout", || {
            let func = || hub::timeout(LONG, || hub::sleep(FOREVER)).map_or(1, |_| 2);
            let r = hub::timeout(SHORT, func);
            assert_eq!(r, Err(Elapsed));
        });
    }

    /// A task spawned by a task that then sleeps runs; the sleeper ends after it.
    #[test]
    fn test_timer_fired() {
        bounded("timer fired", || {
            let list = Rc::new(RefCell::new(vec![1]));
            let l = list.clone();
            let func = hub::spawn(move || {
                let l2 = l.clone();
                let popper = hub::spawn(move || {
                    hub::sleep(Duration::from_millis(10)).unwrap();
                    l2.borrow_mut().pop();
                })
                .unwrap();
                hub::sleep(Duration::from_millis(20)).unwrap();
                popper
            })
            .unwrap();
            // Not run yet: spawn only schedules.
            assert_eq!(*list.borrow(), [1]);
            // sleep(0) from the root runs what is ready (func starts and sleeps).
            hub::yield_now().unwrap();
            hub::joinall(&[&func]).unwrap();
            let popper = func.take().unwrap();
            hub::joinall(&[&popper]).unwrap();
            assert!(list.borrow().is_empty());
        });
    }

    /// A task spawned by a task that ends at once still runs.
    #[test]
    fn test_spawn_is_not_cancelled() {
        bounded("spawn not cancelled", || {
            let list = Rc::new(RefCell::new(vec![1]));
            let l = list.clone();
            let func = hub::spawn(move || {
                let _ = hub::spawn(move || l.borrow_mut().pop());
            })
            .unwrap();
            hub::joinall(&[&func]).unwrap();
            hub::sleep(Duration::from_millis(10)).unwrap();
            assert!(list.borrow().is_empty());
        });
    }
}

mod test__greenlet {
    use super::*;

    /// `joinall([x, y, z], raise_error=True)` with no error: all values are there.
    #[test]
    fn test_wait_noerrors() {
        bounded("wait noerrors", || {
            let x = hub::spawn(|| 1).unwrap();
            let y = hub::spawn(|| 2).unwrap();
            let z = hub::spawn(|| 3).unwrap();
            hub::joinall_raise_error(&[&x, &y, &z]).unwrap();
            assert_eq!([x.take(), y.take(), z.take()], [Some(1), Some(2), Some(3)]);
        });
    }

    /// A task that fails at once makes `joinall(raise_error=True)` re-raise before the other
    /// (sleeping) one is done; again for the failed one alone; the other still finishes.
    #[test]
    fn test_wait_error() {
        bounded("wait error", || {
            let x = hub::spawn(|| {
                hub::sleep(Duration::from_millis(20)).unwrap();
                1
            })
            .unwrap();
            let y = hub::spawn(|| -> i32 { panic!("test_wait_error") }).unwrap();
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                hub::joinall_raise_error(&[&x, &y])
            }));
            let payload = caught.expect_err("joinall did not re-raise");
            assert_eq!(payload.downcast_ref::<&str>(), Some(&"test_wait_error"));
            assert!(!x.done(), "joinall waited for the other task");
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                hub::joinall_raise_error(&[&y])
            }));
            let payload = caught.expect_err("joinall did not re-raise the second time");
            assert_eq!(
                payload.downcast_ref::<String>().map(String::as_str),
                Some("test_wait_error")
            );
            hub::joinall(&[&x]).unwrap();
            assert_eq!(x.take(), Some(1));
            assert_eq!(y.exception().as_deref(), Some("test_wait_error"));
        });
    }

    /// Of several failures, `joinall(raise_error=True)` raises the earliest; plain `joinall`
    /// then waits for the rest.
    #[test]
    fn test_joinall_exception_order() {
        bounded("exception order", || {
            let a = hub::spawn(|| -> i32 {
                hub::sleep(Duration::from_millis(20)).unwrap();
                panic!("first");
            })
            .unwrap();
            let b = hub::spawn(|| -> i32 { panic!("second") }).unwrap();
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                hub::joinall_raise_error(&[&a, &b])
            }));
            let payload = caught.expect_err("joinall did not re-raise");
            assert_eq!(payload.downcast_ref::<&str>(), Some(&"second"));
            hub::joinall(&[&a, &b]).unwrap();
            assert_eq!(a.exception().as_deref(), Some("first"));
        });
    }

    /// A task's states before it starts, while it sleeps, and after it returns 5.
    #[test]
    fn test_simple_exit() {
        bounded("simple exit", || {
            let g = hub::spawn(|| {
                hub::sleep(Duration::from_millis(10)).unwrap();
                5
            })
            .unwrap();
            assert!(!g.done() && !g.successful());
            assert_eq!(g.exception(), None);
            hub::yield_now().unwrap(); // it starts, and sleeps
            assert!(!g.done() && !g.successful());
            assert_eq!(g.exception(), None);
            hub::joinall(&[&g]).unwrap();
            assert!(g.done() && g.successful());
            assert_eq!(g.exception(), None);
            assert_eq!(g.take(), Some(5));
        });
    }

    /// A task that raises: done, not successful, no value, the exception kept on it.
    #[test]
    fn test_error_exit() {
        bounded("error exit", || {
            let g = hub::spawn(|| -> i32 {
                hub::sleep(Duration::from_millis(1)).unwrap();
                panic!("test_error_exit {}", 5);
            })
            .unwrap();
            hub::joinall(&[&g]).unwrap();
            assert!(g.done());
            assert!(!g.successful());
            assert_eq!(g.take(), None);
            assert_eq!(g.exception().as_deref(), Some("test_error_exit 5"));
        });
    }

    /// `TestJoinAll.test_returns_none_after_timeout`: `joinall([g], timeout=t)` on a task that
    /// sleeps long returns after the time-out, the task still running.
    #[test]
    fn test_returns_none_after_timeout() {
        bounded("joinall timeout", || {
            let g = hub::spawn(|| hub::sleep(FOREVER)).unwrap();
            let started = Instant::now();
            let r = hub::timeout(SHORT, || hub::joinall(&[&g]));
            assert_eq!(r.map(|_| ()), Err(Elapsed));
            assert!(started.elapsed() >= SHORT);
            assert!(!g.is_done());
        });
    }

    /// The same inside a task: the joining task's wait times out.
    #[test]
    fn test_returns_none_after_timeout_in_a_task() {
        bounded("joinall timeout in a task", || {
            let joiner = hub::spawn(|| {
                let g = hub::spawn(|| hub::sleep(FOREVER)).unwrap();
                let r = hub::timeout(SHORT, || hub::joinall(&[&g]));
                (r.map(|_| ()), g.done())
            })
            .unwrap();
            hub::joinall(&[&joiner]).unwrap();
            assert_eq!(joiner.take(), Some((Err(Elapsed), false)));
        });
    }
}
