//! Coroutines chapter figures, as BENCH lines (DESIGN.md):
//! - a greenlet switch (a round trip main -> greenlet -> main counts as two switches) against
//!   raw corosensei resume + suspend (the floor), in alternation (target: at most 2.5x raw,
//!   and 50x faster than Python's greenlet, `bench/python/greenlet_switch.py`);
//! - a thread ping-pong over two rendezvous channels, for contrast;
//! - creating a greenlet;
//! - resident memory with 10 000 sleeping hub tasks alive at once (target: no more than
//!   gevent's, `bench/python/gevent_memory.py`).

use std::hint::black_box;
use std::time::Duration;

use corosensei::{Coroutine, CoroutineResult};
use coroutines::{Greenlet, getcurrent, hub, val};
use lesson::bench::{Param, line, measure, measure_pair, report_per_op};

const RUNS: usize = 7;
const ROUNDS: u64 = 200_000;

fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() {
    let g = Greenlet::new(|_| {
        loop {
            getcurrent()
                .parent()
                .map(|p| p.switch(val(())))
                .transpose()?;
        }
    })
    .expect("greenlet");
    let mut raw: Coroutine<(), (), ()> = Coroutine::new(|y, ()| {
        loop {
            y.suspend(());
        }
    });
    let (floor, ours) = measure_pair(
        RUNS,
        || {
            for _ in 0..ROUNDS {
                if let CoroutineResult::Return(()) = raw.resume(()) {
                    break;
                }
            }
        },
        || {
            for _ in 0..ROUNDS {
                black_box(g.switch(val(())).expect("switch"));
            }
        },
    );
    let switches = 2 * ROUNDS;
    let floor = report_per_op(
        "corosensei_switch_raw",
        floor,
        switches,
        &[("via", "resume + suspend".into())],
    );
    let ours = report_per_op(
        "greenlet_switch",
        ours,
        switches,
        &[("via", "Greenlet::switch, through the hub".into())],
    );
    let r = ours / floor;
    println!(
        "{}",
        line(
            "greenlet_switch_vs_raw",
            "x",
            r,
            &[
                ("target_max", 2.5.into()),
                ("met", Param::Str((r <= 2.5).to_string()))
            ]
        )
    );

    const PINGS: u64 = 20_000;
    let (to, from_main) = crossbeam::channel::bounded::<u64>(0);
    let (back, from_thread) = crossbeam::channel::bounded::<u64>(0);
    let echo = std::thread::spawn(move || {
        while let Ok(v) = from_main.recv() {
            if back.send(v).is_err() {
                break;
            }
        }
    });
    let s = measure(5, || {
        for i in 0..PINGS {
            to.send(i).expect("send");
            from_thread.recv().expect("recv");
        }
    });
    drop(to);
    let _ = echo.join();
    report_per_op(
        "thread_handoff",
        s,
        2 * PINGS,
        &[("via", "crossbeam rendezvous ping-pong".into())],
    );

    const CREATE: u64 = 10_000;
    let s = measure(5, || {
        for _ in 0..CREATE {
            black_box(Greenlet::new(Ok).expect("greenlet"));
        }
    });
    report_per_op(
        "greenlet_create",
        s,
        CREATE,
        &[("stack", (coroutines::DEFAULT_STACK as f64).into())],
    );

    const TASKS: usize = 10_000;
    let before = vm_rss_kib();
    let peak = std::rc::Rc::new(std::cell::Cell::new(0u64));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| hub::spawn(|| hub::sleep(Duration::from_millis(200))).expect("spawn"))
        .collect();
    let p = peak.clone();
    let watcher = hub::spawn(move || {
        hub::sleep(Duration::from_millis(100));
        p.set(vm_rss_kib());
    })
    .expect("spawn");
    let mut refs: Vec<&dyn hub::Joinable> = tasks.iter().map(|t| t as &dyn hub::Joinable).collect();
    refs.push(&watcher);
    hub::joinall(&refs);
    let mib = peak.get().saturating_sub(before) as f64 / 1024.0;
    println!(
        "{}",
        line(
            "hub_10000_sleeping_tasks_rss",
            "MiB",
            mib,
            &[
                ("tasks", TASKS.into()),
                ("stack", (coroutines::DEFAULT_STACK as f64).into())
            ]
        )
    );
}
