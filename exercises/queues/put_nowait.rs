//! queues -- fifo: a full queue, and a put that must not wait.
//!
//! After the lesson `cargo run -p queues -- fifo`.
//! Check your work: `cargo xtask exercise put-nowait`.
//! Run it: `cargo run --bin put-nowait` in `exercises/`.
//!
//! `Queue::new(3)` holds three items. A fourth `put` waits for room; with nobody else to take
//! an item out, it waits forever. The seed's answer is `q.put(x, block=False)`, which raises
//! `queue.Full`; the Rust one is `try_put`, whose `PutError::Full(item)` hands the item back.

use queues::{PutError, Queue};

// TODO(queues -- fifo): `put` waits for room, and on a full queue in a single thread room
// never comes. Put each item without waiting (`try_put`); keep the items that did not fit
// (the error gives each one back) and return them, in order.
/// Put `items` into a new queue of `maxsize` without ever waiting. The queue, and the items
/// that did not fit.
pub fn put_what_fits(maxsize: usize, items: Vec<i32>) -> (Queue<i32>, Vec<i32>) {
    let q = Queue::new(maxsize);
    let rejected = Vec::new();
    for item in items {
        if let Err(PutError::ShutDown(_)) = q.put(item) {
            unreachable!("nobody shuts this queue down");
        }
    }
    (q, rejected)
}

fn main() {
    let (q, rejected) = put_what_fits(3, vec![10, 9, 8, 7, 6]);
    let mut kept = Vec::new();
    while let Ok(item) = q.try_get() {
        kept.push(item);
    }
    println!("kept {kept:?}, rejected {rejected:?}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use exercise_check::nothing_left;

    #[test]
    fn what_fits_goes_in() {
        let (q, rejected) = nothing_left(|| put_what_fits(3, vec![10, 9]));
        assert!(rejected.is_empty());
        assert_eq!((q.try_get(), q.try_get()), (Ok(10), Ok(9)));
    }

    #[test]
    fn the_rest_comes_back() {
        let (q, rejected) = nothing_left(|| put_what_fits(3, vec![10, 9, 8, 7, 6]));
        assert_eq!(rejected, [7, 6], "the items that did not fit, in order");
        assert_eq!(q.qsize(), 3);
        assert_eq!(q.try_get(), Ok(10), "first in, first out");
    }
}
