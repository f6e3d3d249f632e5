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

// TODO(pool -- crash): one panicking task makes `map` return an error, and this whole function
// fails with it, losing every good result. Submit each task with `apply_async`, then `get`
// each result in order: keep the values, count the errors.
/// Run `Unlucky(n)` for each number on a pool of 2. The results of the tasks that succeeded,
/// in order, and how many failed.
pub fn run_all(numbers: &[u64]) -> anyhow::Result<(Vec<u64>, usize)> {
    let mut pool = Pool::new(2)?;
    let tasks = numbers.iter().map(|&n| Unlucky(n)).collect();
    let results = pool.map(tasks, 1)?;
    pool.close();
    pool.join()?;
    Ok((results, 0))
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
