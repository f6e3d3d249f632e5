//! Lesson `lifo` (队列 调用二): `LifoQueue`: the last item put is the first one out.

use anyhow::{bail, ensure};
use lesson::Cx;

use crate::{GetError, LifoQueue};

/// The seed's three items (a string, a number, a dict), as text.
pub const ITEMS: [&str; 3] = ["你好", "123", "{\"name\": \"lucky\"}"];

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    let q = LifoQueue::new(4);
    for item in ITEMS {
        q.put(item).map_err(|e| anyhow::anyhow!("put: {e}"))?;
        cx.say(format!("put({item})"));
    }
    let mut out = Vec::new();
    loop {
        match q.try_get() {
            Ok(item) => {
                cx.say(format!("get() -> {item}"));
                out.push(item);
            }
            Err(GetError::Empty) => break,
            Err(e) => bail!("{e}"),
        }
    }
    cx.say("empty: the seed's `while 1: q.get()` would now block forever; we stop");
    let mut reversed = ITEMS;
    reversed.reverse();
    ensure!(out == reversed, "LIFO order broken: {out:?}");
    Ok(())
}
