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
//! | `threading.active_count()` (`activeCount()`) | [`active_count`] (Python's counts MainThread too: one more) |
//! | `os.cpu_count()`, `os.process_cpu_count()` (3.13) | [`cpu_count`], [`process_cpu_count`] (from the `processes` chapter) |
//! | `threading.local()` (per object) | `thread_local!` (per static); per object: `thread_local::ThreadLocal` |
//! | `threading.excepthook = hook` | `std::panic::set_hook(Box::new(hook))` (runs before unwinding, for every thread, one per process) |
//!
//! # Lessons, in the seed's order
//!
//! 1. [`gil`](lessons::gil): one CPU-bound job on 1 thread and on every CPU this process may use; parallel only if measured so; the same job in Python.
//! 2. [`spawn`](lessons::spawn): a function with arguments, the subclass style, concurrency vs parallelism.
//! 3. [`join`](lessons::join): the music/game demo without and with join; the seed's join-the-last-only bug.
//! 4. [`daemon`](lessons::daemon): what happens to running threads when `main` returns, in Rust and in Python.
//! 5. [`introspection`](lessons::introspection): names, liveness, `enumerate`, `active_count`, `join` with a timeout.
//! 6. [`local`](lessons::local): `threading.local` against `thread_local!`; per object against per static; what a fork keeps.
//! 7. [`excepthook`](lessons::excepthook): `threading.excepthook` against `std::panic::set_hook`.
//!
//! Run them with `cargo run -p threads` (all) or `cargo run -p threads -- join` (one).
//!
//! # Layout
//!
//! The primitive is the `thread` module ([`Thread`], [`Builder`], [`Run`], [`enumerate`],
//! [`active_count`]), re-exported at the crate root. The lessons live in [`lessons`], one module
//! per lesson named as on the command line (`lessons::gil` runs `cargo run -p threads -- gil`),
//! with [`CHAPTER`], their ordered list, and the helper programs the `daemon` lesson runs.
#![forbid(unsafe_code)]

pub mod lessons;
mod thread;

pub use lessons::CHAPTER;
/// `os.cpu_count()` and Python 3.13's `os.process_cpu_count()`: the machine's CPUs and the ones
/// this process may use. They live in the `processes` chapter (beside Python's
/// `multiprocessing.cpu_count()`); the `gil` lesson picks its thread count with them.
pub use processes::{cpu_count, process_cpu_count};
pub use thread::{
    Builder, Panicked, Run, Thread, ThreadInfo, active_count, enumerate, panic_message,
};
