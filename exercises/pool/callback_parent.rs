//! pool -- pool: the task runs in a worker; the callback runs in the parent.
//!
//! After the lesson `cargo run -p pool -- pool`.
//! Check your work: `cargo xtask exercise callback-parent`.
//! Run it: `cargo run --bin callback-parent` in `exercises/`.
//!
//! A pool's workers are separate processes: what a task writes into memory, it writes into
//! its worker's copy. The parent gets a task's *return value*, and the seed's way to act on
//! it is a callback (`apply_async(func, args, callback=bar)`), which the pool runs in the
//! parent.

use std::sync::Mutex;

use pool::{Pool, Task};
use serde::{Deserialize, Serialize};

/// Where the squares should end up, in the parent.
static SQUARES: Mutex<Vec<u64>> = Mutex::new(Vec::new());

/// A task: square a number.
#[derive(Serialize, Deserialize)]
pub struct Square(pub u64);

// TODO(pool -- pool): `run` executes in a worker process, so its push lands in the worker's
// copy of `SQUARES` and the parent's stays empty. Return the square from `run` instead
// (`type Output = u64`), and record it in the parent with a callback:
// `pool.apply_async_with(task, move |square| ..., |error| ...)`.
impl Task for Square {
    type Output = ();
    fn run(self) -> anyhow::Result<()> {
        SQUARES.lock().unwrap().push(self.0 * self.0);
        Ok(())
    }
}

/// Square `0..n` on a pool of 3 workers. The squares, sorted.
pub fn squares(n: u64) -> anyhow::Result<Vec<u64>> {
    SQUARES.lock().unwrap().clear();
    let mut pool = Pool::new(3)?;
    for i in 0..n {
        pool.apply_async(Square(i))?;
    }
    pool.close();
    pool.join()?; // every task done, every callback run
    let mut got = SQUARES.lock().unwrap().clone();
    got.sort_unstable();
    Ok(got)
}

fn main() -> anyhow::Result<()> {
    println!("{:?}", squares(10)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use exercise_check::nothing_left;

    #[test]
    fn the_parent_gets_every_square() {
        let got = nothing_left(|| squares(10)).unwrap();
        assert_eq!(got, [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
    }
}
