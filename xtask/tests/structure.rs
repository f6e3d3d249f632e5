//! The workspace's layout, guarded by `cargo test --workspace` (STYLE.md 1): every chapter in
//! xtask's ordered list is a member with its files, and its README lists the lessons its binary
//! has, in the same order.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use xtask::{CHAPTERS, root};

mod common;
use common::lessons_of;

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
        assert!(
            lib.contains("# Layout"),
            "{chapter}/src/lib.rs lacks its # Layout paragraph"
        );
        for name in ch.names() {
            let snake = name.replace('-', "_");
            assert!(
                lib.contains(&format!("`{name}`"))
                    || lib.contains(&format!("lessons::{snake}"))
                    || lib.contains(&format!("lessons::r#{snake}")),
                "{chapter}/src/lib.rs does not list its lesson {name}"
            );
        }
    }
}

#[test]
fn chapters_are_in_the_order_the_readme_tells_them() {
    // The README's chapter table is in the seed's order; xtask's list (which `cargo xtask all`
    // follows) must be the same, so neither can drift from the other.
    let top = fs::read_to_string(root().join("README.md")).expect("README.md");
    let chapters = top
        .split("\n## ")
        .find(|s| s.starts_with("Chapters"))
        .expect("a Chapters section");
    let mut told: Vec<&str> = Vec::new();
    for line in chapters.lines().filter(|l| l.starts_with('|')) {
        if let Some(c) = line.split("cargo run -p ").nth(1) {
            told.push(
                c.split(|ch: char| !ch.is_alphanumeric())
                    .next()
                    .unwrap_or(""),
            );
        }
    }
    assert_eq!(
        told, CHAPTERS,
        "README's chapter table against xtask::CHAPTERS"
    );
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn every_lesson_is_a_module_of_its_own_in_lessons() {
    for &chapter in CHAPTERS {
        let src = root().join(chapter).join("src");
        let ch = lessons_of(chapter).expect("a known chapter");
        let lessons = src.join("lessons");
        let module = fs::read_to_string(lessons.join("mod.rs"))
            .unwrap_or_else(|_| panic!("{chapter}/src/lessons/mod.rs is missing"));
        assert!(
            module.contains("#![forbid(unsafe_code)]"),
            "{chapter}/src/lessons/mod.rs must forbid unsafe code"
        );
        assert!(
            module.contains("CHAPTER"),
            "{chapter}/src/lessons/mod.rs must hold CHAPTER"
        );
        let snake: Vec<String> = ch.names().iter().map(|n| n.replace('-', "_")).collect();
        for name in &snake {
            assert!(
                lessons.join(format!("{name}.rs")).is_file(),
                "{chapter}: lesson {name} has no src/lessons/{name}.rs"
            );
        }
        for file in rust_files(&src) {
            let text = fs::read_to_string(&file).unwrap();
            let shown = file
                .strip_prefix(root())
                .unwrap_or(&file)
                .display()
                .to_string();
            if file.starts_with(&lessons) {
                assert!(
                    !text.contains("unsafe {") && !text.contains("unsafe fn"),
                    "{shown}: a lesson contains unsafe code"
                );
                continue;
            }
            // Outside lessons/ (a primitive may share a lesson's name: sync's `barrier.rs`
            // is the Barrier its lesson `barrier` uses): no lesson's run function.
            assert!(
                !text.contains("pub fn run(cx: &Cx)"),
                "{shown}: a lesson's run function outside src/lessons/"
            );
        }
    }
}

#[test]
fn no_source_file_is_over_500_lines_unless_it_says_why() {
    let mut crates: Vec<&str> = CHAPTERS.to_vec();
    crates.extend(["lesson", "xtask"]);
    for krate in crates {
        for file in rust_files(&root().join(krate).join("src")) {
            let text = fs::read_to_string(&file).unwrap();
            let lines = text.lines().count();
            // The reason goes in the module doc (its `//!` lines) and names the limit.
            let doc: String = text
                .lines()
                .take_while(|l| l.starts_with("//!") || l.trim().is_empty())
                .collect();
            assert!(
                lines <= 500 || doc.contains("500 lines"),
                "{} has {lines} lines and its module doc does not say why",
                file.strip_prefix(root()).unwrap_or(&file).display()
            );
        }
    }
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
