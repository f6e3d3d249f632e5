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
    // Without join, main's ending comes before the game stops (the game waits for it).
    let at = |who: &str, what: &str| {
        stdout
            .lines()
            .position(|l| l.contains(&format!(" {who} ")) && l.contains(what))
            .unwrap()
    };
    assert!(
        at("main", "ending.... (without join)") < at("game", "stop to game"),
        "{stdout}"
    );
}

#[test]
fn excepthook_lesson_reports_on_stderr_what_its_hook_hands_on() {
    // `cargo run -p threads -- excepthook`: the chapter's hook prints the panics of the first
    // thread ("the hook's line is on stderr") and of `other` ("the previous hook reports me")
    // on stderr, one line each; the lesson's hook narrates the workers' and main's on stdout.
    let out = run(&["excepthook"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (name, message) in [
        ("default-hook", "nobody replaced the hook"),
        ("other", "not a worker: the previous hook reports me"),
    ] {
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains(&format!("thread '{name}' panicked at ")))
            .collect();
        assert_eq!(lines.len(), 1, "{name}: {stderr}");
        assert!(lines[0].ends_with(message), "{}", lines[0]);
    }
    for name in ["worker-1", "worker-2", "main"] {
        assert!(!stderr.contains(&format!("thread '{name}'")), "{stderr}");
        assert!(
            stdout.contains(&format!("my hook: thread {name} panicked at ")),
            "{name}: {stdout}"
        );
    }
}

#[test]
fn daemon_lesson_runs_its_helpers_from_the_binary() {
    let out = run(&["daemon", "--scale", "0.04", "--timeline"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("child> "));
    assert!(stdout.contains("main returned: music stopped? no, game stopped? no"));
    assert!(stdout.contains("joining music only: music stopped? yes, game stopped? no"));
    assert!(stdout.contains("timeline: 0 .."));
}

#[test]
fn an_unknown_helper_exits_2() {
    let out = run(&["--helper", "nope"]);
    assert_eq!(out.status.code(), Some(2));
}
