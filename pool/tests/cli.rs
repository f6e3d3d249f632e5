//! Drive the chapter binary as a user would (STYLE.md 12).

use std::process::Output;

fn run(args: &[&str]) -> Output {
    lesson::testing::run_binary(env!("CARGO_BIN_EXE_pool"), args)
}

#[test]
fn unknown_lessons_exit_2_and_list_matches_the_chapter() {
    lesson::testing::check_cli_basics(env!("CARGO_BIN_EXE_pool"), &pool::CHAPTER);
}

#[test]
fn workers_speak_as_fork_pool_workers_and_callbacks_as_the_result_thread() {
    let out = run(&["pool", "--scale", "0.01", "--count", "10"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.contains(" ForkPoolWorker-") && l.contains("child: pid "))
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
