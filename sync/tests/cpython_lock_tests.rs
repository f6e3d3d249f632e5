//! CPython's `Lib/test/lock_tests.py` (3.11, as installed with python3), rewritten against this
//! crate: one module per test class, one `#[test]` per test method, named after the original.
//! The chapter README's conformance table lists every method, ported or skipped, and why.
//!
//! - `lock_tests`: `BaseLockTests` + `LockTests` on [`TrackedMutex`] (the lesson's `Lock`)
//! - `rlock_tests`: `BaseLockTests` + `RLockTests` on [`RLock`]
//! - `event_tests`: `EventTests` on [`Event`]
//! - `condition_tests`: `ConditionTests` on `std::sync::Condvar` + `Mutex` (what the condition
//!   lesson uses)
//! - `semaphore_tests`, `bounded_semaphore_tests`: `BaseSemaphoreTests` + their own tests on
//!   [`Semaphore`] and [`BoundedSemaphore`]
//! - `barrier_tests`: `BarrierTests` on [`sync::Barrier`]
//!
//! Where Python sleeps "until the threads are blocked", the port sleeps only before asserting
//! that nothing has happened yet; every positive outcome comes from a count or a join, and every
//! test runs under a deadline (`within`). Python's upper bounds on how long a timed wait took
//! are left out (time is not asserted from above on a loaded machine); lower bounds are kept.

use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use lesson::within;
use sync::{
    BoundedSemaphore, BrokenBarrier, Event, LockGraph, MAX_PERMITS, RLock, Semaphore, TrackedMutex,
};

/// Every test's deadline, and "wait as long as it takes" for things that must happen.
const LONG: Duration = Duration::from_secs(60);
/// Python's `TIMEOUT` values of 0.5 s, shortened: only lower bounds are asserted.
const TIMED: Duration = Duration::from_millis(50);

/// Python's `wait_threads_blocked(n)`: give `n` threads time to block, before asserting that
/// none has got through (the sleep can only make such a check weaker, never wrong).
fn wait_threads_blocked(n: u32) {
    thread::sleep(Duration::from_millis(10) * n);
}

/// Wait until `cond` holds (Python's `sleeping_retry` loops), failing after [`LONG`].
fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + LONG;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        thread::yield_now();
    }
}

/// Python's `assertTimeout(actual, expected)`, lower bound only.
fn assert_timeout(actual: Duration, expected: Duration) {
    assert!(
        actual >= expected.mul_f64(0.6),
        "returned after {actual:?}, expected about {expected:?}"
    );
}

/// Python's `Bunch`: `n` threads running `f`, counting those started and finished.
struct Bunch {
    handles: Vec<JoinHandle<()>>,
    started: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
}

impl Bunch {
    fn new(n: usize, f: impl Fn() + Send + Sync + 'static) -> Bunch {
        let f = Arc::new(f);
        let started = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicUsize::new(0));
        let handles = (0..n)
            .map(|_| {
                let (f, started, finished) = (f.clone(), started.clone(), finished.clone());
                thread::spawn(move || {
                    started.fetch_add(1, Ordering::SeqCst);
                    f();
                    finished.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        let bunch = Bunch {
            handles,
            started,
            finished,
        };
        wait_until("the bunch started", || bunch.started() == n);
        bunch
    }

    fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    fn finished(&self) -> usize {
        self.finished.load(Ordering::SeqCst)
    }

    /// Join every thread; a panic in one (a failed assertion) fails the test.
    fn wait_for_finished(self) {
        for h in self.handles {
            if let Err(p) = h.join() {
                std::panic::resume_unwind(p);
            }
        }
    }
}

/// The lock API that `BaseLockTests` needs, over [`TrackedMutex`] and [`RLock`].
trait TestLock: Send + Sync + 'static {
    type Guard<'a>
    where
        Self: 'a;
    fn new_lock() -> Self;
    /// `acquire()`
    fn acquire(&self) -> Self::Guard<'_>;
    /// `acquire(False)`
    fn try_acquire(&self) -> Option<Self::Guard<'_>>;
    /// `acquire(timeout=t)`
    fn acquire_timeout(&self, t: Duration) -> Option<Self::Guard<'_>>;
}

impl TestLock for TrackedMutex<()> {
    type Guard<'a> = sync::TrackedGuard<'a, ()>;
    fn new_lock() -> Self {
        LockGraph::new().mutex("lock", ())
    }
    fn acquire(&self) -> Self::Guard<'_> {
        self.lock().expect("no deadlock")
    }
    fn try_acquire(&self) -> Option<Self::Guard<'_>> {
        self.try_lock()
    }
    fn acquire_timeout(&self, t: Duration) -> Option<Self::Guard<'_>> {
        self.lock_timeout(t).expect("no deadlock")
    }
}

impl TestLock for RLock {
    type Guard<'a> = sync::RLockGuard<'a>;
    fn new_lock() -> Self {
        RLock::new()
    }
    fn acquire(&self) -> Self::Guard<'_> {
        RLock::acquire(self)
    }
    fn try_acquire(&self) -> Option<Self::Guard<'_>> {
        RLock::try_acquire(self)
    }
    fn acquire_timeout(&self, t: Duration) -> Option<Self::Guard<'_>> {
        RLock::acquire_timeout(self, t)
    }
}

