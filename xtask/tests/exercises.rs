//! The exercises (`cargo xtask exercise`), guarded by `cargo test --workspace`:
//! - the manifest against the chapters' own lesson lists, the files, the `[[bin]]` targets and
//!   the solutions (a rustlings-style `dev check`);
//! - each kind of failure a check reports, on tiny fixture exercises built here (std only, so
//!   this takes seconds). Whether every real exercise fails as shipped and passes when solved
//!   is `cargo xtask exercise --verify`'s job (minutes: it runs in `.ci/run`, not here).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use xtask::exercise::verify::tests_part;
use xtask::exercise::{Exercise, Kind, Package, Verdict, check_all, exercises, parse, target_dir};
use xtask::{CHAPTERS, root};

mod common;
use common::lessons_of;

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Where an exercise sits in the course: (chapter index, lesson index).
fn place(ex: &Exercise) -> (usize, usize) {
    let chapter = CHAPTERS
        .iter()
        .position(|c| *c == ex.chapter)
        .unwrap_or_else(|| panic!("{}: no chapter {:?}", ex.name, ex.chapter));
    let lessons = lessons_of(&ex.chapter)
        .unwrap_or_else(|| panic!("add {} to lessons_of()", ex.chapter))
        .names();
    let lesson = lessons
        .iter()
        .position(|l| *l == ex.lesson)
        .unwrap_or_else(|| {
            panic!(
                "{}: chapter {} has no lesson {:?} (it has {lessons:?})",
                ex.name, ex.chapter, ex.lesson
            )
        });
    (chapter, lesson)
}

#[test]
fn the_manifest_follows_the_lessons() {
    let all = exercises().expect("exercises/manifest.toml");
    let mut names = HashSet::new();
    for ex in &all {
        assert!(names.insert(ex.name.clone()), "{} is listed twice", ex.name);
        assert!(
            !ex.name.is_empty()
                && ex
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{:?}: names are kebab-case",
            ex.name
        );
        assert!(!ex.hint.trim().is_empty(), "{}: no hint", ex.name);
        assert!(
            !["list", "next", "hint", "help"].contains(&ex.name.as_str()),
            "{}: a word of the command line, not a name",
            ex.name
        );
    }
    let places: Vec<(usize, usize)> = all.iter().map(place).collect();
    for (w, pair) in places.windows(2).zip(all.windows(2)) {
        assert!(
            w[0] <= w[1],
            "{} ({}) comes before {} ({}): keep the lessons' order",
            pair[0].name,
            pair[0].link(),
            pair[1].name,
            pair[1].link()
        );
    }
    for chapter in CHAPTERS {
        let n = all.iter().filter(|e| e.chapter == *chapter).count();
        assert!(
            n >= 3,
            "{chapter} has {n} exercises; at least 3 per chapter"
        );
    }
}

#[test]
fn every_exercise_has_its_file_solution_and_target() {
    let all = exercises().expect("exercises/manifest.toml");
    let root = root();
    for ex in &all {
        let shipped = read(&root.join("exercises").join(&ex.file));
        let solved = read(&root.join("solutions").join(&ex.file));
        let todo = format!("// TODO({}):", ex.link());
        assert!(
            shipped.contains(&todo),
            "exercises/{} must say what to achieve in a `{todo}` comment",
            ex.file
        );
        assert!(
            shipped.contains(&format!("cargo xtask exercise {}`", ex.name)),
            "exercises/{} must say how to check it",
            ex.file
        );
        assert!(
            !solved.contains("TODO"),
            "solutions/{} still has a TODO",
            ex.file
        );
        let tests = tests_part(&shipped)
            .unwrap_or_else(|| panic!("exercises/{} has no #[cfg(test)] module", ex.file));
        assert!(
            tests.contains("#[test]") && tests.contains("nothing_left"),
            "exercises/{}: tests that check nothing is left behind",
            ex.file
        );
        assert_eq!(
            tests_part(&solved),
            Some(tests),
            "solutions/{} must keep the exercise's tests unchanged",
            ex.file
        );
        // Built on the chapters' public primitives, never on a lesson's module.
        for chapter in CHAPTERS {
            assert!(
                !shipped.contains(&format!("{chapter}::lessons")),
                "exercises/{} uses {chapter}'s lesson modules",
                ex.file
            );
            for lesson in lessons_of(chapter).map(|c| c.names()).unwrap_or_default() {
                let module = format!("{chapter}::{}::", lesson.replace('-', "_"));
                assert!(
                    !shipped.contains(&module) && !solved.contains(&module),
                    "{} uses the lesson module {module}",
                    ex.file
                );
            }
        }
    }
    // exercises/Cargo.toml: one [[bin]] per exercise, in the same order, at the same path.
    let manifest = read(&root.join("exercises/Cargo.toml"));
    let bins: Vec<(String, String)> = manifest
        .split("[[bin]]")
        .skip(1)
        .map(|block| {
            let value = |key: &str| {
                block
                    .lines()
                    .find_map(|l| l.trim().strip_prefix(key)?.trim().strip_prefix('='))
                    .map(|v| v.trim().trim_matches('"').to_owned())
                    .unwrap_or_default()
            };
            (value("name"), value("path"))
        })
        .collect();
    let listed: Vec<(String, String)> = all
        .iter()
        .map(|e| (e.name.clone(), e.file.clone()))
        .collect();
    assert_eq!(
        bins, listed,
        "exercises/Cargo.toml's [[bin]]s against the manifest"
    );
}

