//! Lesson `shared-memory` (beyond the seed: `multiprocessing.Value`): a counter in shared
//! memory, incremented by 4 processes. A plain read, then write, loses updates; the lock or
//! one atomic add does not.

use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::ensure;
use lesson::{Activity, Cx};
use processes::Process;

use super::child;

use crate::{AtomicValue, Value};

/// Processes, and rounds of increments each.
pub const PROCESSES: u64 = 4;
/// Increments per process.
pub const ROUNDS: u64 = 200;

/// A reusable barrier for processes, in shared memory: `arrived` counts, `generation` moves on
/// when the last one arrives. Waiters yield while they spin (4 processes, 2 cores).
#[derive(Clone)]
struct ProcessBarrier {
    arrived: AtomicValue<AtomicU64>,
    generation: AtomicValue<AtomicU64>,
    parties: u64,
}

impl ProcessBarrier {
    fn new(parties: u64) -> std::io::Result<Self> {
        Ok(ProcessBarrier {
            arrived: AtomicValue::new(AtomicU64::new(0))?,
            generation: AtomicValue::new(AtomicU64::new(0))?,
            parties,
        })
    }

    fn wait(&self) {
        let generation = self.generation.load(Ordering::SeqCst);
        if self.arrived.fetch_add(1, Ordering::SeqCst) + 1 == self.parties {
            self.arrived.store(0, Ordering::SeqCst);
            self.generation.fetch_add(1, Ordering::SeqCst);
        } else {
            while self.generation.load(Ordering::SeqCst) == generation {
                std::thread::yield_now();
            }
        }
    }
}

fn run_all(procs: Vec<Process>) -> anyhow::Result<()> {
    let mut procs = procs;
    for p in &mut procs {
        p.start()?;
    }
    for p in &mut procs {
        ensure!(p.join()? == 0, "a child failed");
    }
    Ok(())
}

/// Four children named `Process-{first}` on, each running `body` as one span of work.
fn four(cx: &Cx, first: u64, what: &str, body: impl Fn() + Clone + Send + 'static) -> Vec<Process> {
    (0..PROCESSES)
        .map(|k| {
            let (body, what) = (body.clone(), what.to_owned());
            child(cx, &format!("Process-{}", first + k), move |cx| {
                let _working = cx.span(Activity::Work, what);
                body();
            })
        })
        .collect()
}

/// Read, all meet, write back plus one: every round, all 4 read the same value, so 3 of every
/// 4 increments are lost. The final count (`ROUNDS`, where `4 * ROUNDS` was meant).
pub fn lost_updates(cx: &Cx) -> anyhow::Result<u64> {
    let counter = AtomicValue::new(AtomicU64::new(0))?;
    let barrier = ProcessBarrier::new(PROCESSES)?;
    let procs = {
        let (counter, barrier) = (counter.clone(), barrier.clone());
        four(cx, 1, "200 increments: read, meet, write", move || {
            for _ in 0..ROUNDS {
                let v = counter.load(Ordering::SeqCst);
                barrier.wait();
                counter.store(v + 1, Ordering::SeqCst);
                barrier.wait();
            }
        })
    };
    run_all(procs)?;
    Ok(counter.load(Ordering::SeqCst))
}

/// The same increments under the value's process-shared lock.
pub fn with_lock(cx: &Cx) -> anyhow::Result<u64> {
    let counter = Value::new(0u64)?;
    let procs = {
        let counter = counter.clone();
        four(cx, 5, "200 increments under the lock", move || {
            for _ in 0..ROUNDS {
                // A failed lock leaves the count short, which the lesson reports.
                let Ok(mut v) = counter.lock() else { return };
                let read = *v;
                std::thread::yield_now();
                *v = read + 1;
            }
        })
    };
    run_all(procs)?;
    Ok(counter.get()?)
}

/// The same increments as one atomic `fetch_add` each.
pub fn with_atomic(cx: &Cx) -> anyhow::Result<u64> {
    let counter = AtomicValue::new(AtomicU64::new(0))?;
    let procs = {
        let counter = counter.clone();
        four(cx, 9, "200 fetch_adds", move || {
            for _ in 0..ROUNDS {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    run_all(procs)?;
    Ok(counter.load(Ordering::SeqCst))
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    let want = PROCESSES * ROUNDS;
    let lost = lost_updates(cx)?;
    cx.say(format!(
        "{PROCESSES} processes x {ROUNDS} increments, read then write: counter = {lost} (wanted {want})"
    ));
    ensure!(lost == ROUNDS, "expected exactly {ROUNDS}, got {lost}");
    let locked = with_lock(cx)?;
    cx.say(format!(
        "the same under ipc::Value's lock: counter = {locked}"
    ));
    ensure!(locked == want, "locked counter {locked}");
    let atomic = with_atomic(cx)?;
    cx.say(format!(
        "the same with fetch_add on ipc::AtomicValue: counter = {atomic}"
    ));
    ensure!(atomic == want, "atomic counter {atomic}");
    cx.explain(
        "The lost updates are forced: all four read, meet at a barrier in shared memory, then\n\
         all write, so each round counts once. Python's Value(..., lock=True) has the same trap:\n\
         `v.value += 1` is a read and a write; only `with v.get_lock():` makes it one step.",
    );
    Ok(())
}
