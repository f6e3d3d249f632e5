//! # Chapter 4: processes
//!
//! The seed's sections 进程的基本使用 (multiprocessing), 进程的调用方法一/二, 查看进程号,
//! Process 类 and 进程模块的其他方法, retold with a [`Process`] type on `fork` and on a
//! `spawn` start method that runs the binary again.
//!
//! # Python -> Rust
//!
//! | Python | Rust |
//! |---|---|
//! | `Process(target=f, args=(a,))` | [`Process::target`]`(f, a)`, or [`Process::new`]`(closure)` |
//! | `class P(Process): def run(self)` | a type implementing [`Run`], [`Process::from_run`] |
//! | `name=`, `daemon=True` | [`Process::named`], [`Process::daemon`] |
//! | `p.start()`, `p.join()`, `p.join(timeout)` | [`Process::start`], [`Process::join`] (returns the exit code), [`Process::join_timeout`] -> `bool` |
//! | `p.is_alive()`, `p.pid`, `p.name`, `p.exitcode` | [`Process::is_alive`], [`Process::pid`], [`Process::name`], [`Process::exitcode`] (`-15` after terminate) |
//! | `p.terminate()`, `p.kill()` | [`Process::terminate`] (SIGTERM), [`Process::kill`] (SIGKILL) |
//! | `os.getpid()`, `os.getppid()` | `nix::unistd::getpid()`, `getppid()` (or `std::process::id()`) |
//! | `set_start_method('fork')` | [`StartMethod::Fork`]: the default of [`Process::new`] |
//! | `set_start_method('spawn')` | [`StartMethod::Spawn`]: [`Process::spawn_entry`] with an [`Entry`] registered by [`spawn_main`] |
//! | daemonic children killed at exit | dropped handle: SIGTERM then reap; killed parent: `PR_SET_PDEATHSIG` |
//! | non-daemonic children joined at exit | a dropped handle joins |
//!
//! Fork safety, and what it asks of you, is in the [`process`] module's docs.
//!
//! # Lessons, in the seed's order
//!
//! 1. [`basics`] (`spawn`): three processes from a function with arguments, and from `Run`.
//! 2. [`thousand`]: the seed's 1000 processes against 1000 threads (`--count N`).
//! 3. [`pids`]: getpid / getppid of the parent and its children.
//! 4. [`api`]: is_alive, join with a timeout, terminate/kill exit codes, daemon children.
//! 5. [`start_methods`] (`start-methods`): what a fork child inherits and a spawn child not.
//!
//! Run them with `cargo run -p processes` (all) or `cargo run -p processes -- api` (one).

pub mod api;
pub mod basics;
pub mod pids;
pub mod process;
pub mod start_methods;
pub mod thousand;

pub use process::{
    Entry, Outcome, Process, Run, SPAWN_FLAG, StartMethod, decode, register, spawn_main,
};
pub use start_methods::ENTRIES;

use lesson::{Chapter, Lesson};

/// The chapter: its lessons in the seed's order, and the helper programs the `api` lesson
/// runs in child processes.
pub static CHAPTER: Chapter = Chapter {
    name: "processes",
    title: "processes: Process objects, pids, daemon, terminate, start methods",
    lessons: &[
        Lesson {
            name: "spawn",
            title: "start processes: a function with arguments, or a type with run() (进程的调用方法一/二)",
            run: basics::run,
        },
        Lesson {
            name: "thousand",
            title: "1000 processes against 1000 threads (进程的基本使用)",
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
            name: "start-methods",
            title: "fork against spawn: what the child inherits (beyond the seed)",
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
