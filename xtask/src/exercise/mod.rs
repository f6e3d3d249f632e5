//! `cargo xtask exercise`: a checked exercise after each lesson, rustlings-style.
//!
//! ```text
//! cargo xtask exercise              every exercise, in lesson order, with done / not done
//! cargo xtask exercise next         check the first unsolved one: what is wrong, and where
//! cargo xtask exercise NAME         check one exercise
//! cargo xtask exercise hint NAME    its hint (never its solution)
//! cargo xtask exercise --verify     CI: every exercise as shipped fails, every solution passes
//! ```
//!
//! The exercises are the `[[bin]]`s of `exercises/` (a package of its own, outside the
//! workspace: they are broken until the learner fixes them), listed in order by
//! `exercises/manifest.toml`; `solutions/` holds the answers, which the tool never prints.
//! They are built in `target/exercises` ([`check`]). Progress is never a flag the learner
//! sets: it is the outcome of the checks, kept in `target/exercises/progress` under a hash of
//! the exercise's file and of everything it is built from, so a check is re-run only when one
//! of those changed (a cached "not done" is checked again, to say what is wrong).

pub mod check;
pub mod manifest;
mod output;
pub mod verify;

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

pub use check::{DEADLINE, Failure, Kind, Package, Verdict, check_all};
pub use manifest::{Exercise, ManifestError, parse};

use crate::{CHAPTERS, root};

/// Bumped when the checker changes what it reports, so old cached outcomes are not trusted.
const CHECKER_VERSION: u32 = 1;

const HELP: &str = "usage: cargo xtask exercise [next | NAME | hint NAME | --verify]

  (nothing)    every exercise, in lesson order, with done / not done
  next         check the first exercise not done yet: what is wrong, and where
  NAME         check one exercise
  hint NAME    a hint for one exercise
  --verify     for CI: in a scratch copy, every exercise as shipped fails its check and
               every solution passes it, twice in a row

Edit the exercise's file under exercises/ until its check passes. Each file says, in a
`// TODO(chapter -- lesson)` comment, what to achieve; `cargo run -p CHAPTER -- LESSON` shows
the lesson it follows. Checks run each test alone with a deadline of 10 s.";

/// The exercises, from `exercises/manifest.toml`.
///
/// # Errors
/// The manifest cannot be read or parsed.
pub fn exercises() -> anyhow::Result<Vec<Exercise>> {
    let path = root().join("exercises/manifest.toml");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(parse(&text)?)
}

/// The workspace's target directory (`$CARGO_TARGET_DIR` or `<root>/target`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// The learner's package: `exercises/`, built in `target/exercises`.
pub fn learner_package() -> Package {
    Package {
        dir: root().join("exercises"),
        target: target_dir().join("exercises"),
        shown_as: "exercises/".into(),
        deadline: DEADLINE,
        parallel: 4,
        progress: target_dir().join("exercises/progress"),
    }
}

/// Give `pkg` the workspace's `Cargo.lock` (when it has none, or an older one), so its
/// crates resolve to the versions the chapters are built and tested with.
///
/// # Errors
/// The lock file cannot be copied.
pub fn share_lock(pkg: &Package) -> anyhow::Result<()> {
    let from = root().join("Cargo.lock");
    let to = pkg.dir.join("Cargo.lock");
    let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    let stale = match (modified(&from), modified(&to)) {
        (Some(f), Some(t)) => f > t,
        (Some(_), None) => true,
        _ => false,
    };
    if stale {
        fs::copy(&from, &to).with_context(|| format!("copying Cargo.lock to {}", to.display()))?;
    }
    Ok(())
}

/// The `// TODO(...)` comment of an exercise's file: the lines of the comment, without `//`.
pub fn todo_text(source: &str) -> Option<String> {
    let mut lines = source.lines().map(str::trim_start);
    let first = lines.by_ref().find(|l| l.starts_with("// TODO("))?;
    let mut text = vec![first.trim_start_matches("// ").to_owned()];
    for l in lines {
        match l.strip_prefix("//") {
            Some(rest) if !rest.starts_with('/') && !rest.starts_with('!') => {
                text.push(rest.trim().to_owned());
            }
            _ => break,
        }
    }
    Some(text.join("\n"))
}

fn hash_files(h: &mut DefaultHasher, dir: &Path, base: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            hash_files(h, &p, base);
        } else if p.extension().is_some_and(|x| x == "rs" || x == "toml") {
            p.strip_prefix(base).unwrap_or(&p).hash(h);
            fs::read(&p).unwrap_or_default().hash(h);
        }
    }
}

/// A hash of everything every exercise is built from, but the exercises' own files: the
/// exercises' manifest and support crate, the chapter crates and `lesson`, the lock file.
fn shared_inputs(pkg: &Package) -> u64 {
    let mut h = DefaultHasher::new();
    CHECKER_VERSION.hash(&mut h);
    let root = root();
    for file in [pkg.dir.join("Cargo.toml"), root.join("Cargo.lock")] {
        fs::read(&file).unwrap_or_default().hash(&mut h);
    }
    hash_files(&mut h, &pkg.dir.join("check"), &pkg.dir);
    for krate in CHAPTERS.iter().chain(["lesson"].iter()) {
        let dir = root.join(krate);
        fs::read(dir.join("Cargo.toml"))
            .unwrap_or_default()
            .hash(&mut h);
        hash_files(&mut h, &dir.join("src"), &root);
    }
    h.finish()
}

