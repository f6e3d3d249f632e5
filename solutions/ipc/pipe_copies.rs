//! ipc -- pipe: the parent's end-of-file waits for every copy of the child's write end.
//!
//! After the lesson `cargo run -p ipc -- pipe`.
//! Check your work: `cargo xtask exercise pipe-copies`.
//! Run it: `cargo run --bin pipe-copies` in `exercises/`.
//!
//! A writer child sends numbers and exits; the parent reads until end-of-file. That end comes
//! only when every copy of the write end is closed, in every process, and `fork` copies every
//! open descriptor into each child, including descriptors that belong to *another* child's
//! body, not yet started. Here a second child, a logger that waits for the parent's word to
//! stop, is forked while the parent still holds the writer's end.

use ipc::{FrameError, Pipe};
use processes::Process;

// Solved: the writer starts first. `start` forks it, and then drops the parent's copy of
// its body, write end included; the logger, forked after that, has nothing of it. (Or:
// `keep_only_fds` on the logger closes every copy it does not need, whatever the order.)
/// A writer child sends `0..n`; the parent reads until end-of-file while a logger child waits
/// to be told to stop. What the parent read.
pub fn read_until_eof(n: u64) -> anyhow::Result<Vec<u64>> {
    let (numbers_rx, numbers_tx) = Pipe::oneway::<u64>()?;
    let (stop_rx, stop_tx) = Pipe::oneway::<()>()?;
    let mut writer = Process::new(move || -> anyhow::Result<()> {
        for i in 0..n {
            numbers_tx.send(&i)?;
        }
        Ok(())
    });
    let mut logger = Process::new(move || {
        let _ = stop_rx.recv(); // the parent's word (or its end-of-file)
    })
    .close_in_child(&stop_tx);
    writer.start()?;
    logger.start()?;
    let mut got = Vec::new();
    loop {
        match numbers_rx.recv() {
            Ok(i) => got.push(i),
            Err(FrameError::Eof) => break,
            Err(e) => return Err(e.into()),
        }
    }
    stop_tx.send(&())?;
    writer.join()?;
    logger.join()?;
    Ok(got)
}

fn main() -> anyhow::Result<()> {
    println!("read {:?}", read_until_eof(5)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use exercise_check::nothing_left;

    #[test]
    fn the_parent_sees_the_end() {
        assert_eq!(nothing_left(|| read_until_eof(5)).unwrap(), [0, 1, 2, 3, 4]);
    }
}
