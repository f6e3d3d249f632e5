//! The support crate every chapter binary is built on.
//!
//! A chapter (`threads`, `sync`, ...) is a list of [`Lesson`]s in the seed's order. Its `main.rs`
//! is one call, [`main`], which gives it the same command line as every other chapter:
//!
//! ```text
//! cargo run -p threads                 every lesson, in order
//! cargo run -p threads -- join         one lesson
//! cargo run -p threads -- --list       the lessons, one per line
//! cargo run -p threads -- --scale 0.5  sleep half of what the Python lesson sleeps
//! cargo run -p threads -- --real-time  sleep exactly what the Python lesson sleeps
//! cargo run -p threads -- --timeline   draw who ran when, after each lesson
//! ```
//!
//! A lesson receives a [`Cx`]: it narrates through [`Cx::say`] (every line carries the elapsed time
//! and who printed it, where the Python lesson printed `time.ctime()`), and it sleeps through
//! [`Cx::sleep`], which takes the Python lesson's own number of seconds and scales it. The narration
//! is also kept as [`Record`]s, which is what `--timeline` draws and what tests assert orderings on.
//!
//! ```
//! use lesson::Cx;
//!
//! let cx = Cx::quiet(0.001);          // tests: nothing printed, sleeps 1000x shorter
//! cx.say("hello 10");
//! cx.sleep(3.0);                      // the seed's time.sleep(3): 3 ms here
//! let records = cx.records();
//! assert_eq!(records[0].text, "hello 10");
//! assert_eq!(records[0].speaker, std::thread::current().name().unwrap());
//! ```
//!
//! Nothing chapter-specific lives here.
#![forbid(unsafe_code)]

pub mod bench;
mod cli;
mod counters;
mod cx;
mod deadline;
mod exercises;
mod latch;
mod pages;
pub mod testing;
mod timeline;

pub use cli::{DEFAULT_SCALE, Invocation, Options, Timeline, UsageError, main, parse, scale_note};
pub use cx::{Activity, Cx, HANDOFF_ENV, Handoff, Kind, Record, SpanGuard, speaker};
pub use deadline::{output_within, wait_within, within};
pub use exercises::exercises_after;
pub use latch::Latch;
pub use pages::PageServer;
pub use timeline::{render as render_timeline, render_svg as render_timeline_svg, speakers};

/// The text of a panic payload: `panic!("...")` gives a `&str` or a `String`; anything else is
/// described, not lost. Every chapter shows a caught panic's message through this one function.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}

/// A panic told in one line, as the chapter binaries print it (not the default hook's several
/// lines and backtrace, which would bury the narration): `! thread 'NAME' panicked at
/// FILE:LINE: MESSAGE`, indented like the narration's explanations; `who` (such as `(pid 42)`)
/// follows the thread's name when given.
pub fn panic_line(info: &std::panic::PanicHookInfo<'_>, who: Option<&str>) -> String {
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("<unnamed>");
    let who = who.map(|w| format!(" {w}")).unwrap_or_default();
    let message = panic_message(info.payload());
    let place = info
        .location()
        .map(|l| format!(" at {}:{}", l.file(), l.line()))
        .unwrap_or_default();
    format!("           ! thread '{name}'{who} panicked{place}: {message}")
}

/// The one way a chapter binary is run again as a child of a lesson: `CHAPTER_BINARY --helper
/// NAME`. NAME is either one of the chapter's [`Chapter::helpers`], which [`main`] runs with a
/// [`Cx`] rebuilt from the [`Handoff`] that [`Cx::helper`] puts in the child's environment
/// ([`HANDOFF_ENV`]), or a spawn entry of the `processes` crate (`processes::Entry`), which
/// `processes::spawn_main` runs first with the argument its parent wrote to the child's stdin.
/// Either way the child narrates on the parent's timeline by a [`Handoff`] (a spawn entry
/// receives it inside its argument).
pub const HELPER_FLAG: &str = "--helper";

/// The signature of a lesson: narrate through the context, return an error to fail the lesson.
pub type RunFn = fn(&Cx) -> anyhow::Result<()>;

/// One lesson of a chapter: a demo of one section of the Python lesson.
#[derive(Debug, Clone, Copy)]
pub struct Lesson {
    /// Kebab-case name used on the command line (`cargo run -p sync -- deadlock`).
    pub name: &'static str,
    /// English title, with the seed's Chinese section title beside it.
    pub title: &'static str,
    /// The demo itself.
    pub run: RunFn,
}

/// A chapter: its lessons in the seed's order, and the helpers its lessons start as child
/// processes of the chapter binary (`--helper NAME`, see [`Cx::helper`]).
#[derive(Debug, Clone, Copy)]
pub struct Chapter {
    /// The crate and binary name (`threads`).
    pub name: &'static str,
    /// One line saying what the chapter covers.
    pub title: &'static str,
    /// The lessons, in the order the Python lesson tells them.
    pub lessons: &'static [Lesson],
    /// Programs that lessons run in a child process of the chapter binary, for demos that need a
    /// process of their own (a `main` that returns while threads still run, a deadlock that must
    /// be killed). Not listed by `--list`.
    pub helpers: &'static [Lesson],
}

impl Chapter {
    /// The lesson called `name`, if there is one.
    pub fn lesson(&self, name: &str) -> Option<&'static Lesson> {
        self.lessons.iter().find(|l| l.name == name)
    }

    /// The helper called `name`, if there is one.
    pub fn helper(&self, name: &str) -> Option<&'static Lesson> {
        self.helpers.iter().find(|l| l.name == name)
    }

    /// The lesson names, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.lessons.iter().map(|l| l.name).collect()
    }
}
