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

use lesson::{Chapter, Lesson};

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
