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

use lesson::{Chapter, Cx, Lesson, SpanGuard};

/// Something held (a lock's guard, a permit) together with the span that shows it on the
/// timeline. The span is declared first, so it ends (is recorded) just before the guard is
/// released: two threads' spans of one lock never overlap, and a test may count them.
#[derive(Debug)]
pub(crate) struct Held<G> {
    _span: SpanGuard,
    _guard: G,
}

impl<G> Held<G> {
    /// `guard`, just taken, shown as a [`lesson::Activity::Hold`] span saying `what` from now on.
    pub(crate) fn new(cx: &Cx, guard: G, what: impl std::fmt::Display) -> Held<G> {
        Held {
            _span: cx.span(lesson::Activity::Hold, what),
            _guard: guard,
        }
    }
}

impl<G> std::ops::Deref for Held<G> {
    type Target = G;
    fn deref(&self) -> &G {
        &self._guard
    }
}

impl<G> std::ops::DerefMut for Held<G> {
    fn deref_mut(&mut self) -> &mut G {
        &mut self._guard
    }
}

/// The seed's `time.sleep(s)` while something is held. Not [`Cx::sleep`]: its sleeping span
/// would be drawn over the holding one (the timeline draws a later span on top), and the
/// point of these pauses is what stays held during them.
pub(crate) fn pause_holding(cx: &Cx, seed_seconds: f64) {
    std::thread::sleep(cx.scaled(seed_seconds));
}

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
