//! Pool chapter figures, as BENCH lines (DESIGN.md):
//! - 20 000 trivial `apply_async` tasks with a callback, tasks/s, on Pool(2) and Pool(5)
//!   (target: at least 10x Python's Pool on the same tasks, `bench/python/pool.py`);
//! - `map` over 200 000 items, default chunk size and chunk size 1;
//! - one task's round trip (`apply`) against a raw pipe round trip (the floor).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ipc::Pipe;
use lesson::bench::{Counters, Param, Sample, line, measure, measure_pair, report_per_op};
use pool::Pool;
use pool::lessons::tasks::Square;
use processes::Process;

const RUNS: usize = 5;

fn rate(name: &str, s: Sample, amount: f64, params: &[(&str, Param)]) {
    let r = |d: Duration| amount / d.as_secs_f64();
    let mut all = params.to_vec();
    all.push(("min", r(s.max).into()));
    all.push(("max", r(s.min).into()));
    all.push(("runs", s.runs.into()));
    println!("{}", line(name, "tasks/s", r(s.median), &all));
}

fn main() {
    const TASKS: u64 = 20_000;
    for workers in [2usize, 5] {
        // Opened before the workers are forked, so their context switches, migrations and
        // system calls are counted too (inherit); only the timed runs are counted.
        let mut counters = Counters::open();
        let mut p: Pool<Square> = Pool::new(workers).expect("pool");
        let mut warm = false;
        let s = measure(RUNS, || {
            let run = || {
                let count = Arc::new(AtomicUsize::new(0));
                let handles: Vec<_> = (0..TASKS)
                    .map(|i| {
                        let count = count.clone();
                        p.apply_async_with(
                            Square(i),
                            move |_| {
                                count.fetch_add(1, Ordering::Relaxed);
                            },
                            |_| {},
                        )
                        .expect("submit")
                    })
                    .collect();
                for h in handles {
                    h.get().expect("result");
                }
                assert_eq!(count.load(Ordering::Relaxed), TASKS as usize);
            };
            if std::mem::replace(&mut warm, true) {
                counters.count(TASKS, run);
            } else {
                run();
            }
        });
        rate(
            "pool_apply_async_callback",
            s,
            TASKS as f64,
            &counters.counts().with(&[
                ("processes", workers.into()),
                ("tasks", (TASKS as f64).into()),
            ]),
        );
        p.close();
        p.join().expect("join");
    }

    const ITEMS: u64 = 200_000;
    // Opened before the workers fork (inherit); counted per item, timed runs only.
    let mut counters = [Counters::open(), Counters::open()];
    let mut p: Pool<Square> = Pool::new(2).expect("pool");
    let items: Vec<Square> = (0..ITEMS).map(Square).collect();
    let default = p.default_chunksize(items.len());
    for (chunk, counters) in [default, 1].into_iter().zip(&mut counters) {
        let runs = if chunk == 1 { 3 } else { RUNS };
        let mut warm = false;
        let s = measure(runs, || {
            let run = || {
                let out = p.map(items.clone(), chunk).expect("map");
                assert_eq!(out.len(), ITEMS as usize);
            };
            if std::mem::replace(&mut warm, true) {
                counters.count(ITEMS, run);
            } else {
                run();
            }
        });
        rate(
            "pool_map",
            s,
            ITEMS as f64,
            &counters.counts().with(&[
                ("processes", 2usize.into()),
                ("chunksize", chunk.into()),
                (
                    "chunking",
                    Param::from(if chunk == default { "default" } else { "1" }),
                ),
            ]),
        );
    }

    // One task at a time through the pool, against a raw pipe round trip with an echo child.
    const TRIPS: u64 = 5_000;
    let (ours, child) = Pipe::duplex::<u64, u64>().expect("pipe");
    let mut echo = Process::new(move || {
        while let Ok(v) = child.recv() {
            if child.send(&v).is_err() {
                break;
            }
        }
    })
    .close_in_child(&ours);
    echo.start().expect("echo");
    let mut single: Pool<Square> = Pool::new(1).expect("pool");
    let (raw, pooled) = measure_pair(
        RUNS,
        || {
            for i in 0..TRIPS {
                ours.send(&i).expect("send");
                assert_eq!(ours.recv().expect("recv"), i);
            }
        },
        || {
            for i in 0..TRIPS {
                assert_eq!(single.apply(Square(i)).expect("apply"), i * i);
            }
        },
    );
    drop(ours);
    let _ = echo.join();
    report_per_op(
        "pool_round_trip_raw",
        raw,
        TRIPS,
        &[("via", "ipc::Connection echo".into())],
    );
    report_per_op(
        "pool_apply_round_trip",
        pooled,
        TRIPS,
        &[("processes", 1usize.into())],
    );
    single.close();
    single.join().expect("join");
    p.close();
    p.join().expect("join");
}
