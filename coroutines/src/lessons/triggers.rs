//! Lesson `triggers` (水平触发 / 边缘触发): level- against edge-triggered epoll.

use anyhow::ensure;
use lesson::Cx;

use crate::multiplex::wakeups;

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    let level = wakeups(false)?;
    let edge = wakeups(true)?;
    cx.say(format!(
        "2 bytes arrive, each wake-up reads 1, 3 waits: level-triggered woke {level} times, edge-triggered {edge}"
    ));
    ensure!(level == 2 && edge == 1, "level {level}, edge {edge}");
    cx.explain(
        "Level-triggered: \"there is data\" is reported as long as it is true. Edge-triggered:\n\
         only when new data arrives. So with edges you must read (non-blocking) until EAGAIN at\n\
         every wake-up, or the byte left behind waits until the next arrival, maybe forever.",
    );
    Ok(())
}
