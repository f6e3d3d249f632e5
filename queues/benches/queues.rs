//! Queues chapter figures, as BENCH lines (DESIGN.md), in items per second:
//! - 1 producer, 1 consumer, u64 items: `Queue` at maxsize 1000 and 3, `LifoQueue`,
//!   `PriorityQueue`, the `TextbookQueue`, and crossbeam's `bounded(1000)` / `bounded(3)` as
//!   the floor, each measured in alternation with its floor;
//! - 4 producers, 4 consumers on `Queue(1000)` and on `bounded(1000)`.
//!
//! Targets (issue): `Queue(1000)` at least 0.5x `bounded(1000)`, `Queue(3)` at least 0.5x
//! `bounded(3)`.
//!
//! Groups (`cargo bench -p queues -- GROUP`): `fifo_vs_crossbeam`, `orders`, `many_to_many`.

use std::hint::black_box;
use std::sync::Arc;

use crossbeam::channel;
use lesson::bench::{Param, Sample, line, measure, measure_pair};
use queues::{LifoQueue, PriorityQueue, Queue, TextbookQueue};

const ITEMS: u64 = 1_000_000;
const RUNS: usize = 7;

/// Move `ITEMS` numbers from one thread to another through `put` / `get`.
fn one_to_one<Q: Send + Sync + 'static>(q: Arc<Q>, put: fn(&Q, u64), get: fn(&Q) -> u64) {
    let consumer = {
        let q = q.clone();
        std::thread::spawn(move || (0..ITEMS).map(|_| get(&q)).sum::<u64>())
    };
    for i in 0..ITEMS {
        put(&q, i);
    }
    let sum = consumer.join().expect("consumer");
    assert_eq!(black_box(sum), ITEMS * (ITEMS - 1) / 2);
}

fn fifo(maxsize: usize) -> impl FnMut() {
    move || {
        one_to_one(
            Arc::new(Queue::<u64>::new(maxsize)),
            |q, i| q.put(i).expect("put"),
            |q| q.get().expect("get"),
        )
    }
}

fn crossbeam(cap: usize) -> impl FnMut() {
    move || {
        let (tx, rx) = channel::bounded::<u64>(cap);
        one_to_one(
            Arc::new((tx, rx)),
            |c, i| c.0.send(i).expect("send"),
            |c| c.1.recv().expect("recv"),
        )
    }
}

fn rate(s: Sample, items: u64) -> (f64, f64, f64) {
    let r = |d: std::time::Duration| items as f64 / d.as_secs_f64();
    (r(s.median), r(s.max), r(s.min))
}

fn print_rate(name: &str, s: Sample, items: u64, params: &[(&str, Param)]) -> f64 {
    let (median, lo, hi) = rate(s, items);
    let mut all = params.to_vec();
    all.push(("items", (items as f64).into()));
    all.push(("min", lo.into()));
    all.push(("max", hi.into()));
    all.push(("runs", s.runs.into()));
    println!("{}", line(name, "items/s", median, &all));
    median
}

fn ratio(name: &str, ours: f64, floor: f64, target: f64) {
    let r = ours / floor;
    println!(
        "{}",
        line(
            name,
            "x",
            r,
            &[
                ("target_min", target.into()),
                ("met", Param::Str((r >= target).to_string()))
            ]
        )
    );
}

/// 4 producers and 4 consumers move `ITEMS` numbers through one shared queue.
fn many_to_many<Q: Send + Sync + 'static>(q: Arc<Q>, put: fn(&Q, u64), get: fn(&Q) -> u64) {
    const PER: u64 = ITEMS / 4;
    let consumers: Vec<_> = (0..4)
        .map(|_| {
            let q = q.clone();
            std::thread::spawn(move || (0..PER).map(|_| get(&q)).sum::<u64>())
        })
        .collect();
    let producers: Vec<_> = (0..4)
        .map(|p| {
            let q = q.clone();
            std::thread::spawn(move || (0..PER).for_each(|i| put(&q, p * PER + i)))
        })
        .collect();
    producers
        .into_iter()
        .for_each(|p| p.join().expect("producer"));
    let sum: u64 = consumers
        .into_iter()
        .map(|c| c.join().expect("consumer"))
        .sum();
    assert_eq!(sum, ITEMS * (ITEMS - 1) / 2);
}

fn main() {
    lesson::bench::run_selected(&[
        ("fifo_vs_crossbeam", fifo_vs_crossbeam),
        ("orders", orders),
        ("many_to_many", many_to_many_group),
    ]);
}

/// `Queue` at maxsize 1000 and 3 against crossbeam's `bounded`, in alternation (the targets).
fn fifo_vs_crossbeam() {
    for cap in [1000usize, 3] {
        let (floor, ours) = measure_pair(RUNS, crossbeam(cap), fifo(cap));
        let floor = print_rate(
            "queue_1p1c_crossbeam",
            floor,
            ITEMS,
            &[
                ("maxsize", cap.into()),
                ("via", "crossbeam::channel::bounded".into()),
            ],
        );
        let ours = print_rate(
            "queue_1p1c_fifo",
            ours,
            ITEMS,
            &[("maxsize", cap.into()), ("via", "queues::Queue".into())],
        );
        ratio(&format!("queue_fifo_vs_crossbeam_{cap}"), ours, floor, 0.5);
    }
}

/// `LifoQueue`, `PriorityQueue` and the `TextbookQueue`, 1P1C at maxsize 1000.
fn orders() {
    let s = measure(RUNS, || {
        one_to_one(
            Arc::new(LifoQueue::<u64>::new(1000)),
            |q, i| q.put(i).expect("put"),
            |q| q.get().expect("get"),
        )
    });
    print_rate(
        "queue_1p1c_lifo",
        s,
        ITEMS,
        &[("maxsize", 1000usize.into())],
    );
    let s = measure(RUNS, || {
        one_to_one(
            Arc::new(PriorityQueue::<u64>::new(1000)),
            |q, i| q.put(i).expect("put"),
            |q| q.get().expect("get"),
        )
    });
    print_rate(
        "queue_1p1c_priority",
        s,
        ITEMS,
        &[("maxsize", 1000usize.into())],
    );
    let s = measure(RUNS, || {
        one_to_one(
            Arc::new(TextbookQueue::<u64>::new(1000)),
            |q, i| q.put(i),
            |q| q.get(),
        )
    });
    print_rate(
        "queue_1p1c_textbook",
        s,
        ITEMS,
        &[
            ("maxsize", 1000usize.into()),
            ("via", "Mutex + 2 Condvars".into()),
        ],
    );
}

/// 4 producers and 4 consumers on `Queue(1000)` and on `bounded(1000)`.
fn many_to_many_group() {
    let (floor, ours) = measure_pair(
        RUNS,
        || {
            let (tx, rx) = channel::bounded::<u64>(1000);
            many_to_many(
                Arc::new((tx, rx)),
                |c, i| c.0.send(i).expect("send"),
                |c| c.1.recv().expect("recv"),
            )
        },
        || {
            many_to_many(
                Arc::new(Queue::<u64>::new(1000)),
                |q, i| q.put(i).expect("put"),
                |q| q.get().expect("get"),
            )
        },
    );
    print_rate(
        "queue_4p4c_crossbeam",
        floor,
        ITEMS,
        &[("maxsize", 1000usize.into())],
    );
    print_rate(
        "queue_4p4c_fifo",
        ours,
        ITEMS,
        &[("maxsize", 1000usize.into())],
    );
}
