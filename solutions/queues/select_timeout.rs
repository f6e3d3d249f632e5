//! queues -- channels: wait on two channels at once, with a time limit.
//!
//! After the lesson `cargo run -p queues -- channels`.
//! Check your work: `cargo xtask exercise select-timeout`.
//! Run it: `cargo run --bin select-timeout` in `exercises/`.
//!
//! Python's `queue.Queue` cannot wait on two queues at once: a `get` on one blinds you to the
//! other. crossbeam's `select!` waits on several channel operations and takes the first one
//! ready, and its `default(timeout)` arm gives up after a while.

use std::time::Duration;

use crossbeam::channel::{Receiver, select};

// Solved: one `select!` over both receives takes whichever is ready first; the
// `default(limit)` arm runs if neither is within the limit.
/// The first reply from either worker, or `None` if neither replied within `limit`.
pub fn first_reply(
    fast: &Receiver<String>,
    slow: &Receiver<String>,
    limit: Duration,
) -> Option<String> {
    select! {
        recv(fast) -> reply => reply.ok(),
        recv(slow) -> reply => reply.ok(),
        default(limit) => None,
    }
}

fn main() {
    let (fast_tx, fast) = crossbeam::channel::unbounded();
    let (slow_tx, slow) = crossbeam::channel::unbounded();
    slow_tx.send("slow but here".to_owned()).unwrap();
    println!(
        "{:?}",
        first_reply(&fast, &slow, Duration::from_millis(100))
    );
    drop(fast_tx);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam::channel::unbounded;
    use exercise_check::nothing_left;

    #[test]
    fn a_reply_on_the_fast_channel() {
        let (fast_tx, fast) = unbounded();
        let (_slow_tx, slow) = unbounded();
        fast_tx.send("fast".to_owned()).unwrap();
        let got = nothing_left(|| first_reply(&fast, &slow, Duration::from_secs(5)));
        assert_eq!(got.as_deref(), Some("fast"));
    }

    #[test]
    fn a_reply_on_the_slow_channel() {
        let (_fast_tx, fast) = unbounded();
        let (slow_tx, slow) = unbounded();
        slow_tx.send("slow".to_owned()).unwrap();
        let got = nothing_left(|| first_reply(&fast, &slow, Duration::from_secs(5)));
        assert_eq!(got.as_deref(), Some("slow"));
    }

    #[test]
    fn no_reply_at_all() {
        let (_fast_tx, fast) = unbounded::<String>();
        let (_slow_tx, slow) = unbounded::<String>();
        let got = nothing_left(|| first_reply(&fast, &slow, Duration::from_millis(20)));
        assert_eq!(got, None);
    }
}
