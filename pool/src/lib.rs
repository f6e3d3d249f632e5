//! # Chapter 6: process pools and callbacks
//!
//! The seed's sections 进程池, 回调函数 and 进程池应用, retold with a [`Pool`] of worker
//! processes that runs [`Task`]s, calls callbacks in the parent, and survives a dead worker.
//!
//! # Python -> Rust
//!
//! | Python | Rust |
//! |---|---|
//! | `Pool(5)`, `Pool(maxtasksperchild=n)` | [`Pool::new`]`(5)`, [`Pool::builder`]`().maxtasksperchild(n)` |
//! | `func` + `args` (pickled by name) | a [`Task`] value: its data crosses, its `run` is the code |
//! | `apply(func, args)` | [`Pool::apply`] |
//! | `apply_async(func, args, callback=, error_callback=)` | [`Pool::apply_async`], [`Pool::apply_async_with`] -> [`AsyncResult`] |
//! | `r.get()`, `r.get(timeout)`, `r.wait()`, `r.ready()`, `r.successful()` | [`AsyncResult::get`], [`get_timeout`](AsyncResult::get_timeout), [`wait`](AsyncResult::wait), [`ready`](AsyncResult::ready), [`successful`](AsyncResult::successful) |
//! | `map`, `imap`, `imap_unordered`, `starmap`, `chunksize` | [`Pool::map`], [`imap`](Pool::imap), [`imap_unordered`](Pool::imap_unordered), [`starmap`](Pool::starmap) (a tuple task) |
//! | `close()`, `join()`, `terminate()` | [`Pool::close`], [`Pool::join`] (an error before close), [`Pool::terminate`]; drop terminates |
//! | an exception in `func` | [`TaskError::Failed`] / [`TaskError::Panicked`]; the worker lives on |
//! | a worker killed mid-task: the pool hangs | [`TaskError::WorkerDied`], a new worker, the pool goes on |
//!
//! How it is built, and its fork safety, are in the [`pool`] module's docs.
//!
//! # Lessons, in the seed's order
//!
//! 1. [`basics`] (`pool`): Pool(5), tasks five at a time, callbacks in the parent.
//! 2. [`apply`]: the same with `apply`: one after another.
//! 3. [`crawler`]: workers fetch pages from a local server; a callback writes a db file.
//! 4. [`map`]: map, imap, imap_unordered.
//! 5. [`crash`]: a panicking task and a killed worker; the pool goes on.
//!
//! Run them with `cargo run -p pool` (all) or `cargo run -p pool -- crash` (one).

pub mod apply;
pub mod basics;
pub mod crash;
pub mod crawler;
pub mod map;
pub mod pool;
pub mod tasks;

pub use pool::{AsyncResult, Builder, Pool, PoolError, Task, TaskError};

use lesson::{Chapter, Lesson};

/// The chapter: its lessons in the seed's order.
pub static CHAPTER: Chapter = Chapter {
    name: "pool",
    title: "process pools: apply, apply_async, callbacks, and a dead worker",
    lessons: &[
        Lesson {
            name: "pool",
            title: "Pool(5), apply_async and callbacks in the parent (进程池)",
            run: basics::run,
        },
        Lesson {
            name: "apply",
            title: "apply waits for each task: one after another (进程池)",
            run: apply::run,
        },
        Lesson {
            name: "crawler",
            title: "workers fetch, a callback in the parent records (回调函数, 进程池应用)",
            run: crawler::run,
        },
        Lesson {
            name: "map",
            title: "map, imap, imap_unordered, chunks (beyond the seed)",
            run: map::run,
        },
        Lesson {
            name: "crash",
            title: "a panicking task and a killed worker: the pool goes on (beyond the seed)",
            run: crash::run,
        },
    ],
    helpers: &[],
};
