//! Test support for chapter crates: drive a chapter binary as a user would (STYLE.md 12) and
//! check what every chapter's command line must do.

use std::process::{Command, Output};
use std::time::Duration;

use crate::{Chapter, Cx, Record, RunFn};

/// Run the binary at `exe` with `args` (stdin closed, `LESSON_SCALE` unset, 120 s at most),
/// printing the command, its status, stdout and stderr, so a failing test shows them.
///
/// # Panics
/// If the binary cannot be started or does not finish in time (this is for tests).
pub fn run_binary(exe: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(exe);
    cmd.args(args).env_remove("LESSON_SCALE");
    let out = match crate::output_within(&mut cmd, Duration::from_secs(120)) {
        Ok(out) => out,
        Err(e) => panic!("{exe} {}: {e:#}", args.join(" ")),
    };
    eprintln!(
        "$ {exe} {}\n--- status: {}\n--- stdout:\n{}--- stderr:\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// What every chapter binary must do: an unknown lesson exits 2 naming every lesson, and
/// `--list` prints exactly the chapter's lessons, in order.
///
/// # Panics
/// When the binary does not (this is for tests).
pub fn check_cli_basics(exe: &str, chapter: &Chapter) {
    let out = run_binary(exe, &["no-such-lesson"]);
    assert_eq!(out.status.code(), Some(2), "an unknown lesson must exit 2");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let names = chapter.names().join(", ");
    assert!(
        stderr.contains(&format!("valid lessons: {names}")),
        "the error must name every lesson: {stderr}"
    );
    let out = run_binary(exe, &["--list"]);
    assert!(out.status.success(), "--list must succeed");
    let listed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    assert_eq!(
        listed,
        chapter.names(),
        "--list must print the chapter's lessons in order"
    );
}

/// The position of the first record whose text contains `needle`.
///
/// # Panics
/// If there is none, showing every record (this is for tests).
pub fn index(records: &[crate::Record], needle: &str) -> usize {
    records
        .iter()
        .position(|r| r.text.contains(needle))
        .unwrap_or_else(|| panic!("no line containing {needle:?} in {records:#?}"))
}

/// How long [`run_lesson`] lets a lesson run before the test fails.
pub const LESSON_LIMIT: Duration = Duration::from_secs(120);

/// Run lesson `f` with `cx` (usually [`Cx::quiet`], with [`Cx::with_exe`] where the lesson
/// starts helpers) on a thread of its own under [`LESSON_LIMIT`], and return what it said.
///
/// # Panics
/// If the lesson fails or does not finish in time (this is for tests).
pub fn run_lesson(cx: Cx, f: RunFn) -> Vec<Record> {
    crate::within(LESSON_LIMIT, "the lesson", move || {
        if let Err(e) = f(&cx) {
            panic!("the lesson failed: {e:#}");
        }
        cx.records()
    })
}
