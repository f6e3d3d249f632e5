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

impl Account {
    /// Add `amount`.
    pub fn deposit(&self, amount: i64) {
        *self.balance.lock().unwrap() += amount;
    }

    // TODO(sync -- rlock): this takes the lock, then calls `deposit`, which takes it again on
    // the same thread: it waits for itself forever. Keep the lock held across both deposits
    // (nobody may see the balance in between), but do not lock twice: do the additions on
    // the guard you already have (a helper that takes `&mut i64` is one way).
    /// Add `amount` twice, with nobody seeing the balance in between.
    pub fn deposit_twice(&self, amount: i64) {
        let _held = self.balance.lock().unwrap();
        self.deposit(amount);
        self.deposit(amount);
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
