//! Lesson `barrier` (beyond the seed): `threading.Barrier(n, action)`. std's `Barrier` only
//! names a leader once everyone is released; [`sync::Barrier`](crate::Barrier) runs the action
//! before anyone passes, and breaks (instead of waiting forever) when a party times out.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, ensure};
use lesson::{Activity, Cx};

use crate::{Barrier, BrokenBarrier};

/// How many threads meet at the barrier.
pub const PARTIES: usize = 3;

/// std's barrier, for comparison: one of the parties is told it is the leader, after all of
/// them have been released. Returns how many leaders there were.
fn std_barrier(cx: &Cx) -> anyhow::Result<usize> {
    let barrier = std::sync::Barrier::new(PARTIES);
    let leaders = AtomicUsize::new(0);
    std::thread::scope(|s| -> anyhow::Result<()> {
        for i in 1..=PARTIES {
            let (barrier, leaders) = (&barrier, &leaders);
            std::thread::Builder::new()
                .name(format!("std-{i}"))
                .spawn_scoped(s, move || {
                    cx.sleep(i as f64);
                    cx.say("[std] arrived");
                    let result = {
                        let _waiting = cx.span(Activity::Wait, "wait(): at std's barrier");
                        barrier.wait()
                    };
                    if result.is_leader() {
                        leaders.fetch_add(1, Ordering::SeqCst);
                        cx.say("[std] is_leader() -> true (the others are already on their way)");
                    }
                    cx.say("[std] released");
                })
                .context("spawning a runner")?;
        }
        Ok(())
    })?;
    Ok(leaders.into_inner())
}

/// Python's semantics: the last to arrive runs the action, then everyone is released.
/// Returns the arrival indexes the parties got.
fn with_action(cx: &Cx) -> anyhow::Result<Vec<usize>> {
    let actions = Arc::new(AtomicUsize::new(0));
    let barrier = {
        let (cx, actions) = (cx.clone(), actions.clone());
        Barrier::with_action(PARTIES, move || {
            cx.say("everyone is here: I run the action before anyone passes");
            cx.sleep(0.5);
            actions.fetch_add(1, Ordering::SeqCst);
            cx.say("action done");
        })
    };
    let indexes = std::thread::scope(|s| -> anyhow::Result<Vec<usize>> {
        let runners = (1..=PARTIES)
            .map(|i| {
                let barrier = &barrier;
                std::thread::Builder::new()
                    .name(format!("runner-{i}"))
                    .spawn_scoped(s, move || -> Result<usize, BrokenBarrier> {
                        cx.sleep(i as f64);
                        cx.say("at the barrier");
                        let index = {
                            let _waiting = cx.span(Activity::Wait, "wait(): at the barrier");
                            barrier.wait()?
                        };
                        cx.say(format!("past the barrier (arrival index {index})"));
                        Ok(index)
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .context("spawning a runner")?;
        runners
            .into_iter()
            .map(|t| {
                t.join()
                    .map_err(|_| anyhow::anyhow!("a runner panicked"))?
                    .context("the barrier broke")
            })
            .collect()
    })?;
    ensure!(
        actions.load(Ordering::SeqCst) == 1,
        "the action ran {} times",
        actions.load(Ordering::SeqCst)
    );
    Ok(indexes)
}

/// Two of three parties arrive; their waits time out and break the barrier for both.
fn timeout_breaks(cx: &Cx) -> anyhow::Result<()> {
    let barrier = Barrier::new(PARTIES);
    let outcomes = std::thread::scope(|s| -> anyhow::Result<Vec<_>> {
        let waiters = (1..PARTIES)
            .map(|i| {
                let barrier = &barrier;
                std::thread::Builder::new()
                    .name(format!("party-{i}"))
                    .spawn_scoped(s, move || {
                        let _waiting = cx.span(Activity::Wait, "wait(timeout=1 s): at the barrier");
                        barrier.wait_timeout(cx.scaled(1.0))
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .context("spawning a runner")?;
        waiters
            .into_iter()
            .map(|t| t.join().map_err(|_| anyhow::anyhow!("a runner panicked")))
            .collect()
    })?;
    for outcome in &outcomes {
        cx.say(format!("a party's wait(timeout=1 s) -> {outcome:?}"));
    }
    ensure!(
        outcomes.iter().all(|o| *o == Err(BrokenBarrier)),
        "a wait did not break: {outcomes:?}"
    );
    cx.say(format!(
        "broken = {}; the third party would get BrokenBarrier at once: {:?}",
        barrier.broken(),
        barrier.wait()
    ));
    ensure!(barrier.broken(), "the barrier is not broken");
    barrier.reset();
    cx.say(format!("reset() -> broken = {}", barrier.broken()));
    ensure!(!barrier.broken(), "reset() left it broken");
    Ok(())
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    cx.explain(
        "std::sync::Barrier: each wait() returns once all 3 have arrived, and one of them is told\n\
         is_leader(). Code the leader runs after wait() runs while the others already go on.",
    );
    let leaders = std_barrier(cx)?;
    ensure!(leaders == 1, "{leaders} leaders");

    cx.explain(
        "threading.Barrier(3, action) runs the action on the last thread to arrive, BEFORE any\n\
         thread is released. sync::Barrier does the same:",
    );
    let mut indexes = with_action(cx)?;
    indexes.sort_unstable();
    cx.say(format!(
        "arrival indexes {indexes:?}: each once; the action finished before anyone passed"
    ));
    ensure!(
        indexes == (0..PARTIES).collect::<Vec<_>>(),
        "indexes {indexes:?}"
    );
    let done = cx.position(None, "action done").context("no action line")?;
    let first_past = cx
        .position(None, "past the barrier")
        .context("no party passed")?;
    ensure!(done < first_past, "a party passed before the action ended");

    cx.explain(
        "std's Barrier has no timeout: if a party never arrives, the others wait forever.\n\
         Python's (and this one's) wait(timeout) breaks the barrier instead:",
    );
    timeout_breaks(cx)
}
