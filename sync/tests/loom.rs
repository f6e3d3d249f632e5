//! Model checks of `Semaphore` and `Event` under every interleaving loom can find.
//! Run with (the README's command; a separate target dir keeps the normal build):
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p sync --test loom --release`
//! (exhaustive: no preemption bound; `.ci/run` runs it for sync and queues)
#![cfg(loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use sync::{Event, Semaphore};

#[test]
fn semaphore_one_permit_is_mutual_exclusion_and_no_wakeup_is_lost() {
    loom::model(|| {
        let sem = Arc::new(Semaphore::new(1));
        let inside = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..1)
            .map(|_| {
                let (sem, inside) = (sem.clone(), inside.clone());
                thread::spawn(move || {
                    let _p = sem.acquire();
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        {
            let _p = sem.acquire();
            assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
            inside.fetch_sub(1, Ordering::SeqCst);
        }
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(sem.available(), 1);
    });
}

#[test]
fn semaphore_release_wakes_a_blocked_acquirer() {
    loom::model(|| {
        let sem = Arc::new(Semaphore::new(0));
        let s2 = sem.clone();
        let t = thread::spawn(move || {
            s2.acquire().forget();
        });
        sem.release().unwrap();
        t.join().unwrap();
        assert_eq!(sem.available(), 0);
    });
}

#[test]
fn event_set_then_clear_still_releases_a_waiter() {
    loom::model(|| {
        let e = Arc::new(Event::new());
        let e2 = e.clone();
        let t = thread::spawn(move || e2.wait());
        // The claim is about a thread already waiting: one that arrives after set(); clear()
        // rightly waits for the next set() (loom found that interleaving when this was missing).
        while e.waiting() == 0 {
            thread::yield_now();
        }
        e.set();
        e.clear();
        t.join().unwrap();
    });
}

/// Bug 2 of issue 16: every path that gives a permit back (`release()`, dropping a `Permit`)
/// is checked against the bound, in every interleaving of the two.
#[test]
fn bounded_semaphore_release_and_permit_drop_never_exceed_the_bound() {
    loom::model(|| {
        let sem = Arc::new(sync::BoundedSemaphore::new(1));
        let s2 = sem.clone();
        let permit = sem.acquire();
        let releaser = thread::spawn(move || s2.release().is_ok());
        drop(permit);
        let released = releaser.join().unwrap();
        assert_eq!(sem.available(), 1, "release ok: {released}");
    });
}

/// Bug 2 of issue 16, with a waiter: a release and a permit drop racing while a thread waits
/// for the one permit; the waiter gets in and the bound holds.
#[test]
fn bounded_semaphore_release_paths_wake_a_waiter_within_the_bound() {
    loom::model(|| {
        let sem = Arc::new(sync::BoundedSemaphore::new(1));
        let s2 = sem.clone();
        sem.acquire().forget();
        let waiter = thread::spawn(move || {
            let p = s2.acquire();
            drop(p);
        });
        sem.release().unwrap();
        waiter.join().unwrap();
        assert_eq!(sem.available(), 1);
        assert!(sem.release().is_err());
    });
}

/// `release_n(2)` wakes both of two blocked acquirers (one notify per new permit).
#[test]
fn release_n_wakes_as_many_waiters_as_permits() {
    loom::model(|| {
        let sem = Arc::new(Semaphore::new(0));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let s = sem.clone();
                thread::spawn(move || s.acquire().forget())
            })
            .collect();
        sem.release_n(2).unwrap();
        for w in waiters {
            w.join().unwrap();
        }
        assert_eq!(sem.available(), 0);
    });
}
