//! Drive the chapter binary as a user would (STYLE.md 12).

use std::process::{Command, Output};
use std::time::Duration;

fn run(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ipc"));
    cmd.args(args).env_remove("LESSON_SCALE");
    let out = lesson::output_within(&mut cmd, Duration::from_secs(120)).expect("ipc ran");
    eprintln!(
        "$ ipc {}\n--- status: {}\n--- stdout:\n{}--- stderr:\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn unknown_lesson_exits_2_with_the_valid_names() {
    let out = run(&["nope"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("valid lessons: queue, pipe, manager, lock, shared-memory"),
        "{stderr}"
    );
}

#[test]
fn list_matches_the_chapter() {
    let out = run(&["--list"]);
    assert!(out.status.success());
    let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    assert_eq!(names, ipc::CHAPTER.names());
}

#[test]
fn pipe_lesson_shows_both_sides_of_the_exchange() {
    let out = run(&["pipe", "--scale", "0.02"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("the parent says \"你好\""), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains(" pid ") && l.contains("child (end fd"))
    );
}