/// `BaseLockTests`, generic over the lock.
mod base_lock {
    use super::*;

    pub fn test_constructor<L: TestLock>() {
        let lock = L::new_lock();
        drop(lock);
    }

    pub fn test_acquire_destroy<L: TestLock>() {
        let lock = L::new_lock();
        // A bare acquire() never released; then the lock goes away (the borrow checker refuses
        // dropping a lock while a guard borrows it, so the guard is forgotten first).
        std::mem::forget(lock.acquire());
        drop(lock);
    }

    pub fn test_acquire_release<L: TestLock>() {
        let lock = L::new_lock();
        drop(lock.acquire());
    }

    pub fn test_try_acquire<L: TestLock>() {
        let lock = L::new_lock();
        let g = lock.try_acquire();
        assert!(g.is_some());
    }

    pub fn test_try_acquire_contended<L: TestLock>() {
        within(LONG, "try_acquire_contended", || {
            let lock = Arc::new(L::new_lock());
            let _held = lock.acquire();
            let l = lock.clone();
            let got = thread::spawn(move || l.try_acquire().is_some())
                .join()
                .unwrap();
            assert!(!got);
        });
    }

    pub fn test_acquire_contended<L: TestLock>() {
        within(LONG, "acquire_contended", || {
            let lock = Arc::new(L::new_lock());
            let held = lock.acquire();
            let l = lock.clone();
            let bunch = Bunch::new(5, move || drop(l.acquire()));
            wait_threads_blocked(5);
            assert_eq!(bunch.finished(), 0);
            drop(held);
            bunch.wait_for_finished();
        });
    }

    pub fn test_with<L: TestLock>() {
        within(LONG, "with", || {
            let lock = Arc::new(L::new_lock());
            let check = |lock: &Arc<L>| {
                let l = lock.clone();
                Bunch::new(1, move || drop(l.acquire())).wait_for_finished();
            };
            {
                let _g = lock.acquire();
            }
            check(&lock);
            let l = lock.clone();
            let raised = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                let _g = l.acquire();
                panic!("TypeError");
            }));
            assert!(raised.is_err());
            check(&lock);
        });
    }

    pub fn test_thread_leak<L: TestLock>() {
        within(LONG, "thread_leak", || {
            let lock = Arc::new(L::new_lock());
            let l = lock.clone();
            Bunch::new(15, move || drop(l.acquire())).wait_for_finished();
            assert!(lock.try_acquire().is_some(), "left held after 15 threads");
        });
    }

    pub fn test_timeout<L: TestLock>() {
        within(LONG, "timeout", || {
            let lock = Arc::new(L::new_lock());
            // TIMEOUT_MAX is ok, and so is anything a Duration holds.
            drop(lock.acquire_timeout(Duration::MAX).expect("free"));
            drop(lock.acquire_timeout(Duration::from_secs(5)).expect("free"));
            let held = lock.acquire();
            let l = lock.clone();
            let (got, took) = thread::spawn(move || {
                let t = Instant::now();
                let got = l.acquire_timeout(TIMED).is_some();
                (got, t.elapsed())
            })
            .join()
            .unwrap();
            drop(held);
            assert!(!got);
            assert_timeout(took, TIMED);
        });
    }
}

macro_rules! base_lock_tests {
    ($L:ty) => {
        #[test]
        fn test_constructor() {
            base_lock::test_constructor::<$L>();
        }
        #[test]
        fn test_acquire_destroy() {
            base_lock::test_acquire_destroy::<$L>();
        }
        #[test]
        fn test_acquire_release() {
            base_lock::test_acquire_release::<$L>();
        }
        #[test]
        fn test_try_acquire() {
            base_lock::test_try_acquire::<$L>();
        }
        #[test]
        fn test_try_acquire_contended() {
            base_lock::test_try_acquire_contended::<$L>();
        }
        #[test]
        fn test_acquire_contended() {
            base_lock::test_acquire_contended::<$L>();
        }
        #[test]
        fn test_with() {
            base_lock::test_with::<$L>();
        }
        #[test]
        fn test_thread_leak() {
            base_lock::test_thread_leak::<$L>();
        }
        #[test]
        fn test_timeout() {
            base_lock::test_timeout::<$L>();
        }
    };
}

/// `BaseLockTests` and `LockTests` on [`TrackedMutex`], the lesson's `Lock`.
mod lock_tests {
    use super::*;

    base_lock_tests!(TrackedMutex<()>);

    #[test]
    fn test_repr() {
        let lock = TrackedMutex::<()>::new_lock();
        assert!(format!("{lock:?}").contains("locked: false"), "{lock:?}");
    }

    #[test]
    fn test_locked_repr() {
        let lock = TrackedMutex::<()>::new_lock();
        let _g = lock.acquire();
        let shown = format!("{lock:?}");
        assert!(shown.contains("locked: true"), "{shown}");
    }

    /// Divergence: Python's `Lock` taken twice by one thread blocks until another thread
    /// releases it. A `TrackedGuard` cannot be released by another thread (it is not `Send`),
    /// so that wait could never end: the second `lock()` returns the cycle of one instead.
    #[test]
    fn test_reacquire() {
        within(LONG, "reacquire", || {
            let lock = TrackedMutex::<()>::new_lock();
            let g = lock.acquire();
            let d = lock
                .lock()
                .expect_err("a second lock() by the holder is a deadlock");
            assert_eq!(d.cycle.len(), 1);
            drop(g);
            drop(lock.acquire());
        });
    }

