//! threads -- gil: one CPU-bound job, split over several threads.
//!
//! After the lesson `cargo run -p threads -- gil`.
//! Check your work: `cargo xtask exercise split-work`.
//! Run it: `cargo run --bin split-work` in `exercises/`.
//!
//! Python's GIL lets one thread run Python code at a time, so splitting a CPU-bound loop over
//! threads buys nothing there. Rust has no GIL: each part can run on a core of its own.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::Mutex;
use std::thread::{self, ThreadId};

/// Records which threads did the counting.
#[derive(Default)]
pub struct Seen(Mutex<HashSet<ThreadId>>);

impl Seen {
    fn record(&self) {
        self.0.lock().unwrap().insert(thread::current().id());
    }

    /// How many different threads counted, and whether `id` was one of them.
    pub fn threads(&self, id: ThreadId) -> (usize, bool) {
        let set = self.0.lock().unwrap();
        (set.len(), set.contains(&id))
    }
}

fn is_prime(n: u64) -> bool {
    n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
}

/// Count the primes in `range` (one part of the job).
pub fn count_part(range: Range<u64>, seen: &Seen) -> usize {
    seen.record();
    range.filter(|&n| is_prime(n)).count()
}

/// The `i`-th of `parts` ranges that together cover `0..limit`.
pub fn part(limit: u64, parts: usize, i: usize) -> Range<u64> {
    let size = limit.div_ceil(parts as u64);
    let start = (i as u64 * size).min(limit);
    start..(start + size).min(limit)
}

// TODO(threads -- gil): count each part on a thread of its own, `parts` threads at once, and
// add up their counts. Now every part is counted on the calling thread, one after another.
// `std::thread::scope` lets the threads borrow `seen`.
/// Count the primes below `limit`, split into `parts` parts.
pub fn count_primes(limit: u64, parts: usize, seen: &Seen) -> usize {
    (0..parts)
        .map(|i| count_part(part(limit, parts, i), seen))
        .sum()
}

fn main() {
    let seen = Seen::default();
    let n = count_primes(200_000, 4, &seen);
    let (threads, _) = seen.threads(thread::current().id());
    println!("{n} primes below 200000, counted on {threads} thread(s)");
}

#[cfg(test)]
mod tests {
    use super::*;
    use exercise_check::nothing_left;

    #[test]
    fn counts_right() {
        nothing_left(|| {
            let seen = Seen::default();
            assert_eq!(count_primes(10_000, 4, &seen), 1229);
            assert_eq!(count_primes(10, 3, &Seen::default()), 4, "2, 3, 5 and 7");
        });
    }

    #[test]
    fn each_part_on_a_thread_of_its_own() {
        nothing_left(|| {
            let seen = Seen::default();
            count_primes(10_000, 4, &seen);
            let (threads, caller) = seen.threads(thread::current().id());
            assert!(
                !caller,
                "a part was counted on the calling thread: start a thread for each part"
            );
            assert_eq!(
                threads, 4,
                "4 parts should be counted by 4 different threads"
            );
        });
    }
}
