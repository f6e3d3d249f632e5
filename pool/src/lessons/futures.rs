//! Lesson `futures` (beyond the seed: `concurrent.futures`, what Python programmers use for
//! pools today): `submit` hands back a `Future`; `as_completed` gives the futures as they
//! complete, whatever order they were submitted in, and `map` in the order of the inputs; a
//! dead worker breaks a `ProcessPoolExecutor` (Python's rule), where this crate's `Pool` fails
//! only the call that was running.

use std::sync::Arc;

use anyhow::{Context, bail, ensure};
use lesson::{Activity, Cx, Latch};

use crate::TaskError;
use crate::futures::{
    ExecutorError, Future, FutureError, ProcessPoolExecutor, ThreadPoolExecutor, WorkerDeath,
    as_completed,
};
use crate::lessons::tasks::{Trouble, gauge};

/// The order in which part 1 lets its calls finish.
pub const FINISH_ORDER: [usize; 5] = [3, 0, 4, 1, 2];

/// Part 1: five calls on a `ThreadPoolExecutor(5)`, each waiting at its own gate; the lesson
/// opens the gates in [`FINISH_ORDER`] and takes the next future from `as_completed` after
/// each. The calls in the order `as_completed` gave them.
///
/// # Errors
///
/// If the executor cannot start, or a call or `as_completed` does not come back within
/// [`Cx::long_wait`].
pub fn completion_order(cx: &Cx) -> anyhow::Result<Vec<usize>> {
    // Five threads for five calls: each call waits at its gate on a thread of its own.
    let ex = ThreadPoolExecutor::new(5)?;
    let gates: Vec<Arc<Latch>> = (0..5).map(|_| Arc::new(Latch::new(1))).collect();
    let futures: Vec<Future<usize>> = (0..5)
        .map(|i| {
            let (gate, cx) = (gates[i].clone(), cx.clone());
            ex.submit(move || {
                gate.wait(&cx, &format!("call {i} waits for its gate"));
                cx.say(format!("call {i} returns"));
                Ok(i)
            })
        })
        .collect::<Result<_, _>>()?;
    let mut completed = as_completed(futures.clone(), Some(cx.long_wait()));
    let mut order = Vec::new();
    for &i in &FINISH_ORDER {
        cx.sleep(0.5);
        gates[i].count_down();
        let waiting = cx.span(Activity::Wait, "next(as_completed(fs))");
        let f = completed
            .next()
            .context("as_completed ended early")?
            .map_err(|t| anyhow::anyhow!("as_completed: {t}"))?;
        waiting.end();
        let got = f.result(None)?;
        cx.say(format!(
            "opened gate {i}: as_completed gives the future of call {got}"
        ));
        order.push(got);
    }
    let mapped: Vec<usize> = ex
        .map(|x: usize| Ok(x * 10), 0..5, None)?
        .collect::<Result<_, _>>()?;
    cx.say(format!(
        "map(f, 0..5) gives its results in input order: {mapped:?}"
    ));
    ensure!(
        mapped == [0, 10, 20, 30, 40],
        "map lost its order: {mapped:?}"
    );
    ex.shutdown(true, false);
    Ok(order)
}

/// What a worker's death did: each call's outcome, and whether a later `submit` was taken.
#[derive(Debug)]
pub struct Death {
    /// Calls 0..6: 0 and 1 done before; 2, 4, 5 hold; 3 kills its worker.
    pub outcomes: Vec<Result<u32, FutureError>>,
    /// What a `submit` after the death gave.
    pub later: Result<u32, String>,
}

