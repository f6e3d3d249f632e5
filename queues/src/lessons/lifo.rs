//! Lesson `lifo` (队列 调用二): `LifoQueue`: the last item put is the first one out. The seed
//! reads it with `while 1: q.get()`, a loop that never ends; here it is stopped cleanly.

use anyhow::ensure;
use lesson::Cx;

use super::seed_loop_then_shutdown;
use crate::LifoQueue;

/// The seed's three items (a string, a number, a dict), as text.
pub const ITEMS: [&str; 3] = ["你好", "123", "{\"name\": \"lucky\"}"];

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    let q = LifoQueue::new(4);
    for item in ITEMS {
        q.put(item).map_err(|e| anyhow::anyhow!("put: {e}"))?;
        cx.say(format!("put({item})"));
    }
    cx.explain(
        "The seed's consumer is `while 1: data = q.get(); print(data)`: after the third item its\n\
         get() waits for a fourth that never comes, so the program never ends. A consumer\n\
         thread runs that loop; main shows it waiting, then shuts the queue down to end it:",
    );
    let out =
        seed_loop_then_shutdown(cx, &q, |item| cx.say(format!("get() -> {item}")), || Ok(()))?;
    let mut reversed = ITEMS;
    reversed.reverse();
    ensure!(out == reversed, "LIFO order broken: {out:?}");
    Ok(())
}
