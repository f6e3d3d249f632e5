//! Sync chapter figures, as BENCH lines (DESIGN.md):
//! - a `Mutex`-protected counter, 4 threads: increments/s (target: at least 4x Python's
//!   `threading.Lock` counter, `bench/python/locked_counter.py`), under `std::sync::Mutex`
//!   (the lesson's lock) and, as the comparison, `parking_lot::Mutex`;
//! - `Semaphore` acquire+release uncontended, against a std `Mutex` lock+unlock (target: at
//!   most 2x), and contended by 4 threads;
//! - `Event` set -> wake latency (half a round trip), pinned to one core and unpinned.
//!
//! Every figure carries counts per operation (`lesson::bench::Counts`: context switches,
//! migrations, system calls; instructions under `cargo xtask bench --counts`, which runs the
//! single-threaded `semaphore_uncontended` group under callgrind).
//!
//! Groups (`cargo bench -p sync -- GROUP`): `locked_counter`, `semaphore_uncontended`,
//! `semaphore_contended` (`semaphore` runs both), `event`.

use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lesson::bench::{
    Counters, Param, line, measure, measure_counted, measure_pair_counted, report, report_per_op,
};
use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;
use sync::{Event, Semaphore};

const RUNS: usize = 7;

const THREADS: usize = 4;
const PER_THREAD: u64 = 250_000;
const INCREMENTS: u64 = THREADS as u64 * PER_THREAD;

/// 4 threads each add 1 to one counter `PER_THREAD` times, each add under the lock.
fn count_under(lock: impl Fn(&dyn Fn(&mut u64)) + Sync) {
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for _ in 0..PER_THREAD {
                    lock(&|n| *n += 1);
                }
            });
        }
    });
}

fn std_counter() {
    let counter = Mutex::new(0u64);
    count_under(|f| f(&mut counter.lock().unwrap_or_else(|e| e.into_inner())));
    assert_eq!(*counter.lock().unwrap(), INCREMENTS);
}

fn parking_lot_counter() {
    let counter = parking_lot::Mutex::new(0u64);
    count_under(|f| f(&mut counter.lock()));
    assert_eq!(*counter.lock(), INCREMENTS);
}

/// The lesson's locked counter is a `std::sync::Mutex<u64>` (`race` lesson): that is the
/// figure. Beside it, the same counter under `parking_lot::Mutex`, measured in alternation.
/// Both carry counts per increment; the std figure also gives the context switches and
/// system calls per increment of its fastest and its slowest run, which is where its spread
/// comes from (a contended std Mutex sleeps in `futex` and is woken by a `futex` call).
fn locked_counter() {
    // Per-run counts of the std figure: (time, counts), to explain the spread.
    let mut per_run: Vec<(Duration, lesson::bench::Counts)> = Vec::new();
    let ((s, counts), (pl, pl_counts)) = measure_pair_counted(
        RUNS,
        INCREMENTS,
        || {
            let mut c = Counters::open();
            let t = Instant::now();
            c.count(INCREMENTS, std_counter);
            per_run.push((t.elapsed(), c.counts()));
        },
        parking_lot_counter,
    );
    // The first run is the warm-up.
    let mut runs: Vec<_> = per_run.into_iter().skip(1).collect();
    runs.sort_by_key(|(t, _)| *t);
    let rate = |d: Duration| INCREMENTS as f64 / d.as_secs_f64();
    let mut extra: Vec<(String, f64)> = Vec::new();
    if let (Some((_, fast)), Some((_, slow))) = (runs.first(), runs.last()) {
        for (which, c) in [("fastest", fast), ("slowest", slow)] {
            for (what, count) in [("ctx", c.context_switches), ("syscalls", c.syscalls)] {
                if let Some(v) = c.per_op(count) {
                    extra.push((format!("{what}_per_op_{which}"), v));
                }
            }
        }
    }
    for (name, via, s, counts) in [
        ("locked_counter", "std::sync::Mutex", s, counts),
        (
            "locked_counter_parking_lot",
            "parking_lot::Mutex",
            pl,
            pl_counts,
        ),
    ] {
        let mut params = counts.with(&[
            ("threads", THREADS.into()),
            ("increments", (INCREMENTS as f64).into()),
            ("via", via.into()),
            ("min", rate(s.max).into()),
            ("max", rate(s.min).into()),
            ("runs", s.runs.into()),
        ]);
        if name == "locked_counter" {
            params.extend(
                extra
                    .iter()
                    .map(|(k, v)| (String::as_str(k), Param::Num(*v))),
            );
        }
        println!("{}", line(name, "increments/s", rate(s.median), &params));
    }
}

fn semaphore_uncontended() {
    const OPS: u64 = 1_000_000;
    let sem = Semaphore::new(1);
    let mutex = Mutex::new(0u64);
    let ((m, mc), (s, sc)) = measure_pair_counted(
        RUNS,
        OPS,
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
        &mc.with(&[("via", "std::sync::Mutex".into())]),
    );
    let s = report_per_op(
        "semaphore_acquire_release",
        s,
        OPS,
        &sc.with(&[("contended", "no".into())]),
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
    const OPS: u64 = 100_000;
    let sem = Semaphore::new(2);
    let (s, counts) = measure_counted(RUNS, THREADS as u64 * OPS, || {
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
        &counts.with(&[
            ("contended", "yes".into()),
            ("threads", THREADS.into()),
            ("permits", 2usize.into()),
        ]),
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
    // Opened before the echo thread is spawned, so that its switches and calls are counted.
    let mut counters = Counters::open();
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
    let round_trips = || {
        for _ in 0..ROUNDS {
            pong.clear();
            ping.set();
            pong.wait();
        }
    };
    round_trips();
    // Each round trip is two hand-offs (set -> wake), the figure's operation.
    let s = measure(RUNS, || counters.count(2 * u64::from(ROUNDS), round_trips));
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
        &counters.counts().with(&[(
            "pinned",
            Param::Str(if pinned { "one core" } else { "no" }.into()),
        )]),
    );
}

fn event() {
    event_latency(true);
    event_latency(false);
}

fn main() {
    let start = Instant::now();
    lesson::bench::run_selected(&[
        ("locked_counter", locked_counter),
        ("semaphore_uncontended", semaphore_uncontended),
        ("semaphore_contended", semaphore_contended),
        ("event", event),
    ]);
    eprintln!("sync benches took {:.1}s", start.elapsed().as_secs_f64());
}
