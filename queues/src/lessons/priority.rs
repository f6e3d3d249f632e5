//! Lesson `priority` (队列 调用三): `PriorityQueue`: the lowest priority number comes out first.

use anyhow::{bail, ensure};
use lesson::Cx;

use crate::{GetError, Prioritized, PriorityQueue};

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    let q = PriorityQueue::new(3);
    for (p, v) in [(2, "你好"), (3, "123, 'aa'"), (1, "{\"name\": \"lucky\"}")] {
        q.put(Prioritized::new(p, v))
            .map_err(|e| anyhow::anyhow!("put: {e}"))?;
        cx.say(format!("put([{p}, {v}])"));
    }
    let mut order = Vec::new();
    while let Ok(item) = q.try_get() {
        cx.say(format!(
            "get() -> priority {}: {}",
            item.priority, item.value
        ));
        order.push(item.priority);
    }
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
