//! ipc -- pipe: end-of-file comes when every copy of the write end is closed.
//!
//! After the lesson `cargo run -p ipc -- pipe`.
//! Check your work: `cargo xtask exercise pipe-eof`.
//! Run it: `cargo run --bin pipe-eof` in `exercises/`.
//!
//! The parent sends numbers down a pipe and closes its end; the child adds them up until
//! end-of-file, then sends back the sum. A reader sees end-of-file only when *every* copy of
//! the write end is closed, in every process. `fork` copies every open descriptor into the
//! child, the parent's write end included.

use ipc::{FrameError, Pipe};
use processes::Process;

// Solved: the child closes its inherited copy of the parent's write end before its body
// runs, so once the parent drops its own, no write end is left and the child's `recv` ends
// with Eof. (The child's copy of `sum_rx` is harmless: nobody waits for its end.)
/// Send `numbers` to a child, which adds them up until end-of-file and sends back the sum.
pub fn sum_in_child(numbers: &[u64]) -> anyhow::Result<u64> {
    let (numbers_rx, numbers_tx) = Pipe::oneway::<u64>()?;
    let (sum_rx, sum_tx) = Pipe::oneway::<u64>()?;
    let mut child = Process::new(move || -> anyhow::Result<()> {
        let mut sum = 0;
        loop {
            match numbers_rx.recv() {
                Ok(n) => sum += n,
                Err(FrameError::Eof) => break,
                Err(e) => return Err(e.into()),
            }
        }
        sum_tx.send(&sum)?;
        Ok(())
    })
    .close_in_child(&numbers_tx);
    child.start()?;
    for n in numbers {
        numbers_tx.send(n)?;
    }
    drop(numbers_tx); // no more numbers
    let sum = sum_rx.recv()?;
    child.join()?;
    Ok(sum)
}

fn main() -> anyhow::Result<()> {
    println!("sum {}", sum_in_child(&[1, 2, 3, 4])?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use exercise_check::nothing_left;

    #[test]
    fn the_child_sees_the_end_and_answers() {
        let numbers: Vec<u64> = (1..=100).collect();
        assert_eq!(nothing_left(|| sum_in_child(&numbers)).unwrap(), 5050);
    }
}