#[test]
fn the_exercises_use_the_workspaces_versions() {
    let workspace = read(&root().join("Cargo.toml"));
    let exercises = read(&root().join("exercises/Cargo.toml"));
    let version = |text: &str, krate: &str| -> Option<String> {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{krate} =")))?;
        let v = line.split('"').nth(1)?;
        Some(v.to_owned())
    };
    for krate in ["anyhow", "crossbeam", "nix", "serde"] {
        assert_eq!(
            version(&exercises, krate),
            version(&workspace, krate),
            "{krate}: exercises/Cargo.toml and [workspace.dependencies] differ"
        );
    }
    assert!(
        workspace.contains("exclude = [\"exercises\", \"solutions\"]"),
        "the workspace must exclude the exercises (they do not compile as shipped)"
    );
}

#[test]
fn the_readmes_link_the_exercises() {
    let all = exercises().expect("exercises/manifest.toml");
    let top = read(&root().join("README.md"));
    for command in ["cargo xtask exercise", "cargo xtask exercise next"] {
        assert!(top.contains(command), "README.md does not show `{command}`");
    }
    for chapter in CHAPTERS {
        let readme = read(&root().join(chapter).join("README.md"));
        let section = readme
            .split("\n## ")
            .find(|s| s.starts_with("Exercises"))
            .unwrap_or_else(|| panic!("{chapter}/README.md has no `## Exercises` section"));
        for ex in all.iter().filter(|e| e.chapter == *chapter) {
            assert!(
                section.contains(&format!("`{}`", ex.name)),
                "{chapter}/README.md's Exercises section lacks `{}`",
                ex.name
            );
        }
    }
}

#[test]
fn bad_exercise_commands_exit_2() {
    let code = |args: &[&str]| xtask::main(args.iter().map(|s| s.to_string()).collect());
    assert_eq!(code(&["exercise", "no-such-exercise"]), ExitCode::from(2));
    assert_eq!(code(&["exercise", "hint"]), ExitCode::from(2));
    assert_eq!(
        code(&["exercise", "hint", "no-such-exercise"]),
        ExitCode::from(2)
    );
    assert_eq!(code(&["exercise", "--frobnicate"]), ExitCode::from(2));
    assert_eq!(code(&["exercise", "next", "extra"]), ExitCode::from(2));
    assert_eq!(code(&["exercise", "hint", "race-lock"]), ExitCode::SUCCESS);
    assert_eq!(code(&["exercise", "help"]), ExitCode::SUCCESS);
}

#[test]
fn the_shipped_manifest_parses_as_written() {
    let text = read(&root().join("exercises/manifest.toml"));
    let all = parse(&text).expect("parses");
    assert_eq!(all.first().map(|e| e.name.as_str()), Some("split-work"));
    assert!(all.iter().all(|e| !e.hint.contains("\"\"\"")));
}

#[test]
fn every_lesson_names_the_exercises_that_follow_it() {
    // The chapter binaries end each lesson with "your turn: cargo xtask exercise NAME", from
    // lesson's own reading of the manifest: it must find every exercise, under its lesson.
    let all = exercises().expect("the manifest");
    for ex in &all {
        assert!(
            lesson::exercises_after(&ex.chapter, &ex.lesson).contains(&ex.name.as_str()),
            "{} is not announced after {} -- {}",
            ex.name,
            ex.chapter,
            ex.lesson
        );
    }
    let announced: usize = CHAPTERS
        .iter()
        .filter_map(|c| lessons_of(c))
        .flat_map(|ch| ch.lessons.iter().map(move |l| (ch.name, l.name)))
        .map(|(c, l)| lesson::exercises_after(c, l).len())
        .sum();
    assert_eq!(
        announced,
        all.len(),
        "an exercise is announced twice or under no lesson"
    );
}

