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

use std::sync::{Arc, Mutex};
use std::time::Duration;

use coroutines::hub;

// TODO(coroutines -- tradeoffs): task `a` holds the mutex while it sleeps through the hub;
// the hub runs `b`, whose `lock()` blocks the one thread they share, for good. On a hub, do
// the read and the write with no wait in between (they cannot be interrupted then) and sleep
// outside: a plain `Rc<Cell<u64>>` is enough, no lock at all.
/// Two tasks on the hub each add 1 to a shared total five times, pausing through the hub
/// after each addition. The total.
pub fn count_together() -> std::io::Result<u64> {
    let total = Arc::new(Mutex::new(0u64));
    let task = |total: Arc<Mutex<u64>>| {
        move || {
            for _ in 0..5 {
                let mut t = total.lock().unwrap();
                let seen = *t;
                hub::sleep(Duration::from_millis(1)); // wait for something
                *t = seen + 1;
            }
        }
    };
    let a = hub::spawn(task(Arc::clone(&total)))?;
    let b = hub::spawn(task(Arc::clone(&total)))?;
    hub::joinall(&[&a, &b]);
    let n = *total.lock().unwrap();
    Ok(n)
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
