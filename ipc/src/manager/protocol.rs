//! The requests a proxy sends and the responses the server gives: one frame each, one request
//! in flight per connection.
//!
//! The first ten requests and the first seven responses keep their places (a variant's place is
//! its number on the wire); later ones are added after them.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Data;

#[derive(Debug, Serialize, Deserialize)]
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
}

/// Why the server did not do what was asked: every request gets an answer, and none of these
/// ends the connection except `RequestTooLarge` (the stream cannot be followed past it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Refusal {
    NoSuchObject { id: u32, kind: String },
    Overflow { value: i64, delta: i64 },
    ReplyTooLarge { size: u64, max: u64 },
    IndexOutOfRange { index: i64, len: u64 },
    TooDeep { depth: u64, limit: u64 },
    Malformed(String),
    RequestTooLarge { claimed: u64, max: u64 },
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
        }
    }
}
