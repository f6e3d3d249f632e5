//! The primitives' behaviour. Every wait has a deadline; positive outcomes come from
//! rendezvous (channels, barriers, `Event::waiting`), never from sleeping long enough.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use lesson::within;
use sync::{BoundedSemaphore, BrokenBarrier, Event, LockGraph, RLock, Semaphore, Timer};

const LONG: Duration = Duration::from_secs(30);

fn spin_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + LONG;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}");
        thread::yield_now();
    }
}

#[test]
fn semaphore_never_admits_more_than_its_permits_and_reaches_them() {
    within(LONG, "semaphore high water", || {
        let sem = Semaphore::new(3);
        let inside = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        thread::scope(|s| {
            for _ in 0..6 {
                s.spawn(|| {
                    let _p = sem.acquire();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    // Stay inside until three have been in at once: more can never get in, and
                    // with six threads three always can, so the mark reaches 3 for certain.
                    spin_until("three inside", || most.load(Ordering::SeqCst) >= 3);
                    assert!(inside.load(Ordering::SeqCst) <= 3);
                    inside.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        assert_eq!(most.load(Ordering::SeqCst), 3);
    });
}

#[test]
fn try_acquire_and_acquire_timeout_do_not_hand_out_a_held_permit() {
    let sem = Semaphore::new(1);
    let p = sem.acquire();
    for _ in 0..3 {
        assert!(sem.try_acquire().is_none());
        assert!(sem.acquire_timeout(Duration::from_millis(5)).is_none());
    }
    assert_eq!(sem.available(), 0);
    drop(p);
    assert_eq!(sem.available(), 1);
    assert!(sem.try_acquire().is_some());
}

#[test]
fn a_blocked_acquire_is_woken_by_a_release() {
    within(LONG, "blocked acquire", || {
        let sem = Arc::new(Semaphore::new(0));
        let s2 = sem.clone();
        let (tx, rx) = mpsc::channel();
        let t = thread::spawn(move || {
            let _p = s2.acquire();
            tx.send(()).unwrap();
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(20)).is_err(),
            "got in without a permit"
        );
        sem.release().unwrap();
        rx.recv_timeout(LONG).expect("woken by release");
        t.join().unwrap();
    });
}

#[test]
fn bounded_semaphore_refuses_an_over_release_plain_one_grows() {
    let b = BoundedSemaphore::new(2);
    assert_eq!(b.release().unwrap_err().bound, 2);
    b.acquire().forget();
    b.release().unwrap();
    assert!(b.release().is_err());
    assert_eq!(b.available(), 2);
    let plain = Semaphore::new(2);
    plain.release().unwrap();
    assert_eq!(plain.available(), 3);
}

#[test]
fn event_wait_timeout_is_false_on_timeout_and_true_once_set() {
    let e = Event::new();
    assert!(!e.wait_timeout(Duration::from_millis(5)));
    e.set();
    assert!(e.wait_timeout(Duration::ZERO));
    e.clear();
    assert!(!e.is_set());
    assert!(!e.wait_timeout(Duration::from_millis(5)));
}

#[test]
fn event_set_then_clear_releases_every_waiter() {
    within(LONG, "event generation", || {
        let e = Arc::new(Event::new());
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let e = e.clone();
                thread::spawn(move || e.wait_timeout(LONG))
            })
            .collect();
        spin_until("four waiting", || e.waiting() == 4);
        e.set();
        e.clear();
        for w in waiters {
            assert!(w.join().unwrap(), "a waiter slept through set()+clear()");
        }
        assert!(!e.is_set());
        assert_eq!(e.waiting(), 0);
    });
}

#[test]
fn rlock_reenters_and_excludes_others_until_fully_released() {
    within(LONG, "rlock", || {
        let lock = Arc::new(RLock::new());
        let g1 = lock.acquire();
        let g2 = lock.acquire();
        assert_eq!(lock.count(), 2);
        assert!(lock.is_owned());
        let other = |lock: &Arc<RLock>| {
            let l = lock.clone();
            thread::spawn(move || l.try_acquire().is_some())
                .join()
                .unwrap()
        };
        assert!(!other(&lock));
        drop(g2);
        assert_eq!(lock.count(), 1);
        assert!(!other(&lock));
        drop(g1);
        assert_eq!(lock.count(), 0);
        assert!(other(&lock));
        // A waiting thread gets in when the count reaches zero, not before. It is seen waiting
        // (asleep in acquire) before main lets go of either level, whatever the scheduling.
        let g1 = lock.acquire();
        let g2 = lock.acquire();
        let l = lock.clone();
        let (took_tx, took_rx) = mpsc::channel();
        let t = thread::spawn(move || {
            let got = l.acquire();
            took_tx.send(l.count()).unwrap();
            drop(got);
        });
        spin_until("the other thread never waited for the RLock", || {
            lock.waiting() == 1
        });
        drop(g2);
        // Still held (count 1): the waiter cannot have it.
        assert_eq!(lock.count(), 1);
        assert!(lock.is_owned());
        assert!(took_rx.try_recv().is_err(), "the waiter got in at count 1");
        drop(g1);
        assert_eq!(took_rx.recv_timeout(LONG), Ok(1), "the waiter never got in");
        t.join().unwrap();
        assert_eq!((lock.count(), lock.waiting()), (0, 0));
    });
}

/// `cargo run -p sync -- deadlock` says two separate RLocks taken in opposite orders deadlock
/// like two Locks: reentrancy is per lock, so a thread holding one RLock waits for the other
/// like anyone else. Each thread holds its first lock until both have tried the other one
/// (a barrier), so each try meets the other's hold: both time out, whatever the scheduling.
#[test]
fn two_rlocks_taken_in_opposite_orders_block_each_other() {
    within(LONG, "two rlocks", || {
        let (a, b) = (RLock::new(), RLock::new());
        let both_hold_one = Barrier::new(2);
        let both_tried = Barrier::new(2);
        let try_for = Duration::from_millis(50);
        let outcomes = thread::scope(|s| {
            let [t1, t2] = [(&a, &b), (&b, &a)].map(|(first, second)| {
                let (both_hold_one, both_tried) = (&both_hold_one, &both_tried);
                s.spawn(move || {
                    let _first = first.acquire();
                    // Reentrant on the lock it holds...
                    let again = first.try_acquire().is_some();
                    both_hold_one.wait();
                    // ...but not on the other thread's.
                    let got = second.acquire_timeout(try_for).is_some();
                    both_tried.wait();
                    (again, got)
                })
            });
            [t1.join().unwrap(), t2.join().unwrap()]
        });
        assert_eq!(outcomes, [(true, false), (true, false)]);
    });
}

#[test]
fn opposite_lock_orders_are_detected_as_a_cycle() {
    let found = within(LONG, "deadlock detection", || {
        let graph = LockGraph::new();
        let a = graph.mutex("A", 0);
        let b = graph.mutex("B", 0);
        let both_hold_one = Barrier::new(2);
        thread::scope(|s| {
            let t1 = thread::Builder::new()
                .name("t1".into())
                .spawn_scoped(s, || {
                    let _a = a.lock()?;
                    both_hold_one.wait();
                    b.lock().map(|_| ())
                })
                .unwrap();
            let t2 = thread::Builder::new()
                .name("t2".into())
                .spawn_scoped(s, || {
                    let _b = b.lock()?;
                    both_hold_one.wait();
                    a.lock().map(|_| ())
                })
                .unwrap();
            [t1.join().unwrap(), t2.join().unwrap()]
        })
    });
    // Exactly one thread is the victim; the other then gets its lock and finishes.
    let errors: Vec<_> = found.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(errors.len(), 1, "{found:?}");
    let d = errors[0];
    assert_eq!(d.cycle.len(), 2);
    let text = d.to_string();
    assert!(
        text.contains("t1 holds A and waits for B") && text.contains("t2 holds B and waits for A"),
        "{text}"
    );
}

#[test]
fn relocking_a_plain_lock_is_a_cycle_of_one() {
    let graph = LockGraph::new();
    let l = graph.mutex("solo", ());
    let _g = l.lock().unwrap();
    let d = l.lock().unwrap_err();
    assert_eq!(d.cycle.len(), 1);
    assert_eq!(d.cycle[0].holds, "solo");
    assert_eq!(d.cycle[0].waits_for, "solo");
}

#[test]
fn one_lock_order_never_reports_a_deadlock() {
    within(LONG, "lock order stress", || {
        let graph = LockGraph::with_tick(Duration::from_millis(1));
        let a = graph.mutex("A", 0u64);
        let b = graph.mutex("B", 0u64);
        thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..200 {
                        let mut ga = a.lock().expect("no deadlock with one order");
                        let mut gb = b.lock().expect("no deadlock with one order");
                        *ga += 1;
                        *gb += 1;
                    }
                });
            }
        });
        assert_eq!(*a.lock().unwrap(), 800);
        assert_eq!(*b.lock().unwrap(), 800);
    });
}

