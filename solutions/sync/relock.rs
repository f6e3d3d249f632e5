//! sync -- rlock: a thread that waits for a lock it already holds.
//!
//! After the lesson `cargo run -p sync -- rlock`.
//! Check your work: `cargo xtask exercise relock`.
//! Run it: `cargo run --bin relock` in `exercises/`.
//!
//! A plain lock is not reentrant: taking it again on the thread that holds it waits for
//! itself, forever. Python's answer is `threading.RLock`, which counts its owner's
//! acquisitions. The Rust answer is usually simpler: take the lock once, and hand the data
//! (the guard) to the code that needs it.

use std::sync::Mutex;
use std::thread;

/// An account whose balance several threads change.
#[derive(Default)]
pub struct Account {
    balance: Mutex<i64>,
}

/// The addition itself, on a balance whose lock the caller holds.
fn add(balance: &mut i64, amount: i64) {
    *balance += amount;
}

impl Account {
    /// Add `amount`.
    pub fn deposit(&self, amount: i64) {
        add(&mut self.balance.lock().unwrap(), amount);
    }

    // Solved: lock once, and do both additions on the guard's data through a helper that
    // takes `&mut i64` (the lock is already held by whoever calls it). `sync::RLock` would
    // also end the self-deadlock, but a lock that is never taken twice needs no count.
    /// Add `amount` twice, with nobody seeing the balance in between.
    pub fn deposit_twice(&self, amount: i64) {
        let mut held = self.balance.lock().unwrap();
        add(&mut held, amount);
        add(&mut held, amount);
    }

    /// The balance now.
    pub fn balance(&self) -> i64 {
        *self.balance.lock().unwrap()
    }
}

fn main() {
    let account = Account::default();
    thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| account.deposit_twice(5));
        }
    });
    println!("balance: {}", account.balance());
}

#[cfg(test)]
mod tests {
    use super::*;
    use exercise_check::nothing_left;

    #[test]
    fn deposit_twice_adds_twice() {
        let account = Account::default();
        nothing_left(|| account.deposit_twice(5));
        assert_eq!(account.balance(), 10);
    }

    #[test]
    fn nobody_sees_half_of_it() {
        let account = Account::default();
        nothing_left(|| {
            thread::scope(|s| {
                for _ in 0..4 {
                    s.spawn(|| {
                        for _ in 0..100 {
                            account.deposit_twice(1);
                        }
                    });
                }
                s.spawn(|| {
                    for _ in 0..400 {
                        let seen = account.balance();
                        assert_eq!(seen % 2, 0, "saw {seen}: between the two deposits");
                    }
                });
            });
        });
        assert_eq!(account.balance(), 800);
    }
}