// ---------------------------------------------------------------------------------------------
// The failure kinds, on fixtures.

/// One fixture exercise: its name and source. Each test body's first statement is the one
/// that matters; they use `exercise_check` as the real exercises do.
const FIXTURES: &[(&str, &str)] = &[
    (
        "passes",
        r#"
fn main() {}
#[cfg(test)]
mod tests {
    #[test]
    fn fine() {
        exercise_check::nothing_left(|| std::thread::spawn(|| 1).join().unwrap());
    }
}
"#,
    ),
    (
        "no-compile",
        r#"
fn main() {
    let n: u32 = "not a number";
    let _ = n;
}
#[cfg(test)]
mod tests {
    #[test]
    fn never_runs() {}
}
"#,
    ),
    (
        "assert-fails",
        r#"
fn main() {}
#[cfg(test)]
mod tests {
    #[test]
    fn wrong() {
        assert_eq!(1 + 1, 3, "arithmetic is hard");
    }
}
"#,
    ),
    (
        "hangs",
        r#"
fn main() {}
#[cfg(test)]
mod tests {
    #[test]
    fn waits_forever() {
        // A child in the same process group, which the deadline must kill too.
        let child = std::process::Command::new("sleep").arg("600").spawn().unwrap();
        std::fs::write("hang.pid", child.id().to_string()).unwrap();
        println!("waiting for a message that never comes");
        let (_tx, rx) = std::sync::mpsc::channel::<()>();
        let _ = rx.recv();
    }
}
"#,
    ),
    (
        "thread-left",
        r#"
fn main() {}
#[cfg(test)]
mod tests {
    #[test]
    fn leaves_a_thread() {
        exercise_check::nothing_left(|| {
            std::thread::Builder::new()
                .name("lingering".into())
                .spawn(|| loop { std::thread::park() })
                .unwrap();
        });
    }
}
"#,
    ),
    (
        "zombie-left",
        r#"
fn main() {}
#[cfg(test)]
mod tests {
    #[test]
    fn leaves_a_zombie() {
        exercise_check::nothing_left(|| {
            let child = std::process::Command::new("true").spawn().unwrap();
            // Let it exit, without reaping it.
            while std::fs::read_to_string(format!("/proc/{}/stat", child.id()))
                .map_or(false, |s| !s.contains(") Z "))
            {
                std::thread::yield_now();
            }
            drop(child); // std's Child does not wait when dropped
        });
    }
}
"#,
    ),
    (
        "orphan-left",
        r#"
fn main() {}
#[cfg(test)]
mod tests {
    #[test]
    fn outlives_the_test() {
        let child = std::process::Command::new("sleep").arg("600").spawn().unwrap();
        std::fs::write("orphan.pid", child.id().to_string()).unwrap();
        std::mem::forget(child);
    }
}
"#,
    ),
    (
        "crashes",
        r#"
fn main() {}
#[cfg(test)]
mod tests {
    #[test]
    fn aborts() {
        std::process::abort();
    }
}
"#,
    ),
    (
        "file-order",
        r#"
fn main() {}
#[cfg(test)]
mod tests {
    // Written first, so run first (not in libtest's alphabetical order); it fails, so the
    // hanging test after it is never run.
    #[test]
    fn z_written_first() {
        panic!("the first test in the file");
    }
    #[test]
    fn a_written_second() {
        loop {
            std::thread::park();
        }
    }
}
"#,
    ),
];

/// Write `text` to `path` unless it is there already (keeping its time stamp keeps cargo's
/// incremental build).
fn put(path: &Path, text: &str) {
    if fs::read_to_string(path).ok().as_deref() != Some(text) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
}

