//! # Chapter 4: processes
//!
//! The seed's sections 进程的基本使用 (multiprocessing), 进程的调用方法一/二, 查看进程号,
//! Process 类 and 进程模块的其他方法, retold with a [`Process`] type on `fork`, on a `spawn`
//! start method that runs the binary again, and on a [`ForkServer`] (`forkserver`).
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
//! | `set_start_method('forkserver')`, `forkserver.ensure_running()` | [`StartMethod::Forkserver`]: [`Process::forkserver_entry`]; [`ForkServer::shared`], [`ForkServer::ensure_running`] |
//! | `current_process()`, `parent_process()` | [`current_process`] -> [`CurrentProcess`], [`parent_process`] -> [`ParentProcess`] (`is_alive`, `join_timeout`, `sentinel`) |
//! | `active_children()` | [`active_children`] -> [`ChildInfo`]s (it does not reap) |
//! | `p.sentinel`, `p.close()` | [`Process::sentinel`] (a pidfd, or the fork server's connection), [`Process::close`] |
//! | `cpu_count()`, `os.process_cpu_count()` (3.13) | [`cpu_count`] (the machine's), [`process_cpu_count`] (the affinity mask's) |
//! | daemonic children killed at exit | dropped handle: SIGTERM then reap; a SIGKILLed parent's daemons die too (`PR_SET_PDEATHSIG`): this crate's choice, Python's outlive it |
//! | non-daemonic children joined at exit | a dropped handle joins |
//! | a child joins its non-daemon threads before it exits | not done: the child `_exit`s when its body returns (join them in the body; see [`Process`]) |
//!
//! Fork safety, and what it asks of you, is in the [`process`] module's docs.
//!
//! # Lessons, in the seed's order
//!
//! 1. [`spawn`](lessons::spawn): three processes from a function with arguments, and from `Run`.
//! 2. [`thousand`](lessons::thousand): processes against threads, 200 of each by default (the seed's 1000: `--count 1000`).
//! 3. [`pids`](lessons::pids): getpid / getppid of the parent and its children.
//! 4. [`api`](lessons::api): is_alive, join with a timeout, terminate/kill exit codes, daemon children.
//! 5. [`introspection`](lessons::introspection): current_process, parent_process, active_children, sentinels, close, cpu_count.
//! 6. [`start-methods`](lessons::start_methods): what a fork, a spawn and a forkserver child inherit.
//!
//! Run them with `cargo run -p processes` (all) or `cargo run -p processes -- api` (one).
//!
//! # Layout
//!
//! The primitive is [`process`] ([`Process`], the spawn start method's [`Entry`],
//! [`register`], [`spawn_main`], the [`ForkServer`], and the module functions), re-exported at
//! the crate root; [`cpu`] counts CPUs. The lessons live in
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
