//! Drive the chapter binary as a user would (STYLE.md 12).

use std::process::{Command, Output};
use std::time::Duration;

fn run(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sync"));
    cmd.args(args).env_remove("LESSON_SCALE");
    let out = lesson::output_within(&mut cmd, Duration::from_secs(120)).expect("sync ran");
    eprintln!(
        "$ sync {}\n--- status: {}\n--- stdout:\n{}--- stderr:\n{}",
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
            "valid lessons: race, deadlock, rlock, semaphore, event, condition, barrier, timer, poison"
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
    assert_eq!(names, sync::CHAPTER.names());
}

#[test]
fn deadlock_lesson_prints_the_cycle_and_ends() {
    let out = run(&["deadlock", "--scale", "0.02"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("holds lockA and waits for lockB"));
    assert!(stdout.contains("holds lockB and waits for lockA"));
    assert!(stdout.contains("all 5 threads finished"));
}

#[test]
fn a_deliberate_panic_is_one_line_not_a_backtrace() {
    let out = run(&["poison", "--scale", "0.02"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("thread 'teller' panicked at"), "{stderr}");
    assert!(!stderr.contains("stack backtrace"), "{stderr}");
}
