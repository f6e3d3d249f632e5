//! `cargo xtask exercise --verify`: in a scratch copy of `exercises/` (under
//! `target/exercises/verify`, removed afterwards), every exercise as shipped must fail its
//! check, and fail the same way twice in a row; then, with each file replaced by its solution,
//! every exercise must pass, twice in a row. So no exercise is solved by luck or timing, and
//! none is broken in a way that a run may or may not show.
//!
//! It checks the files in `exercises/` as they are on disk: run it on a clean checkout (CI),
//! not over your own solutions.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};

use super::{
    Exercise, Kind, Package, Verdict, check_all, first_not_done, learner_package, share_lock,
};
use crate::root;

/// The name the scratch package gets: a package of its own in cargo's eyes, so its builds
/// never overwrite the learner's (cargo names outputs by package name, not by path).
const SCRATCH_NAME: &str = "exercises-verify";

/// How many times each state is checked.
const ROUNDS: usize = 2;

/// The test module of an exercise's file: everything from its `#[cfg(test)]` on.
pub fn tests_part(source: &str) -> Option<&str> {
    source.find("#[cfg(test)]").map(|at| &source[at..])
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            if entry.file_name() != "target" {
                copy_dir(&src, &dst)?;
            }
        } else if entry.file_name() != "Cargo.lock" {
            fs::copy(&src, &dst).with_context(|| format!("copying {}", src.display()))?;
        }
    }
    Ok(())
}

/// Make the scratch package: a copy of `exercises/`, its path dependencies made absolute and
/// its package renamed.
fn scratch(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    copy_dir(&root().join("exercises"), dir)?;
    let manifest = dir.join("Cargo.toml");
    let text = fs::read_to_string(&manifest)?;
    let root = root();
    // The support crate stays where it is (and is not copied): a package at one path only,
    // so cargo never mistakes the learner's build of it for the scratch one's.
    let _ = fs::remove_dir_all(dir.join("check"));
    let rewritten = text
        .replace("path = \"../", &format!("path = \"{}/", root.display()))
        .replace(
            "path = \"check\"",
            &format!("path = \"{}/exercises/check\"", root.display()),
        )
        .replacen(
            "name = \"exercises\"",
            &format!("name = \"{SCRATCH_NAME}\""),
            1,
        );
    if !rewritten.contains(SCRATCH_NAME) {
        bail!("exercises/Cargo.toml has no `name = \"exercises\"` to rename");
    }
    fs::write(&manifest, rewritten)?;
    Ok(())
}

/// Put the solution of `ex` in the scratch copy.
fn solve(dir: &Path, ex: &Exercise) -> anyhow::Result<()> {
    fs::copy(root().join("solutions").join(&ex.file), dir.join(&ex.file))
        .with_context(|| format!("copying solutions/{}", ex.file))?;
    Ok(())
}

/// What one state (shipped or solved) gave in each round.
struct Rounds {
    verdicts: Vec<Vec<Verdict>>,
    seconds: f64,
}

fn run_rounds(pkg: &Package, all: &[Exercise]) -> anyhow::Result<Rounds> {
    let names: Vec<&str> = all.iter().map(|e| e.name.as_str()).collect();
    let files: Vec<(String, PathBuf)> = all
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
    let start = Instant::now();
    let mut verdicts = Vec::new();
    for round in 1..=ROUNDS {
        let t = Instant::now();
        verdicts.push(check_all(pkg, &names, &source)?);
        eprintln!("  round {round}: {:.1} s", t.elapsed().as_secs_f64());
    }
    Ok(Rounds {
        verdicts,
        seconds: start.elapsed().as_secs_f64(),
    })
}

fn kinds(rounds: &Rounds, i: usize) -> Vec<Option<Kind>> {
    rounds.verdicts.iter().map(|r| r[i].kind()).collect()
}

fn first_failure(rounds: &Rounds, i: usize) -> Option<String> {
    rounds.verdicts.iter().find_map(|r| match &r[i] {
        Verdict::NotDone(f) => Some(format!(
            "{}{}: {}",
            f.test
                .as_deref()
                .map_or(String::new(), |t| format!("{t}: ")),
            f.location.as_deref().unwrap_or(""),
            f.message.lines().next().unwrap_or_default()
        )),
        Verdict::Done { .. } => None,
    })
}

