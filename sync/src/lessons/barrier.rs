//! Lesson `barrier` (beyond the seed): `threading.Barrier(n, action)` is `std::sync::Barrier`;
//! the one thread whose `wait()` returns a leader runs the action.

use std::sync::Barrier;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, ensure};
use lesson::Cx;

/// How many threads meet at the barrier.
pub const PARTIES: usize = 3;

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    let barrier = Barrier::new(PARTIES);
    let leaders = AtomicUsize::new(0);
    std::thread::scope(|s| -> anyhow::Result<()> {
        for i in 1..=PARTIES {
            let (barrier, leaders) = (&barrier, &leaders);
            std::thread::Builder::new()
                .name(format!("runner-{i}"))
                .spawn_scoped(s, move || {
                    cx.sleep(i as f64);
                    cx.say("at the barrier");
                    if barrier.wait().is_leader() {
                        leaders.fetch_add(1, Ordering::SeqCst);
                        cx.say("everyone is here: I am the leader and run the action");
                    }
                    cx.say("past the barrier");
                })
                .context("spawning a runner")?;
        }
        Ok(())
    })?;
    let leaders = leaders.into_inner();
    cx.say(format!(
        "{PARTIES} threads: every 'past' line follows every 'at' line; {leaders} leader"
    ));
    ensure!(leaders == 1, "{leaders} leaders");
    cx.explain(
        "std's Barrier has no timeout, abort() or BrokenBarrierError: if a party never arrives,\n\
         the others wait forever. Python's Barrier(timeout=...) breaks instead.",
    );
    Ok(())
}
