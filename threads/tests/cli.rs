//! Drive the chapter binary as a user would (STYLE.md 12).

use std::process::Output;

fn run(args: &[&str]) -> Output {
    lesson::testing::run_binary(env!("CARGO_BIN_EXE_threads"), args)
}

#[test]
fn unknown_lessons_exit_2_and_list_matches_the_chapter() {
    lesson::testing::check_cli_basics(env!("CARGO_BIN_EXE_threads"), &threads::CHAPTER);
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
