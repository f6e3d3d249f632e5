//! Lesson `pool` (进程池): Pool(5) runs many tasks, five at a time; `apply_async` with a
//! callback that runs in the parent.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, ensure};
use lesson::{Activity, Cx};

use crate::lessons::tasks::{Hello, gauge};
use crate::{Builder, Pool, TaskError};

/// Tasks, unless `--count` says otherwise (the seed runs 100).
pub const DEFAULT_COUNT: usize = 20;

/// What the run saw: results in callback order, the pids the callbacks ran in, the most tasks
/// running at once.
#[derive(Debug)]
pub struct Seen {
    /// `Hello i` in the order the callbacks ran.
    pub results: Vec<String>,
    /// The pid of every callback.
    pub callback_pids: Vec<u32>,
    /// The high-water mark of tasks running at once.
    pub most: u64,
    /// The pool's workers as (pid, name), before it was closed.
    pub workers: Vec<(i32, String)>,
    /// For each task: how many tasks had finished when it started (`None` if not known: the
    /// gauge tracks the first [`Gauge::TRACKED`](crate::lessons::tasks::Gauge::TRACKED)).
    pub finished_before: Vec<Option<u32>>,
}

impl Seen {
    /// The tasks that started before any task had finished, in task order.
    pub fn first_wave(&self) -> Vec<usize> {
        (0..self.finished_before.len())
            .filter(|&j| self.finished_before[j] == Some(0))
            .collect()
    }

    /// The first task that started before a worker was free for it, had the workers taken
    /// their tasks one at a time in order (Python's order): task `j` started while fewer than
    /// `j - (workers - 1)` tasks had finished.
    pub fn out_of_turn(&self, workers: usize) -> Option<(usize, u32)> {
        self.finished_before
            .iter()
            .enumerate()
            .find_map(|(j, b)| b.filter(|&b| (b as usize) + workers <= j).map(|b| (j, b)))
    }
}

/// Run `count` Hello tasks on Pool(`workers`) with a callback each.
///
/// # Errors
///
/// If the pool cannot start, or refuses a task.
pub fn run_pool(cx: &Cx, workers: usize, count: usize) -> anyhow::Result<Seen> {
    let g = gauge();
    if let Some(g) = g {
        g.reset();
    }
    // A worker is handed several tasks at once only while they take under a millisecond; at
    // a scale that makes the seed's 1 s that short, max_batch(1) keeps Python's order.
    let tiny = cx.scaled(1.0) < Duration::from_millis(2);
    let mut builder = Builder::default().processes(workers);
    if tiny {
        cx.say("each task sleeps under 2 ms at this scale: max_batch(1) keeps Python's order");
        builder = builder.max_batch(1);
    }
    let mut pool: Pool<Hello> = builder.build()?;
    let seen = Arc::new(Mutex::new((Vec::new(), Vec::new())));
    let talk = cx.handoff();
    for i in 0..count as u32 {
        let (c, seen) = (cx.clone(), seen.clone());
        pool.apply_async_with(
            Hello {
                i,
                seconds: 1.0,
                talk: talk.clone(),
            },
            move |result| {
                c.say(format!(
                    "callback: {result} (in the parent, pid {})",
                    std::process::id()
                ));
                if let Ok(mut s) = seen.lock() {
                    s.0.push(result.clone());
                    s.1.push(std::process::id());
                }
            },
            |e: &TaskError| eprintln!("a task failed: {e}"),
        )?;
    }
    let workers = pool.workers();
    // close, then join: no new tasks, wait for the rest (Python: "the order is fixed").
    pool.close();
    let waiting = cx.span(Activity::Wait, "pool.join()");
    pool.join()?;
    waiting.end();
    let (results, callback_pids) =
        std::mem::take(&mut *seen.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(Seen {
        results,
        callback_pids,
        most: g.map_or(0, |g| g.most()),
        workers,
        finished_before: g.map_or_else(Vec::new, |g| g.finished_before(count)),
    })
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    let count = cx.count_or(DEFAULT_COUNT);
    cx.say(format!("main: pid {}", std::process::id()));
    cx.explain(format!(
        "Pool(5), {count} tasks of 1 s each (--count 100 for the seed's), apply_async with a\n\
         callback. Workers print their pid after the sleep; every callback runs in the parent."
    ));
    let seen = run_pool(cx, 5, count)?;
    ensure!(
        seen.finished_before.len() == count,
        "no gauge in shared memory: the tasks' starts were not seen"
    );
    let first = seen.first_wave();
    cx.say(format!(
        "started before any task had finished: tasks {first:?}; every later task started only \
         when a worker was free"
    ));
    if let Some((j, b)) = seen.out_of_turn(5) {
        bail!("task {j} started when only {b} tasks had finished: it was not Python's order");
    }
    // The first task to finish started before any had finished: the wave is never empty.
    ensure!(
        !first.is_empty() && first.iter().all(|&j| j < 5),
        "the first wave {first:?} is empty or holds a task past the first five"
    );
    cx.explain(
        "Python's order: each worker takes its next task when it is free, from one queue, in the\n\
         order submitted (tasks 0-4, then 5-9, ...: the seed's 'five at a time'). This pool\n\
         does the same for tasks of a millisecond or more; only much shorter ones travel to a\n\
         worker in batches (Builder::max_batch).",
    );
    let parent = std::process::id();
    cx.say(format!(
        "{} results; every callback ran in pid {parent}: {}; at most {} tasks ran at once",
        seen.results.len(),
        seen.callback_pids.iter().all(|&p| p == parent),
        seen.most
    ));
    ensure!(seen.results.len() == count, "results missing");
    ensure!(
        seen.callback_pids.iter().all(|&p| p == parent),
        "a callback ran elsewhere"
    );
    ensure!(seen.most <= 5, "more than 5 tasks ran at once");
    Ok(())
}
