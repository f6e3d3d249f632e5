//! queues -- producer-consumer: a consumer that knows when to stop.
//!
//! After the lesson `cargo run -p queues -- producer-consumer`.
//! Check your work: `cargo xtask exercise consumer-stop`.
//! Run it: `cargo run --bin consumer-stop` in `exercises/`.
//!
//! The seed's consumers loop on `while 1: data = q.get()`. When the producers are done, such a
//! consumer waits in `get` forever; Python programs hide it by making it a daemon thread. Rust
//! has no daemon threads to hide behind: stop it, and join it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use queues::Queue;

// TODO(queues -- producer-consumer): the consumer loops on `get()` forever, so it is still
// waiting when this returns: a thread left behind. Once the work is done, tell it there is no
// more (shut the queue down with `q.shutdown(false)`: its `get` then returns
// `Err(GetError::ShutDown)` once the queue is empty; or put a sentinel such as a `None`), let
// it leave its loop, and join it.
/// A producer (this thread) puts `1..=n` into a queue of 3; a consumer thread adds them up.
/// The total.
pub fn consume_all(n: u64) -> u64 {
    let q = Arc::new(Queue::new(3));
    let total = Arc::new(AtomicU64::new(0));
    let _consumer = {
        let (q, total) = (Arc::clone(&q), Arc::clone(&total));
        thread::Builder::new()
            .name("consumer".into())
            .spawn(move || {
                loop {
                    let item: u64 = q.get().unwrap();
                    total.fetch_add(item, Ordering::SeqCst);
                    q.task_done().unwrap();
                }
            })
            .expect("start the consumer")
    };
    for item in 1..=n {
        q.put(item).unwrap();
    }
    q.join(); // every item taken and dealt with
    total.load(Ordering::SeqCst)
}

fn main() {
    println!("total {}", consume_all(100));
}

#[cfg(test)]
mod tests {
    use super::*;
    use exercise_check::nothing_left;

    #[test]
    fn adds_everything_and_stops() {
        assert_eq!(nothing_left(|| consume_all(100)), 5050);
    }
}
