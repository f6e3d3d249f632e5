//! processes -- start-methods: a program started anew is a child like any other.
//!
//! After the lesson `cargo run -p processes -- start-methods`.
//! Check your work: `cargo xtask exercise reap-child`.
//! Run it: `cargo run --bin reap-child` in `exercises/`.
//!
//! The spawn start method runs a fresh program instead of copying this one; `std::process`
//! starts any program that way. `processes::Process` joins its child when dropped, but
//! `std::process::Child` does not: dropped without `wait`, a finished child stays in the
//! process table as a zombie until its parent exits.

use std::io::{self, Read};
use std::process::{Command, Stdio};

// Solved: read the output to its end (the child has closed it), then `wait`, which reaps the
// child and gives its status. (`Command::output` does both in one call.)
/// Run `sh -c SCRIPT` and return what it printed.
pub fn run_script(script: &str) -> io::Result<String> {
    let mut child = Command::new("sh")
        .args(["-c", script])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_string(&mut out)?;
    }
    let status = child.wait()?;
    if !status.success() {
        return Err(io::Error::other(format!("the script failed: {status}")));
    }
    Ok(out)
}

fn main() -> io::Result<()> {
    print!("{}", run_script("echo hello from a fresh program")?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use exercise_check::nothing_left;

    #[test]
    fn output_and_no_zombie() {
        let out = nothing_left(|| run_script("echo hello")).unwrap();
        assert_eq!(out, "hello\n");
    }

    #[test]
    fn a_failing_script_is_an_error() {
        let outcome = nothing_left(|| run_script("echo partial; exit 3"));
        assert!(outcome.is_err(), "the script exited with 3: {outcome:?}");
    }
}
