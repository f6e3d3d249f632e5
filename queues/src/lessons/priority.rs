//! Lesson `priority` (队列 调用三): `PriorityQueue`: the lowest priority number comes out first.
//! The seed reads it with `while 1: q.get()`, a loop that never ends; here it is stopped cleanly.

use anyhow::{bail, ensure};
use lesson::Cx;

use super::seed_loop_then_shutdown;
use crate::{GetError, Prioritized, PriorityQueue};

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    let q = PriorityQueue::new(3);
    for (p, v) in [(2, "你好"), (3, "123, 'aa'"), (1, "{\"name\": \"lucky\"}")] {
        q.put(Prioritized::new(p, v))
            .map_err(|e| anyhow::anyhow!("put: {e}"))?;
        cx.say(format!("put([{p}, {v}])"));
    }
    cx.explain(
        "The seed's consumer is `while 1: data = q.get(); print(data[1])`: after the third item\n\
         its get() waits for a fourth that never comes, so the program never ends. A consumer\n\
         thread runs that loop; main shows it waiting, then shuts the queue down to end it:",
    );
    let got = seed_loop_then_shutdown(
        cx,
        &q,
        |item| {
            cx.say(format!(
                "get() -> priority {}: {}",
                item.priority, item.value
            ));
        },
        || Ok(()),
    )?;
    let order: Vec<i32> = got.iter().map(|item| item.priority).collect();
    ensure!(order == [1, 2, 3], "priority order broken: {order:?}");

    cx.explain(
        "Equal priorities: Python compares the data next ([1, {...}] < [1, {...}] raises\n\
         TypeError for dicts). Prioritized compares the priority only, and the queue hands\n\
         out ties in the order they were put:",
    );
    let q = PriorityQueue::new(0);
    for (p, v) in [
        (5, "first five"),
        (1, "one"),
        (5, "second five"),
        (5, "third five"),
    ] {
        q.put(Prioritized::new(p, v))
            .map_err(|e| anyhow::anyhow!("put: {e}"))?;
    }
    let mut ties = Vec::new();
    loop {
        match q.try_get() {
            Ok(item) => {
                cx.say(format!(
                    "get() -> priority {}: {}",
                    item.priority, item.value
                ));
                ties.push(item.value);
            }
            Err(GetError::Empty) => break,
            Err(e) => bail!("{e}"),
        }
    }
    ensure!(
        ties == ["one", "first five", "second five", "third five"],
        "ties out of order: {ties:?}"
    );
    Ok(())
}
