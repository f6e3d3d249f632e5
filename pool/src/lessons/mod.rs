//! The chapter's lessons, one module per lesson, named as on the command line, and the tasks
//! they give the pool ([`tasks`]).

#![forbid(unsafe_code)]

pub mod apply;
pub mod crash;
pub mod crawler;
pub mod futures;
pub mod map;
pub mod pool;
pub mod tasks;

use lesson::{Chapter, Lesson};

/// The chapter: its lessons in the seed's order.
pub static CHAPTER: Chapter = Chapter {
    name: "pool",
    title: "process pools: apply, apply_async, callbacks, and a dead worker",
    lessons: &[
        Lesson {
            name: "pool",
            title: "Pool(5), apply_async and callbacks in the parent (进程池)",
            run: pool::run,
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
        Lesson {
            name: "futures",
            title: "concurrent.futures: submit, as_completed, map, and a dead worker (beyond the seed)",
            run: futures::run,
        },
    ],
    helpers: &[],
};
