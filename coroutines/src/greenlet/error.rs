//! [`GreenletError`]: why a switch returned no value.

use std::any::Any;
use std::fmt;

/// Why a switch returned no value: see [`GreenletError::kind`].
///
/// One word (the details are boxed), as [`Val`](crate::Val) is, so that a switch's
/// `Result<Val, GreenletError>` is two words and crosses the hub in registers.
#[derive(Clone, PartialEq, Eq)]
pub struct GreenletError(Box<GreenletErrorKind>);

/// The kinds of [`GreenletError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GreenletErrorKind {
    /// Raised into this greenlet by [`Greenlet::throw`](super::Greenlet::throw) (or its child finished with it).
    Thrown(String),
    /// A greenlet panicked; the message.
    Panicked(String),
    /// A stack could not be made (for example past the process's memory-map limit).
    NoStack(String),
}

impl GreenletError {
    /// An error raised at a suspension point, as [`Greenlet::throw`](super::Greenlet::throw) does (greenlet raises an
    /// exception there).
    pub fn thrown(message: impl Into<String>) -> GreenletError {
        GreenletErrorKind::Thrown(message.into()).into()
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
            GreenletErrorKind::Panicked(m) => write!(f, "a greenlet panicked: {m}"),
            GreenletErrorKind::NoStack(m) => write!(f, "cannot make a greenlet stack: {m}"),
        }
    }
}

impl std::error::Error for GreenletError {}

/// The message of a panic's payload (a `&str` or a `String`; anything else is named as such).
pub(super) fn panic_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic".to_owned())
}
