//! Lesson `apply` (进程池): the same tasks with `apply`, which waits for each result: one after
//! another, whatever the pool's size.

use std::time::Instant;

use anyhow::ensure;
use lesson::{Activity, Cx};

use crate::Pool;
use crate::lessons::tasks::{Hello, gauge};

/// Tasks in this lesson.
pub const COUNT: u32 = 5;

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    if let Some(g) = gauge() {
        g.reset();
    }
    let mut pool: Pool<Hello> = Pool::new(5)?;
    let t = Instant::now();
    let talk = cx.handoff();
    for i in 0..COUNT {
        let waiting = cx.span(Activity::Wait, format!("apply(foo, ({i},))"));
        let r = pool.apply(Hello {
            i,
            seconds: 1.0,
            talk: talk.clone(),
        })?;
        waiting.end();
        cx.say(format!("apply -> {r}"));
    }
    let most = gauge().map_or(0, |g| g.most());
    cx.say(format!(
        "{COUNT} applies of 1 s each took {:.2} s (scaled); at most {most} task ran at once",
        t.elapsed().as_secs_f64()
    ));
    ensure!(most <= 1, "apply ran tasks in parallel?!");
    pool.close();
    let waiting = cx.span(Activity::Wait, "pool.join()");
    pool.join()?;
    waiting.end();
    cx.explain(
        "apply() is apply_async(...).get(): a loop of apply is serial. Use apply_async or map.",
    );
    Ok(())
}