/// The progress cache: exercise name -> (input hash, done).
struct Progress {
    path: PathBuf,
    shared: u64,
    known: Vec<(String, u64, bool)>,
}

impl Progress {
    fn load(pkg: &Package) -> Progress {
        let path = pkg.progress.clone();
        let known = fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut f = l.split('\t');
                let name = f.next()?.to_owned();
                let hash = u64::from_str_radix(f.next()?, 16).ok()?;
                let done = f.next()? == "done";
                Some((name, hash, done))
            })
            .collect();
        Progress {
            path,
            shared: shared_inputs(pkg),
            known,
        }
    }

    fn key(&self, pkg: &Package, ex: &Exercise) -> u64 {
        let mut h = DefaultHasher::new();
        self.shared.hash(&mut h);
        fs::read(pkg.dir.join(&ex.file))
            .unwrap_or_default()
            .hash(&mut h);
        h.finish()
    }

    /// The cached outcome, if the exercise has not changed since.
    fn get(&self, pkg: &Package, ex: &Exercise) -> Option<bool> {
        let key = self.key(pkg, ex);
        self.known
            .iter()
            .find(|(n, k, _)| *n == ex.name && *k == key)
            .map(|(_, _, done)| *done)
    }

    fn set(&mut self, pkg: &Package, ex: &Exercise, done: bool) {
        let key = self.key(pkg, ex);
        self.known.retain(|(n, _, _)| *n != ex.name);
        self.known.push((ex.name.clone(), key, done));
        let text: String = self
            .known
            .iter()
            .map(|(n, k, d)| format!("{n}\t{k:016x}\t{}\n", if *d { "done" } else { "not" }))
            .collect();
        // A cache: failing to write it costs a re-check later, nothing more.
        if let Some(dir) = self.path.parent() {
            let _ = fs::create_dir_all(dir);
        }
        let _ = fs::write(&self.path, text);
    }
}

/// Check `list` (in order) and record the outcomes.
fn check_and_record(
    pkg: &Package,
    progress: &mut Progress,
    list: &[&Exercise],
) -> anyhow::Result<Vec<Verdict>> {
    if list.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = list.iter().map(|e| e.name.as_str()).collect();
    if !pkg.target.join("debug").exists() {
        eprintln!("first check: building the chapter crates for the exercises (a minute or two)");
    }
    eprintln!(
        "checking {} (a test that hangs is stopped after {} s)",
        names.join(", "),
        pkg.deadline.as_secs()
    );
    share_lock(pkg)?;
    let files: Vec<(String, PathBuf)> = list
        .iter()
        .map(|e| (e.name.clone(), pkg.dir.join(&e.file)))
        .collect();
    let source = |name: &str| {
        files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.clone())
            .unwrap_or_default()
    };
    let verdicts = check_all(pkg, &names, &source)?;
    for (ex, v) in list.iter().zip(&verdicts) {
        progress.set(pkg, ex, v.done());
    }
    Ok(verdicts)
}

fn list(all: &[Exercise]) -> anyhow::Result<ExitCode> {
    let pkg = learner_package();
    let mut progress = Progress::load(&pkg);
    let stale: Vec<&Exercise> = all
        .iter()
        .filter(|e| progress.get(&pkg, e).is_none())
        .collect();
    let checked = check_and_record(&pkg, &mut progress, &stale)?;
    println!(
        "{:>3}  {:<18} {:<32} status",
        "#", "exercise", "after the lesson"
    );
    let mut done = 0;
    for (i, ex) in all.iter().enumerate() {
        let status = match stale.iter().position(|s| s.name == ex.name) {
            Some(j) => match &checked[j] {
                Verdict::Done { .. } => "done".to_owned(),
                Verdict::NotDone(f) => format!("not done ({})", f.kind.short()),
            },
            None if progress.get(&pkg, ex) == Some(true) => "done".to_owned(),
            None => "not done".to_owned(),
        };
        if status == "done" {
            done += 1;
        }
        println!("{:>3}  {:<18} {:<32} {status}", i + 1, ex.name, ex.link());
    }
    println!("\n{done} of {} done.", all.len());
    if done < all.len() {
        println!("Next: cargo xtask exercise next");
    }
    Ok(ExitCode::SUCCESS)
}

