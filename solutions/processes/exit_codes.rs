//! processes -- spawn: start processes, then join them for their exit codes.
//!
//! After the lesson `cargo run -p processes -- spawn`.
//! Check your work: `cargo xtask exercise exit-codes`.
//! Run it: `cargo run --bin exit-codes` in `exercises/`.
//!
//! A child's exit code exists only once it has ended and its parent has waited for it
//! (Python's `p.join()` then `p.exitcode`). Before that, `Process::exitcode` is `None`.

use anyhow::bail;
use processes::Process;

/// A child's body: fails (exit code 1) for an empty word.
fn check_word(word: &'static str) -> anyhow::Result<()> {
    if word.is_empty() {
        bail!("an empty word");
    }
    Ok(())
}

// Solved: start every child first (they run side by side), then join each; `join` returns
// the exit code and `exitcode()` keeps it.
/// Start one child per word, all at once; return their exit codes in start order.
pub fn exit_codes(words: &[&'static str]) -> anyhow::Result<Vec<Option<i32>>> {
    let mut children = Vec::new();
    for &word in words {
        let mut p = Process::target(check_word, word);
        p.start()?;
        children.push(p);
    }
    for p in &mut children {
        p.join()?;
    }
    Ok(children.iter().map(|p| p.exitcode()).collect())
}

fn main() -> anyhow::Result<()> {
    println!("{:?}", exit_codes(&["luck", "", "yuan"])?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use exercise_check::nothing_left;

    #[test]
    fn every_code_once_joined() {
        let codes = nothing_left(|| exit_codes(&["luck", "", "yuan"])).unwrap();
        assert_eq!(
            codes,
            [Some(0), Some(1), Some(0)],
            "0 for a word, 1 for the empty one"
        );
    }
}
