//! Model checks of the blocking logic (put / get / task_done / join / shutdown) under every
//! interleaving loom finds. Under `--cfg loom` the FIFO ring is replaced by a loom-visible
//! store no stronger than the ring (a `Mutex<VecDeque>` whose empty and full checks read an
//! atomic length without the lock, so that a get finding the queue empty does not synchronize
//! with a racing put: see `order.rs`); the parking and counting code is the same as in normal
//! builds (the spinning before a sleep is left out: it only adds tries).
//! Run with (the README's command):
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p queues --test loom --release`
//! (exhaustive: no preemption bound; `.ci/run` runs it for sync and queues)
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use queues::{GetError, PutError, Queue};

#[test]
fn a_get_waiting_on_empty_is_woken_by_a_put() {
    loom::model(|| {
        let q = Arc::new(Queue::<u8>::new(1));
        let q2 = q.clone();
        let t = thread::spawn(move || q2.get());
        q.put(7).unwrap();
        assert_eq!(t.join().unwrap(), Ok(7));
    });
}

#[test]
fn a_put_waiting_on_full_is_woken_by_a_get() {
    loom::model(|| {
        let q = Arc::new(Queue::<u8>::new(1));
        q.put(1).unwrap();
        let q2 = q.clone();
        let t = thread::spawn(move || q2.put(2).unwrap());
        assert_eq!(q.get(), Ok(1));
        t.join().unwrap();
        assert_eq!(q.try_get(), Ok(2));
    });
}

#[test]
fn join_returns_only_after_task_done() {
    loom::model(|| {
        let q = Arc::new(Queue::<u8>::new(0));
        q.put(1).unwrap();
        let q2 = q.clone();
        let worker = thread::spawn(move || {
            let x = q2.get().unwrap();
            q2.task_done().unwrap();
            x
        });
        q.join();
        assert_eq!(q.unfinished(), 0);
        assert_eq!(worker.join().unwrap(), 1);
    });
}

#[test]
fn shutdown_wakes_a_blocked_getter() {
    loom::model(|| {
        let q = Arc::new(Queue::<u8>::new(1));
        let q2 = q.clone();
        let t = thread::spawn(move || q2.get());
        q.shutdown(false);
        assert_eq!(t.join().unwrap(), Err(GetError::ShutDown));
    });
}

/// A put waiting on a full queue is woken by `shutdown` and fails with ShutDown. Issue 22:
/// `shutdown` sends this wake-up without a fence, relying on `books` (which it holds while it
/// sets the flag, and which every try of a putter takes).
#[test]
fn shutdown_wakes_a_blocked_putter() {
    loom::model(|| {
        let q = Arc::new(Queue::<u8>::new(1));
        q.put(1).unwrap();
        let q2 = q.clone();
        let t = thread::spawn(move || q2.put(2));
        q.shutdown(false);
        assert!(matches!(t.join().unwrap(), Err(PutError::ShutDown(2))));
        assert_eq!(q.try_get(), Ok(1));
    });
}

/// Bug 1 of issue 16: once `shutdown(true)` returns, no put may succeed and nothing may be
/// left in the queue, whatever the interleaving with a concurrent put.
#[test]
fn no_put_lands_after_an_immediate_shutdown_returns() {
    loom::model(|| {
        let q = Arc::new(Queue::<u8>::new(0));
        let q2 = q.clone();
        let putter = thread::spawn(move || q2.put(1).is_ok());
        q.shutdown(true);
        // The put either went in before shutdown (and was thrown away by it) or fails.
        assert_eq!(q.try_get(), Err(GetError::ShutDown));
        let put = putter.join().unwrap();
        assert_eq!(
            q.qsize(),
            0,
            "the put (ok: {put}) landed after shutdown returned"
        );
        assert_eq!(q.unfinished(), 0);
    });
}

/// Bug 1 of issue 16, graceful shutdown: a consumer told ShutDown has seen every item that
/// was put, so a put that succeeded was consumed.
#[test]
fn a_getter_told_shutdown_has_seen_every_item_put() {
    loom::model(|| {
        let q = Arc::new(Queue::<u8>::new(0));
        let (q2, q3) = (q.clone(), q.clone());
        let putter = thread::spawn(move || q2.put(1).is_ok());
        let getter = thread::spawn(move || q3.get());
        q.shutdown(false);
        let put = putter.join().unwrap();
        let got = getter.join().unwrap();
        if put {
            assert_eq!(
                got,
                Ok(1),
                "a put succeeded but its item was never handed out"
            );
        } else {
            assert_eq!(got, Err(GetError::ShutDown));
        }
        assert_eq!(q.qsize(), 0);
    });
}

/// The parker sends no notify while every sleeper already has one on its way (issue 22): two
/// getters asleep and two puts must still wake both, whichever order the getters sleep, wake
/// and retry in. (A count of wake-ups in flight that was never taken back would leave the
/// second getter asleep, and loom would report the deadlock.)
///
/// Bounded to 4 preemptions: with the store no stronger than the ring (issue 22) the
/// exhaustive search of these three threads ran for over 20 minutes; 4 takes ~10 s, 5 ~60 s.
#[test]
fn two_sleeping_getters_are_both_woken_by_two_puts() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(4);
    model.check(|| {
        let q = Arc::new(Queue::<u8>::new(0));
        let (q2, q3) = (q.clone(), q.clone());
        let a = thread::spawn(move || q2.get());
        let b = thread::spawn(move || q3.get());
        q.put(1).unwrap();
        q.put(2).unwrap();
        let mut got = [a.join().unwrap().unwrap(), b.join().unwrap().unwrap()];
        got.sort();
        assert_eq!(got, [1, 2]);
    });
}

/// A getter woken and not yet running while more items are put: the puts send no further
/// notify to it (issue 22), and it still takes an item, as does a later get.
#[test]
fn items_put_while_a_woken_getter_is_on_its_way_are_all_taken() {
    loom::model(|| {
        let q = Arc::new(Queue::<u8>::new(2));
        let q2 = q.clone();
        let getter = thread::spawn(move || q2.get());
        q.put(1).unwrap();
        q.put(2).unwrap();
        let first = getter.join().unwrap().unwrap();
        let second = q.try_get().unwrap();
        assert_eq!((first, second), (1, 2));
    });
}