/// Run the verification; exit 1 if any exercise is solved as shipped, fails differently
/// between rounds, or has a solution that does not pass.
///
/// # Errors
/// The scratch copy cannot be made, or cargo cannot be run.
pub fn verify(all: &[Exercise]) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    let learner = learner_package();
    let dir = learner.target.join("verify");
    let pkg = Package {
        dir: dir.clone(),
        shown_as: format!("{}/", dir.strip_prefix(root()).unwrap_or(&dir).display()),
        progress: dir.join("progress"),
        ..learner
    };
    let mut problems = Vec::new();
    for ex in all {
        let shipped = fs::read_to_string(root().join("exercises").join(&ex.file))
            .with_context(|| format!("reading exercises/{}", ex.file))?;
        let solved = fs::read_to_string(root().join("solutions").join(&ex.file))
            .with_context(|| format!("reading solutions/{}", ex.file))?;
        if tests_part(&shipped).is_none() || tests_part(&shipped) != tests_part(&solved) {
            problems.push(format!(
                "{}: solutions/{} must have the same `#[cfg(test)]` module as exercises/{}",
                ex.name, ex.file, ex.file
            ));
        }
    }

    scratch(&dir)?;
    share_lock(&pkg)?;
    eprintln!("== the exercises as shipped: each must fail, the same way, {ROUNDS} times");
    let shipped = run_rounds(&pkg, all)?;
    // A learner on a fresh clone: `next` names the first exercise; once its solution is in,
    // it names the second.
    if let [first, second, ..] = all {
        eprintln!("== the learner's path: `next` on a fresh copy, then after the first solution");
        let named = |got: Option<(usize, Verdict)>| got.map(|(i, _)| all[i].name.clone());
        let fresh = named(first_not_done(&pkg, all, |_, _| {})?);
        solve(&dir, first)?;
        let after = named(first_not_done(&pkg, all, |_, _| {})?);
        if fresh.as_deref() != Some(first.name.as_str())
            || after.as_deref() != Some(second.name.as_str())
        {
            problems.push(format!(
                "`next` named {fresh:?} on a fresh copy and {after:?} after the first \
                 solution; expected {} then {}",
                first.name, second.name
            ));
        }
    }
    for ex in all {
        solve(&dir, ex)?;
    }
    eprintln!("== the solutions: each must pass, {ROUNDS} times");
    let solved = run_rounds(&pkg, all)?;

    println!(
        "\n{:<18} {:<30} {:<38} solution",
        "exercise", "lesson", "as shipped"
    );
    for (i, ex) in all.iter().enumerate() {
        let before = kinds(&shipped, i);
        let after = kinds(&solved, i);
        let shipped_text = match before[0] {
            Some(k) if before.iter().all(|b| *b == Some(k)) => format!("fails: {}", k.short()),
            _ => {
                problems.push(format!(
                    "{}: as shipped it must fail the same way every time, got {before:?}",
                    ex.name
                ));
                "PROBLEM".to_owned()
            }
        };
        let solved_text = if after.iter().all(Option::is_none) {
            "passes".to_owned()
        } else {
            problems.push(format!(
                "{}: the solution must pass every time: {}",
                ex.name,
                first_failure(&solved, i).unwrap_or_default()
            ));
            "PROBLEM".to_owned()
        };
        println!(
            "{:<18} {:<30} {:<38} {solved_text}",
            ex.name,
            ex.link(),
            shipped_text
        );
    }
    let _ = fs::remove_dir_all(&dir);
    println!(
        "\n{} exercises; shipped checked in {:.0} s, solutions in {:.0} s, {:.0} s in all",
        all.len(),
        shipped.seconds,
        solved.seconds,
        start.elapsed().as_secs_f64()
    );
    if problems.is_empty() {
        println!("verify: ok");
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &problems {
            println!("verify: {p}");
        }
        Ok(ExitCode::FAILURE)
    }
}