#[test]
fn a_cancelled_timer_never_fires_an_uncancelled_one_does() {
    let fired = Arc::new(AtomicUsize::new(0));
    let f = fired.clone();
    let t = Timer::start(LONG, move || {
        f.fetch_add(1, Ordering::SeqCst);
    })
    .unwrap();
    let started = Instant::now();
    assert!(t.cancel());
    assert!(started.elapsed() < LONG / 2, "cancel waited for the delay");
    assert_eq!(fired.load(Ordering::SeqCst), 0);
    let f = fired.clone();
    let t = Timer::start(Duration::from_millis(1), move || {
        f.fetch_add(1, Ordering::SeqCst);
    })
    .unwrap();
    assert!(t.join());
    assert_eq!(fired.load(Ordering::SeqCst), 1);
    // Dropping cancels.
    let f = fired.clone();
    drop(Timer::start(LONG, move || {
        f.fetch_add(1, Ordering::SeqCst);
    }));
    assert_eq!(fired.load(Ordering::SeqCst), 1);
}

/// `cargo run -p sync -- timer` says cancel() returns false when the function had already
/// started, and then waits for it to finish. The function here is held inside until released,
/// so cancel() is called while it runs (or, on a slow machine, after it ended): false either
/// way, and never before the function has finished.
#[test]
fn cancelling_a_timer_whose_function_started_returns_false_after_it_finished() {
    within(LONG, "timer cancel after start", || {
        let finished = Arc::new(AtomicUsize::new(0));
        let (started_tx, started_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let f = finished.clone();
        let t = Timer::start(Duration::ZERO, move || {
            started_tx.send(()).unwrap();
            release_rx.recv_timeout(LONG).unwrap();
            f.store(1, Ordering::SeqCst);
        })
        .unwrap();
        started_rx.recv_timeout(LONG).unwrap();
        let f = finished.clone();
        let canceller = thread::spawn(move || {
            let cancelled = t.cancel();
            (cancelled, f.load(Ordering::SeqCst))
        });
        release_tx.send(()).unwrap();
        let (cancelled, finished_then) = canceller.join().unwrap();
        assert!(
            !cancelled,
            "cancel() after the function started returned true"
        );
        assert_eq!(
            finished_then, 1,
            "cancel() returned before the function finished"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Regressions of issue 16. Each failed on the code before its fix.

/// Bug 2: a permit given back by `release()` and then by dropping its guard must not push a
/// BoundedSemaphore past its bound.
#[test]
fn bounded_semaphore_release_then_permit_drop_stays_within_the_bound() {
    let sem = BoundedSemaphore::new(1);
    let permit = sem.acquire();
    sem.release()
        .expect("one permit is out: one release is allowed");
    drop(permit);
    assert_eq!(sem.available(), 1, "a BoundedSemaphore(1) went past 1");
    assert!(sem.release().is_err());
    let _one = sem.try_acquire().expect("one permit");
    assert!(
        sem.try_acquire().is_none(),
        "a second permit was handed out"
    );
}

/// Bug 3: the count must never run into the bits that count waiters.
#[test]
fn semaphore_release_at_the_largest_count_is_refused_not_wrapped() {
    let most = u32::MAX as usize;
    let sem = Semaphore::new(most);
    assert_eq!(sem.available(), most);
    assert!(
        sem.release().is_err(),
        "a release past the largest count was accepted"
    );
    assert_eq!(sem.available(), most);
    assert!(sem.try_acquire().is_some());
}

/// Bug 4: a timeout too long to add to `Instant::now()` means "wait as long as it takes".
#[test]
fn timed_waits_accept_duration_max() {
    within(LONG, "Duration::MAX", || {
        let sem = Semaphore::new(1);
        assert!(sem.acquire_timeout(Duration::MAX).is_some());
        let event = Event::new();
        event.set();
        assert!(event.wait_timeout(Duration::MAX));
        let lock = RLock::new();
        let _g = lock.acquire_timeout(Duration::MAX).expect("a free RLock");
        let t = Timer::start(Duration::MAX, || ()).expect("timer");
        assert!(t.cancel());
        // And a wait that must really wait, woken by another thread.
        let sem = Arc::new(Semaphore::new(0));
        let s2 = sem.clone();
        let waiter = thread::spawn(move || s2.acquire_timeout(Duration::MAX).map(|p| p.forget()));
        sem.release().unwrap();
        assert!(waiter.join().unwrap().is_some());
    });
}

#[test]
fn tracked_mutex_try_lock_lock_timeout_locked_and_debug() {
    within(LONG, "tracked mutex api", || {
        let graph = LockGraph::new();
        let l = graph.mutex("L", 5);
        assert!(!l.locked());
        assert!(format!("{l:?}").contains("locked: false"), "{l:?}");
        let g = l.try_lock().expect("free");
        assert!(l.locked());
        let shown = format!("{l:?}");
        assert!(
            shown.contains("locked: true") && shown.contains("\"L\""),
            "{shown}"
        );
        thread::scope(|s| {
            let other = s.spawn(|| {
                (
                    l.try_lock().is_none(),
                    l.lock_timeout(Duration::from_millis(20))
                        .map(|g| g.is_none()),
                )
            });
            assert_eq!(other.join().unwrap(), (true, Ok(true)));
        });
        // This thread waiting for a lock it holds: a cycle of one, reported before the timeout.
        let d = l.lock_timeout(Duration::MAX).unwrap_err();
        assert_eq!(d.cycle.len(), 1);
        drop(g);
        assert_eq!(*l.lock_timeout(Duration::MAX).unwrap().unwrap(), 5);
        assert!(!l.locked());
    });
}

/// Bug 6 of issue 16, on the primitive: the action has finished before any `wait` returns,
/// however long it takes (it sleeps here, so a party released early would see it unfinished).
#[test]
fn barrier_action_completes_before_any_wait_returns() {
    within(LONG, "barrier action", || {
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        let barrier = sync::Barrier::with_action(4, move || {
            thread::sleep(Duration::from_millis(20));
            d.fetch_add(1, Ordering::SeqCst);
        });
        for round in 1..=3 {
            thread::scope(|s| {
                for _ in 0..4 {
                    s.spawn(|| {
                        barrier.wait().unwrap();
                        assert_eq!(
                            done.load(Ordering::SeqCst),
                            round,
                            "released before the action ended"
                        );
                    });
                }
            });
        }
    });
}

#[test]
fn barrier_action_panic_breaks_it_and_reaches_the_thread_that_ran_it() {
    within(LONG, "panicking action", || {
        let barrier = sync::Barrier::with_action(2, || panic!("the action failed"));
        thread::scope(|s| {
            let a = s.spawn(|| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| barrier.wait()))
            });
            let b = s.spawn(|| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| barrier.wait()))
            });
            let outcomes = [a.join().unwrap(), b.join().unwrap()];
            // One ran the action and panicked; the other was told the barrier broke.
            assert_eq!(outcomes.iter().filter(|o| o.is_err()).count(), 1);
            assert!(outcomes.iter().any(|o| matches!(o, Ok(Err(BrokenBarrier)))));
        });
        assert!(barrier.broken());
        barrier.reset();
        assert!(!barrier.broken());
    });
}