/// Print an exercise's check: done, or what is wrong and where.
fn report(pkg: &Package, all: &[Exercise], ex: &Exercise, verdict: &Verdict) {
    let n = all
        .iter()
        .position(|e| e.name == ex.name)
        .map_or(0, |i| i + 1);
    let file = format!("{}{}", pkg.shown_as, ex.file);
    match verdict {
        Verdict::Done { tests } => {
            println!(
                "exercise {n} of {}: {} ({}): done, {tests} test(s) pass.",
                all.len(),
                ex.name,
                ex.link()
            );
        }
        Verdict::NotDone(f) => {
            println!(
                "exercise {n} of {}: {} (after the lesson {})",
                all.len(),
                ex.name,
                ex.link()
            );
            println!("  edit:   {file}");
            println!("  lesson: cargo run -p {} -- {}", ex.chapter, ex.lesson);
            if let Some(todo) = fs::read_to_string(pkg.dir.join(&ex.file))
                .ok()
                .as_deref()
                .and_then(todo_text)
            {
                println!();
                for l in todo.lines() {
                    println!("  {l}");
                }
            }
            println!("\nnot done yet: {}", f.kind.sentence());
            if let Some(test) = &f.test {
                println!("  test:  {test}");
            }
            if let Some(at) = &f.location {
                println!("  where: {at}");
            }
            println!();
            for l in f.message.lines() {
                println!("  | {l}");
            }
            if !f.output.is_empty() {
                println!("\n  what it printed last:");
                for l in f.output.lines() {
                    println!("  > {l}");
                }
            }
            println!("\nStuck? cargo xtask exercise hint {}", ex.name);
        }
    }
}

/// The first exercise of `all` (in order) that is not done in `pkg`, and what is wrong with
/// it; `None` when all are done. Exercises whose cached outcome is "done" for their current
/// contents are not checked again; the others are checked one by one, in order.
///
/// # Errors
/// cargo or a test cannot be run.
pub fn first_not_done(
    pkg: &Package,
    all: &[Exercise],
    mut on_done: impl FnMut(&Exercise, &Verdict),
) -> anyhow::Result<Option<(usize, Verdict)>> {
    let mut progress = Progress::load(pkg);
    for (i, ex) in all.iter().enumerate() {
        if progress.get(pkg, ex) == Some(true) {
            continue;
        }
        let verdict = check_and_record(pkg, &mut progress, &[ex])?
            .pop()
            .context("no verdict")?;
        if !verdict.done() {
            return Ok(Some((i, verdict)));
        }
        on_done(ex, &verdict);
    }
    Ok(None)
}

fn next(all: &[Exercise]) -> anyhow::Result<ExitCode> {
    let pkg = learner_package();
    match first_not_done(&pkg, all, |ex, v| report(&pkg, all, ex, v))? {
        Some((i, verdict)) => {
            report(&pkg, all, &all[i], &verdict);
            Ok(ExitCode::FAILURE)
        }
        None => {
            println!("All {} exercises are done.", all.len());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn one(all: &[Exercise], ex: &Exercise) -> anyhow::Result<ExitCode> {
    let pkg = learner_package();
    let mut progress = Progress::load(&pkg);
    let verdict = check_and_record(&pkg, &mut progress, &[ex])?
        .pop()
        .context("no verdict")?;
    report(&pkg, all, ex, &verdict);
    Ok(if verdict.done() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn usage(message: &str, all: &[Exercise]) -> ExitCode {
    let names: Vec<&str> = all.iter().map(|e| e.name.as_str()).collect();
    eprintln!(
        "xtask exercise: {message}\n\n{HELP}\n\nexercises: {}",
        names.join(", ")
    );
    ExitCode::from(2)
}

/// `cargo xtask exercise ARGS`; the exit code is 2 for a bad command line, 1 for an exercise
/// not done (or a failed `--verify`).
pub fn main(args: &[String]) -> ExitCode {
    let all = match exercises() {
        Ok(all) => all,
        Err(e) => {
            eprintln!("xtask exercise: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let find = |name: &str| all.iter().find(|e| e.name == name);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let outcome = match args.as_slice() {
        [] | ["list"] => list(&all),
        ["help" | "--help" | "-h"] => {
            println!("{HELP}");
            return ExitCode::SUCCESS;
        }
        ["next"] => next(&all),
        ["--verify"] => verify::verify(&all),
        ["hint"] => return usage("hint needs an exercise name", &all),
        ["hint", name] => match find(name) {
            Some(ex) => {
                println!("hint for {} ({}):\n\n{}", ex.name, ex.link(), ex.hint);
                return ExitCode::SUCCESS;
            }
            None => return usage(&format!("unknown exercise {name:?}"), &all),
        },
        [name] if !name.starts_with('-') => match find(name) {
            Some(ex) => one(&all, ex),
            None => return usage(&format!("unknown exercise {name:?}"), &all),
        },
        _ => return usage(&format!("cannot read {:?}", args.join(" ")), &all),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask exercise: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_todo_comment_is_read_whole() {
        let src = "//! doc\nuse x;\n\n// TODO(sync -- race): make it\n// compile.\n//\n// Then 0.\n\
                   /// The doc of the fn.\npub fn f() {}\n";
        assert_eq!(
            todo_text(src).unwrap(),
            "TODO(sync -- race): make it\ncompile.\n\nThen 0."
        );
        assert_eq!(todo_text("fn main() {}"), None);
    }
}
