//! # Chapter 7: coroutines, cooperative IO, and select / poll / epoll
//!
//! The seed's sections 协程 (greenlet, gevent), Yield(协程), 协程的优势, 驱动事件 and IO多路复用,
//! retold with corosensei's stackful coroutines: [`Greenlet`] (greenlet's `switch`), a
//! [`Generator`] (`yield` / `send`), a gevent-style [`hub`] (tasks, sockets, a [`hub::Queue`]
//! and a [`hub::Pool`]), an [`events::EventLoop`], Python's [`selectors`], and [`multiplex`]
//! (the echo servers, level and edge triggers).
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
//! | `gevent.spawn`, `spawn_later`, `joinall`, `sleep`, `sleep(0)` | [`hub::spawn`], [`hub::spawn_later`], [`hub::joinall`], [`hub::sleep`], [`hub::yield_now`] |
//! | `g.value`, `g.get()`, `g.exception`, `joinall(raise_error=True)` | [`hub::Spawned::value`], [`hub::Spawned::get`], [`hub::Spawned::exception`], [`hub::joinall_raise_error`] |
//! | `g.kill()` (`GreenletExit`), `g.link(f)` | [`hub::Spawned::kill`] ([`hub::TaskExit`]), [`hub::Spawned::link`] |
//! | `gevent.Timeout`, `gevent.with_timeout` | [`hub::timeout`] |
//! | `gevent.queue.Queue`, `Channel` | [`hub::Queue`] ([`hub::Queue::channel`]) |
//! | `gevent.pool.Pool` | [`hub::Pool`]: `spawn`, `map`, `imap_unordered` |
//! | monkey-patched `socket` | [`hub::TcpStream`], [`hub::TcpListener`] (explicit) |
//! | `selectors.DefaultSelector` (`SelectSelector`, `PollSelector`, `EpollSelector`) | [`selectors::DefaultSelector`], the [`selectors::Selector`] trait |
//! | `select.select`, `select.poll`, `select.epoll` | the three selectors; [`multiplex::Backend`] picks one |
//! | asyncio's `call_soon`, `call_later`, `add_reader`, `run_forever` | [`events::EventLoop`] |
//! | `EPOLLET` | [`multiplex::walk`]: level against edge, wait by wait |
//!
//! # Lessons, in the seed's order
//!
//! 1. [`greenlet`](lessons::greenlet): 56, 12, 65, 24; switch values, parents, dead, throw; `!Send`.
//! 2. [`gevent`](lessons::gevent): the crawler as the seed wrote it (serial), then patched.
//! 3. [`yield`](lessons::yield): a producer and a consumer generator.
//! 4. [`tradeoffs`](lessons::tradeoffs): switch cost against a thread hand-off; no lock; one core.
//! 5. [`events`](lessons::events): polling against an event loop's callbacks (驱动事件).
//! 6. [`select-poll-epoll`](lessons::select_poll_epoll): one echo server on the three selectors.
//! 7. [`triggers`](lessons::triggers): level against edge triggering, wait by wait.
//!
//! Run them with `cargo run -p coroutines` (all) or `cargo run -p coroutines -- greenlet`.
//!
//! # Layout
//!
//! Primitives: [`greenlet`] ([`Greenlet`]), [`val`](mod@val) ([`Val`]), [`generator`] ([`Generator`]),
//! [`hub`] (the scheduler and timers; its sockets in `hub/net.rs`, `Queue` and `Pool` beside),
//! [`selectors`] (the trait and three backends), [`events`] (the event loop), [`multiplex`]
//! (the echo servers and the trigger walk-through). Lessons: [`lessons`], one module per
//! lesson, named as on the command line, with [`CHAPTER`].

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
