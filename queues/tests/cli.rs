//! Drive the chapter binary as a user would (STYLE.md 12).

use std::process::Output;

fn run(args: &[&str]) -> Output {
    lesson::testing::run_binary(env!("CARGO_BIN_EXE_queues"), args)
}

#[test]
fn unknown_lessons_exit_2_and_list_matches_the_chapter() {
    lesson::testing::check_cli_basics(env!("CARGO_BIN_EXE_queues"), &queues::CHAPTER);
}

#[test]
fn fifo_lesson_narrates_full_and_empty() {
    let out = run(&["fifo", "--scale", "0.02"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("try_put(6) -> Full(6)"));
    assert!(stdout.contains("try_get() -> Empty: done"));
}
