//! The chapter's lessons, one module each, named as on the command line (`select-poll-epoll`
//! is [`select_poll_epoll`]), and [`CHAPTER`], their order; [`turns`] is not a lesson but how
//! the lessons draw greenlets and hub tasks on the timeline. No unsafe code here: a lesson that
//! needs some gets a safe function from the primitive it uses
//! ([`multiplex::dup_at_or_above`](crate::multiplex::dup_at_or_above)).
#![forbid(unsafe_code)]

pub mod events;
pub mod gevent;
pub mod greenlet;
pub mod select_poll_epoll;
pub mod tradeoffs;
pub mod triggers;
pub mod turns;
pub mod r#yield;

use lesson::{Chapter, Lesson};

/// The chapter: its lessons in the seed's order.
pub static CHAPTER: Chapter = Chapter {
    name: "coroutines",
    title: "greenlets, a gevent-style hub, generators, select/poll/epoll",
    lessons: &[
        Lesson {
            name: "greenlet",
            title: "switch(): the seed's test1/test2, values, parents, throw (协程 greenlet)",
            run: greenlet::run,
        },
        Lesson {
            name: "gevent",
            title: "the crawler as the seed wrote it (serial) and monkey-patched (协程 gevent)",
            run: gevent::run,
        },
        Lesson {
            name: "yield",
            title: "a producer and a consumer generator with send() (Yield(协程))",
            run: r#yield::run,
        },
        Lesson {
            name: "tradeoffs",
            title: "switch cost, no locks, one core (协程的优势)",
            run: tradeoffs::run,
        },
        Lesson {
            name: "events",
            title: "an event loop dispatching callbacks, against polling (驱动事件)",
            run: events::run,
        },
        Lesson {
            name: "select-poll-epoll",
            title: "one echo server on a selector: select, poll and epoll (IO多路复用)",
            run: select_poll_epoll::run,
        },
        Lesson {
            name: "triggers",
            title: "level- against edge-triggered epoll, wait by wait (水平触发 / 边缘触发)",
            run: triggers::run,
        },
    ],
    helpers: &[],
};
