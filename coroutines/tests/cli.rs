//! Drive the chapter binary as a user would (STYLE.md 12).

use std::process::{Command, Output};
use std::time::Duration;

fn run(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_coroutines"));
    cmd.args(args).env_remove("LESSON_SCALE");
    let out = lesson::output_within(&mut cmd, Duration::from_secs(120)).expect("coroutines ran");
    eprintln!(
        "$ coroutines {}\n--- status: {}\n--- stdout:\n{}--- stderr:\n{}",
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
        stderr.contains(
            "valid lessons: greenlet, gevent, yield, tradeoffs, select-poll-epoll, triggers"
        ),
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
    assert_eq!(names, coroutines::CHAPTER.names());
}

#[test]
fn greenlet_lesson_prints_the_seeds_numbers_in_order() {
    let out = run(&["greenlet"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let numbers: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .filter(|w| ["12", "24", "56", "65"].contains(w))
        .collect();
    assert_eq!(numbers, ["56", "12", "65", "24"]);
}
