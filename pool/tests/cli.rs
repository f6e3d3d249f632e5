//! Drive the chapter binary as a user would (STYLE.md 12).

use std::process::{Command, Output};
use std::time::Duration;

fn run(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pool"));
    cmd.args(args).env_remove("LESSON_SCALE");
    let out = lesson::output_within(&mut cmd, Duration::from_secs(120)).expect("pool ran");
    eprintln!(
        "$ pool {}\n--- status: {}\n--- stdout:\n{}--- stderr:\n{}",
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
        stderr.contains("valid lessons: pool, apply, crawler, map, crash"),
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
    assert_eq!(names, pool::CHAPTER.names());
}

#[test]
fn workers_speak_as_pids_and_callbacks_as_the_result_thread() {
    let out = run(&["pool", "--scale", "0.01", "--count", "10"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.contains(" pid ") && l.contains("worker: task"))
            .count(),
        10
    );
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.contains("pool-results") && l.contains("callback: Hello"))
            .count(),
        10
    );
}
