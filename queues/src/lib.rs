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
//! 1. [`why-queues`](lessons::why_queues): look-then-remove on a shared list fails even with
//!    each step locked.
//! 2. [`fifo`](lessons::fifo): `Queue(3)`: a blocked put, Full, drain, Empty.
//! 3. [`lifo`](lessons::lifo): the seed's three items come back reversed.
//! 4. [`priority`](lessons::priority): priorities 2, 3, 1 come out 1, 2, 3; ties in arrival
//!    order.
//! 5. [`sizes`](lessons::sizes): `qsize` / `full` / `empty`, and why they are snapshots.
//! 6. [`producer-consumer`](lessons::producer_consumer): backpressure, `task_done` / `join`,
//!    shutdown.
//! 7. [`channels`](lessons::channels): crossbeam channels and `select!` with a time-out.
//!
//! Run them with `cargo run -p queues` (all) or `cargo run -p queues -- fifo` (one).
//!
//! # Layout
//!
//! The primitives are the private modules at the crate root, re-exported here: `queue` (the
//! [`BlockingQueue`], split into `queue/error.rs`, `queue/parker.rs` and `queue/order.rs`),
//! `textbook` ([`TextbookQueue`], the comparison), and `shim`, which switches the blocking code
//! to loom's types under `--cfg loom`. The lessons are in [`lessons`], one module per lesson
//! named as on the command line (kebab -> snake case), with [`CHAPTER`], their order; they use
//! the queues only through these re-exports and contain no `unsafe`.
#![forbid(unsafe_code)]

pub mod lessons;
mod queue;
mod shim;
mod textbook;

pub use lessons::CHAPTER;
pub use queue::{
    BlockingQueue, Fifo, GetError, Lifo, LifoQueue, Prioritized, Priority, PriorityQueue, PutError,
    Queue, Store, TooManyTaskDone, WaitStats,
};
pub use textbook::TextbookQueue;
