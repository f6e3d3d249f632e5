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
            .any(|l| l.contains(" Process-1 ") && l.contains("child (end fd"))
    );
}

/// `cargo run -p ipc -- lock` (issue 18, claim 3): the seed keeps no handle, yet Python joins
/// its children at exit; the lesson says so.
#[test]
fn lock_lesson_says_python_joins_the_unkept_children_at_exit() {
    let out = run(&["lock", "--scale", "0.02"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let text: String = stdout
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("| "))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        text.contains("Python still waits for those ten children: at exit its")
            && text.contains("multiprocessing atexit handler joins every non-daemon child"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("nothing is kept and nothing is joined"),
        "{stdout}"
    );
}

/// `cargo run -p ipc -- pipe` (issue 18, claim 1): the explanation names the right end.
#[test]
fn pipe_lesson_says_which_copy_stops_which_end_of_file() {
    let out = run(&["pipe", "--scale", "0.02"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("The parent's end-of-file waits for every copy of the")
            && stdout.contains(
                "child's end; a copy of the parent's end left in the child stops the child's."
            ),
        "{stdout}"
    );
    assert!(
        !stdout.contains("the parent could never see end-of-file while the child lives"),
        "{stdout}"
    );
}

/// `cargo run -p ipc -- queue`: the seed's `fun2` never ends; the lesson says so.
#[test]
fn queue_lesson_says_the_seeds_get_loop_never_ends() {
    let out = run(&["queue", "--scale", "0.02"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("so the seed's p2.join(), and the program, never end."),
        "{stdout}"
    );
}
