//! The workspace's layout, guarded by `cargo test --workspace` (STYLE.md 1): every chapter in
//! xtask's ordered list is a member with its files, and its README lists the lessons its binary
//! has, in the same order.

use std::fs;
use std::process::ExitCode;

use xtask::{CHAPTERS, root};

/// A chapter's lessons, from its library. A new chapter must be added here (and to xtask's
/// dev-dependencies), or the test below fails.
fn lessons_of(chapter: &str) -> Option<&'static lesson::Chapter> {
    match chapter {
        "threads" => Some(&threads::CHAPTER),
        "sync" => Some(&sync::CHAPTER),
        "queues" => Some(&queues::CHAPTER),
        "processes" => Some(&processes::CHAPTER),
        "ipc" => Some(&ipc::CHAPTER),
        "pool" => Some(&pool::CHAPTER),
        "coroutines" => Some(&coroutines::CHAPTER),
        _ => None,
    }
}

fn members() -> Vec<String> {
    let manifest = fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let start = manifest.find("members = [").expect("members list") + "members = [".len();
    let end = start + manifest[start..].find(']').unwrap();
    manifest[start..end]
        .split(',')
        .map(|m| m.trim().trim_matches('"').to_owned())
        .filter(|m| !m.is_empty())
        .collect()
}

/// The first backticked word of each table row in the README's `## Lessons` section.
fn readme_lessons(readme: &str) -> Vec<String> {
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Lessons"))
        .unwrap_or("");
    section
        .lines()
        .filter(|l| l.starts_with('|'))
        .filter_map(|l| l.split('`').nth(1).map(str::to_owned))
        .collect()
}

#[test]
fn every_chapter_is_a_member_with_its_files_and_readme() {
    let members = members();
    let top = fs::read_to_string(root().join("README.md")).expect("README.md");
    for &chapter in CHAPTERS {
        assert!(
            members.iter().any(|m| m == chapter),
            "{chapter} is not a workspace member"
        );
        let dir = root().join(chapter);
        for file in ["README.md", "Cargo.toml", "src/lib.rs", "src/main.rs"] {
            assert!(dir.join(file).is_file(), "{chapter}/{file} is missing");
        }
        let has_tests = fs::read_dir(dir.join("tests"))
            .map(|d| {
                d.flatten()
                    .any(|e| e.path().extension().is_some_and(|x| x == "rs"))
            })
            .unwrap_or(false);
        assert!(has_tests, "{chapter}/tests/ has no tests");
        let ch = lessons_of(chapter).unwrap_or_else(|| {
            panic!("add {chapter} to lessons_of() and xtask's dev-dependencies")
        });
        assert_eq!(ch.name, chapter);
        let readme = fs::read_to_string(dir.join("README.md")).unwrap();
        assert_eq!(
            readme_lessons(&readme),
            ch.names(),
            "{chapter}/README.md's Lessons table"
        );
        assert!(
            top.contains(&format!("cargo run -p {chapter}")),
            "README.md's chapter table lacks {chapter}"
        );
        let lib = fs::read_to_string(dir.join("src/lib.rs")).unwrap();
        assert!(
            lib.contains("# Python -> Rust"),
            "{chapter}/src/lib.rs lacks its mapping table"
        );
    }
}

#[test]
fn chapters_are_in_the_lessons_order() {
    let order = [
        "threads",
        "sync",
        "queues",
        "processes",
        "ipc",
        "pool",
        "coroutines",
    ];
    let positions: Vec<usize> = CHAPTERS
        .iter()
        .map(|c| order.iter().position(|o| o == c).expect("a known chapter"))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{CHAPTERS:?}");
}

#[test]
fn bad_tasks_and_chapters_exit_2() {
    let code = |args: &[&str]| xtask::main(args.iter().map(|s| s.to_string()).collect());
    assert_eq!(code(&[]), ExitCode::from(2));
    assert_eq!(code(&["nope"]), ExitCode::from(2));
    assert_eq!(code(&["run"]), ExitCode::from(2));
    assert_eq!(code(&["run", "nope"]), ExitCode::from(2));
    assert_eq!(code(&["help"]), ExitCode::SUCCESS);
}
