//! Lesson `sizes` (队列的其他方法): `qsize`, `full`, `empty`, `put_nowait`, why their answers
//! are only snapshots, and two things the seed's section gets wrong: its `while 1: q.get()`
//! loop never ends, and `join()` does not wait "until the queue is empty" but until every item
//! has been `task_done()`.

use std::sync::{Barrier, mpsc};

use anyhow::{Context, bail, ensure};
use lesson::{Activity, Cx};

use super::seed_loop_then_shutdown;
use crate::{GetError, PutError, Queue};

/// The seed's three items.
pub const ITEMS: [&str; 3] = ["a", "b", "c"];

fn report<T: Send>(cx: &Cx, what: &str, q: &Queue<T>) {
    cx.say(format!(
        "{what}: qsize {}, full {}, empty {}",
        q.qsize(),
        q.full(),
        q.empty()
    ));
}

/// With the queue empty and its items never `task_done()`: `join()` still waits, and returns
/// only after the last `task_done()`.
fn join_waits_for_task_done(cx: &Cx, q: &Queue<&str>) -> anyhow::Result<()> {
    cx.explain(
        "The seed's comment says q.join() means 'wait until the queue is empty'. The queue is\n\
         empty now, and nobody called task_done() (the seed never does):",
    );
    let (qsize, unfinished) = (q.qsize(), q.unfinished());
    cx.say(format!(
        "qsize {qsize}, empty {}, unfinished tasks {unfinished}",
        q.empty()
    ));
    ensure!(
        qsize == 0 && unfinished == ITEMS.len(),
        "expected an empty queue with {} unfinished tasks",
        ITEMS.len()
    );
    let (started_tx, started_rx) = mpsc::channel::<()>();
    std::thread::scope(|s| -> anyhow::Result<()> {
        let joiner = std::thread::Builder::new()
            .name("joiner".into())
            .spawn_scoped(s, move || {
                let joined = {
                    let _waiting = cx.span(Activity::Wait, "join(): unfinished tasks");
                    let _ = started_tx.send(());
                    q.join_timeout(cx.long_wait())
                };
                cx.say(if joined {
                    "join() returned"
                } else {
                    "join() never returned"
                });
                joined
            })
            .context("spawning the joiner")?;
        started_rx
            .recv_timeout(cx.long_wait())
            .context("the joiner never started")?;
        let still_waits = {
            let _waiting = cx.span(Activity::Wait, "join(timeout=1 s)");
            !q.join_timeout(cx.scaled(1.0))
        };
        cx.say(format!(
            "join(timeout=1 s) -> {}: qsize {}, yet join() waits, and so does the joiner's",
            if still_waits {
                "timed out"
            } else {
                "returned?!"
            },
            q.qsize()
        ));
        ensure!(still_waits, "join() returned with tasks unfinished");
        for k in 1..=ITEMS.len() {
            // Said before the call: the last call is what lets the joiner's join() return.
            cx.say(format!("task_done() {k} of {}", ITEMS.len()));
            q.task_done()?;
        }
        let joined = joiner
            .join()
            .map_err(|_| anyhow::anyhow!("the joiner panicked"))?;
        ensure!(joined, "join() did not return after the last task_done()");
        Ok(())
    })?;
    cx.explain(
        "join() waits until every item put has been task_done(), not until the queue is empty:\n\
         an item taken but not yet dealt with still counts.",
    );
    Ok(())
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    let q = Queue::new(4);
    report(cx, "new Queue(4)", &q);
    for x in ITEMS {
        q.put(x).map_err(|e| anyhow::anyhow!("put: {e}"))?;
    }
    report(cx, "after put a, b, c", &q);

    cx.explain(
        "The seed's loop: `while 1: data = q.get()`, then print qsize, full and empty. After 'c'\n\
         its get() waits for an item nobody will put: the program never ends. A consumer thread\n\
         runs that loop; main shows it waiting, looks at join(), then shuts the queue down:",
    );
    let got = seed_loop_then_shutdown(
        cx,
        &q,
        |x| report(cx, &format!("get() -> {x}"), &q),
        || join_waits_for_task_done(cx, &q),
    )?;
    ensure!(got == ITEMS, "FIFO order broken: {got:?}");

    cx.explain("put_nowait(x) is put(x, block=False): on a full queue it fails at once.");
    let q = Queue::new(4);
    for x in ITEMS {
        q.put(x).map_err(|e| anyhow::anyhow!("put: {e}"))?;
    }
    q.try_put("d")
        .map_err(|e| anyhow::anyhow!("put_nowait: {e}"))?;
    report(cx, "a, b, c, then put_nowait(d)", &q);
    ensure!(q.full(), "four items in Queue(4) is full");
    match q.try_put("e") {
        Err(PutError::Full(_)) => cx.say("put_nowait(e) -> Full"),
        other => bail!("put_nowait on a full queue gave {other:?}"),
    }

    cx.explain(
        "Each answer is true when it is computed and may be false by the time you use it.\n\
         Two threads look at a queue with one item, both see empty() == false, then both take:",
    );
    let q = Queue::new(0);
    q.put(1).map_err(|e| anyhow::anyhow!("put: {e}"))?;
    let both_looked = Barrier::new(2);
    let results = std::thread::scope(|s| {
        let ts = ["taker-1", "taker-2"].map(|name| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn_scoped(s, || {
                    let looked_empty = q.empty();
                    {
                        let _waiting =
                            cx.span(Activity::Wait, "until both have looked (a barrier)");
                        both_looked.wait();
                    }
                    let got = q.try_get();
                    cx.say(format!("empty() said {looked_empty}; try_get() -> {got:?}"));
                    (looked_empty, got)
                })
        });
        ts.into_iter()
            .map(|t| {
                t.context("spawning")?
                    .join()
                    .map_err(|_| anyhow::anyhow!("a taker panicked"))
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    let saw_item = results.iter().filter(|(empty, _)| !empty).count();
    let got = results.iter().filter(|(_, g)| g.is_ok()).count();
    let missed = results
        .iter()
        .filter(|(_, g)| *g == Err(GetError::Empty))
        .count();
    cx.say(format!(
        "{saw_item} threads saw an item, {got} got it, {missed} found the queue empty"
    ));
    ensure!(
        saw_item == 2 && got == 1 && missed == 1,
        "expected both to see it and one to get it"
    );
    cx.explain(
        "So `if not q.empty(): q.get()` can block forever. Ask the queue in one step instead:\n\
         try_get() (get_nowait) or get_timeout() answer and act at once.",
    );
    Ok(())
}