/// A party whose time runs out while the last party runs the action passes with the others:
/// the round was complete before its deadline. (The action sleeps as long as the timeout, so
/// the deadline always falls inside it once both have arrived; if the second party is so late
/// that the deadline passes before it arrives, the barrier rightly breaks and the round is
/// tried again.)
#[test]
fn barrier_a_wait_that_times_out_during_the_action_still_passes() {
    const T: Duration = Duration::from_millis(100);
    within(LONG, "timeout during action", || {
        let barrier = sync::Barrier::with_action(2, || thread::sleep(T + Duration::from_millis(1)));
        let seen = (0..20).any(|_| {
            let (early, late) = thread::scope(|s| {
                let early = s.spawn(|| barrier.wait_timeout(T));
                spin_until("the early party waits", || {
                    barrier.n_waiting() == 1 || barrier.broken()
                });
                (barrier.wait_timeout(Duration::MAX), early.join().unwrap())
            });
            match (early, late) {
                (Ok(_), Ok(_)) => true,
                (Err(BrokenBarrier), Err(BrokenBarrier)) => {
                    barrier.reset();
                    false
                }
                other => panic!("one party passed and the other did not: {other:?}"),
            }
        });
        assert!(
            seen,
            "the second party never arrived within {T:?} of the first"
        );
    });
}

#[test]
fn barrier_abort_from_the_action_breaks_the_round_without_deadlock() {
    within(LONG, "abort from action", || {
        let barrier = Arc::new(std::sync::OnceLock::<sync::Barrier>::new());
        let b2 = barrier.clone();
        barrier
            .set(sync::Barrier::with_action(2, move || {
                b2.get().unwrap().abort()
            }))
            .unwrap();
        let b = barrier.get().unwrap();
        thread::scope(|s| {
            let other = s.spawn(|| b.wait());
            assert_eq!(b.wait(), Err(BrokenBarrier));
            assert_eq!(other.join().unwrap(), Err(BrokenBarrier));
        });
        assert!(b.broken());
    });
}
