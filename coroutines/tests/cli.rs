//! Drive the chapter binary as a user would (STYLE.md 12).

use std::process::Output;

fn run(args: &[&str]) -> Output {
    lesson::testing::run_binary(env!("CARGO_BIN_EXE_coroutines"), args)
}

#[test]
fn unknown_lessons_exit_2_and_list_matches_the_chapter() {
    lesson::testing::check_cli_basics(env!("CARGO_BIN_EXE_coroutines"), &coroutines::CHAPTER);
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
