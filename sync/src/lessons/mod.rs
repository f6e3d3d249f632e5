//! The chapter's lessons, one module per lesson, named as on the command line, and
//! [`CHAPTER`], their order. Lessons use the primitives through the crate root, as a user's
//! program would.
#![forbid(unsafe_code)]

pub mod barrier;
pub mod condition;
pub mod deadlock;
pub mod event;
pub mod poison;
pub mod race;
pub mod rlock;
pub mod semaphore;
pub mod timer;

use lesson::{Chapter, Lesson};

/// The chapter: its lessons in the seed's order.
pub static CHAPTER: Chapter = Chapter {
    name: "sync",
    title: "locks and their traps: the race, deadlock, RLock, Semaphore, Event, and more",
    lessons: &[
        Lesson {
            name: "race",
            title: "100 threads, one number: the lost update and its fixes (同步锁lock)",
            run: race::run,
        },
        Lesson {
            name: "deadlock",
            title: "two locks in opposite orders: detected, then fixed (死锁(递归锁))",
            run: deadlock::run,
        },
        Lesson {
            name: "rlock",
            title: "the reentrant lock's counter (死锁(递归锁))",
            run: rlock::run,
        },
        Lesson {
            name: "semaphore",
            title: "Semaphore(5) and ten threads; BoundedSemaphore (信号量与同步对象)",
            run: semaphore::run,
        },
        Lesson {
            name: "event",
            title: "the boss and the workers: set, clear, wait (同步对象 event)",
            run: event::run,
        },
        Lesson {
            name: "condition",
            title: "a Condvar waited on a predicate (beyond the seed: threading.Condition)",
            run: condition::run,
        },
        Lesson {
            name: "barrier",
            title: "a Barrier and its leader (beyond the seed: threading.Barrier)",
            run: barrier::run,
        },
        Lesson {
            name: "timer",
            title: "a function after a delay, and cancelling it (beyond the seed: threading.Timer)",
            run: timer::run,
        },
        Lesson {
            name: "poison",
            title: "a panic inside a lock; acquire/release without finally (同步锁lock)",
            run: poison::run,
        },
    ],
    helpers: &[],
};