/// Part 2: on two workers, calls 0 and 1 finish; then call 2 holds one worker while call 3
/// kills the other, and calls 4 and 5 wait in the queue. With `rule`, what became of each.
///
/// # Errors
///
/// If the executor cannot start, shared memory for the gauge cannot be made, or call 3 does
/// not fail.
pub fn worker_death(cx: &Cx, rule: WorkerDeath) -> anyhow::Result<Death> {
    let g = gauge().context("no shared memory for the gauge")?;
    g.reset();
    let ex = ProcessPoolExecutor::<Trouble>::builder()
        .max_workers(2)
        .on_worker_death(rule)
        .build()?;
    let done: Vec<_> = (0..2)
        .map(|i| ex.submit(Trouble::Fine(i)))
        .collect::<Result<_, _>>()?;
    for f in &done {
        f.result(Some(cx.long_wait()))?;
    }
    let mut futures = done;
    for call in [
        Trouble::Hold(2),
        Trouble::KillWorker(3),
        Trouble::Hold(4),
        Trouble::Hold(5),
    ] {
        futures.push(ex.submit(call)?);
    }
    // Calls 2, 4 and 5 hold until the death has had its effect: the broken pool fails them
    // at once; the other rule fails call 3 alone, and they go on once released.
    let waiting = cx.span(Activity::Wait, "futures[3].exception()");
    let third = futures[3].exception(Some(cx.long_wait()));
    waiting.end();
    ensure!(
        matches!(third, Ok(Some(_))),
        "call 3 should have failed: {third:?}"
    );
    g.release();
    let outcomes = futures
        .iter()
        .map(|f| f.result(Some(cx.long_wait())))
        .collect();
    let later = match ex.submit(Trouble::Fine(6)) {
        Ok(f) => f.result(Some(cx.long_wait())).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    ex.shutdown(true, false);
    Ok(Death { outcomes, later })
}

fn show(cx: &Cx, d: &Death) {
    let mut why = None;
    for (i, r) in d.outcomes.iter().enumerate() {
        match r {
            Ok(v) => cx.say(format!("call {i}: Ok({v})")),
            Err(FutureError::BrokenProcessPool(m)) => {
                cx.say(format!("call {i}: Err(BrokenProcessPool)"));
                why = Some(m.clone());
            }
            Err(e) => cx.say(format!("call {i}: Err({e})")),
        }
    }
    if let Some(why) = why {
        cx.say(format!("BrokenProcessPool says: {why}"));
    }
    match &d.later {
        Ok(v) => cx.say(format!("a submit after the death: Ok({v})")),
        Err(e) if e.starts_with("broken process pool") => {
            cx.say("a submit after the death: Err(BrokenProcessPool)");
        }
        Err(e) => cx.say(format!("a submit after the death: Err({e})")),
    }
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    cx.explain(
        "1. ThreadPoolExecutor(5), five calls, each waiting at a gate the lesson opens in the\n\
         order 3, 0, 4, 1, 2. as_completed(fs) gives each future as it completes.",
    );
    let order = completion_order(cx)?;
    ensure!(
        order == FINISH_ORDER,
        "as_completed gave {order:?}, the calls finished in {FINISH_ORDER:?}"
    );
    cx.explain(
        "2. ProcessPoolExecutor(2): calls 0 and 1 finish; call 2 holds one worker, call 3\n\
         kills the other (SIGKILL), calls 4 and 5 wait in the queue. Python's rule: the pool is\n\
         broken.",
    );
    let python = worker_death(cx, WorkerDeath::BreakPool)?;
    show(cx, &python);
    for (i, r) in python.outcomes.iter().enumerate() {
        let broken = matches!(r, Err(FutureError::BrokenProcessPool(_)));
        if (i < 2 && r != &Ok(i as u32)) || (i >= 2 && !broken) {
            bail!("Python's rule: call {i} gave {r:?}");
        }
    }
    ensure!(
        python
            .later
            .as_ref()
            .is_err_and(|e| e.starts_with("broken process pool")),
        "a broken pool should refuse: {:?}",
        python.later
    );
    cx.explain(
        "   Every future not done failed with BrokenProcessPool, even those of calls on the\n\
         healthy worker and in the queue, and the executor refuses new calls.\n\
         3. The same on this crate's rule (Pool's, WorkerDeath::FailTask): only the call that\n\
         was running on the dead worker fails; a new worker takes its place.",
    );
    let ours = worker_death(cx, WorkerDeath::FailTask)?;
    show(cx, &ours);
    for (i, r) in ours.outcomes.iter().enumerate() {
        let died = matches!(
            r,
            Err(FutureError::Raised(TaskError::WorkerDied {
                signal: Some(9),
                ..
            }))
        );
        if (i == 3 && !died) || (i != 3 && r != &Ok(i as u32)) {
            bail!("this crate's rule: call {i} gave {r:?}");
        }
    }
    ensure!(
        ours.later == Ok(6),
        "the pool should go on: {:?}",
        ours.later
    );
    let refused = ExecutorError::Shutdown;
    cx.explain(format!(
        "A shut-down executor refuses too, with Python's words: '{refused}'."
    ));
    Ok(())
}
