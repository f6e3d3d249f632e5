//! [`Data`]: what a managed object holds.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A value a managed object can hold: what Python's manager would pickle, limited to data.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Data {
    /// An integer.
    Int(i64),
    /// A string.
    Str(String),
    /// A list of data.
    List(Vec<Data>),
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