    #[test]
    fn test_state_after_timeout() {
        within(LONG, "state_after_timeout", || {
            let lock = TrackedMutex::<()>::new_lock();
            let g = lock.acquire();
            // A deadline that comes before the first look for a cycle: a plain time-out, as in
            // Python (a longer one would report the holder waiting for itself).
            assert!(
                lock.lock_timeout(Duration::from_millis(10))
                    .expect("no cycle looked for yet")
                    .is_none()
            );
            drop(g);
            assert!(!lock.locked());
            assert!(lock.try_acquire().is_some());
        });
    }
}

/// `BaseLockTests` and `RLockTests` on [`RLock`].
mod rlock_tests {
    use super::*;

    base_lock_tests!(RLock);

    #[test]
    fn test_repr() {
        let lock = RLock::new();
        let shown = format!("{lock:?}");
        assert!(
            shown.contains("owner: None") && shown.contains("count: 0"),
            "{shown}"
        );
    }

    #[test]
    fn test_locked_repr() {
        let lock = RLock::new();
        let _g = lock.acquire();
        let shown = format!("{lock:?}");
        assert!(
            shown.contains("owner: Some") && shown.contains("count: 1"),
            "{shown}"
        );
    }

    #[test]
    fn test_reacquire() {
        let lock = RLock::new();
        let a = lock.acquire();
        let b = lock.acquire();
        drop(b);
        let c = lock.acquire();
        drop(c);
        drop(a);
        assert_eq!(lock.count(), 0);
    }

    /// Adapted: `_recursion_count()` is the caller's depth (0 for a thread that does not own
    /// the lock); [`RLock::count`] is the owner's depth as any thread sees it, and
    /// `is_owned()` tells which. The caller's depth is `if is_owned { count } else { 0 }`.
    #[test]
    fn test_recursion_count() {
        within(LONG, "recursion_count", || {
            let lock = Arc::new(RLock::new());
            let callers = |l: &RLock| if l.is_owned() { l.count() } else { 0 };
            assert_eq!(callers(&lock), 0);
            let a = lock.acquire();
            assert_eq!(callers(&lock), 1);
            let b = lock.acquire();
            let c = lock.acquire();
            assert_eq!(callers(&lock), 3);
            drop(c);
            assert_eq!(callers(&lock), 2);
            drop(b);
            drop(a);
            assert_eq!(callers(&lock), 0);

            let phase = Arc::new(AtomicUsize::new(0));
            let (l, p) = (lock.clone(), phase.clone());
            let t = thread::spawn(move || {
                let g = l.acquire();
                p.fetch_add(1, Ordering::SeqCst);
                wait_until("phase 2", || p.load(Ordering::SeqCst) >= 2);
                drop(g);
                p.fetch_add(1, Ordering::SeqCst);
            });
            wait_until("phase 1", || phase.load(Ordering::SeqCst) >= 1);
            assert_eq!(callers(&lock), 0);
            assert_eq!(
                lock.count(),
                1,
                "count() shows the owner's depth to everyone"
            );
            phase.fetch_add(1, Ordering::SeqCst);
            wait_until("phase 3", || phase.load(Ordering::SeqCst) >= 3);
            assert_eq!(callers(&lock), 0);
            assert_eq!(lock.count(), 0);
            t.join().unwrap();
        });
    }

    #[test]
    #[allow(non_snake_case)]
    fn test__is_owned() {
        within(LONG, "_is_owned", || {
            let lock = Arc::new(RLock::new());
            assert!(!lock.is_owned());
            let a = lock.acquire();
            assert!(lock.is_owned());
            let b = lock.acquire();
            assert!(lock.is_owned());
            let l = lock.clone();
            let other = thread::spawn(move || l.is_owned()).join().unwrap();
            assert!(!other);
            drop(b);
            assert!(lock.is_owned());
            drop(a);
            assert!(!lock.is_owned());
        });
    }
}

/// `EventTests` on [`Event`].
mod event_tests {
    use super::*;

    #[test]
    fn test_is_set() {
        let evt = Event::new();
        assert!(!evt.is_set());
        evt.set();
        assert!(evt.is_set());
        evt.set();
        assert!(evt.is_set());
        evt.clear();
        assert!(!evt.is_set());
        evt.clear();
        assert!(!evt.is_set());
    }

    fn check_notify(evt: &Arc<Event>) {
        const N: usize = 5;
        let results1 = Arc::new(AtomicUsize::new(0));
        let results2 = Arc::new(AtomicUsize::new(0));
        let (e, r1, r2) = (evt.clone(), results1.clone(), results2.clone());
        let bunch = Bunch::new(N, move || {
            e.wait();
            r1.fetch_add(1, Ordering::SeqCst);
            e.wait();
            r2.fetch_add(1, Ordering::SeqCst);
        });
        wait_threads_blocked(N as u32);
        assert_eq!(results1.load(Ordering::SeqCst), 0);
        evt.set();
        bunch.wait_for_finished();
        assert_eq!(results1.load(Ordering::SeqCst), N);
        assert_eq!(results2.load(Ordering::SeqCst), N);
    }

