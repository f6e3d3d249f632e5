//! Lesson `condition` (beyond the seed): `threading.Condition` is a `Condvar` waited on a
//! predicate, next to the `Mutex` whose data the predicate reads.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};

use anyhow::{Context, ensure};
use lesson::{Activity, Cx};

use super::Held;

/// How many items the producer makes.
pub const ITEMS: u32 = 5;

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    cx.explain(
        "The consumer waits on a Condvar with wait_timeout_while(queue is empty): the predicate\n\
         is re-checked after every wake-up, so a spurious wake-up or a notify that came first\n\
         can never make it read an empty queue.",
    );
    let shelf = Mutex::new(VecDeque::new());
    let changed = Condvar::new();
    let got = std::thread::scope(|s| -> anyhow::Result<Vec<u32>> {
        let (shelf, changed) = (&shelf, &changed);
        let consumer = std::thread::Builder::new()
            .name("consumer".into())
            .spawn_scoped(s, move || -> anyhow::Result<Vec<u32>> {
                let mut got = Vec::new();
                while got.len() < ITEMS as usize {
                    let guard = shelf.lock().unwrap_or_else(|e| e.into_inner());
                    // Drawn as a wait only when there is something to wait for.
                    let waiting = guard
                        .is_empty()
                        .then(|| cx.span(Activity::Wait, "wait(): the shelf is empty"));
                    let (mut guard, timeout) = changed
                        .wait_timeout_while(guard, cx.long_wait(), |q| q.is_empty())
                        .unwrap_or_else(|e| e.into_inner());
                    drop(waiting);
                    ensure!(!timeout.timed_out(), "nothing was produced");
                    let item = guard.pop_front().context("woken with an empty shelf")?;
                    drop(guard);
                    cx.say(format!("took item {item}"));
                    got.push(item);
                }
                Ok(got)
            })
            .context("spawning the consumer")?;
        for item in 1..=ITEMS {
            cx.sleep(0.5);
            // Said before the push: once the item is on the shelf the consumer may take it.
            cx.say(format!("put item {item}, notify_one()"));
            {
                let mut held = Held::new(
                    cx,
                    shelf.lock().unwrap_or_else(|e| e.into_inner()),
                    "holding the shelf's lock",
                );
                held.push_back(item);
            }
            changed.notify_one();
        }
        consumer
            .join()
            .map_err(|_| anyhow::anyhow!("the consumer panicked"))?
    })?;
    cx.say(format!(
        "the consumer got {got:?}, in order, never from an empty shelf"
    ));
    ensure!(got == (1..=ITEMS).collect::<Vec<_>>(), "got {got:?}");
    Ok(())
}
