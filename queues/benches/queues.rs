//! Queues chapter figures, as BENCH lines (DESIGN.md), in items per second:
//! - 1 producer, 1 consumer, u64 items: `Queue` at maxsize 1000 and 3, `LifoQueue`,
//!   `PriorityQueue`, the `TextbookQueue`, and crossbeam's `bounded(1000)` / `bounded(3)` as
//!   the floor, each measured in alternation with its floor;
//! - 4 producers, 4 consumers on `Queue(1000)` and on `bounded(1000)`;
//! - one thread putting and getting (`Queue(1000)` against `bounded(1000)`): no waiting at all,
//!   the path of one item (what `cargo xtask bench --counts` counts instructions of);
//! - 1P1C `Queue(1000)` / `Queue(3)` against `bounded(1000)` / `bounded(3)` with the producer
//!   and the consumer each pinned to its own CPU (group `apart`): the placement an unpinned run
//!   gets only when the scheduler chooses it (on a loaded machine it often puts both on one
//!   CPU, which `taskset -c 0` reproduces), so that both placements can be measured on purpose.
//!
//! Every 1P1C figure carries counts per item (`lesson::bench::Counts`: context switches,
//! migrations, system calls), and the queues' own `parks_per_op`, `wakeups_per_op`,
//! `spun_per_op` and `yielded_per_op` (`BlockingQueue::wait_stats`, over the timed runs): why
//! a figure differs between two machines shows there first.
//!
//! Targets (issue): `Queue(1000)` at most 2x `bounded(1000)`'s cost, `Queue(3)` at most 2x
//! `bounded(3)`'s.
//!
//! Groups (`cargo bench -p queues -- GROUP`): `fifo_vs_crossbeam`, `orders`, `many_to_many`,
//! `one_thread`, `apart`.

use std::cell::RefCell;
use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;

use crossbeam::channel;
use lesson::bench::{Counts, Param, Sample, line, measure_counted, measure_pair_counted};
use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;
use queues::{BlockingQueue, Queue, Store, TextbookQueue, WaitStats};

const ITEMS: u64 = 1_000_000;
const RUNS: usize = 7;

/// Move `ITEMS` numbers from one thread to another through `put` / `get`.
fn one_to_one<Q: Send + Sync + 'static>(q: Arc<Q>, put: fn(&Q, u64), get: fn(&Q) -> u64) {
    one_to_one_on(None, q, put, get);
}

/// [`one_to_one`], the consumer pinned to `consumer_cpu` if given (the producer is the calling
/// thread: pin it yourself).
fn one_to_one_on<Q: Send + Sync + 'static>(
    consumer_cpu: Option<usize>,
    q: Arc<Q>,
    put: fn(&Q, u64),
    get: fn(&Q) -> u64,
) {
    let consumer = {
        let q = q.clone();
        std::thread::spawn(move || {
            if let Some(cpu) = consumer_cpu {
                pin_to(cpu).expect("pin the consumer");
            }
            (0..ITEMS).map(|_| get(&q)).sum::<u64>()
        })
    };
    for i in 0..ITEMS {
        put(&q, i);
    }
    let sum = consumer.join().expect("consumer");
    assert_eq!(black_box(sum), ITEMS * (ITEMS - 1) / 2);
}

/// The wait statistics of each run of a queue figure, the warm-up first.
type Runs = Rc<RefCell<Vec<WaitStats>>>;

/// 1P1C on a fresh `BlockingQueue` per run, its wait statistics kept in `runs`.
fn blocking<S: Store<Item = u64> + 'static>(maxsize: usize, runs: Runs) -> impl FnMut() {
    move || {
        let q = Arc::new(BlockingQueue::<S>::new(maxsize));
        one_to_one(
            q.clone(),
            |q, i| q.put(i).expect("put"),
            |q| q.get().expect("get"),
        );
        runs.borrow_mut().push(q.wait_stats());
    }
}

/// The queue's parks, wake-ups, spun and yielded waits per item over the timed runs (the warm-up, the
/// first run, left out), as params.
fn wait_params(runs: &Runs, items: u64) -> Vec<(&'static str, Param)> {
    let runs = runs.borrow();
    let timed = &runs[1.min(runs.len())..];
    let n = (timed.len() as u64 * items).max(1) as f64;
    let sum = |f: fn(&WaitStats) -> u64| timed.iter().map(f).sum::<u64>() as f64 / n;
    vec![
        ("parks_per_op", sum(|w| w.parks).into()),
        ("wakeups_per_op", sum(|w| w.wakeups).into()),
        ("spun_per_op", sum(|w| w.spun).into()),
        ("yielded_per_op", sum(|w| w.yielded).into()),
    ]
}

fn fifo(maxsize: usize, runs: Runs) -> impl FnMut() {
    blocking::<queues::Fifo<u64>>(maxsize, runs)
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

fn print_rate(
    name: &str,
    (s, counts): (Sample, Counts),
    items: u64,
    params: &[(&str, Param)],
) -> f64 {
    let (median, lo, hi) = rate(s, items);
    let mut all = counts.with(params);
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
        ("one_thread", one_thread),
        ("apart", apart),
    ]);
}

/// Pin the calling thread to `cpu`.
fn pin_to(cpu: usize) -> nix::Result<()> {
    let mut one = CpuSet::new();
    one.set(cpu)?;
    sched_setaffinity(Pid::from_raw(0), &one)
}