    #[test]
    fn test_notify() {
        within(LONG, "notify", || {
            let evt = Arc::new(Event::new());
            check_notify(&evt);
            evt.set();
            evt.clear();
            check_notify(&evt);
        });
    }

    #[test]
    fn test_timeout() {
        within(LONG, "timeout", || {
            const N: usize = 5;
            let evt = Arc::new(Event::new());
            let results = Arc::new(Mutex::new(Vec::new()));
            /// Each waiter's (wait(0), wait(TIMED), how long the second took).
            type Results = Arc<Mutex<Vec<(bool, bool, Duration)>>>;
            let run = |evt: &Arc<Event>, results: &Results| {
                let (e, r) = (evt.clone(), results.clone());
                Bunch::new(N, move || {
                    let first = e.wait_timeout(Duration::ZERO);
                    let t = Instant::now();
                    let second = e.wait_timeout(TIMED);
                    r.lock().unwrap().push((first, second, t.elapsed()));
                })
                .wait_for_finished();
            };
            run(&evt, &results);
            for &(first, second, took) in results.lock().unwrap().iter() {
                assert!(!first && !second);
                assert_timeout(took, TIMED);
            }
            results.lock().unwrap().clear();
            evt.set();
            run(&evt, &results);
            let r = results.lock().unwrap();
            assert_eq!(r.len(), N);
            assert!(r.iter().all(|&(first, second, _)| first && second));
        });
    }

    #[test]
    fn test_set_and_clear() {
        within(LONG, "set_and_clear", || {
            const N: usize = 5;
            let event = Arc::new(Event::new());
            let released = Arc::new(AtomicUsize::new(0));
            let (e, r) = (event.clone(), released.clone());
            let bunch = Bunch::new(N, move || {
                if e.wait_timeout(LONG) {
                    r.fetch_add(1, Ordering::SeqCst);
                }
            });
            // Python sleeps here; the event counts its waiters, so wait for all five.
            wait_until("five waiting", || event.waiting() == N);
            event.set();
            event.clear();
            bunch.wait_for_finished();
            assert_eq!(released.load(Ordering::SeqCst), N);
        });
    }

    #[test]
    fn test_repr() {
        let evt = Event::new();
        assert!(format!("{evt:?}").contains("set: false"), "{evt:?}");
        evt.set();
        assert!(format!("{evt:?}").contains("set: true"), "{evt:?}");
    }
}

/// `ConditionTests` on `std::sync::Condvar` with a `Mutex`, as the condition lesson uses them.
/// A `Condvar` has no lock of its own: Python's `cond.acquire()` is locking the mutex, and
/// `cond.wait()` takes the mutex's guard.
mod condition_tests {
    use std::sync::{Condvar, TryLockError};

    use super::*;

    /// Adapted: the condition's lock is the `Mutex` it is used with; std's is not reentrant
    /// (Python's default `RLock` is), and a held one refuses `try_lock`.
    #[test]
    fn test_acquire() {
        let lock = Mutex::new(());
        let _cond = Condvar::new();
        let g = lock.lock().unwrap();
        assert!(matches!(lock.try_lock(), Err(TryLockError::WouldBlock)));
        drop(g);
        assert!(lock.try_lock().is_ok());
    }

    /// Divergence: Python raises `RuntimeError` for `notify()` without the lock; a `Condvar`
    /// may be notified by anyone, and a notify with nobody waiting does nothing.
    #[test]
    fn test_unacquired_notify() {
        let cond = Condvar::new();
        cond.notify_one();
        cond.notify_all();
    }

    /// What the waiters of [`check_notify`] share, under the mutex.
    #[derive(Default)]
    struct Shared {
        /// Threads inside a `wait` (Python's `ready` list).
        ready: usize,
        /// Wake-ups handed out and not yet taken: `notify(n)` adds n. Waiting on a predicate
        /// makes the test immune to spurious wake-ups, which std's Condvar allows (the Python
        /// test notes it relies on CPython having none).
        tickets: usize,
        /// Counts notifies: a wake-up is for the threads that were waiting when it was sent,
        /// not for one that comes back to wait while tickets are left.
        generation: usize,
        phase: usize,
        results1: Vec<usize>,
        results2: Vec<usize>,
    }

    fn check_notify() {
        const N: usize = 5;
        let shared = Arc::new((Mutex::new(Shared::default()), Condvar::new()));
        let s = shared.clone();
        let bunch = Bunch::new(N, move || {
            let (m, cond) = &*s;
            for round in 0..2 {
                let mut g = m.lock().unwrap();
                let entered = g.generation;
                g.ready += 1;
                g = cond
                    .wait_while(g, |g| g.tickets == 0 || g.generation == entered)
                    .unwrap();
                g.tickets -= 1;
                g.ready -= 1;
                let phase = g.phase;
                if round == 0 {
                    g.results1.push(phase);
                } else {
                    g.results2.push(phase);
                }
            }
        });
        let (m, cond) = &*shared;
        let notify = |n: usize, phase: usize| {
            let mut g = m.lock().unwrap();
            g.tickets += n;
            g.generation += 1;
            g.phase = phase;
            for _ in 0..n {
                cond.notify_one();
            }
        };
        let settle =
            |ready: usize| wait_until("waiters ready", || m.lock().unwrap().ready == ready);
        let wait_results = |n: usize| {
            wait_until("results", || {
                let g = m.lock().unwrap();
                g.results1.len() + g.results2.len() == n
            })
        };
        settle(N);
        assert!(m.lock().unwrap().results1.is_empty());
        // Phase 1: three of five.
        notify(3, 1);
        wait_results(3);
        assert_eq!(m.lock().unwrap().results1, [1, 1, 1]);
        assert!(m.lock().unwrap().results2.is_empty());
        // Phase 2: five, two in their first wait and three in their second.
        settle(N);
        notify(5, 2);
        wait_results(8);
        {
            let g = m.lock().unwrap();
            assert_eq!(g.results1, [1, 1, 1, 2, 2]);
            assert_eq!(g.results2, [2, 2, 2]);
        }
        // Phase 3: notify_all, the two left in their second wait.
        settle(2);
        {
            let mut g = m.lock().unwrap();
            g.tickets += g.ready;
            g.generation += 1;
            g.phase = 3;
            cond.notify_all();
        }
        bunch.wait_for_finished();
        let g = m.lock().unwrap();
        assert_eq!(g.results1, [1, 1, 1, 2, 2]);
        assert_eq!(g.results2, [2, 2, 2, 3, 3]);
    }

