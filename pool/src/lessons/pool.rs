//! Lesson `pool` (进程池): Pool(5) runs many tasks, five at a time; `apply_async` with a
//! callback that runs in the parent.

use std::sync::{Arc, Mutex};

use anyhow::ensure;
use lesson::{Activity, Cx};

use crate::lessons::tasks::{Hello, gauge};
use crate::{Pool, TaskError};

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
}

/// Run `count` Hello tasks on Pool(`workers`) with a callback each.
pub fn run_pool(cx: &Cx, workers: usize, count: usize) -> anyhow::Result<Seen> {
    let g = gauge();
    if let Some(g) = g {
        g.reset();
    }
    let mut pool: Pool<Hello> = Pool::new(workers)?;
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
    })
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    let count = cx.count_or(DEFAULT_COUNT);
    cx.say(format!("main: pid {}", std::process::id()));
    cx.explain(format!(
        "Pool(5), {count} tasks of 1 s each (--count 100 for the seed's), apply_async with a\n\
         callback. Workers print their pid; every callback runs in the parent."
    ));
    let seen = run_pool(cx, 5, count)?;
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
