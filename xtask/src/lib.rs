//! The workspace's task runner (`cargo xtask`, the alias is in `.cargo/config.toml`).
//!
//! ```text
//! cargo xtask all [FLAGS]               every chapter, in the lesson's order, then a summary
//! cargo xtask list                      the chapters and their lessons
//! cargo xtask run CHAPTER [LESSON] ...  one chapter, or one lesson of it
//! cargo xtask test                      the README's test command: cargo test --workspace
//! cargo xtask bench [--quick] [--counts] [CHAPTER]
//!                                       every bench against Python and its floor: a table
//!                                       and charts, and counts per operation (--counts: also
//!                                       instructions, under callgrind)
//! cargo xtask exercise [next | NAME | hint NAME | --verify]   the exercises ([`exercise`])
//! ```
//!
//! FLAGS (`--scale X`, `--real-time`, `--timeline`) are handed to every chapter binary.
//! It runs everything through `std::process` with `anyhow` errors, and reads the benches'
//! `BENCH {json}` lines with `serde_json`; deadlines on child processes come from `lesson`
//! (`output_within`, `wait_within`); an exercise's test that hangs is killed with its whole
//! process group (nix's `killpg`); cargo is taken from `$CARGO`, the workspace root from
//! this crate's manifest directory, and every command is printed before it runs (the exercise
//! checks say which exercises they check instead of echoing cargo and test binaries).
#![forbid(unsafe_code)]

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub mod bench;
pub mod exercise;

pub use bench::gil_series as bench_gil_series;

/// The chapters, in the order the Python lesson tells them. Each is a crate and a binary of
/// the same name; `tests/structure.rs` checks that every one has its files and README.
pub const CHAPTERS: &[&str] = &[
    "threads",
    "sync",
    "queues",
    "processes",
    "ipc",
    "pool",
    "coroutines",
];

/// How long one chapter binary may run under `all` before it is killed and reported as failed.
pub const CHAPTER_LIMIT: Duration = Duration::from_secs(180);

const HELP: &str = "usage: cargo xtask TASK

tasks:
  all [FLAGS]               run every chapter in the lesson's order, then print a summary
  list                      the chapters and their lessons
  run CHAPTER [LESSON] ...  run one chapter, or one lesson of it (flags go to the chapter)
  test                      run the README's test command: cargo test --workspace
  bench [--quick] [--counts] [CHAPTER]
                            benchmarks against Python and the raw mechanism, with counts
                            per operation; --counts also runs the single-threaded figures
                            under callgrind for instructions per operation; writes
                            target/bench/report.md, report.svg and gil.svg
  exercise [next | NAME | hint NAME | --verify]
                            the exercises: list them, check the next one not done, check
                            one, show a hint; --verify (CI): shipped fail, solutions pass
  help                      this text

FLAGS for all and run: --scale X | --real-time, --timeline";

/// The workspace root (the parent of this crate's directory).
pub fn root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// Where cargo puts the debug binaries (`$CARGO_TARGET_DIR` or `<root>/target`, then `debug`).
fn bin(chapter: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    target.join("debug").join(chapter)
}

pub(crate) fn show(cmd: &Command) {
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let program = cmd.get_program().to_string_lossy().into_owned();
    let program = program.rsplit('/').next().unwrap_or(&program).to_owned();
    eprintln!("$ {program} {}", args.join(" "));
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    }
}

/// Build the binaries of `chapters` (one cargo call, so dependencies are built once).
fn build(chapters: &[&str]) -> anyhow::Result<()> {
    let mut cmd = cargo();
    cmd.args(["build", "--quiet", "--bins"]);
    for c in chapters {
        cmd.args(["--package", c]);
    }
    show(&cmd);
    let status = cmd.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo build failed ({})", describe(status));
    }
    Ok(())
}

