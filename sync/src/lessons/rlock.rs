//! Lesson `rlock` (死锁(递归锁)): the counter inside an RLock. One thread takes it twice; another
//! is kept out until the count is back to zero. A plain lock taken twice by one thread is a
//! deadlock with itself.

use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, ensure};
use lesson::{Activity, Cx};

use super::Held;
use crate::{LockGraph, RLock};

const PATIENCE: Duration = Duration::from_secs(30);

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    let lock = RLock::new();
    let (step_tx, step_rx) = mpsc::channel::<()>();
    let (report_tx, report_rx) = mpsc::channel::<bool>();
    std::thread::scope(|s| -> anyhow::Result<()> {
        let lock = &lock;
        // The outsider tries the lock each time main says so, and reports whether it got in.
        std::thread::Builder::new()
            .name("outsider".into())
            .spawn_scoped(s, move || {
                while step_rx.recv_timeout(PATIENCE).is_ok() {
                    let got = lock.try_acquire().is_some();
                    cx.say(format!(
                        "try_acquire() -> {}",
                        if got { "got it" } else { "kept out" }
                    ));
                    if report_tx.send(got).is_err() {
                        break;
                    }
                }
            })
            .context("spawning the outsider")?;
        // Owns the sender: when this closure returns (normally or early), the sender drops and
        // the outsider's loop ends, so the scope never waits on it.
        let try_outsider = move || -> anyhow::Result<bool> {
            step_tx.send(()).context("outsider gone")?;
            report_rx.recv_timeout(PATIENCE).context("outsider silent")
        };

        let outer = Held::new(cx, lock.acquire(), "holding the RLock (count 1)");
        cx.say(format!("acquire() -> count {}", lock.count()));
        let inner = Held::new(cx, lock.acquire(), "holding the RLock (count 2)");
        cx.say(format!(
            "acquire() again, same thread -> count {}",
            lock.count()
        ));
        ensure!(lock.count() == 2, "count should be 2");
        ensure!(!try_outsider()?, "the outsider got in at count 2");
        drop(inner);
        cx.say(format!("release() -> count {}", lock.count()));
        ensure!(!try_outsider()?, "the outsider got in at count 1");
        drop(outer);
        cx.say(format!("release() -> count {}", lock.count()));
        ensure!(try_outsider()?, "the outsider was kept out at count 0");
        Ok(())
    })?;

    cx.explain("A plain (non-reentrant) lock taken twice by the same thread waits for itself:");
    let graph = LockGraph::new();
    let plain = graph.mutex("lock", ());
    let _held = Held::new(cx, plain.lock()?, "holding lock");
    let again = {
        let _waiting = cx.span(Activity::Wait, "lock() again: waiting for itself");
        plain.lock()
    };
    match again {
        Ok(_) => anyhow::bail!("a plain lock was taken twice"),
        Err(deadlock) => cx.say(format!("second lock() -> {deadlock}")),
    }
    cx.explain("(Python's Lock would hang there forever; RLock exists for exactly this.)");
    Ok(())
}
