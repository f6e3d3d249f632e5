//! The chapter's lessons, one module per lesson, named as on the command line, and
//! [`CHAPTER`], their ordered list.
#![forbid(unsafe_code)]

pub mod daemon;
pub mod excepthook;
pub mod gil;
pub mod introspection;
pub mod join;
pub mod local;
pub mod spawn;

pub use lesson::Latch;
use lesson::{Chapter, Lesson};

/// The chapter: its lessons in the seed's order, and the helper programs the `daemon` lesson
/// runs in child processes.
pub static CHAPTER: Chapter = Chapter {
    name: "threads",
    title: "threads and the GIL: start, join, daemon threads, introspection",
    lessons: &[
        Lesson {
            name: "gil",
            title: "one CPU-bound job on 1 and N threads; Python's GIL (python的GIL)",
            run: gil::run,
        },
        Lesson {
            name: "spawn",
            title: "start a thread: a function, or a type with run() (线程的基本调用, 第二种调用方式)",
            run: spawn::run,
        },
        Lesson {
            name: "join",
            title: "wait for threads: the music/game demo (join和setDaemon)",
            run: join::run,
        },
        Lesson {
            name: "daemon",
            title: "daemon threads, and what main returning does (join和setDaemon)",
            run: daemon::run,
        },
        Lesson {
            name: "introspection",
            title: "names, is_alive, enumerate, active_count, join(timeout) (其他方法)",
            run: introspection::run,
        },
        Lesson {
            name: "local",
            title: "each thread its own value: threading.local against thread_local! (beyond the seed)",
            run: local::run,
        },
        Lesson {
            name: "excepthook",
            title: "a thread's panic: threading.excepthook against std::panic::set_hook (beyond the seed)",
            run: excepthook::run,
        },
    ],
    helpers: &[
        Lesson {
            name: "main-returns",
            title: "main returns while threads sleep",
            run: daemon::main_returns,
        },
        Lesson {
            name: "python-default",
            title: "join every thread after main's last line",
            run: daemon::python_default,
        },
        Lesson {
            name: "python-daemon",
            title: "join the non-daemon thread only",
            run: daemon::python_daemon,
        },
    ],
};
