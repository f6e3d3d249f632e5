//! The chapter's lessons, one module per lesson, named as on the command line, and
//! [`CHAPTER`], their ordered list; [`start_methods::ENTRIES`] are the spawn entries the
//! `start-methods` lesson runs.
#![forbid(unsafe_code)]

pub mod api;
pub mod introspection;
pub mod pids;
pub mod spawn;
pub mod start_methods;
pub mod thousand;

use lesson::{Chapter, Cx, Handoff, Lesson};

/// The lesson context of a child process, speaking under the name its parent gave it
/// (`Process-N` by default, as in Python), so the timeline has a row per child. Call it in the
/// child.
pub fn as_me(cx: &Cx) -> Cx {
    cx.as_speaker(crate::current_process().name)
}

/// The same for a spawned or forkserver child, from the handoff its argument carried.
pub fn cx_of(handoff: Handoff) -> Cx {
    handoff.named(crate::current_process().name).cx()
}

/// The chapter: its lessons in the seed's order, and the helper programs the `api` lesson
/// runs in child processes.
pub static CHAPTER: Chapter = Chapter {
    name: "processes",
    title: "processes: Process objects, pids, daemon, terminate, start methods",
    lessons: &[
        Lesson {
            name: "spawn",
            title: "start processes: a function with arguments, or a type with run() (进程的调用方法一/二)",
            run: spawn::run,
        },
        Lesson {
            name: "thousand",
            title: "200 processes against 200 threads; the seed's 1000 with --count 1000 (进程的基本使用)",
            run: thousand::run,
        },
        Lesson {
            name: "pids",
            title: "getpid and getppid of parent and children (查看进程号)",
            run: pids::run,
        },
        Lesson {
            name: "api",
            title: "is_alive, join(timeout), terminate, exitcode, daemon (Process 类)",
            run: api::run,
        },
        Lesson {
            name: "introspection",
            title: "current_process, parent_process, active_children, sentinel, close, cpu_count (进程模块的其他方法)",
            run: introspection::run,
        },
        Lesson {
            name: "start-methods",
            title: "fork, spawn and forkserver: what the child inherits (beyond the seed)",
            run: start_methods::run,
        },
    ],
    helpers: &[
        Lesson {
            name: "daemon-parent",
            title: "start a daemon and a normal child, return",
            run: api::daemon_parent,
        },
        Lesson {
            name: "daemon-parent-killed",
            title: "start a daemon child, wait to be killed",
            run: api::daemon_parent_killed,
        },
    ],
};
