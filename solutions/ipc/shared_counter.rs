//! ipc -- shared-memory: a counter that several processes really share.
//!
//! After the lesson `cargo run -p ipc -- shared-memory`.
//! Check your work: `cargo xtask exercise shared-counter`.
//! Run it: `cargo run --bin shared-counter` in `exercises/`.
//!
//! `Arc<AtomicU64>` shares a counter between threads: one memory, many threads. A forked child
//! has memory of its own, a copy: its `Arc` points into that copy. `ipc::AtomicValue` puts the
//! atomic in a shared mapping that parent and children all see.

use std::sync::atomic::{AtomicU64, Ordering};

use processes::Process;

// Solved: the atomic lives in a shared mapping made before the forks; each clone points at
// the same memory in every process, and `fetch_add` on it is atomic across processes too.
/// `children` processes each add 1 to a counter `times` times. The parent's reading after
/// joining them all.
pub fn count_in_children(children: usize, times: u64) -> anyhow::Result<u64> {
    let counter = ipc::AtomicValue::new(AtomicU64::new(0))?;
    let mut started = Vec::new();
    for _ in 0..children {
        let counter = counter.clone();
        let mut p = Process::new(move || {
            for _ in 0..times {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        p.start()?;
        started.push(p);
    }
    for p in &mut started {
        p.join()?;
    }
    Ok(counter.load(Ordering::SeqCst))
}

fn main() -> anyhow::Result<()> {
    println!("{}", count_in_children(4, 1000)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use exercise_check::nothing_left;

    #[test]
    fn the_parent_sees_every_increment() {
        assert_eq!(nothing_left(|| count_in_children(4, 1000)).unwrap(), 4000);
    }
}
