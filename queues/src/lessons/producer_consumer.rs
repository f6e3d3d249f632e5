//! Lesson `producer-consumer` (队列------生产者消费者模型): producers and consumers joined by a
//! bounded queue. A full queue makes producers wait (backpressure); `task_done` / `join` tell
//! when all the work is done; `shutdown` sends the consumers home.

use std::sync::Mutex;

use anyhow::{Context, ensure};
use lesson::{Activity, Cx};

use super::get;
use crate::{GetError, PutError, Queue};

/// Producers, items each, consumers, and the queue's size.
pub const PRODUCERS: usize = 2;
/// Items each producer makes.
pub const PER_PRODUCER: usize = 6;
/// Consumers.
pub const CONSUMERS: usize = 3;
/// The queue's maxsize: small, so producers feel the backpressure.
pub const MAXSIZE: usize = 3;

/// What the run produced: every item consumed, and how often a producer had to wait.
#[derive(Debug)]
pub struct Report {
    /// Every item consumed, as (producer, n).
    pub consumed: Vec<(usize, usize)>,
    /// How many puts found the queue full and waited.
    pub waits: usize,
}

/// Run the producers and consumers.
pub fn run_model(cx: &Cx) -> anyhow::Result<Report> {
    let q: Queue<(usize, usize)> = Queue::new(MAXSIZE);
    let consumed = Mutex::new(Vec::new());
    let waits = Mutex::new(0);
    std::thread::scope(|s| -> anyhow::Result<()> {
        let (q, consumed, waits) = (&q, &consumed, &waits);
        let mut consumers = Vec::new();
        for c in 1..=CONSUMERS {
            let t = std::thread::Builder::new()
                .name(format!("consumer-{c}"))
                .spawn_scoped(s, move || -> anyhow::Result<()> {
                    loop {
                        match get(cx, q, "get(): no bun on the shelf") {
                            Ok(item) => {
                                cx.say(format!("took bun {}.{}", item.0, item.1));
                                cx.sleep(1.0);
                                consumed
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .push(item);
                                cx.say(format!("ate bun {}.{}, task_done()", item.0, item.1));
                                q.task_done()?;
                            }
                            Err(GetError::ShutDown) => {
                                cx.say("get() -> ShutDown: going home");
                                return Ok(());
                            }
                            Err(GetError::Empty) => unreachable!("get() waits instead"),
                        }
                    }
                })
                .context("spawning a consumer")?;
            consumers.push(t);
        }
        let mut producers = Vec::new();
        for p in 1..=PRODUCERS {
            let t = std::thread::Builder::new()
                .name(format!("producer-{p}"))
                .spawn_scoped(s, move || -> anyhow::Result<()> {
                    for n in 1..=PER_PRODUCER {
                        match q.try_put((p, n)) {
                            Ok(()) => cx.say(format!("made bun {p}.{n}")),
                            Err(PutError::Full(item)) => {
                                *waits.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                                cx.say(format!("queue full, waiting to put bun {p}.{n}"));
                                {
                                    let _waiting =
                                        cx.span(Activity::Wait, "put(): the queue is full");
                                    q.put(item).map_err(|e| anyhow::anyhow!("put: {e}"))?;
                                }
                                cx.say(format!("made bun {p}.{n} (after waiting)"));
                            }
                            Err(e) => anyhow::bail!("put: {e}"),
                        }
                    }
                    Ok(())
                })
                .context("spawning a producer")?;
            producers.push(t);
        }
        {
            let _waiting = cx.span(Activity::Wait, "joining the producers");
            for t in producers {
                t.join()
                    .map_err(|_| anyhow::anyhow!("a producer panicked"))??;
            }
        }
        cx.say("all producers done; join() waits until every bun is eaten, not just taken");
        let joined = {
            let _waiting = cx.span(Activity::Wait, "join(): buns not yet eaten");
            q.join_timeout(cx.long_wait())
        };
        ensure!(joined, "join() never returned");
        cx.say(format!(
            "join() returned: unfinished = {}; shutdown() to send the consumers home",
            q.unfinished()
        ));
        q.shutdown(false);
        for t in consumers {
            t.join()
                .map_err(|_| anyhow::anyhow!("a consumer panicked"))??;
        }
        Ok(())
    })?;
    Ok(Report {
        consumed: consumed.into_inner().unwrap_or_else(|e| e.into_inner()),
        waits: waits.into_inner().unwrap_or_else(|e| e.into_inner()),
    })
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    cx.explain(format!(
        "{PRODUCERS} producers make {PER_PRODUCER} buns each, fast; {CONSUMERS} consumers eat one\n\
         per second; the queue holds {MAXSIZE}. The queue decouples them and throttles the\n\
         producers when the consumers fall behind."
    ));
    let report = run_model(cx)?;
    let mut eaten = report.consumed.clone();
    eaten.sort();
    let expected: Vec<(usize, usize)> = (1..=PRODUCERS)
        .flat_map(|p| (1..=PER_PRODUCER).map(move |n| (p, n)))
        .collect();
    cx.say(format!(
        "{} buns made, {} eaten, each exactly once; producers waited {} times for room",
        expected.len(),
        eaten.len(),
        report.waits
    ));
    ensure!(eaten == expected, "buns lost or eaten twice: {eaten:?}");
    ensure!(report.waits > 0, "the producers never felt backpressure");
    Ok(())
}
