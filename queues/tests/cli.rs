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

/// Issue 18 (`cargo run -p queues -- sizes`): the seed's comment says join() waits "until the
/// queue is empty"; the lesson shows it waiting with the queue empty and 3 tasks unfinished,
/// and shows the seed's `while 1: q.get()` waiting for ever before ending its own loop.
#[test]
fn sizes_lesson_shows_join_on_an_empty_queue_and_ends_the_seeds_loop() {
    let out = run(&["sizes", "--scale", "0.02"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "The seed's comment says q.join() means 'wait until the queue is empty'",
        "qsize 0, empty true, unfinished tasks 3",
        "join(timeout=1 s) -> timed out: qsize 0, yet join() waits",
        "joiner     join() returned",
        "the seed's `while 1: q.get()` has no way out and waits forever",
        "consumer   get() -> ShutDown: the loop ends",
    ] {
        assert!(stdout.contains(needle), "no {needle:?} in {stdout}");
    }
}

/// Issue 18 (`cargo run -p queues -- priority`): the seed's priority loop never ends; the
/// lesson says so and ends its own.
#[test]
fn priority_lesson_ends_the_seeds_endless_loop() {
    let out = run(&["priority", "--scale", "0.02"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("has no way out and waits forever"),
        "{stdout}"
    );
    assert!(
        stdout.contains("get() -> ShutDown: the loop ends"),
        "{stdout}"
    );
}
