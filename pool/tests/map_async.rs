//! `map_async` / `starmap_async` beyond CPython's tests: the error is the first in task order
//! whatever order the chunks finish in, every task runs first, a panicking callback is counted,
//! and a closed pool refuses.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use lesson::within;
use pool::{Pool, PoolError, TaskError};
use support::{LONG, Work, probe, serial, sq};

#[test]
fn the_error_is_the_first_in_task_order_and_every_task_ran() {
    let _fork = serial();
    within(LONG, "map_async errors", || {
        let pr = probe();
        pr.reset();
        let mut p: Pool<Work> = Pool::new(3).unwrap();
        // Task 1 fails late (its chunk waits at the gate), task 7 fails at once: the handle
        // reports task 1's error, and only once every task has run.
        let tasks: Vec<Work> = (0..10)
            .map(|i| match i {
                0 => Work::Block(0),
                1 => Work::Fail(1, 11),
                7 => Work::Fail(7, 77),
                i => Work::Square(i),
            })
            .collect();
        let seen = Arc::new(Mutex::new(None));
        let s = seen.clone();
        let h = p
            .map_async_with(
                tasks,
                2,
                |_| panic!("no callback for a failed map"),
                move |e| *s.lock().unwrap() = Some(e.clone()),
            )
            .unwrap();
        pr.wait_ready();
        assert!(!h.ready(), "not ready while task 0 waits at the gate");
        pr.gate.store(true, Ordering::SeqCst);
        let got = h.get();
        assert_eq!(got, Err(TaskError::Failed("x".repeat(11))));
        assert_eq!(seen.lock().unwrap().as_ref(), got.as_ref().err());
        assert_eq!(pr.starts(10), vec![1; 10], "every task ran, once");
        p.close();
        p.join().unwrap();
        assert_eq!(p.callback_panic_count(), 0);
    });
}

#[test]
fn results_in_order_callbacks_counted_and_a_closed_pool_refuses() {
    let _fork = serial();
    within(LONG, "map_async", || {
        let mut p: Pool<Work> = Pool::new(2).unwrap();
        let called = Arc::new(AtomicUsize::new(0));
        let c = called.clone();
        let h = p
            .starmap_async_with(
                (0..50).map(Work::Square).collect(),
                7,
                move |v| {
                    assert_eq!(v.len(), 50);
                    c.fetch_add(1, Ordering::SeqCst);
                    panic!("a callback that panics after counting");
                },
                |_| {},
            )
            .unwrap();
        assert_eq!(h.get(), Ok((0..50).map(sq).collect::<Vec<_>>()));
        assert_eq!(called.load(Ordering::SeqCst), 1);
        // No tasks: ready at once, the callback called with nothing.
        let c = called.clone();
        let h = p
            .map_async_with(
                Vec::new(),
                1,
                move |v| {
                    assert!(v.is_empty());
                    c.fetch_add(1, Ordering::SeqCst);
                },
                |_| {},
            )
            .unwrap();
        assert!(h.ready());
        assert_eq!(called.load(Ordering::SeqCst), 2);
        p.close();
        assert_eq!(
            p.map_async(vec![Work::Square(1)], 1).map(|_| ()),
            Err(PoolError::Closed)
        );
        p.join().unwrap();
        assert_eq!(
            p.callback_panics(),
            vec!["a callback that panics after counting".to_owned()]
        );
    });
}
