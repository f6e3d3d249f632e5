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
fn children_speak_under_their_names_and_started_together_before_they_greet() {
    let out = run(&["spawn", "--scale", "0.1"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let started = stdout.find("started 3 processes").expect("started line");
    let hellos: Vec<usize> = stdout.match_indices("hello luck").map(|(i, _)| i).collect();
    assert_eq!(hellos.len(), 3);
    assert!(hellos.iter().all(|&h| h > started));
    // `cargo run -p processes -- spawn`: each child speaks as Python names it, Process-N.
    assert!(
        stdout
            .lines()
            .any(|l| l.contains(" Process-") && l.contains("hello luck"))
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
    assert!(stdout.contains("forkserver child: hello luck (passed as an argument)"));
    assert!(stdout.contains("forkserver child: MADE_BY_PARENT is empty here"));
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

#[test]
fn thousand_says_it_runs_200_by_default_and_how_to_run_the_seeds_1000() {
    // `cargo run -p processes -- --list` and `-- thousand`: the title and the narration say
    // what runs (issue 18, claim 7).
    let out = run(&["--list"]);
    let list = String::from_utf8_lossy(&out.stdout);
    let line = list
        .lines()
        .find(|l| l.starts_with("thousand"))
        .expect("thousand listed");
    let default = processes::lessons::thousand::DEFAULT_COUNT.to_string();
    assert!(
        line.contains(&format!("{default} processes against {default} threads")),
        "{line}"
    );
    assert!(line.contains("--count 1000"), "{line}");
    let out = run(&["thousand", "--scale", "0.02"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("this runs {default} by default")),
        "{stdout}"
    );
}

#[test]
fn timeline_svg_has_a_row_per_child_process() {
    // `cargo run -p processes -- spawn --timeline=svg` writes the picture in the current
    // directory: run it in a fresh temporary one.
    let dir = std::env::temp_dir().join(format!("processes-svg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_processes"));
    cmd.args(["spawn", "--scale", "0.05", "--timeline=svg"])
        .current_dir(&dir)
        .env_remove("LESSON_SCALE");
    let out = lesson::output_within(&mut cmd, std::time::Duration::from_secs(120)).unwrap();
    assert!(out.status.success());
    let svg = std::fs::read_to_string(dir.join("timeline-processes-spawn.svg"));
    std::fs::remove_dir_all(&dir).unwrap();
    let svg = svg.unwrap();
    let rows = svg.matches("data-speaker=\"Process-").count();
    assert_eq!(rows, 3, "one row per Process-N child");
    for who in ["MyProcess-1", "MyProcess-2", "MyProcess-3"] {
        assert!(svg.contains(&format!("data-speaker=\"{who}\"")), "{who}");
    }
    assert!(svg.contains("class=\"span sleeping\""));
    assert!(svg.contains("class=\"span waiting\""));
}
