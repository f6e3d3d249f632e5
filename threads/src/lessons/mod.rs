//! The chapter's lessons, one module per lesson, named as on the command line, and
//! [`CHAPTER`], their ordered list.
#![forbid(unsafe_code)]

pub mod daemon;
pub mod excepthook;
pub mod gil;
pub mod introspection;
pub mod join;
pub mod local;
pub mod spawn;

use std::sync::{Condvar, Mutex};
use std::time::Instant;

use lesson::{Activity, Chapter, Cx, Lesson};

/// A count-down latch: [`Latch::wait`] returns once [`Latch::count_down`] has been called as
/// many times as the latch was made for. The lessons use it so that an ordering they print
/// (main says "ending" before a thread is done) holds by construction, not because a sleep was
/// long enough on the day: a loaded machine can delay any thread for longer than a scaled
/// sleep. The wait has a deadline, so a lesson whose other side failed does not hang.
#[derive(Debug)]
pub struct Latch {
    left: Mutex<usize>,
    opened: Condvar,
}

impl Latch {
    /// A latch that opens after `n` calls of [`Latch::count_down`] (at once if `n` is 0).
    pub fn new(n: usize) -> Latch {
        Latch {
            left: Mutex::new(n),
            opened: Condvar::new(),
        }
    }

    /// One of the awaited events happened.
    pub fn count_down(&self) {
        let mut left = self.left.lock().unwrap_or_else(|e| e.into_inner());
        *left = left.saturating_sub(1);
        if *left == 0 {
            self.opened.notify_all();
        }
    }

    /// Whether every awaited event has happened.
    fn is_open(&self) -> bool {
        *self.left.lock().unwrap_or_else(|e| e.into_inner()) == 0
    }

    /// Wait until the latch is open, at most [`Cx::long_wait`] (a lesson whose other side
    /// failed goes on instead of hanging, and its own checks then fail). If it has to wait, the
    /// wait is a span on the timeline (`what`).
    pub fn wait(&self, cx: &Cx, what: &str) {
        if self.is_open() {
            return;
        }
        let _waiting = cx.span(Activity::Wait, what);
        let deadline = Instant::now() + cx.long_wait();
        let mut left = self.left.lock().unwrap_or_else(|e| e.into_inner());
        while *left > 0 {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            left = match self.opened.wait_timeout(left, deadline - now) {
                Ok((guard, _)) => guard,
                Err(e) => e.into_inner().0,
            };
        }
    }
}

/// The chapter: its lessons in the seed's order, and the helper programs the `daemon` lesson
/// runs in child processes.
pub static CHAPTER: Chapter = Chapter {
    name: "threads",
    title: "threads and the GIL: start, join, daemon threads, introspection",
    lessons: &[
        Lesson {
            name: "gil",
            title: "one CPU-bound job on 1 and N threads; Python's GIL (python的GIL)",
            run: gil::run,
        },
        Lesson {
            name: "spawn",
            title: "start a thread: a function, or a type with run() (线程的基本调用, 第二种调用方式)",
            run: spawn::run,
        },
        Lesson {
            name: "join",
            title: "wait for threads: the music/game demo (join和setDaemon)",
            run: join::run,
        },
        Lesson {
            name: "daemon",
            title: "daemon threads, and what main returning does (join和setDaemon)",
            run: daemon::run,
        },
        Lesson {
            name: "introspection",
            title: "names, is_alive, enumerate, active_count, join(timeout) (其他方法)",
            run: introspection::run,
        },
        Lesson {
            name: "local",
            title: "each thread its own value: threading.local against thread_local! (beyond the seed)",
            run: local::run,
        },
        Lesson {
            name: "excepthook",
            title: "a thread's panic: threading.excepthook against std::panic::set_hook (beyond the seed)",
            run: excepthook::run,
        },
    ],
    helpers: &[
        Lesson {
            name: "main-returns",
            title: "main returns while threads sleep",
            run: daemon::main_returns,
        },
        Lesson {
            name: "python-default",
            title: "join every thread after main's last line",
            run: daemon::python_default,
        },
        Lesson {
            name: "python-daemon",
            title: "join the non-daemon thread only",
            run: daemon::python_daemon,
        },
    ],
};
