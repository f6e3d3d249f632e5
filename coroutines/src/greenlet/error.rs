//! [`GreenletError`]: why a switch returned no value; [`GreenletExit`], the value a killed
//! greenlet's parent receives.

use std::any::Any;
use std::fmt;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Why a switch returned no value: see [`GreenletError::kind`].
///
/// One word (the details are boxed), as [`Val`](crate::Val) is, so that a switch's
/// `Result<Val, GreenletError>` is two words and crosses the hub in registers.
#[derive(Clone, PartialEq, Eq)]
pub struct GreenletError(Box<GreenletErrorKind>);

/// The kinds of [`GreenletError`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GreenletErrorKind {
    /// Raised into this greenlet by [`Greenlet::throw`](super::Greenlet::throw) (or a child
    /// finished with it).
    Thrown(String),
    /// greenlet's `GreenletExit`: raised by [`Greenlet::throw_exit`](super::Greenlet::throw_exit),
    /// and into a suspended greenlet whose last owning handle is dropped. A greenlet that
    /// finishes with it hands its parent the value [`GreenletExit`] instead of the error.
    Exit,
    /// A greenlet panicked; the message.
    Panicked(String),
    /// A stack could not be made (for example past the process's memory-map limit).
    NoStack(String),
    /// The switch cannot suspend this greenlet now: it is being unwound, a panic is
    /// unwinding on this thread, or a hub task runs on top of it (the reason).
    CannotSwitch(&'static str),
    /// [`Greenlet::set_parent`](super::Greenlet::set_parent) would make a cycle of parents
    /// (greenlet: `ValueError: cyclic parent chain`).
    CyclicParent,
    /// The thread's root greenlet has no parent to set (greenlet: `AttributeError: cannot set
    /// the parent of a main greenlet`).
    ParentOfRoot,
}

/// The value a greenlet's parent receives when the greenlet ends with
/// [`GreenletErrorKind::Exit`] (greenlet hands the `GreenletExit` instance back as a value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GreenletExit;

impl GreenletError {
    /// An error raised at a suspension point, as [`Greenlet::throw`](super::Greenlet::throw)
    /// does (greenlet raises an exception there).
    pub fn thrown(message: impl Into<String>) -> GreenletError {
        GreenletErrorKind::Thrown(message.into()).into()
    }

    /// greenlet's `GreenletExit`.
    pub fn exit() -> GreenletError {
        GreenletErrorKind::Exit.into()
    }

    /// Whether it is [`GreenletErrorKind::Exit`].
    pub fn is_exit(&self) -> bool {
        matches!(*self.0, GreenletErrorKind::Exit)
    }

    /// What went wrong.
    pub fn kind(&self) -> &GreenletErrorKind {
        &self.0
    }
}

impl From<GreenletErrorKind> for GreenletError {
    fn from(kind: GreenletErrorKind) -> GreenletError {
        GreenletError(Box::new(kind))
    }
}

impl fmt::Debug for GreenletError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for GreenletError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind() {
            GreenletErrorKind::Thrown(m) => write!(f, "thrown: {m}"),
            GreenletErrorKind::Exit => f.write_str("GreenletExit"),
            GreenletErrorKind::Panicked(m) => write!(f, "a greenlet panicked: {m}"),
            GreenletErrorKind::NoStack(m) => write!(f, "cannot make a greenlet stack: {m}"),
            GreenletErrorKind::CannotSwitch(why) => write!(f, "cannot switch: {why}"),
            GreenletErrorKind::CyclicParent => f.write_str("cyclic parent chain"),
            GreenletErrorKind::ParentOfRoot => {
                f.write_str("cannot set the parent of a main greenlet")
            }
        }
    }
}

impl std::error::Error for GreenletError {}

/// The message of a panic's payload: the lesson crate's one function for it.
pub(crate) use lesson::panic_message as panic_text;

/// Whether a panic's payload is one `panic!` makes (a message), as opposed to a payload of
/// another type (`panic_any`, or corosensei's own when it unwinds a dropped coroutine).
pub(crate) fn is_message(payload: &(dyn Any + Send)) -> bool {
    payload.is::<&str>() || payload.is::<String>()
}

/// Drop a panic's payload without letting a panic out of its destructor: a payload whose
/// `Drop` panics would otherwise escape a coroutine's top frame.
pub(crate) fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}

/// Say on stderr what could not be handed to anyone (greenlet's "unraisable" hook); a failed
/// write is ignored (it must not panic: this runs while unwinding).
pub(crate) fn report(what: &str) {
    let _ = writeln!(std::io::stderr(), "greenlet: {what}");
}
