//! Threads chapter figures, as BENCH lines (DESIGN.md):
//! - spawn+join of 1000 threads through `Thread` and through raw `std::thread` (target:
//!   `Thread` at most 1.2x raw);
//! - the CPU-bound prime count at 1, 2, ... available_parallelism() threads (target: speedup at
//!   N threads at least 0.9 x N).

use lesson::bench::{Param, line, measure, measure_pair_counted, report};
use threads::Thread;
use threads::lessons::gil;

const THREADS: usize = 1000;
const RUNS: usize = 9;

fn main() {
    let ((raw, raw_counts), (ours, ours_counts)) = measure_pair_counted(
        RUNS,
        THREADS as u64,
        || {
            let hs: Vec<_> = (0..THREADS)
                .map(|i| std::thread::spawn(move || i))
                .collect();
            for h in hs {
                let _ = h.join();
            }
        },
        || {
            let ts: Vec<_> = (0..THREADS)
                .map(|i| Thread::spawn(move || i).expect("spawn"))
                .collect();
            for t in ts {
                let _ = t.join();
            }
        },
    );
    let params = |via: &str| [("threads", THREADS.into()), ("via", Param::from(via))];
    report(
        "thread_spawn_join_1000_raw",
        "ms",
        raw,
        &raw_counts.with(&params("std::thread::spawn")),
    );
    report(
        "thread_spawn_join_1000",
        "ms",
        ours,
        &ours_counts.with(&params("threads::Thread")),
    );
    let ratio = ours.median.as_secs_f64() / raw.median.as_secs_f64();
    println!(
        "{}",
        line(
            "thread_overhead_vs_raw",
            "x",
            ratio,
            &[
                ("target_max", 1.2.into()),
                ("met", Param::Str((ratio <= 1.2).to_string()))
            ]
        )
    );

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let limit = 2_000_000;
    let mut one = None;
    for n in 1..=cores {
        let s = measure(5, || {
            std::hint::black_box(gil::parallel(std::hint::black_box(limit), n));
        });
        let base = *one.get_or_insert(s.median);
        report(
            "cpu_bound_primes",
            "ms",
            s,
            &[("threads", n.into()), ("limit", (limit as usize).into())],
        );
        let speedup = base.as_secs_f64() / s.median.as_secs_f64();
        let target = 0.9 * n as f64;
        println!(
            "{}",
            line(
                "gil_speedup",
                "x",
                speedup,
                &[
                    ("threads", n.into()),
                    ("target_min", target.into()),
                    ("met", Param::Str((speedup >= target).to_string()))
                ]
            )
        );
    }
}