    #[test]
    fn test_notify() {
        within(LONG, "notify", || {
            check_notify();
            check_notify();
        });
    }

    #[test]
    fn test_timeout() {
        within(LONG, "timeout", || {
            let shared = Arc::new((Mutex::new(()), Condvar::new()));
            let results = Arc::new(Mutex::new(Vec::new()));
            let (s, r) = (shared.clone(), results.clone());
            Bunch::new(5, move || {
                let (m, cond) = &*s;
                let g = m.lock().unwrap();
                let t = Instant::now();
                // Nobody notifies: a predicate that stays true rules out spurious wake-ups.
                let (_g, res) = cond.wait_timeout_while(g, TIMED, |_| true).unwrap();
                r.lock().unwrap().push((t.elapsed(), res.timed_out()));
            })
            .wait_for_finished();
            let r = results.lock().unwrap();
            assert_eq!(r.len(), 5);
            for &(took, timed_out) in r.iter() {
                assert_timeout(took, TIMED);
                assert!(timed_out);
            }
        });
    }

    #[test]
    fn test_waitfor() {
        within(LONG, "waitfor", || {
            let shared = Arc::new((Mutex::new(0), Condvar::new()));
            let s = shared.clone();
            let bunch = Bunch::new(1, move || {
                let (m, cond) = &*s;
                let g = cond
                    .wait_while(m.lock().unwrap(), |state| *state != 4)
                    .unwrap();
                assert_eq!(*g, 4);
            });
            for _ in 0..4 {
                thread::sleep(Duration::from_millis(10));
                let (m, cond) = &*shared;
                *m.lock().unwrap() += 1;
                cond.notify_one();
            }
            bunch.wait_for_finished();
        });
    }

    #[test]
    fn test_waitfor_timeout() {
        within(LONG, "waitfor_timeout", || {
            let shared = Arc::new((Mutex::new(0), Condvar::new()));
            let success = Arc::new(AtomicUsize::new(0));
            let (s, ok) = (shared.clone(), success.clone());
            let bunch = Bunch::new(1, move || {
                let (m, cond) = &*s;
                let t = Instant::now();
                let (_g, res) = cond
                    .wait_timeout_while(m.lock().unwrap(), Duration::from_millis(100), |state| {
                        *state != 4
                    })
                    .unwrap();
                assert!(res.timed_out());
                assert_timeout(t.elapsed(), Duration::from_millis(100));
                ok.fetch_add(1, Ordering::SeqCst);
            });
            for _ in 0..3 {
                thread::sleep(Duration::from_millis(10));
                let (m, cond) = &*shared;
                *m.lock().unwrap() += 1;
                cond.notify_one();
            }
            bunch.wait_for_finished();
            assert_eq!(success.load(Ordering::SeqCst), 1);
        });
    }
}

/// A [`Semaphore`] or a [`BoundedSemaphore`], for the tests both share.
enum AnySemaphore {
    Plain(Semaphore),
    Bounded(BoundedSemaphore),
}

impl Deref for AnySemaphore {
    type Target = Semaphore;
    fn deref(&self) -> &Semaphore {
        match self {
            AnySemaphore::Plain(s) => s,
            AnySemaphore::Bounded(b) => b,
        }
    }
}

/// `BaseSemaphoreTests`, given how to make the semaphore (`new(n)`, and `default()`).
mod base_semaphore {
    use super::*;

    type Make = fn(usize) -> AnySemaphore;

    pub fn test_acquire(new: Make) {
        let sem = new(1);
        sem.acquire().forget();
        sem.release().unwrap();
        let sem = new(2);
        sem.acquire().forget();
        sem.acquire().forget();
        sem.release().unwrap();
        sem.release().unwrap();
    }

    pub fn test_acquire_destroy(default: fn() -> AnySemaphore) {
        let sem = default();
        sem.acquire().forget();
        let _gone = sem; // and then the semaphore goes away with a permit still out
    }

