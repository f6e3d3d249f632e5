//! Lesson `sizes` (队列的其他方法): `qsize`, `full`, `empty`, `put_nowait` along the way, and
//! why their answers are only snapshots.

use std::sync::Barrier;

use anyhow::{Context, bail, ensure};
use lesson::Cx;

use crate::{GetError, PutError, Queue};

fn report<T: Send>(cx: &Cx, what: &str, q: &Queue<T>) {
    cx.say(format!(
        "{what}: qsize {}, full {}, empty {}",
        q.qsize(),
        q.full(),
        q.empty()
    ));
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    let q = Queue::new(4);
    report(cx, "new Queue(4)", &q);
    for x in ["a", "b", "c"] {
        q.put(x).map_err(|e| anyhow::anyhow!("put: {e}"))?;
    }
    report(cx, "after put a, b, c", &q);
    q.try_put("d")
        .map_err(|e| anyhow::anyhow!("put_nowait: {e}"))?;
    report(cx, "after put_nowait(d)", &q);
    ensure!(q.full(), "four items in Queue(4) is full");
    match q.try_put("e") {
        Err(PutError::Full(_)) => cx.say("put_nowait(e) -> Full"),
        other => bail!("put_nowait on a full queue gave {other:?}"),
    }
    while let Ok(x) = q.try_get() {
        report(cx, &format!("get() -> {x}"), &q);
    }
    ensure!(q.empty() && !q.full(), "drained queue should be empty");

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
                    both_looked.wait();
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
