//! sync -- deadlock: two locks, two orders; one order for everyone.
//!
//! After the lesson `cargo run -p sync -- deadlock`.
//! Check your work: `cargo xtask exercise lock-order`.
//! Run it: `cargo run --bin lock-order` in `exercises/`.
//!
//! The seed's `actionA` takes lockA then lockB; its `actionB` takes lockB then lockA. One
//! thread in `actionA` holding A and another in `actionB` holding B wait for each other
//! forever. The locks here are `sync::TrackedMutex`es: instead of hanging, the thread that
//! closes such a cycle gets a `sync::Deadlock` error naming it.

use std::sync::Mutex;
use std::thread;

use sync::{Deadlock, LockGraph, TrackedMutex};

/// The seed's two locks.
pub struct Locks {
    /// lockA
    pub a: TrackedMutex<()>,
    /// lockB
    pub b: TrackedMutex<()>,
}

impl Locks {
    /// Two new locks, tracked by one graph.
    pub fn new() -> Locks {
        let graph = LockGraph::new();
        Locks {
            a: graph.mutex("lockA", ()),
            b: graph.mutex("lockB", ()),
        }
    }
}

/// What the threads printed (the seed prints the thread's name and `doLockA` / `doLockB`).
pub type Said = Mutex<Vec<String>>;

fn say(said: &Said, what: &str) {
    let me = thread::current().name().unwrap_or("main").to_owned();
    said.lock().unwrap().push(format!("{me} {what}"));
}

/// The seed's `time.sleep` between the two locks: let the other threads run.
fn pause() {
    thread::yield_now();
}

/// The seed's `actionA`: lockA, pause, lockB.
pub fn action_a(locks: &Locks, said: &Said) -> Result<(), Deadlock> {
    let _a = locks.a.lock()?;
    say(said, "doLockA");
    pause();
    let _b = locks.b.lock()?;
    say(said, "doLockB");
    Ok(())
}

// Solved: one global order, lockA before lockB, in every function that takes both. A cycle
// of waits needs someone holding B while waiting for A, and nobody does that any more.
/// The seed's `actionB`: both locks, a pause in between.
pub fn action_b(locks: &Locks, said: &Said) -> Result<(), Deadlock> {
    let _a = locks.a.lock()?;
    say(said, "doLockA");
    pause();
    let _b = locks.b.lock()?;
    say(said, "doLockB");
    Ok(())
}

/// The seed's program: `threads` threads, each runs `action_a` then `action_b`.
pub fn run(threads: usize, said: &Said) -> Result<(), Deadlock> {
    let locks = Locks::new();
    thread::scope(|s| {
        let handles: Vec<_> = (1..=threads)
            .map(|i| {
                let locks = &locks;
                thread::Builder::new()
                    .name(format!("Thread-{i}"))
                    .spawn_scoped(s, move || {
                        action_a(locks, said)?;
                        action_b(locks, said)
                    })
                    .expect("start a thread")
            })
            .collect();
        handles.into_iter().try_for_each(|h| h.join().unwrap())
    })
}

fn main() {
    let said = Said::default();
    let outcome = run(5, &said);
    for line in said.into_inner().unwrap() {
        println!("{line}");
    }
    match outcome {
        Ok(()) => println!("ending....."),
        Err(deadlock) => println!("{deadlock}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exercise_check::nothing_left;

    #[test]
    fn both_actions_take_lock_a_first() {
        nothing_left(|| {
            let locks = Locks::new();
            let said = Said::default();
            action_a(&locks, &said).unwrap();
            action_b(&locks, &said).unwrap();
            let said = said.into_inner().unwrap();
            let order: Vec<&str> = said.iter().filter_map(|l| l.rsplit(' ').next()).collect();
            assert_eq!(
                order,
                ["doLockA", "doLockB", "doLockA", "doLockB"],
                "action_a takes lockA then lockB; action_b must take them in that order too, \
                 or two threads running one each can hold one lock apiece and wait forever"
            );
        });
    }

    #[test]
    fn five_threads_finish_without_a_deadlock() {
        nothing_left(|| {
            let said = Said::default();
            if let Err(deadlock) = run(5, &said) {
                panic!("{deadlock}");
            }
            assert_eq!(said.into_inner().unwrap().len(), 20, "4 lines per thread");
        });
    }
}