    /// Shared by `test_acquire_contended` (one `release()` at a time) and
    /// `test_multirelease` (`release(n)`).
    fn contended(new: Make, release: fn(&Semaphore, usize)) {
        const SEM_VALUE: usize = 7;
        const N: usize = 10;
        let sem = Arc::new(new(SEM_VALUE));
        sem.acquire().forget();
        let phase = Arc::new(AtomicUsize::new(0));
        let results = Arc::new(Mutex::new(Vec::new()));
        let (s, p, r) = (sem.clone(), phase.clone(), results.clone());
        let bunch = Bunch::new(N, move || {
            for _ in 0..2 {
                s.acquire().forget();
                r.lock().unwrap().push(p.load(Ordering::SeqCst));
            }
        });
        let wait_count =
            |n: usize| wait_until("acquisitions", || results.lock().unwrap().len() >= n);
        let sorted = || {
            let mut v = results.lock().unwrap().clone();
            v.sort_unstable();
            v
        };
        let count1 = SEM_VALUE - 1;
        wait_count(count1);
        assert_eq!(sorted(), vec![0; count1]);
        phase.store(1, Ordering::SeqCst);
        let count2 = SEM_VALUE;
        release(&sem, count2);
        wait_count(count1 + count2);
        assert_eq!(sorted(), [vec![0; count1], vec![1; count2]].concat());
        phase.store(2, Ordering::SeqCst);
        let count3 = SEM_VALUE - 1;
        release(&sem, count3);
        wait_count(count1 + count2 + count3);
        assert_eq!(
            sorted(),
            [vec![0; count1], vec![1; count2], vec![2; count3]].concat()
        );
        // The semaphore is still locked.
        assert!(sem.try_acquire().is_none());
        // Final release, to let the last thread finish.
        release(&sem, 1);
        bunch.wait_for_finished();
        assert_eq!(results.lock().unwrap().len(), 2 * N);
    }

    pub fn test_acquire_contended(new: Make) {
        within(LONG, "acquire_contended", move || {
            contended(new, |sem, n| {
                for _ in 0..n {
                    sem.release().unwrap();
                }
            });
        });
    }

    pub fn test_multirelease(new: Make) {
        within(LONG, "multirelease", move || {
            contended(new, |sem, n| sem.release_n(n).unwrap());
        });
    }

    pub fn test_try_acquire(new: Make) {
        let sem = new(2);
        sem.try_acquire().unwrap().forget();
        sem.try_acquire().unwrap().forget();
        assert!(sem.try_acquire().is_none());
        sem.release().unwrap();
        assert!(sem.try_acquire().is_some());
    }

    pub fn test_try_acquire_contended(new: Make) {
        within(LONG, "try_acquire_contended", move || {
            let sem = Arc::new(new(4));
            sem.acquire().forget();
            let results = Arc::new(Mutex::new(Vec::new()));
            let (s, r) = (sem.clone(), results.clone());
            Bunch::new(5, move || {
                for _ in 0..2 {
                    let got = s.try_acquire().map(|p| p.forget()).is_some();
                    r.lock().unwrap().push(got);
                }
            })
            .wait_for_finished();
            let mut r = results.lock().unwrap().clone();
            r.sort_unstable();
            assert_eq!(r, [vec![false; 7], vec![true; 3]].concat());
        });
    }

    pub fn test_acquire_timeout(new: Make) {
        let sem = new(2);
        let short = Duration::from_millis(5);
        sem.acquire_timeout(short).unwrap().forget();
        sem.acquire_timeout(short).unwrap().forget();
        assert!(sem.acquire_timeout(short).is_none());
        sem.release().unwrap();
        sem.acquire_timeout(short).unwrap().forget();
        let t = Instant::now();
        assert!(sem.acquire_timeout(TIMED).is_none());
        assert_timeout(t.elapsed(), TIMED);
    }

    pub fn test_default_value(default: fn() -> AnySemaphore) {
        within(LONG, "default_value", move || {
            let sem = Arc::new(default());
            sem.acquire().forget();
            let s = sem.clone();
            let bunch = Bunch::new(1, move || drop(s.acquire()));
            wait_threads_blocked(1);
            assert_eq!(bunch.finished(), 0);
            sem.release().unwrap();
            bunch.wait_for_finished();
        });
    }

    pub fn test_with(new: Make) {
        let sem = new(2);
        let with = |err: bool| {
            let _outer = sem.acquire();
            sem.try_acquire().expect("a second permit").forget();
            sem.release().unwrap();
            let _inner = sem.acquire();
            assert!(sem.try_acquire().is_none());
            if err {
                panic!("TypeError");
            }
        };
        with(false);
        assert!(sem.try_acquire().is_some());
        let raised = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| with(true)));
        assert!(raised.is_err());
        assert!(sem.try_acquire().is_some());
        assert_eq!(sem.available(), 2);
    }

    /// Adapted: a negative count cannot be written (`usize`); what the port checks instead is
    /// the other end, a count too large to represent (issue 16 bug 3).
    pub fn test_constructor(try_new: fn(usize) -> bool) {
        assert!(try_new(MAX_PERMITS));
        assert!(!try_new(MAX_PERMITS + 1));
        assert!(!try_new(usize::MAX));
    }
}

