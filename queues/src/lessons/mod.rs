//! The chapter's lessons, one module per lesson, named as on the command line (kebab -> snake
//! case), and [`CHAPTER`], their order. Lessons use the queues through the crate root, as a
//! user's program would.
#![forbid(unsafe_code)]

pub mod channels;
pub mod fifo;
pub mod lifo;
pub mod priority;
pub mod producer_consumer;
pub mod sizes;
pub mod why_queues;

use std::sync::mpsc;

use anyhow::{Context, ensure};
use lesson::{Activity, Chapter, Cx, Lesson};

use crate::{BlockingQueue, GetError, Store};

/// `q.get()`, drawn on the timeline: a wait span saying `what` while the queue is empty (none
/// when an item is there at once).
pub(crate) fn get<S: Store>(
    cx: &Cx,
    q: &BlockingQueue<S>,
    what: &str,
) -> Result<S::Item, GetError> {
    match q.try_get() {
        Err(GetError::Empty) => {
            let _waiting = cx.span(Activity::Wait, what);
            q.get()
        }
        other => other,
    }
}

/// The seed's `while 1: data = q.get(); print(...)` on a thread of its own, `consumer`, which
/// calls `each` on every item it takes. The seed's loop never ends: once the queue is empty,
/// its next `get()` waits for an item nobody will put. Here main waits until the consumer is
/// about to wait on the empty queue, lets a second (scaled) pass to show that nothing ends it,
/// runs `meanwhile`, and then stops the loop cleanly: `shutdown()` makes the waiting `get()`
/// return `ShutDown`. Returns the items the consumer took, in order.
///
/// Put every item before calling this: the consumer's first empty queue is taken to be the end.
pub(crate) fn seed_loop_then_shutdown<S, F, M>(
    cx: &Cx,
    q: &BlockingQueue<S>,
    each: F,
    meanwhile: M,
) -> anyhow::Result<Vec<S::Item>>
where
    S: Store,
    S::Item: Send,
    F: Fn(&S::Item) + Sync,
    M: FnOnce() -> anyhow::Result<()>,
{
    let (waiting_tx, waiting_rx) = mpsc::channel::<()>();
    std::thread::scope(|s| -> anyhow::Result<Vec<S::Item>> {
        let each = &each;
        let consumer = std::thread::Builder::new()
            .name("consumer".into())
            .spawn_scoped(s, move || {
                let mut got = Vec::new();
                loop {
                    let item = match q.try_get() {
                        Err(GetError::Empty) => {
                            let _waiting = cx.span(Activity::Wait, "get(): the queue is empty");
                            // Main hears this before the get() below can return.
                            let _ = waiting_tx.send(());
                            q.get()
                        }
                        other => other,
                    };
                    match item {
                        Ok(item) => {
                            each(&item);
                            got.push(item);
                        }
                        Err(e) => {
                            cx.say(format!("get() -> {e:?}: the loop ends"));
                            return got;
                        }
                    }
                }
            })
            .context("spawning the consumer")?;
        let emptied = waiting_rx.recv_timeout(cx.long_wait()).is_ok();
        ensure!(emptied, "the consumer never emptied the queue");
        cx.sleep(1.0);
        ensure!(
            !consumer.is_finished(),
            "the consumer's loop ended by itself"
        );
        cx.say(format!(
            "1 s later: qsize {}, and the consumer has not ended: its get() waits for an item \
             nobody will put",
            q.qsize()
        ));
        meanwhile()?;
        cx.say(
            "the seed's `while 1: q.get()` has no way out and waits forever; here shutdown() \
             makes the waiting get() return ShutDown",
        );
        q.shutdown(false);
        consumer
            .join()
            .map_err(|_| anyhow::anyhow!("the consumer panicked"))
    })
}

/// The chapter: its lessons in the seed's order.
pub static CHAPTER: Chapter = Chapter {
    name: "queues",
    title: "FIFO, LIFO and priority queues, and the producer-consumer model",
    lessons: &[
        Lesson {
            name: "why-queues",
            title: "look, pause, remove: why locking each step is not enough (队列的引入)",
            run: why_queues::run,
        },
        Lesson {
            name: "fifo",
            title: "Queue(3): first in first out, Full and Empty (队列 调用一)",
            run: fifo::run,
        },
        Lesson {
            name: "lifo",
            title: "LifoQueue: last in first out (队列 调用二)",
            run: lifo::run,
        },
        Lesson {
            name: "priority",
            title: "PriorityQueue: lowest first (队列 调用三)",
            run: priority::run,
        },
        Lesson {
            name: "sizes",
            title: "qsize, full, empty, put_nowait, and snapshots (队列的其他方法)",
            run: sizes::run,
        },
        Lesson {
            name: "producer-consumer",
            title: "producers, consumers, task_done/join, shutdown (队列------生产者消费者模型)",
            run: producer_consumer::run,
        },
        Lesson {
            name: "channels",
            title: "crossbeam channels and select! (beyond the seed)",
            run: channels::run,
        },
    ],
    helpers: &[],
};
