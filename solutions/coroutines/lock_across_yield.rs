//! coroutines -- tradeoffs: tasks on one hub need no lock, and a thread lock can hang them.
//!
//! After the lesson `cargo run -p coroutines -- tradeoffs`.
//! Check your work: `cargo xtask exercise lock-across-yield`.
//! Run it: `cargo run --bin lock-across-yield` in `exercises/`.
//!
//! The seed: coroutines "have no lock concept". All tasks of a hub run on one thread and
//! switch only where a task waits through the hub, so code between two waits runs alone.
//! A thread lock held across such a wait is worse than useless: the next task that asks for
//! it blocks the thread, and the holder, which runs on that same thread, can never release it.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use coroutines::hub;

// Solved: the read-modify-write has no hub wait inside it, so no other task can run in the
// middle of it: a `Cell` shared through an `Rc` is all it takes (both are single-threaded,
// like the hub). The sleep comes after the addition.
/// Two tasks on the hub each add 1 to a shared total five times, pausing through the hub
/// after each addition. The total.
pub fn count_together() -> std::io::Result<u64> {
    let total = Rc::new(Cell::new(0u64));
    let task = |total: Rc<Cell<u64>>| {
        move || {
            for _ in 0..5 {
                total.set(total.get() + 1);
                hub::sleep(Duration::from_millis(1)); // wait for something
            }
        }
    };
    let a = hub::spawn(task(Rc::clone(&total)))?;
    let b = hub::spawn(task(Rc::clone(&total)))?;
    hub::joinall(&[&a, &b]);
    Ok(total.get())
}

fn main() -> std::io::Result<()> {
    println!("total {}", count_together()?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use exercise_check::nothing_left;

    #[test]
    fn both_tasks_count() {
        assert_eq!(nothing_left(count_together).unwrap(), 10);
    }
}
