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
//! | a child joins its non-daemon threads before it exits | not done: the child `_exit`s when its body returns (join them in the body; see [`Process`]) |
//!
//! Fork safety, and what it asks of you, is in the [`process`] module's docs.
//!
//! # Lessons, in the seed's order
//!
//! 1. [`spawn`](lessons::spawn): three processes from a function with arguments, and from `Run`.
//! 2. [`thousand`](lessons::thousand): the seed's 1000 processes against 1000 threads (`--count N`).
//! 3. [`pids`](lessons::pids): getpid / getppid of the parent and its children.
//! 4. [`api`](lessons::api): is_alive, join with a timeout, terminate/kill exit codes, daemon children.
//! 5. [`start-methods`](lessons::start_methods): what a fork child inherits and a spawn child not.
//!
//! Run them with `cargo run -p processes` (all) or `cargo run -p processes -- api` (one).
//!
//! # Layout
//!
//! The primitive is [`process`] ([`Process`] and the spawn start method's [`Entry`],
//! [`register`], [`spawn_main`]), re-exported at the crate root. The lessons live in
//! [`lessons`], one module per lesson named as on the command line (`lessons::start_methods`
//! runs `cargo run -p processes -- start-methods`), with [`CHAPTER`], their ordered list, and
//! [`ENTRIES`], the spawn entries of the chapter binary.

pub mod cpu;
pub mod lessons;
pub mod process;

pub use cpu::{cpu_count, process_cpu_count};
pub use lessons::CHAPTER;
pub use lessons::start_methods::ENTRIES;
pub use process::{
    ChildInfo, CurrentProcess, Entry, FORKSERVER_ENTRY, ForkServer, MAIN_NAME, Outcome,
    ParentProcess, Process, Run, SPAWN_FLAG, StartMethod, active_children, current_process, decode,
    parent_process, register, spawn_main,
};