/// A chapter's lesson names, from its own `--list`.
fn lessons(chapter: &str) -> anyhow::Result<Vec<String>> {
    let mut cmd = Command::new(bin(chapter));
    cmd.arg("--list");
    let out = lesson::output_within(&mut cmd, Duration::from_secs(60))?;
    if !out.status.success() {
        bail!("{chapter} --list failed ({})", describe(out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect())
}

struct Outcome {
    chapter: &'static str,
    lessons: usize,
    status: String,
    ok: bool,
    seconds: f64,
}

fn run_chapter(chapter: &'static str, flags: &[String]) -> anyhow::Result<Outcome> {
    let lessons = lessons(chapter)?.len();
    println!("\n################ chapter {chapter} ({lessons} lessons) ################\n");
    let mut cmd = Command::new(bin(chapter));
    cmd.args(flags).stdin(Stdio::null());
    show(&cmd);
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", bin(chapter).display()))?;
    let waited = lesson::wait_within(&mut child, CHAPTER_LIMIT)?;
    let seconds = start.elapsed().as_secs_f64();
    let (ok, status) = match waited {
        Some(s) if s.success() => (true, "ok".to_owned()),
        Some(s) => (false, format!("FAILED ({})", describe(s))),
        None => (
            false,
            format!("FAILED (killed after {}s)", CHAPTER_LIMIT.as_secs()),
        ),
    };
    Ok(Outcome {
        chapter,
        lessons,
        status,
        ok,
        seconds,
    })
}

fn all(flags: &[String]) -> anyhow::Result<ExitCode> {
    build(CHAPTERS)?;
    let mut outcomes = Vec::new();
    for &chapter in CHAPTERS {
        let outcome = run_chapter(chapter, flags).unwrap_or_else(|e| Outcome {
            chapter,
            lessons: 0,
            status: format!("FAILED ({e:#})"),
            ok: false,
            seconds: 0.0,
        });
        outcomes.push(outcome);
    }
    println!(
        "\n{:<12} {:>7}  {:<28} {:>8}",
        "chapter", "lessons", "status", "seconds"
    );
    for o in &outcomes {
        println!(
            "{:<12} {:>7}  {:<28} {:>8.1}",
            o.chapter, o.lessons, o.status, o.seconds
        );
    }
    let failed = outcomes.iter().filter(|o| !o.ok).count();
    let total: f64 = outcomes.iter().map(|o| o.seconds).sum();
    println!("{} chapters, {failed} failed, {total:.1}s", outcomes.len());
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn list() -> anyhow::Result<ExitCode> {
    build(CHAPTERS)?;
    for &chapter in CHAPTERS {
        println!("{chapter}");
        for l in lessons(chapter)? {
            println!("  {l}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run(chapter: &str, rest: &[String]) -> anyhow::Result<ExitCode> {
    build(&[chapter])?;
    let mut cmd = Command::new(bin(chapter));
    cmd.args(rest);
    show(&cmd);
    let status = cmd.status().context("cannot start the chapter")?;
    // The chapter's own code: 2 for an unknown lesson or flag, 1 for a failed lesson.
    Ok(ExitCode::from(
        status.code().map_or(1, |c| u8::try_from(c).unwrap_or(1)),
    ))
}

fn test() -> anyhow::Result<ExitCode> {
    let mut cmd = cargo();
    cmd.args(["test", "--workspace"]);
    show(&cmd);
    let status = cmd.status().context("cannot run cargo")?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn usage(message: &str) -> ExitCode {
    eprintln!(
        "xtask: {message}\n\n{HELP}\n\nchapters: {}",
        CHAPTERS.join(", ")
    );
    ExitCode::from(2)
}

/// Parse the arguments and run the task; the exit code is 2 for a bad command line.
pub fn main(args: Vec<String>) -> ExitCode {
    let outcome = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => return usage("no task given"),
        ["help" | "--help" | "-h"] => {
            println!("{HELP}\n\nchapters: {}", CHAPTERS.join(", "));
            return ExitCode::SUCCESS;
        }
        ["all", ..] => all(&args[1..]),
        ["list"] => list(),
        ["test"] => test(),
        ["bench", ..] => bench::run::bench(&args[1..]),
        ["exercise", ..] => return exercise::main(&args[1..]),
        ["run"] => return usage("run needs a chapter"),
        ["run", chapter, ..] => match CHAPTERS.iter().find(|c| *c == chapter) {
            Some(chapter) => run(chapter, &args[2..]),
            None => return usage(&format!("unknown chapter {chapter:?}")),
        },
        [task, ..] => return usage(&format!("unknown task {task:?}")),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}
