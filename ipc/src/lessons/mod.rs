//! The chapter's lessons, in the seed's order: one module per lesson, named as on the command
//! line (`cargo run -p ipc -- shared-memory` runs [`shared_memory`]). Lessons only use the
//! primitives' safe API.

#![forbid(unsafe_code)]

pub mod event;
pub mod lock;
pub mod manager;
pub mod manager_served;
pub mod pipe;
pub mod queue;
pub mod shared_memory;
pub mod shared_memory_by_name;
pub mod wait;

use lesson::{Chapter, Cx, Lesson};
use processes::{Entry, Outcome, Process};

/// What a child started with spawn can run in the chapter binary (its `main` hands these to
/// `processes::spawn_main`).
pub static ENTRIES: &[Entry] = &[
    Entry {
        name: "shm-attach",
        run: shared_memory_by_name::attach_and_write,
    },
    Entry {
        name: "manager-client",
        run: manager_served::client,
    },
    Entry {
        name: "shm-create-then-exit",
        run: shared_memory_by_name::create_then_exit,
    },
    Entry {
        name: "shm-create-then-wait",
        run: shared_memory_by_name::create_then_wait,
    },
];

/// A forked child named as Python would name it (`Process-3`: Python numbers every process a
/// program creates, from 1), whose lines and spans reach the lesson's timeline under that name.
pub(crate) fn child<R: Outcome>(
    cx: &Cx,
    name: &str,
    body: impl FnOnce(&Cx) -> R + Send + 'static,
) -> Process {
    let said_by = cx.as_speaker(name);
    Process::new(move || body(&said_by)).named(name)
}

/// The chapter: its lessons in the seed's order.
pub static CHAPTER: Chapter = Chapter {
    name: "ipc",
    title: "between processes: queues, pipes, managers, locks, shared memory",
    lessons: &[
        Lesson {
            name: "queue",
            title: "a process queue, and a thread queue that does not cross (进程间的通信)",
            run: queue::run,
        },
        Lesson {
            name: "pipe",
            title: "a two-way pipe with typed messages (管道)",
            run: pipe::run,
        },
        Lesson {
            name: "manager",
            title: "a dict and a list shared through a manager process (Managers)",
            run: manager::run,
        },
        Lesson {
            name: "lock",
            title: "a process lock, and a holder that dies (进程同步)",
            run: lock::run,
        },
        Lesson {
            name: "shared-memory",
            title: "a shared counter: lost updates, the lock, the atomic (beyond the seed)",
            run: shared_memory::run,
        },
        Lesson {
            name: "event",
            title: "the seed's boss and workers as processes, and a semaphore holder that dies (同步对象)",
            run: event::run,
        },
        Lesson {
            name: "shared-memory-by-name",
            title: "shared memory with a name, attached from a spawned child (beyond the seed)",
            run: shared_memory_by_name::run,
        },
        Lesson {
            name: "wait",
            title: "waiting on several pipes and a process sentinel at once (beyond the seed)",
            run: wait::run,
        },
        Lesson {
            name: "manager-served",
            title: "a Namespace, a Queue and a registered type, reached by address from a spawned child (Managers)",
            run: manager_served::run,
        },
    ],
    helpers: &[],
};