macro_rules! base_semaphore_tests {
    ($new:expr, $default:expr, $try_new:expr) => {
        #[test]
        fn test_constructor() {
            base_semaphore::test_constructor($try_new);
        }
        #[test]
        fn test_acquire() {
            base_semaphore::test_acquire($new);
        }
        #[test]
        fn test_acquire_destroy() {
            base_semaphore::test_acquire_destroy($default);
        }
        #[test]
        fn test_acquire_contended() {
            base_semaphore::test_acquire_contended($new);
        }
        #[test]
        fn test_multirelease() {
            base_semaphore::test_multirelease($new);
        }
        #[test]
        fn test_try_acquire() {
            base_semaphore::test_try_acquire($new);
        }
        #[test]
        fn test_try_acquire_contended() {
            base_semaphore::test_try_acquire_contended($new);
        }
        #[test]
        fn test_acquire_timeout() {
            base_semaphore::test_acquire_timeout($new);
        }
        #[test]
        fn test_default_value() {
            base_semaphore::test_default_value($default);
        }
        #[test]
        fn test_with() {
            base_semaphore::test_with($new);
        }
    };
}

/// `BaseSemaphoreTests` and `SemaphoreTests` on [`Semaphore`].
mod semaphore_tests {
    use super::*;

    base_semaphore_tests!(
        |n| AnySemaphore::Plain(Semaphore::new(n)),
        || AnySemaphore::Plain(Semaphore::default()),
        |n| Semaphore::try_new(n).is_ok()
    );

    #[test]
    fn test_release_unacquired() {
        let sem = Semaphore::new(1);
        sem.release().unwrap();
        sem.acquire().forget();
        sem.acquire().forget();
        sem.release().unwrap();
    }

    #[test]
    fn test_repr() {
        let sem = Semaphore::new(3);
        assert!(format!("{sem:?}").contains("available: 3"), "{sem:?}");
        sem.acquire().forget();
        assert!(format!("{sem:?}").contains("available: 2"), "{sem:?}");
        sem.release().unwrap();
        sem.release().unwrap();
        assert!(format!("{sem:?}").contains("available: 4"), "{sem:?}");
    }
}

/// `BaseSemaphoreTests` and `BoundedSemaphoreTests` on [`BoundedSemaphore`].
mod bounded_semaphore_tests {
    use super::*;

    base_semaphore_tests!(
        |n| AnySemaphore::Bounded(BoundedSemaphore::new(n)),
        || AnySemaphore::Bounded(BoundedSemaphore::default()),
        |n| BoundedSemaphore::try_new(n).is_ok()
    );

    #[test]
    fn test_release_unacquired() {
        let sem = BoundedSemaphore::default();
        assert!(sem.release().is_err());
        sem.acquire().forget();
        sem.release().unwrap();
        assert!(sem.release().is_err());
    }

    #[test]
    fn test_repr() {
        let sem = BoundedSemaphore::new(3);
        let shown = format!("{sem:?}");
        assert!(
            shown.contains("available: 3") && shown.contains("bound: Some(3)"),
            "{shown}"
        );
        sem.acquire().forget();
        let shown = format!("{sem:?}");
        assert!(
            shown.contains("available: 2") && shown.contains("bound: Some(3)"),
            "{shown}"
        );
    }
}

/// `BarrierTests` on [`sync::Barrier`].
mod barrier_tests {
    use super::*;

    const N: usize = 5;
    /// Python's `defaultTimeout` is 2 s; a default that only matters when something is wrong
    /// is made generous here, so a loaded machine cannot break a barrier by being slow.
    const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    /// Python's `setUp`: `Barrier(N, timeout=defaultTimeout)`.
    fn barrier() -> Arc<sync::Barrier> {
        Arc::new(sync::Barrier::new(N).with_timeout(DEFAULT_TIMEOUT))
    }

    fn run_threads(f: impl Fn() + Send + Sync + 'static) {
        Bunch::new(N, f).wait_for_finished();
    }

    fn multipass(barrier: &sync::Barrier, results: &[Mutex<usize>; 2], n: usize) {
        let m = barrier.parties();
        assert_eq!(m, N);
        for i in 0..n {
            *results[0].lock().unwrap() += 1;
            assert_eq!(*results[1].lock().unwrap(), i * m);
            barrier.wait().unwrap();
            *results[1].lock().unwrap() += 1;
            assert_eq!(*results[0].lock().unwrap(), (i + 1) * m);
            barrier.wait().unwrap();
        }
        assert_eq!(barrier.n_waiting(), 0);
        assert!(!barrier.broken());
    }

    fn passes(n: usize) {
        within(LONG, "barrier", move || {
            let b = barrier();
            let results = Arc::new([Mutex::new(0), Mutex::new(0)]);
            run_threads(move || multipass(&b, &results, n));
        });
    }

    #[test]
    fn test_barrier() {
        passes(1);
    }

    #[test]
    fn test_barrier_10() {
        passes(10);
    }

    #[test]
    fn test_wait_return() {
        within(LONG, "wait_return", || {
            let b = barrier();
            let results = Arc::new(Mutex::new(Vec::new()));
            let r = results.clone();
            run_threads(move || {
                let i = b.wait().unwrap();
                r.lock().unwrap().push(i);
            });
            assert_eq!(results.lock().unwrap().iter().sum::<usize>(), (0..N).sum());
        });
    }

    #[test]
    fn test_action() {
        within(LONG, "action", || {
            let results = Arc::new(AtomicUsize::new(0));
            let r = results.clone();
            let b = Arc::new(sync::Barrier::with_action(N, move || {
                r.fetch_add(1, Ordering::SeqCst);
            }));
            run_threads(move || {
                b.wait().unwrap();
                assert_eq!(results.load(Ordering::SeqCst), 1);
            });
        });
    }

