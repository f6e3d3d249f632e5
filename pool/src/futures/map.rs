//! [`MapResults`]: what an executor's `map` returns, Python's result iterator.

use std::collections::VecDeque;
use std::time::Instant;

use super::{Future, FutureError};

/// The results of an executor's `map`, in the order of the inputs, each waited for in turn.
///
/// As Python's: every call was submitted before `map` returned (iterating is not needed for
/// them to run); `timeout` bounds the whole iteration, from the `map` call; the first error
/// (a call's exception, or [`FutureError::Timeout`]) is given once and ends the iteration,
/// and the calls not yet started are then cancelled, as they are when the iterator is dropped
/// early.
pub struct MapResults<T> {
    /// One future per chunk of inputs (one input per chunk on threads).
    futures: VecDeque<Future<Vec<T>>>,
    current: std::vec::IntoIter<T>,
    deadline: Option<Instant>,
    ended: bool,
}

impl<T> MapResults<T> {
    pub(crate) fn new(futures: Vec<Future<Vec<T>>>, deadline: Option<Instant>) -> MapResults<T> {
        MapResults {
            futures: futures.into(),
            current: Vec::new().into_iter(),
            deadline,
            ended: false,
        }
    }

    fn cancel_rest(&mut self) {
        for f in self.futures.drain(..) {
            f.cancel();
        }
    }
}

impl<T> Iterator for MapResults<T> {
    type Item = Result<T, FutureError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(v) = self.current.next() {
                return Some(Ok(v));
            }
            if self.ended {
                return None;
            }
            let f = self.futures.pop_front()?;
            match f.take_until(self.deadline) {
                Ok(values) => self.current = values.into_iter(),
                Err(e) => {
                    // Python's `_result_or_cancel`: the future waited for is cancelled too
                    // (a no-op once it runs), then the rest.
                    f.cancel();
                    self.cancel_rest();
                    self.ended = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl<T> Drop for MapResults<T> {
    fn drop(&mut self) {
        self.cancel_rest();
    }
}
