//! Sync chapter figures, as BENCH lines (DESIGN.md):
//! - a `Mutex`-protected counter, 4 threads: increments/s (target: at least 4x Python's
//!   `threading.Lock` counter, `bench/python/locked_counter.py`);
//! - `Semaphore` acquire+release uncontended, against a std `Mutex` lock+unlock (target: at
//!   most 2x), and contended by 4 threads;
//! - `Event` set -> wake latency (half a round trip), pinned to one core and unpinned.
//!
//! Groups (`cargo bench -p sync -- GROUP`): `locked_counter`, `semaphore`, `event`.

use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lesson::bench::{Param, line, measure, measure_pair, report, report_per_op};
use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;
use sync::{Event, Semaphore};

const RUNS: usize = 7;

fn locked_counter() {
    const THREADS: usize = 4;
    const PER_THREAD: u64 = 250_000;
    let s = measure(RUNS, || {
        let counter = Mutex::new(0u64);
        std::thread::scope(|s| {
            for _ in 0..THREADS {
                s.spawn(|| {
                    for _ in 0..PER_THREAD {
                        *counter.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                    }
                });
            }
        });
        assert_eq!(*counter.lock().unwrap(), THREADS as u64 * PER_THREAD);
    });
    let total = THREADS as f64 * PER_THREAD as f64;
    let rate = |d: Duration| total / d.as_secs_f64();
    println!(
        "{}",
        line(
            "locked_counter",
            "increments/s",
            rate(s.median),
            &[
                ("threads", THREADS.into()),
                ("increments", total.into()),
                ("min", rate(s.max).into()),
                ("max", rate(s.min).into()),
                ("runs", s.runs.into()),
            ]
        )
    );
}

fn semaphore_uncontended() {
    const OPS: u64 = 1_000_000;
    let sem = Semaphore::new(1);
    let mutex = Mutex::new(0u64);
    let (m, s) = measure_pair(
        RUNS,
        || {
            for _ in 0..OPS {
                *black_box(&mutex).lock().unwrap_or_else(|e| e.into_inner()) += 1;
            }
        },
        || {
            for _ in 0..OPS {
                drop(black_box(&sem).acquire());
            }
        },
    );
    let m = report_per_op(
        "mutex_lock_unlock",
        m,
        OPS,
        &[("via", "std::sync::Mutex".into())],
    );
    let s = report_per_op(
        "semaphore_acquire_release",
        s,
        OPS,
        &[("contended", "no".into())],
    );
    let ratio = s / m;
    println!(
        "{}",
        line(
            "semaphore_vs_mutex",
            "x",
            ratio,
            &[
                ("target_max", 2.0.into()),
                ("met", Param::Str((ratio <= 2.0).to_string()))
            ]
        )
    );
}

fn semaphore_contended() {
    const THREADS: usize = 4;
    const OPS: u64 = 100_000;
    let sem = Semaphore::new(2);
    let s = measure(RUNS, || {
        std::thread::scope(|s| {
            for _ in 0..THREADS {
                s.spawn(|| {
                    for _ in 0..OPS {
                        drop(black_box(&sem).acquire());
                    }
                });
            }
        });
    });
    report_per_op(
        "semaphore_acquire_release",
        s,
        THREADS as u64 * OPS,
        &[
            ("contended", "yes".into()),
            ("threads", THREADS.into()),
            ("permits", 2usize.into()),
        ],
    );
}

/// Half of an Event ping-pong round trip: set() on one thread to wait() returning on another.
fn event_latency(pinned: bool) {
    const ROUNDS: u32 = 5_000;
    let saved = sched_getaffinity(Pid::from_raw(0)).ok();
    if pinned {
        let mut one = CpuSet::new();
        if one.set(0).is_err() || sched_setaffinity(Pid::from_raw(0), &one).is_err() {
            eprintln!("cannot pin to core 0: skipping the pinned Event figure");
            return;
        }
    }
    let ping = Arc::new(Event::new());
    let pong = Arc::new(Event::new());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (p2, q2, s2) = (ping.clone(), pong.clone(), stop.clone());
    let echo = std::thread::spawn(move || {
        loop {
            p2.wait();
            p2.clear();
            if s2.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            q2.set();
        }
    });
    let s = measure(RUNS, || {
        for _ in 0..ROUNDS {
            pong.clear();
            ping.set();
            pong.wait();
        }
    });
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    ping.set();
    let _ = echo.join();
    if let Some(mask) = saved {
        let _ = sched_setaffinity(Pid::from_raw(0), &mask);
    }
    let half = |d: Duration| d / (2 * ROUNDS);
    report(
        "event_set_to_wake",
        "us",
        lesson::bench::Sample {
            min: half(s.min),
            median: half(s.median),
            max: half(s.max),
            runs: s.runs,
        },
        &[(
            "pinned",
            Param::Str(if pinned { "one core" } else { "no" }.into()),
        )],
    );
}

fn semaphore() {
    semaphore_uncontended();
    semaphore_contended();
}

fn event() {
    event_latency(true);
    event_latency(false);
}

fn main() {
    let start = Instant::now();
    lesson::bench::run_selected(&[
        ("locked_counter", locked_counter),
        ("semaphore", semaphore),
        ("event", event),
    ]);
    eprintln!("sync benches took {:.1}s", start.elapsed().as_secs_f64());
}
