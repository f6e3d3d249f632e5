//! Drive the chapter binary as a user would (STYLE.md 12).

use std::process::Output;

fn run(args: &[&str]) -> Output {
    lesson::testing::run_binary(env!("CARGO_BIN_EXE_ipc"), args)
}

#[test]
fn unknown_lessons_exit_2_and_list_matches_the_chapter() {
    lesson::testing::check_cli_basics(env!("CARGO_BIN_EXE_ipc"), &ipc::CHAPTER);
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
