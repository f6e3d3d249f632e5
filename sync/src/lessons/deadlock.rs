//! Lesson `deadlock` (死锁(递归锁)): two locks taken in opposite orders by five threads. The
//! seed's program hangs forever; here the deadlock is detected and printed, then fixed twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, ensure};
use lesson::Cx;

use crate::{Deadlock, LockGraph, RLock, TrackedMutex};

/// The seed's `actionA`: A, pause 3 s, then B.
fn action_a(cx: &Cx, a: &TrackedMutex<()>, b: &TrackedMutex<()>) -> Result<(), Deadlock> {
    let _a = a.lock()?;
    cx.say("doLockA");
    cx.sleep(3.0);
    let _b = b.lock()?;
    cx.say("doLockB");
    Ok(())
}

/// The seed's `actionB`: B, pause 1 s, then A — the opposite order.
fn action_b(cx: &Cx, a: &TrackedMutex<()>, b: &TrackedMutex<()>) -> Result<(), Deadlock> {
    let _b = b.lock()?;
    cx.say("doLockB");
    cx.sleep(1.0);
    let _a = a.lock()?;
    cx.say("doLockA");
    Ok(())
}

/// Run the seed's five threads (actionA, pause 0.5 s, actionB) with `first` and `second` as the
/// two actions. A thread that finds a deadlock reports it and stops (its guards drop, releasing
/// what it held), so the others can finish. Returns the deadlocks found.
pub fn five_threads(cx: &Cx, lock_order_fixed: bool) -> anyhow::Result<Vec<Deadlock>> {
    let graph = LockGraph::new();
    let a = graph.mutex("lockA", ());
    let b = graph.mutex("lockB", ());
    let found = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| -> anyhow::Result<()> {
        for i in 1..=5 {
            let (a, b, found) = (&a, &b, &found);
            std::thread::Builder::new()
                .name(format!("Thread-{i}"))
                .spawn_scoped(s, move || {
                    let outcome = action_a(cx, a, b).and_then(|()| {
                        cx.sleep(0.5);
                        if lock_order_fixed {
                            action_a(cx, a, b)
                        } else {
                            action_b(cx, a, b)
                        }
                    });
                    if let Err(deadlock) = outcome {
                        cx.say(format!("{deadlock} -> I give up and release my locks"));
                        found
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(deadlock);
                    }
                })
                .context("spawning a thread")?;
        }
        Ok(())
    })?;
    Ok(found.into_inner().unwrap_or_else(|e| e.into_inner()))
}

/// Fix (a), the seed's: one reentrant lock used under both names.
pub fn one_rlock(cx: &Cx) -> anyhow::Result<usize> {
    let lock = Arc::new(RLock::new());
    let finished = AtomicUsize::new(0);
    std::thread::scope(|s| -> anyhow::Result<()> {
        for i in 1..=5 {
            let (lock_a, lock_b, finished) = (&*lock, &*lock, &finished);
            std::thread::Builder::new()
                .name(format!("Thread-{i}"))
                .spawn_scoped(s, move || {
                    {
                        let _a = lock_a.acquire();
                        cx.say(format!("doLockA (count {})", lock_a.count()));
                        cx.sleep(3.0);
                        let _b = lock_b.acquire();
                        cx.say(format!("doLockB (count {})", lock_b.count()));
                    }
                    cx.sleep(0.5);
                    {
                        let _b = lock_b.acquire();
                        cx.say(format!("doLockB (count {})", lock_b.count()));
                        cx.sleep(1.0);
                        let _a = lock_a.acquire();
                        cx.say(format!("doLockA (count {})", lock_a.count()));
                    }
                    finished.fetch_add(1, Ordering::SeqCst);
                })
                .context("spawning a thread")?;
        }
        Ok(())
    })?;
    Ok(finished.load(Ordering::SeqCst))
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    cx.explain(
        "The seed: 5 threads; each runs actionA (lock A, pause 3 s, lock B), pauses 0.5 s, then\n\
         actionB (lock B, pause 1 s, lock A). Thread-1 finishes actionA and takes B while another\n\
         thread holds A and waits for B. In Python that hangs forever. Here each lock records its\n\
         holder and waiters; a thread that would wait forever sees the cycle and gives up.",
    );
    let found = five_threads(cx, false)?;
    cx.say(format!(
        "the seed's lock order: {} deadlock(s) detected; every thread ended",
        found.len()
    ));
    ensure!(!found.is_empty(), "the seed's lock order did not deadlock");

    cx.explain(
        "Fix (a), the seed's: lockA = lockB = RLock(). The same thread may re-take it (the\n\
         count goes 1, 2), others wait until it is back to 0. It works only because it is ONE\n\
         lock under two names, so each action is exclusive; two separate RLocks taken in\n\
         opposite orders deadlock exactly like two Locks.",
    );
    let finished = one_rlock(cx)?;
    cx.say(format!(
        "one RLock under both names: {finished} of 5 threads finished"
    ));
    ensure!(finished == 5, "only {finished} threads finished");

    cx.explain(
        "Fix (b), the usual one: every thread takes the locks in one global order (A, then B).\n\
         No cycle can form, and the two locks still let unrelated work run in parallel.",
    );
    let found = five_threads(cx, true)?;
    cx.say(format!(
        "one lock order (A before B): {} deadlock(s); all 5 threads finished",
        found.len()
    ));
    ensure!(
        found.is_empty(),
        "a deadlock with a single lock order: {found:?}"
    );
    Ok(())
}
