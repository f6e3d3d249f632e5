//! # Chapter 1: threads, and the GIL Rust does not have
//!
//! The seed's sections python的GIL, 线程的基本调用, 第二种调用方式, join和setDaemon and 其他方法,
//! retold with `std::thread` and a small [`Thread`] type for what Python's API has and std lacks.
//!
//! # Python -> Rust
//!
//! | Python | Rust |
//! |---|---|
//! | the GIL | none: threads run Python-free Rust in parallel; data races do not compile |
//! | `threading.Thread(target=f, args=(10,))` + `start()` | [`Thread::spawn`] / [`Builder::spawn`] (a closure captures the arguments); `std::thread::spawn` |
//! | `class MyThread(Thread): def run(self)` | a type implementing [`Run`], started by [`Thread::start`] |
//! | `t.join()` | [`Thread::join`] -> the thread's value, or its panic as [`Panicked`]; `JoinHandle::join` |
//! | `t.join(timeout)` then `t.is_alive()` | [`Thread::join_timeout`] -> `bool` |
//! | `t.setDaemon(True)` / `daemon=True` | nothing to set: every Rust thread dies when `main` returns |
//! | non-daemon threads waited for at exit | keep the handles and join them, or `std::thread::scope` |
//! | `t.name`, `getName()` | [`Thread::name`]; `std::thread::current().name()` |
//! | `t.is_alive()` (`isAlive()`, removed in 3.9) | [`Thread::is_alive`]; `JoinHandle::is_finished` |
//! | `threading.current_thread()` (`currentThread()`) | `std::thread::current()` |
//! | `threading.get_native_id()` | `nix::unistd::gettid()` |
//! | `threading.enumerate()` | [`enumerate`] (the threads started through [`Thread`]) |
//! | `threading.active_count()` (`activeCount()`) | [`active_count`] |
//!
//! # Lessons, in the seed's order
//!
//! 1. [`gil`]: one CPU-bound job on 1 thread and on every core; the same job in Python.
//! 2. [`spawn`]: a function with arguments, the subclass style, concurrency vs parallelism.
//! 3. [`join`]: the music/game demo without and with join; the seed's join-the-last-only bug.
//! 4. [`daemon`]: what happens to running threads when `main` returns, in Rust and in Python.
//! 5. [`introspection`]: names, liveness, `enumerate`, `active_count`, `join` with a timeout.
//!
//! Run them with `cargo run -p threads` (all) or `cargo run -p threads -- join` (one).
#![forbid(unsafe_code)]

pub mod daemon;
pub mod gil;
pub mod introspection;
pub mod join;
pub mod spawn;
mod thread;

pub use thread::{
    Builder, Panicked, Run, Thread, ThreadInfo, active_count, enumerate, panic_message,
};

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
