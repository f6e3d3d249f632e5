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

// Solved: after `join` (all work done), shut the queue down; the consumer's `get` then fails
// with ShutDown once the queue is empty, it leaves its loop, and the join returns.
/// A producer (this thread) puts `1..=n` into a queue of 3; a consumer thread adds them up.
/// The total.
pub fn consume_all(n: u64) -> u64 {
    let q = Arc::new(Queue::new(3));
    let total = Arc::new(AtomicU64::new(0));
    let consumer = {
        let (q, total) = (Arc::clone(&q), Arc::clone(&total));
        thread::Builder::new()
            .name("consumer".into())
            .spawn(move || {
                while let Ok(item) = q.get() {
                    let item: u64 = item;
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
    q.shutdown(false);
    consumer.join().expect("the consumer panicked");
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
