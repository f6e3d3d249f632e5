//! Lesson `event` (同步对象 event): the boss and the workers. Workers wait for the boss's
//! signal, grumble, clear it and wait again; the boss signals again at the end of the day.

use std::time::Duration;

use anyhow::{Context, bail, ensure};
use lesson::{Activity, Cx};

use crate::Event;

/// How many workers, as in the seed.
pub const WORKERS: usize = 5;

/// `event.wait()`, bounded by the lesson's long wait, drawn on the timeline as a wait.
fn wait_for(cx: &Cx, event: &Event, what: &str) -> bool {
    let _waiting = cx.span(Activity::Wait, what);
    event.wait_timeout(cx.long_wait())
}

fn worker(cx: &Cx, event: &Event) -> anyhow::Result<()> {
    if !wait_for(cx, event, "wait(): for the boss's word") {
        bail!("the boss never spoke");
    }
    cx.say("worker: sigh, overtime again");
    cx.sleep(1.0);
    event.clear();
    if !wait_for(cx, event, "wait(): for the end of the day") {
        bail!("the boss never let us go");
    }
    cx.say("worker: finally, home time");
    Ok(())
}

/// Wait until all the workers wait on `event`, so the demo does not depend on the seed's
/// timing (workers clear 1 s after the first set, the boss sets again after 5 s).
fn until_all_wait(cx: &Cx, event: &Event) -> anyhow::Result<()> {
    let _waiting = cx.span(Activity::Wait, "until all the workers wait");
    let deadline = std::time::Instant::now() + cx.long_wait();
    while event.waiting() < WORKERS {
        ensure!(
            std::time::Instant::now() < deadline,
            "the workers never all waited"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

fn boss(cx: &Cx, event: &Event) -> anyhow::Result<()> {
    until_all_wait(cx, event)?;
    cx.say(format!(
        "boss: everyone works until 22:00 tonight (is_set before: {})",
        event.is_set()
    ));
    event.set();
    cx.sleep(5.0);
    until_all_wait(cx, event)?;
    cx.say(format!(
        "boss: it is 22:00, go home (is_set before: {})",
        event.is_set()
    ));
    event.set();
    Ok(())
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    let event = Event::new();
    std::thread::scope(|s| -> anyhow::Result<()> {
        let event = &event;
        let workers: Vec<_> = (1..=WORKERS)
            .map(|i| {
                std::thread::Builder::new()
                    .name(format!("worker-{i}"))
                    .spawn_scoped(s, move || worker(cx, event))
            })
            .collect::<Result<_, _>>()
            .context("spawning workers")?;
        let boss = std::thread::Builder::new()
            .name("boss".into())
            .spawn_scoped(s, move || boss(cx, event))
            .context("spawning the boss")?;
        let _waiting = cx.span(Activity::Wait, "join(): the workers and the boss");
        for t in workers.into_iter().chain([boss]) {
            t.join()
                .map_err(|_| anyhow::anyhow!("a thread panicked"))??;
        }
        Ok(())
    })?;
    cx.say("ending....");
    cx.explain(
        "Without the event a worker could speak before the boss: threads run in whatever order\n\
         the scheduler picks. The event makes every worker's first line follow the first set().",
    );

    cx.explain(
        "The seed relies on timing: workers clear() 1 s after the first set(), the boss sets again\n\
         after 5 s. A set() followed at once by clear() must still release everyone already\n\
         waiting, or they sleep through it. This Event counts set()s, so no waiter can miss one:",
    );
    let event = Event::new();
    let released = std::thread::scope(|s| -> anyhow::Result<bool> {
        let waiter = std::thread::Builder::new()
            .name("waiter".into())
            .spawn_scoped(s, || wait_for(cx, &event, "wait()"))
            .context("spawning the waiter")?;
        let deadline = std::time::Instant::now() + cx.long_wait();
        while event.waiting() == 0 {
            ensure!(
                std::time::Instant::now() < deadline,
                "the waiter never waited"
            );
            std::thread::yield_now();
        }
        event.set();
        event.clear();
        cx.say("set() then clear() at once, while one thread waits");
        waiter
            .join()
            .map_err(|_| anyhow::anyhow!("the waiter panicked"))
    })?;
    cx.say(format!(
        "the waiter's wait() -> {released} (the flag is down again: is_set() = {})",
        event.is_set()
    ));
    ensure!(released, "the waiter missed the set");
    let timed_out = {
        let _waiting = cx.span(Activity::Wait, "wait(timeout=1 s)");
        !event.wait_timeout(cx.scaled(1.0))
    };
    cx.say(format!(
        "nobody sets it now: wait_timeout(1 s) -> {}",
        !timed_out
    ));
    ensure!(timed_out, "wait_timeout returned true on a cleared event");
    Ok(())
}
