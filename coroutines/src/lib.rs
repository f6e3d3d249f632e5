//! # Chapter 7: coroutines, cooperative IO, and select / poll / epoll
//!
//! The seed's sections 协程 (greenlet, gevent), Yield(协程), 协程的优势, 驱动事件 and IO多路复用,
//! retold with corosensei's stackful coroutines: [`Greenlet`] (greenlet's `switch`), a
//! [`Generator`] (`yield` / `send`), a gevent-style [`hub`], and [`multiplex`] (three echo
//! servers, level and edge triggers).
//!
//! # Python -> Rust
//!
//! | Python | Rust |
//! |---|---|
//! | `greenlet(run)`, `g.switch(v)` | [`Greenlet::new`], [`Greenlet::switch`] (values are [`Val`]: a `Box<dyn Any>` in one word) |
//! | `greenlet.getcurrent()`, `g.parent`, `g.dead` | [`getcurrent`], [`Greenlet::parent`], [`Greenlet::dead`] |
//! | `g.parent = p` | [`Greenlet::set_parent`] (refuses a cycle, as greenlet does) |
//! | `g.throw(...)`, `g.throw()` | [`Greenlet::throw`], [`Greenlet::throw_exit`]: the target's pending `switch` returns `Err` |
//! | `GreenletExit` when a greenlet is collected | dropping the last owning handle raises [`GreenletErrorKind::Exit`] in it; its parent gets [`GreenletExit`] |
//! | "cannot switch to a different thread" | `Greenlet` is not `Send`: it does not compile |
//! | a generator with `yield` and `send()` | [`Generator::send`] / [`Yielder::suspend`] |
//! | `gevent.spawn`, `gevent.joinall`, `gevent.sleep`, `sleep(0)` | [`hub::spawn`], [`hub::joinall`], [`hub::sleep`], [`hub::yield_now`] |
//! | `g.value`, `g.exception`, `joinall(raise_error=True)` | [`hub::Spawned::take`], [`hub::Spawned::exception`], [`hub::joinall_raise_error`] |
//! | `gevent.Timeout`, `gevent.with_timeout` | [`hub::timeout`] |
//! | monkey-patched `socket` | [`hub::TcpStream`], [`hub::TcpListener`] (explicit) |
//! | `select.select`, `select.poll`, `select.epoll` | [`multiplex::Backend`]: nix's `select`, `poll`, `Epoll` |
//! | `EPOLLET` | [`multiplex::wakeups`]: level against edge |
//!
//! # Lessons, in the seed's order
//!
//! 1. [`greenlet`](lessons::greenlet): 56, 12, 65, 24; switch values, parents, dead, throw.
//! 2. [`gevent`](lessons::gevent): a crawler, one after another, then spawn + joinall.
//! 3. [`yield`](lessons::yield): a producer and a consumer generator.
//! 4. [`tradeoffs`](lessons::tradeoffs): switch cost against a thread hand-off; no lock; one core.
//! 5. [`select-poll-epoll`](lessons::select_poll_epoll): the same echo server on the three calls.
//! 6. [`triggers`](lessons::triggers): level against edge triggering.
//!
//! Run them with `cargo run -p coroutines` (all) or `cargo run -p coroutines -- greenlet`.
//!
//! # Layout
//!
//! Primitives: [`greenlet`] ([`Greenlet`]), [`val`](mod@val) ([`Val`]), [`generator`] ([`Generator`]),
//! [`hub`] (the scheduler and timers; its sockets in `hub/net.rs`), [`multiplex`] (the three
//! echo servers and the trigger count). Lessons: [`lessons`], one module per lesson, named as
//! on the command line, with [`CHAPTER`].

pub mod events;
pub mod generator;
pub mod greenlet;
pub mod hub;
pub mod lessons;
pub mod multiplex;
mod overflow;
pub mod selectors;
pub mod val;

pub use generator::{Generator, Yielder};
pub use greenlet::{
    DEFAULT_STACK, Greenlet, GreenletError, GreenletErrorKind, GreenletExit, getcurrent,
};
pub use lessons::CHAPTER;
pub use val::{Val, val};
