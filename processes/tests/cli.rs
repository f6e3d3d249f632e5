//! Drive the chapter binary as a user would (STYLE.md 12): here the children's own lines and
//! messages are visible, since they write to the same stdout and stderr.

use std::process::Output;

fn run(args: &[&str]) -> Output {
    lesson::testing::run_binary(env!("CARGO_BIN_EXE_processes"), args)
}

#[test]
fn unknown_lessons_exit_2_and_list_matches_the_chapter() {
    lesson::testing::check_cli_basics(env!("CARGO_BIN_EXE_processes"), &processes::CHAPTER);
}

#[test]
fn children_speak_as_pids_and_started_together_before_they_greet() {
    let out = run(&["spawn", "--scale", "0.1"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let started = stdout.find("started 3 processes").expect("started line");
    let hellos: Vec<usize> = stdout.match_indices("hello luck").map(|(i, _)| i).collect();
    assert_eq!(hellos.len(), 3);
    assert!(hellos.iter().all(|&h| h > started));
    assert!(
        stdout
            .lines()
            .any(|l| l.contains(" pid ") && l.contains("hello luck"))
    );
}

#[test]
fn a_panicking_childs_message_reaches_stderr() {
    let out = run(&["api", "--scale", "0.02"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Process doomed (pid "), "{stderr}");
    assert!(
        stderr.contains("panicked: something broke in the child"),
        "{stderr}"
    );
    assert!(stderr.contains("no such file: data.txt"), "{stderr}");
}

#[test]
fn spawned_children_print_what_they_were_passed() {
    let out = run(&["start-methods", "--scale", "0.02"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("spawn child: hello luck (passed as an argument)"));
    assert!(stdout.contains("spawn child: MADE_BY_PARENT is empty here"));
}

#[test]
fn thousand_takes_a_count() {
    let out = run(&["thousand", "--count", "20"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("20 processes started then joined"),
        "{stdout}"
    );
}

#[test]
fn helpers_and_spawn_entries_share_one_flag_without_sharing_a_name() {
    // One mechanism re-runs the chapter binary for a child (`lesson::HELPER_FLAG`): a name must
    // say unambiguously whether it is a helper lesson or a spawn entry.
    assert_eq!(processes::SPAWN_FLAG, lesson::HELPER_FLAG);
    for entry in processes::ENTRIES {
        assert!(
            processes::CHAPTER.helper(entry.name).is_none(),
            "{} is both a spawn entry and a helper",
            entry.name
        );
    }
    // A name that is neither is refused by the chapter's command line, with status 2.
    let out = run(&[lesson::HELPER_FLAG, "no-such-child"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no helper \"no-such-child\""));
}