fn fixture_package() -> Package {
    let base = target_dir().join("xtask-exercise-fixtures");
    let dir = base.join("pkg");
    let mut manifest = format!(
        "[package]\nname = \"fixtures\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\
         publish = false\nautobins = false\n\n[workspace]\n\n[dev-dependencies]\n\
         exercise-check = {{ path = {:?} }}\n",
        root().join("exercises/check").display().to_string()
    );
    for (name, source) in FIXTURES {
        let file = format!("fixtures/{}.rs", name.replace('-', "_"));
        manifest.push_str(&format!(
            "\n[[bin]]\nname = \"{name}\"\npath = \"{file}\"\n"
        ));
        put(&dir.join(&file), source);
    }
    put(&dir.join("Cargo.toml"), &manifest);
    Package {
        dir,
        target: base.join("target"),
        shown_as: "fixtures-pkg/".into(),
        deadline: Duration::from_secs(3),
        parallel: 4,
        progress: base.join("progress"),
    }
}

fn failure(v: &Verdict) -> &xtask::exercise::Failure {
    match v {
        Verdict::NotDone(f) => f,
        Verdict::Done { .. } => panic!("expected a failure, got {v:?}"),
    }
}

/// Whether process `pid` is gone (or a zombie about to be reaped by init), within `limit`.
fn gone_within(pid: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat"));
        if stat.map_or(true, |s| s.contains(") Z ")) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn each_failure_kind_is_reported() {
    let pkg = fixture_package();
    for stale in ["hang.pid", "orphan.pid"] {
        let _ = fs::remove_file(pkg.dir.join(stale));
    }
    let names: Vec<&str> = FIXTURES.iter().map(|(n, _)| *n).collect();
    let dir: PathBuf = pkg.dir.clone();
    let source = move |name: &str| dir.join(format!("fixtures/{}.rs", name.replace('-', "_")));
    let verdicts = check_all(&pkg, &names, &source).expect("cargo and the fixtures run");
    let of = |name: &str| &verdicts[names.iter().position(|n| *n == name).unwrap()];

    assert!(
        matches!(of("passes"), Verdict::Done { tests: 1 }),
        "{:?}",
        of("passes")
    );

    let f = failure(of("no-compile"));
    assert_eq!(f.kind, Kind::DoesNotCompile, "{f:?}");
    assert_eq!(
        f.location.as_deref(),
        Some("fixtures-pkg/fixtures/no_compile.rs:3:18")
    );
    assert!(
        f.message.contains("error[E0308]: mismatched types"),
        "{}",
        f.message
    );

    let f = failure(of("assert-fails"));
    assert_eq!(f.kind, Kind::TestFails, "{f:?}");
    assert_eq!(f.test.as_deref(), Some("tests::wrong"));
    assert!(f.message.contains("arithmetic is hard"), "{}", f.message);
    assert_eq!(
        f.location.as_deref(),
        Some("fixtures-pkg/fixtures/assert_fails.rs:7:9")
    );

    let f = failure(of("hangs"));
    assert_eq!(f.kind, Kind::Hangs, "{f:?}");
    assert!(
        f.message.contains("did not finish within 3 s"),
        "{}",
        f.message
    );
    assert!(
        f.output.contains("waiting for a message that never comes"),
        "what it printed: {}",
        f.output
    );
    let pid = fs::read_to_string(pkg.dir.join("hang.pid")).expect("the hanging test ran");
    assert!(
        gone_within(&pid, Duration::from_secs(5)),
        "the hanging test's child {pid} was not killed with it"
    );

    let f = failure(of("thread-left"));
    assert_eq!(f.kind, Kind::LeavesBehind, "{f:?}");
    assert!(f.message.contains("thread 'lingering'"), "{}", f.message);

    let f = failure(of("zombie-left"));
    assert_eq!(f.kind, Kind::LeavesBehind, "{f:?}");
    assert!(
        f.message.contains("child process") && f.message.contains("zombie"),
        "{}",
        f.message
    );

    let f = failure(of("orphan-left"));
    assert_eq!(f.kind, Kind::LeavesBehind, "{f:?}");
    let pid = fs::read_to_string(pkg.dir.join("orphan.pid")).expect("the orphan test ran");
    assert!(
        f.message.contains(&format!("process {pid} (sleep)")),
        "{}",
        f.message
    );
    assert!(
        gone_within(&pid, Duration::from_secs(5)),
        "the orphan {pid} was reported but not killed"
    );

    let f = failure(of("crashes"));
    assert_eq!(f.kind, Kind::Crashes, "{f:?}");
    assert!(f.message.contains("SIGABRT"), "{}", f.message);

    let f = failure(of("file-order"));
    assert_eq!(f.kind, Kind::TestFails, "{f:?}");
    assert_eq!(f.test.as_deref(), Some("tests::z_written_first"));
}