/// `Queue` at maxsize 1000 and 3 against crossbeam's `bounded`, in alternation (the targets).
fn fifo_vs_crossbeam() {
    for cap in [1000usize, 3] {
        let runs = Runs::default();
        let (floor, ours) =
            measure_pair_counted(RUNS, ITEMS, crossbeam(cap), fifo(cap, runs.clone()));
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
            &[
                &[("maxsize", cap.into()), ("via", "queues::Queue".into())][..],
                &wait_params(&runs, ITEMS),
            ]
            .concat(),
        );
        ratio(&format!("queue_fifo_vs_crossbeam_{cap}"), ours, floor, 0.5);
    }
}

/// `LifoQueue`, `PriorityQueue` and the `TextbookQueue`, 1P1C at maxsize 1000.
fn orders() {
    let runs = Runs::default();
    let s = measure_counted(
        RUNS,
        ITEMS,
        blocking::<queues::Lifo<u64>>(1000, runs.clone()),
    );
    print_rate(
        "queue_1p1c_lifo",
        s,
        ITEMS,
        &[
            &[("maxsize", 1000usize.into())][..],
            &wait_params(&runs, ITEMS),
        ]
        .concat(),
    );
    let runs = Runs::default();
    let s = measure_counted(
        RUNS,
        ITEMS,
        blocking::<queues::Priority<u64>>(1000, runs.clone()),
    );
    print_rate(
        "queue_1p1c_priority",
        s,
        ITEMS,
        &[
            &[("maxsize", 1000usize.into())][..],
            &wait_params(&runs, ITEMS),
        ]
        .concat(),
    );
    let s = measure_counted(RUNS, ITEMS, || {
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
    let (floor, ours) = measure_pair_counted(
        RUNS,
        ITEMS,
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

/// One thread puts an item and gets it back, `ITEMS` times: no thread ever waits, so this is
/// the path of one item alone (instructions per item under callgrind), `Queue(1000)` against
/// crossbeam's `bounded(1000)`.
fn one_thread() {
    let q = Queue::<u64>::new(1000);
    let (tx, rx) = channel::bounded::<u64>(1000);
    let (floor, ours) = measure_pair_counted(
        RUNS,
        ITEMS,
        || {
            for i in 0..ITEMS {
                tx.send(black_box(i)).expect("send");
                black_box(rx.recv().expect("recv"));
            }
        },
        || {
            for i in 0..ITEMS {
                q.put(black_box(i)).expect("put");
                black_box(q.get().expect("get"));
            }
        },
    );
    print_rate(
        "queue_put_get_one_thread_crossbeam",
        floor,
        ITEMS,
        &[("via", "crossbeam::channel::bounded".into())],
    );
    print_rate(
        "queue_put_get_one_thread",
        ours,
        ITEMS,
        &[("via", "queues::Queue".into())],
    );
}

/// `Queue` at maxsize 1000 and 3 against crossbeam's `bounded`, in alternation, with the
/// producer on one CPU and the consumer on another (the first two this process may use):
/// the hand-off between two running CPUs, whatever the scheduler would have chosen. Skipped
/// (with a note) when fewer than two CPUs are allowed, as under `taskset -c 0`.
fn apart() {
    let Ok(saved) = sched_getaffinity(Pid::from_raw(0)) else {
        eprintln!("apart: cannot read this thread's CPUs: skipped");
        return;
    };
    let cpus: Vec<usize> = (0..CpuSet::count())
        .filter(|&c| saved.is_set(c).unwrap_or(false))
        .take(2)
        .collect();
    let &[producer, consumer] = cpus.as_slice() else {
        eprintln!("apart: fewer than two CPUs allowed: skipped");
        return;
    };
    if let Err(e) = pin_to(producer) {
        eprintln!("apart: cannot pin to CPU {producer} ({e}): skipped");
        return;
    }
    for cap in [1000usize, 3] {
        let runs = Runs::default();
        let ours = {
            let runs = runs.clone();
            move || {
                let q = Arc::new(Queue::<u64>::new(cap));
                one_to_one_on(
                    Some(consumer),
                    q.clone(),
                    |q, i| q.put(i).expect("put"),
                    |q| q.get().expect("get"),
                );
                runs.borrow_mut().push(q.wait_stats());
            }
        };
        let floor = move || {
            let (tx, rx) = channel::bounded::<u64>(cap);
            one_to_one_on(
                Some(consumer),
                Arc::new((tx, rx)),
                |c, i| c.0.send(i).expect("send"),
                |c| c.1.recv().expect("recv"),
            )
        };
        let (floor, ours) = measure_pair_counted(RUNS, ITEMS, floor, ours);
        let placed = [
            ("maxsize", cap.into()),
            ("producer_cpu", producer.into()),
            ("consumer_cpu", consumer.into()),
        ];
        let floor = print_rate(
            "queue_1p1c_apart_crossbeam",
            floor,
            ITEMS,
            &[
                &placed[..],
                &[("via", "crossbeam::channel::bounded".into())],
            ]
            .concat(),
        );
        let ours = print_rate(
            "queue_1p1c_apart_fifo",
            ours,
            ITEMS,
            &[
                &placed[..],
                &[("via", "queues::Queue".into())],
                &wait_params(&runs, ITEMS),
            ]
            .concat(),
        );
        ratio(
            &format!("queue_fifo_vs_crossbeam_apart_{cap}"),
            ours,
            floor,
            0.5,
        );
    }
    let _ = sched_setaffinity(Pid::from_raw(0), &saved);
}
