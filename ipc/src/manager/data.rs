//! [`Data`]: what a managed object holds.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A value a managed object can hold: what Python's manager would pickle, limited to data.
///
/// Lists may nest up to [`Data::MAX_DEPTH`] levels; the server refuses deeper values (and a
/// proxy refuses to send them), so that whatever the server holds can always be sent back.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Data {
    /// An integer.
    Int(i64),
    /// A string.
    Str(String),
    /// A list of data.
    List(Vec<Data>),
}

impl Data {
    /// How deeply lists may nest in a value a manager holds: a list of integers is depth 1.
    /// Well below the frame decoder's own limit ([`crate::frame::MAX_DEPTH`], which counts
    /// two levels per list), so a reply holding the deepest value still decodes.
    pub const MAX_DEPTH: usize = 32;

    /// How deeply lists nest in this value: 0 for an integer or a string, 1 for a list of
    /// them, and so on. Walks the value with a stack of its own, so a value nested deeper
    /// than the thread's stack could hold is measured, not a crash.
    pub fn depth(&self) -> usize {
        // The common cases without allocating: a scalar, or a list of scalars.
        let Data::List(items) = self else { return 0 };
        if !items.iter().any(|i| matches!(i, Data::List(_))) {
            return 1;
        }
        let mut deepest = 0;
        let mut todo: Vec<(&Data, usize)> = vec![(self, 0)];
        while let Some((d, level)) = todo.pop() {
            deepest = deepest.max(level);
            if let Data::List(items) = d {
                todo.extend(items.iter().map(|i| (i, level + 1)));
            }
        }
        deepest
    }
}

impl fmt::Display for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Data::Int(i) => write!(f, "{i}"),
            Data::Str(s) => write!(f, "{s:?}"),
            Data::List(items) => {
                f.write_str("[")?;
                for (i, d) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{d}")?;
                }
                f.write_str("]")
            }
        }
    }
}

impl From<i64> for Data {
    fn from(v: i64) -> Data {
        Data::Int(v)
    }
}
impl From<i32> for Data {
    fn from(v: i32) -> Data {
        Data::Int(v.into())
    }
}
impl From<usize> for Data {
    fn from(v: usize) -> Data {
        Data::Int(v as i64)
    }
}
impl From<&str> for Data {
    fn from(v: &str) -> Data {
        Data::Str(v.to_owned())
    }
}
impl From<String> for Data {
    fn from(v: String) -> Data {
        Data::Str(v)
    }
}
