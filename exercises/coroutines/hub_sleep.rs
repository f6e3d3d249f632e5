//! coroutines -- gevent: a blocking sleep stops every task of the hub.
//!
//! After the lesson `cargo run -p coroutines -- gevent`.
//! Check your work: `cargo xtask exercise hub-sleep`.
//! Run it: `cargo run --bin hub-sleep` in `exercises/`.
//!
//! The hub runs many tasks on one thread, switching only when a task waits through the hub.
//! gevent monkey-patches `time.sleep` so that a sleep waits through its hub; Rust patches
//! nothing, so `std::thread::sleep` in a task blocks the whole thread, and no other task runs
//! until it returns.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use coroutines::hub;

// TODO(coroutines -- gevent): task `a` blocks the thread for its whole sleep, so `b` cannot
// start until `a` has ended. Make `a` sleep cooperatively: `hub::sleep` suspends only this
// task, and the hub runs `b` meanwhile.
/// Two tasks on the hub: `a` waits a moment between its two lines, `b` has nothing to wait
/// for. The lines in the order they were written.
pub fn two_tasks() -> std::io::Result<Vec<&'static str>> {
    let log = Rc::new(RefCell::new(Vec::new()));
    let a = hub::spawn({
        let log = Rc::clone(&log);
        move || {
            log.borrow_mut().push("a: fetching");
            std::thread::sleep(Duration::from_millis(20)); // waiting for the page
            log.borrow_mut().push("a: done");
        }
    })?;
    let b = hub::spawn({
        let log = Rc::clone(&log);
        move || {
            log.borrow_mut().push("b: start");
            log.borrow_mut().push("b: done");
        }
    })?;
    hub::joinall(&[&a, &b]);
    let lines = log.borrow().clone();
    Ok(lines)
}

fn main() -> std::io::Result<()> {
    for line in two_tasks()? {
        println!("{line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use exercise_check::nothing_left;

    #[test]
    fn b_runs_while_a_waits() {
        let lines = nothing_left(two_tasks).unwrap();
        assert_eq!(
            lines,
            ["a: fetching", "b: start", "b: done", "a: done"],
            "b should run while a waits"
        );
    }
}
