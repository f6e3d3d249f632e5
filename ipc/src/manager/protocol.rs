//! The requests a proxy sends and the responses the server gives: one frame each, one request
//! in flight per connection.

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
}
