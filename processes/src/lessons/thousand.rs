//! Lesson `thousand` (进程的基本使用): the seed's experiment, 1000 processes against 1000
//! threads, each printing the time. It runs 200 of each by default (to keep the chapter quick),
//! and says so; `--count 1000` runs the seed's 1000.

use std::time::Instant;

use anyhow::ensure;
use lesson::{Activity, Cx};

use crate::Process;

/// How many of each, unless `--count` says otherwise (the seed uses 1000).
pub const DEFAULT_COUNT: usize = 200;

/// How many children print their line (the rest stay quiet, or the output is all timestamps).
const LOUD: usize = 3;

fn fun(cx: &Cx, i: usize) {
    if i < LOUD {
        cx.say(format!(
            "fun() #{i} at {:?} since the lesson began",
            cx.elapsed()
        ));
    }
}

/// Start `n` processes, then join them all; the exit codes' sum and the time taken.
pub fn processes(cx: &Cx, n: usize) -> anyhow::Result<(i32, std::time::Duration)> {
    let t = Instant::now();
    let mut all: Vec<Process> = (0..n)
        .map(|i| {
            let cx = cx.clone();
            // A forked child speaks under its process name (a thread, below, under its own).
            Process::new(move || fun(&super::as_me(&cx), i))
        })
        .collect();
    let starting = cx.span(Activity::Work, format!("start {n} processes"));
    for p in &mut all {
        p.start()?;
    }
    drop(starting);
    let _waiting = cx.span(Activity::Wait, format!("join {n} processes"));
    let mut sum = 0;
    for p in &mut all {
        sum += p.join()?;
    }
    Ok((sum, t.elapsed()))
}

/// Start `n` threads, then join them all; the time taken.
pub fn threads(cx: &Cx, n: usize) -> anyhow::Result<std::time::Duration> {
    let t = Instant::now();
    let starting = cx.span(Activity::Work, format!("start {n} threads"));
    let all: Vec<_> = (0..n)
        .map(|i| {
            let cx = cx.clone();
            std::thread::Builder::new()
                .name(format!("Thread-{i}"))
                .spawn(move || fun(&cx, i))
        })
        .collect::<Result<_, _>>()?;
    drop(starting);
    let _waiting = cx.span(Activity::Wait, format!("join {n} threads"));
    for h in all {
        h.join().map_err(|_| anyhow::anyhow!("a thread panicked"))?;
    }
    Ok(t.elapsed())
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    let n = cx.count_or(DEFAULT_COUNT);
    cx.explain(format!(
        "{n} processes, then {n} threads, each running fun() (only the first {LOUD} print).{}",
        if n == DEFAULT_COUNT {
            format!(" The seed starts 1000 of each; this runs {DEFAULT_COUNT} by default to keep the chapter quick (--count 1000 for the seed's).")
        } else {
            String::new()
        }
    ));
    let (failures, p) = processes(cx, n)?;
    ensure!(failures == 0, "some children failed");
    cx.say(format!(
        "{n} processes started then joined: {:.1} ms ({:.0} us each)",
        p.as_secs_f64() * 1e3,
        p.as_secs_f64() * 1e6 / n as f64
    ));
    let t = threads(cx, n)?;
    cx.say(format!(
        "{n} threads started then joined: {:.1} ms ({:.0} us each)",
        t.as_secs_f64() * 1e3,
        t.as_secs_f64() * 1e6 / n as f64
    ));
    cx.say(format!(
        "a process cost {:.1}x a thread here",
        p.as_secs_f64() / t.as_secs_f64().max(1e-9)
    ));
    cx.explain(
        "A process copies its parent's page tables and gets its own pid and memory; a thread\n\
         shares everything. In Python the gap is wider: multiprocessing also starts its\n\
         machinery per child (cargo bench -p processes has both sides).",
    );
    Ok(())
}
