//! # Chapter 3: queues, and the producer-consumer model
//!
//! The seed's sections 队列------生产者消费者模型, 队列的引入, 调用一/二/三 and 队列的其他方法,
//! retold with one blocking queue in three orders, and with crossbeam's channels.
//!
//! # Python -> Rust
//!
//! | Python | Rust |
//! |---|---|
//! | `queue.Queue(maxsize)` (0: no limit) | [`Queue<T>`]`::new(maxsize)` (0: no limit) |
//! | `queue.LifoQueue(maxsize)` | [`LifoQueue<T>`] |
//! | `queue.PriorityQueue(maxsize)` with `[priority, data]` items | [`PriorityQueue<T>`] with `T: Ord`, or [`Prioritized`]`<P, V>` (ties in arrival order) |
//! | `put(x)`, `put(x, timeout=)`, `put_nowait(x)` / `put(x, block=False)` | [`BlockingQueue::put`], [`put_timeout`](BlockingQueue::put_timeout), [`try_put`](BlockingQueue::try_put) |
//! | `get()`, `get(timeout=)`, `get_nowait()` / `get(block=False)` | [`get`](BlockingQueue::get), [`get_timeout`](BlockingQueue::get_timeout), [`try_get`](BlockingQueue::try_get) |
//! | `queue.Full`, `queue.Empty`, `queue.ShutDown` | [`PutError::Full`]`(item)` (the item comes back), [`GetError::Empty`], `ShutDown` variants |
//! | `qsize()`, `full()`, `empty()` | [`qsize`](BlockingQueue::qsize), [`full`](BlockingQueue::full), [`empty`](BlockingQueue::empty): snapshots |
//! | `task_done()`, `join()` | [`task_done`](BlockingQueue::task_done) (too many is [`TooManyTaskDone`]), [`join`](BlockingQueue::join), [`join_timeout`](BlockingQueue::join_timeout) |
//! | `shutdown(immediate)` (3.13) | [`shutdown`](BlockingQueue::shutdown) |
//! | `queue.SimpleQueue` | `crossbeam::channel::unbounded()` |
//! | waiting on two queues at once | impossible in Python; `crossbeam::channel::select!` |
//!
//! # Lessons, in the seed's order
//!
//! 1. [`why_queues`]: look-then-remove on a shared list fails even with each step locked.
//! 2. [`fifo`]: `Queue(3)`: a blocked put, Full, drain, Empty.
//! 3. [`lifo`]: the seed's three items come back reversed.
//! 4. [`priority`]: priorities 2, 3, 1 come out 1, 2, 3; ties in arrival order.
//! 5. [`sizes`]: qsize / full / empty, and why they are snapshots.
//! 6. [`producer_consumer`]: backpressure, task_done / join, shutdown.
//! 7. [`channels`]: crossbeam channels and `select!` with a time-out.
//!
//! Run them with `cargo run -p queues` (all) or `cargo run -p queues -- fifo` (one).
#![forbid(unsafe_code)]

pub mod channels;
pub mod fifo;
pub mod lifo;
pub mod priority;
pub mod producer_consumer;
mod queue;
mod shim;
pub mod sizes;
mod textbook;
pub mod why_queues;

pub use queue::{
    BlockingQueue, Fifo, GetError, Lifo, LifoQueue, Prioritized, Priority, PriorityQueue, PutError,
    Queue, Store, TooManyTaskDone,
};
pub use textbook::TextbookQueue;

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
