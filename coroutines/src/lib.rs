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
//! | `g.throw(...)` | [`Greenlet::throw`]: the target's pending `switch` returns `Err` |
//! | `GreenletExit` when a greenlet is collected | dropping the last handle unwinds its stack |
//! | "cannot switch to a different thread" | `Greenlet` is not `Send`: it does not compile |
//! | a generator with `yield` and `send()` | [`Generator::send`] / `Yielder::suspend` |
//! | `gevent.spawn`, `gevent.joinall`, `gevent.sleep` | [`hub::spawn`], [`hub::joinall`], [`hub::sleep`] |
//! | `gevent.Timeout` | [`hub::timeout`] |
//! | monkey-patched `socket` | [`hub::TcpStream`], [`hub::TcpListener`] (explicit) |
//! | `select.select`, `select.poll`, `select.epoll` | [`multiplex::Backend`]: nix's `select`, `poll`, `Epoll` |
//! | `EPOLLET` | [`multiplex::wakeups`]: level against edge |
//!
//! # Lessons, in the seed's order
//!
//! 1. [`greenlet_demo`] (`greenlet`): 56, 12, 65, 24; switch values, parents, dead, throw.
//! 2. [`gevent_demo`] (`gevent`): a crawler, one after another, then spawn + joinall.
//! 3. [`yield_demo`] (`yield`): a producer and a consumer generator.
//! 4. [`tradeoffs`]: switch cost against a thread hand-off; no lock; one core.
//! 5. [`select_demo`] (`select-poll-epoll`): the same echo server on the three calls.
//! 6. [`triggers`]: level against edge triggering.
//!
//! Run them with `cargo run -p coroutines` (all) or `cargo run -p coroutines -- greenlet`.

pub mod generator;
pub mod gevent_demo;
pub mod greenlet;
pub mod greenlet_demo;
pub mod hub;
pub mod multiplex;
pub mod pages;
pub mod select_demo;
pub mod tradeoffs;
pub mod triggers;
pub mod val;
pub mod yield_demo;

pub use generator::Generator;
pub use greenlet::{DEFAULT_STACK, Greenlet, GreenletError, GreenletErrorKind, getcurrent};
pub use val::{Val, val};

use lesson::{Chapter, Lesson};

/// The chapter: its lessons in the seed's order.
pub static CHAPTER: Chapter = Chapter {
    name: "coroutines",
    title: "greenlets, a gevent-style hub, generators, select/poll/epoll",
    lessons: &[
        Lesson {
            name: "greenlet",
            title: "switch(): the seed's test1/test2, values, parents, throw (协程 greenlet)",
            run: greenlet_demo::run,
        },
        Lesson {
            name: "gevent",
            title: "a crawler on one thread: spawn + joinall (协程 gevent)",
            run: gevent_demo::run,
        },
        Lesson {
            name: "yield",
            title: "a producer and a consumer generator with send() (Yield(协程))",
            run: yield_demo::run,
        },
        Lesson {
            name: "tradeoffs",
            title: "switch cost, no locks, one core (协程的优势)",
            run: tradeoffs::run,
        },
        Lesson {
            name: "select-poll-epoll",
            title: "one echo server on select, poll and epoll (IO多路复用)",
            run: select_demo::run,
        },
        Lesson {
            name: "triggers",
            title: "level- against edge-triggered epoll (水平触发 / 边缘触发)",
            run: triggers::run,
        },
    ],
    helpers: &[],
};
