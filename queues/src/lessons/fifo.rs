//! Lesson `fifo` (队列 调用一): `Queue(maxsize=3)`: first in, first out; a put on a full queue
//! waits; `try_put` and `try_get` say Full and Empty instead of waiting.

use std::sync::mpsc;

use anyhow::{Context, bail, ensure};
use lesson::{Activity, Cx};

use crate::{GetError, PutError, Queue};

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    let q = Queue::new(3);
    for x in [10, 9, 8] {
        q.put(x).map_err(|e| anyhow::anyhow!("put({x}): {e}"))?;
        cx.say(format!("put({x}) -> qsize {}", q.qsize()));
    }
    let timed = {
        let _waiting = cx.span(Activity::Wait, "put(7, timeout=1 s): the queue is full");
        q.put_timeout(7, cx.scaled(1.0))
    };
    match timed {
        Err(PutError::Full(7)) => cx.say("put(7) on a full queue waited 1 s -> Full (timed out)"),
        other => bail!("put_timeout on a full queue gave {other:?}"),
    }
    // The consumer makes room only once main is waiting on the full queue (main says so on
    // `waiting` as its wait begins), so main's put(7) waits for it on any machine.
    let (waiting_tx, waiting_rx) = mpsc::channel::<()>();
    std::thread::scope(|s| -> anyhow::Result<()> {
        // Moved in: dropped if main fails early, so the consumer is not left waiting.
        let waiting_tx = waiting_tx;
        let q = &q;
        std::thread::Builder::new()
            .name("consumer".into())
            .spawn_scoped(s, move || {
                if waiting_rx.recv_timeout(cx.long_wait()).is_err() {
                    cx.say("main never waited on the full queue");
                    return;
                }
                cx.sleep(1.0);
                // Said before the get: the get is what lets put(7) return, so this line is
                // certain to come before main's.
                cx.say("get(), making room");
                match q.get() {
                    Ok(x) => cx.say(format!("got {x}")),
                    Err(e) => cx.say(format!("get() failed: {e}")),
                }
            })
            .context("spawning the consumer")?;
        cx.say("put(7) again, without a timeout: waits for room");
        match q.try_put(7) {
            Err(PutError::Full(7)) => {
                let _waiting = cx.span(Activity::Wait, "put(7): the queue is full");
                let _ = waiting_tx.send(());
                q.put(7).map_err(|e| anyhow::anyhow!("put(7): {e}"))?;
            }
            other => bail!("put(7) on a full queue gave {other:?} at once"),
        }
        cx.say("put(7) returned: the consumer made room");
        Ok(())
    })?;
    match q.try_put(6) {
        Err(PutError::Full(6)) => cx.say("try_put(6) -> Full(6): the item comes back"),
        other => bail!("try_put on a full queue gave {other:?}"),
    }
    let mut drained = Vec::new();
    loop {
        match q.try_get() {
            Ok(x) => {
                cx.say(format!("try_get() -> {x}"));
                drained.push(x);
            }
            Err(GetError::Empty) => {
                cx.say("try_get() -> Empty: done");
                break;
            }
            Err(e) => bail!("try_get: {e}"),
        }
    }
    ensure!(drained == [9, 8, 7], "FIFO order broken: {drained:?}");
    cx.explain(
        "The seed loops `while 1: q.get(block=False)` and ends with an uncaught queue.Empty;\n\
         with a blocking get() it would wait forever. Here the loop ends on Empty.",
    );
    Ok(())
}
