//! Drive the chapter binary as a user would (STYLE.md 12).

use std::process::{Command, Output};
use std::time::Duration;

fn run(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_threads"));
    cmd.args(args).env_remove("LESSON_SCALE");
    let out = lesson::output_within(&mut cmd, Duration::from_secs(120)).expect("threads ran");
    eprintln!(
        "$ threads {}\n--- status: {}\n--- stdout:\n{}--- stderr:\n{}",
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
        stderr.contains("valid lessons: gil, spawn, join, daemon, introspection"),
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
    assert_eq!(names, threads::CHAPTER.names());
}

#[test]
fn join_lesson_narrates_with_speakers() {
    let out = run(&["join", "--scale", "0.04"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("=== threads/join:"));
    for (who, what) in [
        ("main", "ending.... (without join)"),
        ("game", "stop to game"),
        ("main", "still alive = [sleeper-1, sleeper-2]"),
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.contains(&format!(" {who} ")) && l.contains(what)),
            "{who}: {what}"
        );
    }
}

#[test]
fn daemon_lesson_runs_its_helpers_from_the_binary() {
    let out = run(&["daemon", "--scale", "0.04", "--timeline"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("child> "));
    assert!(stdout.contains("music stopped? no, game stopped? no"));
    assert!(stdout.contains("timeline: 0 .."));
}

#[test]
fn an_unknown_helper_exits_2() {
    let out = run(&["--helper", "nope"]);
    assert_eq!(out.status.code(), Some(2));
}
