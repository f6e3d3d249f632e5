//! `concurrent.futures` figures, as BENCH lines (DESIGN.md), against `bench/python/futures.py`
//! (target: at least 10x Python's):
//! - `ThreadPoolExecutor(4)`: one trivial call's `submit` then `result()`, one after another
//!   (ns per round trip), beside a raw thread ping-pong over crossbeam channels (the floor);
//! - `ThreadPoolExecutor(4)`: 10 000 trivial calls submitted, then `as_completed` over their
//!   futures until the last (futures/s, submission included).
//!
//! Groups: `cargo bench -p pool --bench futures -- round_trip` or `-- as_completed`.

use std::time::Duration;

use crossbeam::channel;
use lesson::bench::{Counters, Sample, line, measure, measure_pair, report_per_op, run_selected};
use pool::futures::{ThreadPoolExecutor, as_completed};

const RUNS: usize = 7;
const WORKERS: usize = 4;

fn round_trip() {
    const TRIPS: u64 = 20_000;
    // Not counted: with counters on (inherited by the echo thread), this crossbeam floor ran
    // 0.5-1.2 us against about 265 ns without them; the counts would change the figure they
    // explain (docs/bench/counts.md).
    let ex = ThreadPoolExecutor::new(WORKERS).expect("executor");
    let (to, from_main) = channel::unbounded::<u64>();
    let (back, from_echo) = channel::unbounded::<u64>();
    let echo = std::thread::spawn(move || {
        while let Ok(v) = from_main.recv() {
            if back.send(v).is_err() {
                break;
            }
        }
    });
    let raw_run = || {
        for i in 0..TRIPS {
            to.send(i).expect("send");
            assert_eq!(from_echo.recv().expect("recv"), i);
        }
    };
    let pool_run = || {
        for i in 0..TRIPS {
            let f = ex.submit(move || Ok(i)).expect("submit");
            assert_eq!(f.result(None), Ok(i));
        }
    };
    let (raw, pooled) = measure_pair(RUNS, raw_run, pool_run);
    drop(to);
    let _ = echo.join();
    report_per_op(
        "futures_round_trip_raw",
        raw,
        TRIPS,
        &[("via", "crossbeam channel ping-pong".into())],
    );
    report_per_op(
        "futures_submit_result_round_trip",
        pooled,
        TRIPS,
        &[("max_workers", WORKERS.into())],
    );
    ex.shutdown(true, false);
}

fn rate(name: &str, s: Sample, amount: f64, params: &[(&str, lesson::bench::Param)]) {
    let r = |d: Duration| amount / d.as_secs_f64();
    let mut all = params.to_vec();
    all.push(("min", r(s.max).into()));
    all.push(("max", r(s.min).into()));
    all.push(("runs", s.runs.into()));
    println!("{}", line(name, "futures/s", r(s.median), &all));
}

fn as_completed_10000() {
    const FUTURES: u64 = 10_000;
    let mut counters = Counters::open();
    let ex = ThreadPoolExecutor::new(WORKERS).expect("executor");
    let mut warm = false;
    let s = measure(RUNS, || {
        if !std::mem::replace(&mut warm, true) {
            as_completed_once(&ex, FUTURES); // the warm-up, not counted
        } else {
            counters.count(FUTURES, || as_completed_once(&ex, FUTURES));
        }
    });
    rate(
        "futures_as_completed",
        s,
        FUTURES as f64,
        &counters.counts().with(&[
            ("max_workers", WORKERS.into()),
            ("futures", (FUTURES as f64).into()),
        ]),
    );
    ex.shutdown(true, false);
}

/// Submit `n` futures and take them back with `as_completed`.
fn as_completed_once(ex: &ThreadPoolExecutor, n: u64) {
    let fs: Vec<_> = (0..n)
        .map(|i| ex.submit(move || Ok(i)).expect("submit"))
        .collect();
    let mut sum = 0;
    for f in as_completed(fs, None) {
        sum += f.expect("no time-out").result(None).expect("a value");
    }
    assert_eq!(sum, n * (n - 1) / 2);
}

fn main() {
    run_selected(&[
        ("round_trip", round_trip),
        ("as_completed", as_completed_10000),
    ]);
}
