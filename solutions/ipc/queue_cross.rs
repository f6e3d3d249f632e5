//! ipc -- queue: a thread queue does not cross into a child process.
//!
//! After the lesson `cargo run -p ipc -- queue`.
//! Check your work: `cargo xtask exercise queue-cross`.
//! Run it: `cargo run --bin queue-cross` in `exercises/`.
//!
//! A forked child gets a *copy* of its parent's memory: a thread queue in the child is the
//! child's own, and what it puts there never reaches the parent (the seed: "the queue's data
//! is not shared"). `ipc::Queue` lives in shared memory, so parent and child see one queue.

use processes::Process;

// Solved: an `ipc::Queue` made before the fork lives in memory that both processes map, so
// the child's puts are the parent's gets.
/// A child puts `1`, `2`, `3`; the parent gets them. What the parent got.
pub fn from_child() -> anyhow::Result<Vec<i32>> {
    let q = ipc::Queue::<i32>::new()?;
    let mut child = Process::new({
        let q = q.clone();
        move || -> anyhow::Result<()> {
            for i in 1..=3 {
                q.put(&i)?;
            }
            Ok(())
        }
    });
    child.start()?;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(q.get()?);
    }
    child.join()?;
    Ok(got)
}

fn main() -> anyhow::Result<()> {
    println!("the parent got {:?}", from_child()?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use exercise_check::nothing_left;

    #[test]
    fn the_parent_gets_what_the_child_put() {
        assert_eq!(nothing_left(from_child).unwrap(), [1, 2, 3]);
    }
}
