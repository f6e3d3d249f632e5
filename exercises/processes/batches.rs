//! processes -- thousand: many processes, a few at a time.
//!
//! After the lesson `cargo run -p processes -- thousand`.
//! Check your work: `cargo xtask exercise batches`.
//! Run it: `cargo run --bin batches` in `exercises/`.
//!
//! The seed starts 1000 processes at once. Each one costs memory and a slot in the process
//! table, and a child that has exited still holds its slot (a zombie) until its parent joins
//! it. Keeping at most N children at a time means joining one before starting the next.

use std::collections::VecDeque;

use processes::Process;

/// A child's body: a little work, then exit 0.
fn work(i: usize) {
    let _ = (0..1000).fold(i, |a, b| a.wrapping_mul(31).wrapping_add(b));
}

// TODO(processes -- thousand): this starts every child before joining any, so all `n` exist
// at once (the finished ones as zombies, until joined). Keep at most `at_once`: before
// starting a child when `at_once` are already started and not yet joined, join the oldest.
// Call `started(i)` right after child `i` starts, as now.
/// Run `n` children, never more than `at_once` of them started and not yet joined. Their
/// exit codes, in start order.
pub fn run_in_batches(
    n: usize,
    at_once: usize,
    mut started: impl FnMut(usize),
) -> anyhow::Result<Vec<i32>> {
    let _ = at_once;
    let mut running = VecDeque::new();
    for i in 0..n {
        let mut p = Process::target(work, i);
        p.start()?;
        started(i);
        running.push_back(p);
    }
    let mut codes = Vec::new();
    while let Some(mut p) = running.pop_front() {
        codes.push(p.join()?);
    }
    Ok(codes)
}

fn main() -> anyhow::Result<()> {
    let codes = run_in_batches(20, 4, |i| println!("started child {i}"))?;
    println!("{} children, exit codes {codes:?}", codes.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use exercise_check::{children, nothing_left};

    #[test]
    fn never_more_than_four_children() {
        let codes = nothing_left(|| {
            run_in_batches(20, 4, |i| {
                let alive = children();
                assert!(
                    alive.len() <= 4,
                    "after starting child {i}, {} children exist (zombies count until joined): {:?}",
                    alive.len(),
                    alive.iter().map(|c| (c.id, c.state)).collect::<Vec<_>>()
                );
            })
        })
        .unwrap();
        assert_eq!(codes, vec![0; 20]);
    }
}