    /// The part `test_abort` and `test_abort_and_reset` share: the thread with index N/2
    /// "raises" and aborts; the others get BrokenBarrier on their second wait.
    fn abort_round(b: &sync::Barrier, results1: &AtomicUsize, results2: &AtomicUsize) {
        match b.wait() {
            Ok(i) if i == N / 2 => b.abort(),
            Ok(_) => match b.wait() {
                Ok(_) => {
                    results1.fetch_add(1, Ordering::SeqCst);
                }
                Err(BrokenBarrier) => {
                    results2.fetch_add(1, Ordering::SeqCst);
                }
            },
            Err(BrokenBarrier) => {
                results2.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    #[test]
    fn test_abort() {
        within(LONG, "abort", || {
            let b = barrier();
            let results = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
            let (b2, r) = (b.clone(), results.clone());
            run_threads(move || abort_round(&b2, &r.0, &r.1));
            assert_eq!(results.0.load(Ordering::SeqCst), 0);
            assert_eq!(results.1.load(Ordering::SeqCst), N - 1);
            assert!(b.broken());
        });
    }

    #[test]
    fn test_reset() {
        within(LONG, "reset", || {
            let b = barrier();
            let results = Arc::new([
                AtomicUsize::new(0),
                AtomicUsize::new(0),
                AtomicUsize::new(0),
            ]);
            let r = results.clone();
            run_threads(move || {
                let i = b.wait().unwrap();
                if i == N / 2 {
                    wait_until("the others wait", || b.n_waiting() >= N - 1);
                    b.reset();
                } else {
                    match b.wait() {
                        Ok(_) => r[0].fetch_add(1, Ordering::SeqCst),
                        Err(BrokenBarrier) => r[1].fetch_add(1, Ordering::SeqCst),
                    };
                }
                // Now, pass the barrier again.
                b.wait().unwrap();
                r[2].fetch_add(1, Ordering::SeqCst);
            });
            let counts: Vec<usize> = results.iter().map(|c| c.load(Ordering::SeqCst)).collect();
            assert_eq!(counts, [0, N - 1, N]);
        });
    }

    #[test]
    fn test_abort_and_reset() {
        within(LONG, "abort_and_reset", || {
            let b = barrier();
            let barrier2 = Arc::new(sync::Barrier::new(N));
            let results = Arc::new([
                AtomicUsize::new(0),
                AtomicUsize::new(0),
                AtomicUsize::new(0),
            ]);
            let r = results.clone();
            run_threads(move || {
                abort_round(&b, &r[0], &r[1]);
                // Synchronize and reset the barrier: first so that everyone has left it, then
                // so that no one enters it before the reset.
                if barrier2.wait().unwrap() == N / 2 {
                    b.reset();
                }
                barrier2.wait().unwrap();
                b.wait().unwrap();
                r[2].fetch_add(1, Ordering::SeqCst);
            });
            let counts: Vec<usize> = results.iter().map(|c| c.load(Ordering::SeqCst)).collect();
            assert_eq!(counts, [0, N - 1, N]);
        });
    }

    /// Adapted: Python makes one thread late by sleeping half the default timeout, so the
    /// others' shorter `wait(timeout)` runs out first. Here the late thread waits until the
    /// others have broken the barrier (a timing-free way to be late), then gets BrokenBarrier
    /// at once like them.
    #[test]
    fn test_timeout() {
        within(LONG, "timeout", || {
            let b = barrier();
            run_threads(move || {
                let i = b.wait().unwrap();
                if i == N / 2 {
                    wait_until("the others break the barrier", || b.broken());
                }
                assert_eq!(b.wait_timeout(TIMED), Err(BrokenBarrier));
            });
        });
    }

    #[test]
    fn test_default_timeout() {
        within(LONG, "default_timeout", || {
            let timeout = Duration::from_millis(100);
            let b = Arc::new(sync::Barrier::new(2).with_timeout(timeout));
            let start = Instant::now();
            Bunch::new(1, move || assert_eq!(b.wait(), Err(BrokenBarrier))).wait_for_finished();
            assert!(start.elapsed() >= timeout);
        });
    }

    #[test]
    fn test_single_thread() {
        let b = sync::Barrier::new(1);
        b.wait().unwrap();
        b.wait().unwrap();
    }

    #[test]
    fn test_repr() {
        within(LONG, "repr", || {
            let b = Arc::new(sync::Barrier::new(3));
            let shown = |b: &sync::Barrier| format!("{b:?}");
            assert!(shown(&b).contains("n_waiting: 0") && shown(&b).contains("parties: 3"));
            let b2 = b.clone();
            let bunch = Bunch::new(2, move || {
                b2.wait_timeout(LONG).unwrap();
            });
            wait_until("two waiting", || b.n_waiting() >= 2);
            assert!(shown(&b).contains("n_waiting: 2"), "{}", shown(&b));
            b.wait_timeout(LONG).unwrap();
            bunch.wait_for_finished();
            assert!(shown(&b).contains("n_waiting: 0"), "{}", shown(&b));
            b.abort();
            assert!(shown(&b).contains("broken: true"), "{}", shown(&b));
        });
    }
}
