//! The requests a proxy sends and the responses the server gives: one frame each, one request
//! in flight per connection.
//!
//! The first ten requests and the first seven responses keep their places (a variant's place is
//! its number on the wire); later ones are added after them.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Data;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) enum Request {
    NewDict,
    NewList(Vec<Data>),
    NewValue(i64),
    DictSet(u32, Data, Data),
    DictGet(u32, Data),
    DictItems(u32),
    ListAppend(u32, Data),
    ListItems(u32),
    ValueAdd(u32, i64),
    ValueGet(u32),
    /// Remove a key; its value, if it had one (`d.pop(k, None)`).
    DictDel(u32, Data),
    DictLen(u32),
    DictClear(u32),
    ListExtend(u32, Vec<Data>),
    /// One item; a negative index counts from the end, as in Python.
    ListGet(u32, i64),
    ListSet(u32, i64, Data),
    ListLen(u32),
    /// Remove and return an item (the last one if `None`).
    ListPop(u32, Option<i64>),
    /// `l[start:end]`, with Python's slice rules (negative counts from the end, clamped).
    ListSlice(u32, Option<i64>, Option<i64>),
    ValueSet(u32, i64),
    NewDictFrom(Vec<(Data, Data)>),
    NewNamespace,
    NsSet(u32, String, Data),
    /// An attribute's value (`Refused(NoSuchAttribute)` if there is none).
    NsGet(u32, String),
    NsDel(u32, String),
    NsItems(u32),
    /// A queue of at most `maxsize` items (0: no limit).
    NewQueue(u64),
    /// Put, waiting at most this many milliseconds for room (`Refused(Full)` then).
    QueuePut(u32, Data, u64),
    /// Get, waiting at most this many milliseconds for an item (`Refused(Empty)` then).
    QueueGet(u32, u64),
    QueueSize(u32),
    /// An object of a registered type, made by its factory with these arguments.
    NewObject(String, Vec<Data>),
    /// A method of a registered object.
    Call(u32, String, Vec<Data>),
    /// Give an object a name others can look up (`Refused(NameTaken)` if given already).
    Publish(String, u32),
    /// The object of that name and its kind (`Found`).
    Lookup(String),
    /// Whether the queue holds its `maxsize` (`Bool`).
    QueueFull(u32),
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) enum Response {
    Created(u32),
    Done,
    Got(Option<Data>),
    Items(Vec<(Data, Data)>),
    List(Vec<Data>),
    Int(i64),
    Error(String),
    Len(u64),
    Refused(Refusal),
    Found(u32, String),
    Names(Vec<(String, Data)>),
    Bool(bool),
}

/// Why the server did not do what was asked: every request gets an answer, and none of these
/// ends the connection except `RequestTooLarge` (the stream cannot be followed past it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Refusal {
    NoSuchObject {
        id: u32,
        kind: String,
    },
    Overflow {
        value: i64,
        delta: i64,
    },
    ReplyTooLarge {
        size: u64,
        max: u64,
    },
    IndexOutOfRange {
        index: i64,
        len: u64,
    },
    TooDeep {
        depth: u64,
        limit: u64,
    },
    Malformed(String),
    RequestTooLarge {
        claimed: u64,
        max: u64,
    },
    NoSuchAttribute(String),
    Empty,
    Full,
    NoSuchType(String),
    NoSuchName(String),
    NameTaken(String),
    /// A registered object's method (or factory) failed, or panicked.
    Method(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NoSuchObject { id, kind } => write!(f, "no {kind} with id {id}"),
            Refusal::Overflow { value, delta } => write!(
                f,
                "integer overflow: {value} + {delta} does not fit in 64 bits (the value is unchanged)"
            ),
            Refusal::ReplyTooLarge { size, max } => write!(
                f,
                "reply too large: {size} bytes, over the frame limit of {max} \
                 (nothing was changed; read it in parts)"
            ),
            Refusal::IndexOutOfRange { index, len } => {
                write!(f, "list index {index} out of range for a list of {len}")
            }
            Refusal::TooDeep { depth, limit } => write!(
                f,
                "data nested {depth} lists deep, over the limit of {limit}"
            ),
            Refusal::Malformed(why) => write!(f, "a malformed request: {why}"),
            Refusal::RequestTooLarge { claimed, max } => write!(
                f,
                "a request of {claimed} bytes is over the limit of {max} (connection closed)"
            ),
            Refusal::NoSuchAttribute(a) => write!(f, "the namespace has no attribute {a:?}"),
            Refusal::Empty => f.write_str("the queue is empty"),
            Refusal::Full => f.write_str("the queue is full"),
            Refusal::NoSuchType(t) => write!(f, "no type registered as {t:?}"),
            Refusal::NoSuchName(n) => write!(f, "nothing published as {n:?}"),
            Refusal::NameTaken(n) => write!(f, "something is published as {n:?} already"),
            Refusal::Method(e) => write!(f, "{e}"),
        }
    }
}
