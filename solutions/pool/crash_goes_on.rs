//! pool -- crash: one task panics; the others' results still count.
//!
//! After the lesson `cargo run -p pool -- crash`.
//! Check your work: `cargo xtask exercise crash-goes-on`.
//! Run it: `cargo run --bin crash-goes-on` in `exercises/`.
//!
//! `Pool::map` is all or nothing: it returns the results in order, or the first error. When
//! some tasks may fail and the rest must still be used, submit them one by one
//! (`apply_async`) and look at each result (`AsyncResult::get`): `Ok(value)` or a
//! `TaskError` saying what went wrong (here `TaskError::Panicked`). The worker that ran the
//! panicking task lives on.

use pool::{Pool, Task};
use serde::{Deserialize, Serialize};

/// A task that panics on 13.
#[derive(Serialize, Deserialize)]
pub struct Unlucky(pub u64);

impl Task for Unlucky {
    type Output = u64;
    fn run(self) -> anyhow::Result<u64> {
        assert!(self.0 != 13, "13 is unlucky");
        Ok(self.0 * 10)
    }
}

// Solved: one AsyncResult per task; each `get` is that task's own outcome, so one failure
// costs one result, not all of them.
/// Run `Unlucky(n)` for each number on a pool of 2. The results of the tasks that succeeded,
/// in order, and how many failed.
pub fn run_all(numbers: &[u64]) -> anyhow::Result<(Vec<u64>, usize)> {
    let mut pool = Pool::new(2)?;
    let pending = numbers
        .iter()
        .map(|&n| pool.apply_async(Unlucky(n)))
        .collect::<Result<Vec<_>, _>>()?;
    let (mut results, mut failed) = (Vec::new(), 0);
    for result in pending {
        match result.get() {
            Ok(value) => results.push(value),
            Err(_) => failed += 1,
        }
    }
    pool.close();
    pool.join()?;
    Ok((results, failed))
}

fn main() -> anyhow::Result<()> {
    let (results, failed) = run_all(&[1, 13, 2, 3])?;
    println!("{results:?}, {failed} failed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use exercise_check::nothing_left;

    #[test]
    fn all_good() {
        let got = nothing_left(|| run_all(&[1, 2, 3])).unwrap();
        assert_eq!(got, (vec![10, 20, 30], 0));
    }

    #[test]
    fn one_panics_the_rest_count() {
        let got = nothing_left(|| run_all(&[1, 13, 2, 13, 3]));
        assert_eq!(
            got.unwrap(),
            (vec![10, 20, 30], 2),
            "three results, two panics"
        );
    }
}
