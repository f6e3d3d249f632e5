//! # Chapter 6: process pools and callbacks, and `concurrent.futures`
//!
//! The seed's sections 进程池, 回调函数 and 进程池应用, retold with a [`Pool`] of worker
//! processes that runs [`Task`]s, calls callbacks in the parent, and survives a dead worker;
//! then [`futures`], Python's `concurrent.futures` on threads and on the same workers.
//!
//! # Python -> Rust
//!
//! | Python | Rust |
//! |---|---|
//! | `Pool(5)`, `Pool(maxtasksperchild=n)` | [`Pool::new`]`(5)`, [`Pool::builder`]`().maxtasksperchild(n)` |
//! | a free worker takes the next task, in order | the same for tasks of 1 ms or more; [`Builder::max_batch`] |
//! | `current_process().name` in a worker (`ForkPoolWorker-3`) | [`current_worker_name`], [`Pool::workers`], [`worker_cx`] |
//! | `func` + `args` (pickled by name) | a [`Task`] value: its data crosses, its `run` is the code |
//! | `apply(func, args)` | [`Pool::apply`] |
//! | `apply_async(func, args, callback=, error_callback=)` | [`Pool::apply_async`], [`Pool::apply_async_with`] -> [`AsyncResult`] |
//! | `r.get()`, `r.get(timeout)`, `r.wait()`, `r.ready()`, `r.successful()` | [`AsyncResult::get`], [`get_timeout`](AsyncResult::get_timeout), [`wait`](AsyncResult::wait), [`ready`](AsyncResult::ready), [`successful`](AsyncResult::successful) |
//! | `map`, `imap`, `imap_unordered`, `starmap`, `chunksize` | [`Pool::map`], [`imap`](Pool::imap), [`imap_unordered`](Pool::imap_unordered), [`starmap`](Pool::starmap) (a tuple task) |
//! | `map_async`, `starmap_async` (`callback=`, `error_callback=`) | [`Pool::map_async`], [`Pool::map_async_with`], [`Pool::starmap_async`], [`Pool::starmap_async_with`] |
//! | an exception in a callback: the result thread dies, `join` hangs | caught and counted: [`Pool::callback_panics`]; the pool goes on |
//! | `close()`, `join()`, `terminate()` | [`Pool::close`], [`Pool::join`] (an error before close), [`Pool::terminate`]; drop terminates |
//! | `Pool(0)`, `maxtasksperchild=0`: `ValueError` | [`PoolError::Invalid`] |
//! | an exception in `func` | [`TaskError::Failed`] / [`TaskError::Panicked`]; the worker lives on |
//! | arguments that cannot be pickled | [`TaskError::TaskEncoding`], at once, for that task |
//! | `MaybeEncodingError` | [`TaskError::ResultEncoding`]; the worker lives on |
//! | a worker killed mid-task: the pool hangs | [`TaskError::WorkerDied`] for the task it ran, the others run elsewhere, a new worker, the pool goes on |
//! | a worker cannot be started | [`PoolError::Start`] from [`Pool::new`]; [`TaskError::NoWorker`] while none is left |
//! | `concurrent.futures`: `ThreadPoolExecutor`, `ProcessPoolExecutor`, `Future`, `as_completed`, `wait` | [`futures::ThreadPoolExecutor`], [`futures::ProcessPoolExecutor`], [`futures::Future`], [`futures::as_completed`], [`futures::wait`] (the whole table in [`futures`]) |
//!
//! How it is built, and its fork safety, are in the [`pool`] module's docs.
//!
//! # Lessons, in the seed's order
//!
//! 1. [`pool`](lessons::pool): Pool(5), tasks five at a time, callbacks in the parent.
//! 2. [`apply`](lessons::apply): the same with `apply`: one after another.
//! 3. [`crawler`](lessons::crawler): workers fetch pages from a local server; a callback
//!    writes a db file.
//! 4. [`map`](lessons::map): map, imap, imap_unordered.
//! 5. [`crash`](lessons::crash): a panicking task and a killed worker; the pool goes on.
//! 6. [`futures`](lessons::futures): `concurrent.futures`: `as_completed` order, and a dead
//!    worker that breaks a `ProcessPoolExecutor` (Python's rule) or fails one call (ours).
//!
//! Run them with `cargo run -p pool` (all) or `cargo run -p pool -- crash` (one).
//!
//! # Layout
//!
//! The primitive is the [`Pool`]: [`pool`] (Pool; its `Builder` in `builder`, map and its kin
//! in `map`) with its private parts `shared`
//! (jobs, messages, errors), `entry` (each task and result encoded on its own), `driver`
//! (dispatch, death, replacement), `batch` (one frame of tasks), `worker` (the child's loop),
//! `journal` (what survives a dead worker) and `result` (AsyncResult, the result handler,
//! imap's iterators). [`futures`] holds `concurrent.futures` (the future, `wait` and
//! `as_completed`, the two executors). The lessons live in
//! [`lessons`], one module per lesson, named as on the command line, with [`CHAPTER`] and the
//! tasks they run ([`lessons::tasks`]).

#![forbid(unsafe_code)]

mod batch;
mod builder;
mod driver;
mod entry;
pub mod futures;
mod journal;
pub mod lessons;
mod map;
pub mod pool;
mod result;
mod shared;
mod worker;

pub use lessons::CHAPTER;
pub use pool::{AsyncResult, Builder, Pool, PoolError, Task, TaskError};
pub use worker::{current_worker_name, worker_cx};
