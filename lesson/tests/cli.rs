//! Drive the demo chapter binary as a user would: exit codes, listing, errors, timeline.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    lesson::testing::run_binary(env!("CARGO_BIN_EXE_lesson-demo"), args)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn every_lesson_runs_in_order_until_one_fails() {
    let out = run(&["--scale", "0.01"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let hello = stdout.find("=== lesson-demo/hello").expect("hello header");
    let fails = stdout.find("=== lesson-demo/fails").expect("fails header");
    assert!(hello < fails);
}

#[test]
fn narration_lines_carry_time_and_speaker() {
    let out = run(&["hello", "--scale", "0.01"]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("hello from a thread"))
        .expect("thread line");
    assert!(line.contains("Thread-1"), "{line}");
    assert!(
        line.trim_start()
            .split('s')
            .next()
            .unwrap()
            .parse::<f64>()
            .is_ok(),
        "{line}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains(" main ") && l.contains("hello from main"))
    );
}

#[test]
fn unknown_lesson_exits_2_naming_the_lessons() {
    let out = run(&["nope"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("no lesson \"nope\""), "{stderr}");
    assert!(
        stderr.contains("valid lessons: hello, children, fails, a-name-longer-than-the-column"),
        "{stderr}"
    );
}

#[test]
fn bad_flags_and_scales_exit_2() {
    for args in [
        &["--bogus"][..],
        &["--scale"],
        &["--scale", "zero"],
        &["--scale", "0"],
        &["--scale", "-1"],
        &["--scale", "inf"],
        &["--scale", "1", "--real-time"],
        &["hello", "fails"],
        &["--helper", "nope"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(text(&out.stderr).contains("valid lessons"), "{args:?}");
    }
}

#[test]
fn bad_lesson_scale_env_exits_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_lesson-demo"))
        .args(["hello"])
        .env("LESSON_SCALE", "fast")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("LESSON_SCALE"));
}

#[test]
fn a_failing_lesson_prints_its_error_chain_and_exits_1() {
    let out = run(&["fails"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("error: lesson-demo/fails failed: reading the lesson's input"),
        "{stderr}"
    );
    assert!(stderr.contains("caused by: entity not found"), "{stderr}");
}

#[test]
fn list_and_help_exit_0() {
    let out = run(&["--list"]);
    assert!(out.status.success());
    let names: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "hello",
            "children",
            "fails",
            "a-name-longer-than-the-column"
        ]
    );
    let out = run(&["--help"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("--real-time"));
}

#[test]
fn timeline_draws_one_row_per_speaker() {
    let out = run(&["hello", "--scale", "0.01", "--timeline"]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(stdout.contains("timeline: 0 .."), "{stdout}");
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(" |") && l.ends_with('|'))
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[0].starts_with("main "));
    assert!(rows[1].starts_with("Thread-1 "));
}

#[test]
fn helper_processes_narrate_on_the_parents_timeline() {
    let dir = std::env::temp_dir().join(format!("lesson-svg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = lesson::output_within(
        Command::new(env!("CARGO_BIN_EXE_lesson-demo"))
            .args(["children", "--scale", "0.01", "--timeline=svg"])
            .env_remove("LESSON_SCALE")
            .current_dir(&dir),
        std::time::Duration::from_secs(120),
    )
    .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    // The text chart has a row for main and one per helper process, whose lines the parent
    // never printed itself: they came back through the sink.
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(" |") && l.ends_with('|'))
        .collect();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows[0].starts_with("main "), "{rows:?}");
    assert!(rows[1..].iter().all(|r| r.starts_with("pid ")), "{rows:?}");
    // Each helper's row shows its sleep as a bar.
    assert!(rows[1..].iter().all(|r| r.contains('~')), "{rows:?}");
    let svg = std::fs::read_to_string(dir.join("timeline-lesson-demo-children.svg")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(svg.starts_with("<svg"));
    assert_eq!(svg.matches("class=\"row\"").count(), 3);
    assert!(svg.contains("data-speaker=\"main\""));
    assert_eq!(svg.matches("class=\"span sleeping\"").count(), 2);
    assert!(svg.contains("class=\"span waiting\""));
    assert!(svg.contains("hello from a helper process"));
    assert!(svg.trim_end().ends_with("</svg>"));
}

#[test]
fn every_lesson_header_says_the_time_scale() {
    // `cargo run -p lesson --bin lesson-demo -- hello --scale 0.05`
    let out = run(&["hello", "--scale", "0.05"]);
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    assert!(lines.next().unwrap().starts_with("=== lesson-demo/hello"));
    let note = lines.next().unwrap();
    assert!(note.contains("x0.05 of the seed's"), "{note}");
    assert!(note.contains("1 s takes 0.050 s"), "{note}");
    let out = run(&["hello", "--real-time"]);
    assert!(text(&out.stdout).contains("time: real time"));
}

#[test]
fn a_closed_stdout_does_not_make_the_binary_panic() {
    // `cargo run -p lesson --bin lesson-demo -- hello --timeline | head -1`
    let mut child = Command::new(env!("CARGO_BIN_EXE_lesson-demo"))
        .args(["hello", "--scale", "0.01", "--timeline"])
        .env_remove("LESSON_SCALE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stderr = child.stderr.take().unwrap();
    let status = lesson::wait_within(&mut child, std::time::Duration::from_secs(60))
        .unwrap()
        .expect("the binary ends");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut err).unwrap();
    assert!(status.success(), "{status}: {err}");
    assert!(!err.contains("panicked"), "{err}");
}
