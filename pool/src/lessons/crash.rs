//! Lesson `crash` (beyond the seed, where Python's Pool hangs): a task panics, and a worker is
//! killed mid-task. The panic is that task's error and the worker lives on; the killed
//! worker's task fails with WorkerDied, a new worker takes its place, the rest finish.

use anyhow::{bail, ensure};
use lesson::{Activity, Cx};

use crate::lessons::tasks::{Trouble, until};
use crate::{Pool, TaskError};

/// What happened: each task's result, and the pool's workers before and after.
#[derive(Debug)]
pub struct Aftermath {
    /// Per task, in order.
    pub results: Vec<Result<u32, TaskError>>,
    /// Worker pids before.
    pub before: Vec<i32>,
    /// Worker pids after.
    pub after: Vec<i32>,
    /// Live workers after.
    pub live: usize,
}

/// Ten tasks on Pool(2): number 3 panics, number 6 kills its worker.
pub fn trouble(cx: &Cx) -> anyhow::Result<Aftermath> {
    let mut pool: Pool<Trouble> = Pool::new(2)?;
    let before = pool.worker_pids();
    let handles = (0..10u32)
        .map(|i| {
            pool.apply_async(match i {
                3 => Trouble::Panic(i),
                6 => Trouble::KillWorker(i),
                _ => Trouble::Slow(i, 2),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let waiting = cx.span(Activity::Wait, "[r.get() for r in results]");
    let results = handles.into_iter().map(|h| h.get()).collect();
    waiting.end();
    // The last results can come from the surviving worker while the dead one's replacement is
    // still being forked: wait for it (with a deadline) before looking at the workers.
    let replaced = cx.span(Activity::Wait, "until the dead worker is replaced");
    until(cx.long_wait(), || pool.live_workers() >= 2);
    replaced.end();
    let after = pool.worker_pids();
    let live = pool.live_workers();
    pool.close();
    pool.join()?;
    Ok(Aftermath {
        results,
        before,
        after,
        live,
    })
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    let a = trouble(cx)?;
    for (i, r) in a.results.iter().enumerate() {
        match r {
            Ok(v) => cx.say(format!("task {i}: Ok({v})")),
            Err(e) => cx.say(format!("task {i}: Err({e})")),
        }
    }
    cx.say(format!(
        "workers before {:?}, after {:?}: {} alive",
        a.before, a.after, a.live
    ));
    ensure!(
        matches!(a.results[3], Err(TaskError::Panicked(_))),
        "task 3 should have panicked"
    );
    match a.results[6] {
        Err(TaskError::WorkerDied {
            signal: Some(9), ..
        }) => {}
        ref other => bail!("task 6 should report its worker killed by signal 9: {other:?}"),
    }
    ensure!(
        a.results
            .iter()
            .enumerate()
            .all(|(i, r)| i == 3 || i == 6 || r == &Ok(i as u32)),
        "the other tasks should succeed"
    );
    ensure!(a.live == 2, "the pool should be back to 2 workers");
    ensure!(
        a.before != a.after,
        "the dead worker should have been replaced"
    );
    cx.explain(
        "Python's multiprocessing.Pool hangs forever when a worker dies mid-task (the task is\n\
         never answered); concurrent.futures raises BrokenProcessPool and gives up the pool.\n\
         This pool fails that one task and carries on.",
    );
    Ok(())
}
