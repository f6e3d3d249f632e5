//! Checking exercises: build them (one cargo call for all that are asked for), then run each
//! one's tests one at a time, each in a process group of its own with a deadline.
//!
//! What a check can find, and how it is told ([`Kind`]):
//! - the exercise does not compile: the compiler's first error, with its file and line;
//! - a test fails: its panic message and where it panicked;
//! - a test hangs: when the deadline passes, the whole process group is killed (the test and
//!   every child it forked), so nothing is left waiting on the learner's terminal;
//! - a test leaves a thread or a child process behind: `exercise_check::nothing_left` (inside
//!   the test) reports threads still alive and children never waited for; after the test
//!   process has ended, any process still in its group is reported here, then killed;
//! - a test crashes (killed by a signal).

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::output::{collect, describe, leftovers, panics, printed_tail, tail, wait_until};

/// How long one test of an exercise may run before it is called hung and killed. The
/// exercises' solutions finish in well under a second; this only has to be generous.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// What `exercise_check::nothing_left` starts its report with.
const LEFT_BEHIND: &str = "left behind:";

/// A cargo package of exercises (one `[[bin]]` per exercise) and where to build it.
#[derive(Debug, Clone)]
pub struct Package {
    /// The directory holding its `Cargo.toml`.
    pub dir: PathBuf,
    /// Its cargo target directory.
    pub target: PathBuf,
    /// How `dir` is written in messages, with a trailing `/` (`exercises/`).
    pub shown_as: String,
    /// How long one test may run.
    pub deadline: Duration,
    /// How many exercises' tests run at once.
    pub parallel: usize,
    /// Where the outcomes of its checks are cached (see the [`super`] module docs).
    pub progress: PathBuf,
}

/// Why an exercise is not done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The compiler refused it.
    DoesNotCompile,
    /// A test failed (an assertion, an unwrap...).
    TestFails,
    /// A test did not finish before the deadline: a deadlock, or a wait that never ends.
    Hangs,
    /// A test left a thread or a process running, or a child never waited for.
    LeavesBehind,
    /// A test was killed by a signal.
    Crashes,
    /// cargo could not build it for another reason (a chapter crate that does not compile,
    /// a broken manifest).
    CannotBuild,
}

impl Kind {
    /// The kind as the end of "not done yet: ...".
    pub fn sentence(self) -> &'static str {
        match self {
            Kind::DoesNotCompile => "it does not compile",
            Kind::TestFails => "a test fails",
            Kind::Hangs => "it still deadlocks / still waits",
            Kind::LeavesBehind => "it leaves something behind",
            Kind::Crashes => "it crashes",
            Kind::CannotBuild => "it cannot be built",
        }
    }

    /// The kind in a few words, for lists.
    pub fn short(self) -> &'static str {
        match self {
            Kind::DoesNotCompile => "does not compile",
            Kind::TestFails => "a test fails",
            Kind::Hangs => "still deadlocks / still waits",
            Kind::LeavesBehind => "leaves something behind",
            Kind::Crashes => "crashes",
            Kind::CannotBuild => "cannot be built",
        }
    }
}

/// What is wrong with an exercise, and where.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The kind of failure.
    pub kind: Kind,
    /// The test that failed (`tests::name`), if a test did.
    pub test: Option<String>,
    /// `file:line:column` of the error or the failed assertion, as the learner finds it.
    pub location: Option<String>,
    /// The compiler's message, the panic message, or what happened.
    pub message: String,
    /// The last lines the test printed, when they help (a hang).
    pub output: String,
}

/// The outcome of checking one exercise.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// It compiles and all its tests pass.
    Done {
        /// How many tests passed.
        tests: usize,
    },
    /// The first thing found wrong.
    NotDone(Failure),
}

impl Verdict {
    /// Whether the exercise is done.
    pub fn done(&self) -> bool {
        matches!(self, Verdict::Done { .. })
    }

    /// The failure's kind, if any.
    pub fn kind(&self) -> Option<Kind> {
        match self {
            Verdict::Done { .. } => None,
            Verdict::NotDone(f) => Some(f.kind),
        }
    }
}

fn failure(kind: Kind, message: impl Into<String>) -> Failure {
    Failure {
        kind,
        test: None,
        location: None,
        message: message.into(),
        output: String::new(),
    }
}

/// Check the exercises `names` (bin targets of `pkg`): one build for all of them, then each
/// one's tests, up to `pkg.parallel` exercises at a time. `source(name)` is the exercise's
/// file, to run its tests in the order they are written. Verdicts in the order of `names`.
///
/// # Errors
/// cargo or a test binary cannot be started at all.
pub fn check_all(
    pkg: &Package,
    names: &[&str],
    source: &(dyn Fn(&str) -> PathBuf + Sync),
) -> anyhow::Result<Vec<Verdict>> {
    let built = build(pkg, names)?;
    let jobs: Mutex<VecDeque<(usize, PathBuf)>> = Mutex::new(
        names
            .iter()
            .enumerate()
            .filter_map(|(i, n)| match built.get(*n) {
                Some(Ok(exe)) => Some((i, exe.clone())),
                _ => None,
            })
            .collect(),
    );
    let results: Mutex<BTreeMap<usize, anyhow::Result<Verdict>>> = Mutex::new(BTreeMap::new());
    thread::scope(|s| {
        for _ in 0..pkg.parallel.max(1) {
            s.spawn(|| {
                loop {
                    let job = jobs.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                    let Some((i, exe)) = job else { break };
                    let verdict = run_tests(pkg, &exe, &source(names[i])).or_else(|e| {
                        Ok(Verdict::NotDone(failure(
                            Kind::CannotBuild,
                            format!("its tests could not be run: {e:#}"),
                        )))
                    });
                    results
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(i, verdict);
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    names
        .iter()
        .enumerate()
        .map(|(i, n)| match built.get(*n) {
            Some(Err(f)) => Ok(Verdict::NotDone(f.clone())),
            _ => results
                .remove(&i)
                .unwrap_or_else(|| Ok(Verdict::NotDone(failure(Kind::CannotBuild, "not built")))),
        })
        .collect()
}

/// Build the given bins in test mode: each one's test executable, or why it has none.
fn build(
    pkg: &Package,
    names: &[&str],
) -> anyhow::Result<BTreeMap<String, Result<PathBuf, Failure>>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    if let [one] = names {
        cmd.args(["test", "--no-run", "--bin", one]);
    } else {
        // Every bin in test mode, on as many cores as there are, going on past the ones that
        // do not compile (`cargo test --no-run` stops scheduling at the first failure).
        cmd.args(["build", "--tests", "--keep-going"]);
    }
    cmd.args(["--message-format=json"])
        .arg("--manifest-path")
        .arg(pkg.dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &pkg.target)
        .env_remove("RUSTFLAGS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().context("cannot run cargo")?;
    let stderr = collect(child.stderr.take());
    let mut out: BTreeMap<String, Result<PathBuf, Failure>> = BTreeMap::new();
    // The first error of a crate that is not an exercise (a chapter that does not compile).
    let mut other_error: Option<String> = None;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.context("reading cargo's output")?;
            let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let target = msg["target"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let ours = names.contains(&target.as_str());
            match msg["reason"].as_str() {
                Some("compiler-artifact") if ours && msg["profile"]["test"] == true => {
                    if let Some(exe) = msg["executable"].as_str() {
                        out.insert(target, Ok(PathBuf::from(exe)));
                    }
                }
                Some("compiler-message") if msg["message"]["level"] == "error" => {
                    let m = &msg["message"];
                    let text = m["message"].as_str().unwrap_or_default();
                    if text.starts_with("aborting due to") {
                        continue;
                    }
                    let rendered = m["rendered"].as_str().unwrap_or(text).trim_end().to_owned();
                    if !ours {
                        // Another exercise's error is its own business; a library's (a
                        // chapter crate that does not compile) stops every exercise.
                        let is_lib = msg["target"]["kind"]
                            .as_array()
                            .is_some_and(|k| k.iter().any(|k| k.as_str() != Some("bin")));
                        if is_lib {
                            other_error.get_or_insert(rendered);
                        }
                        continue;
                    }
                    if out.contains_key(&target) {
                        continue; // only the first error: the rest often follow from it
                    }
                    let location = m["spans"].as_array().and_then(|spans| {
                        spans.iter().find(|s| s["is_primary"] == true).map(|s| {
                            format!(
                                "{}{}:{}:{}",
                                pkg.shown_as,
                                s["file_name"].as_str().unwrap_or("?"),
                                s["line_start"],
                                s["column_start"]
                            )
                        })
                    });
                    out.insert(
                        target,
                        Err(Failure {
                            location,
                            ..failure(Kind::DoesNotCompile, rendered)
                        }),
                    );
                }
                _ => {}
            }
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    let stderr = stderr.finish(Duration::from_secs(5));
    for n in names {
        if out.contains_key(*n) {
            continue;
        }
        let why = match &other_error {
            Some(e) => format!("a crate it depends on does not compile:\n{e}"),
            None => format!(
                "cargo did not build it ({}):\n{}",
                describe(status),
                tail(&stderr, 20)
            ),
        };
        out.insert((*n).to_owned(), Err(failure(Kind::CannotBuild, why)));
    }
    Ok(out)
}

/// List the tests of `exe`, in the order `source` defines them, and run them one by one until
/// one fails.
fn run_tests(pkg: &Package, exe: &Path, source: &Path) -> anyhow::Result<Verdict> {
    let listing = Command::new(exe)
        .args(["--list", "--format", "terse"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", exe.display()))?;
    let text = std::fs::read_to_string(source).unwrap_or_default();
    let mut tests: Vec<String> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .filter_map(|l| l.strip_suffix(": test").map(str::to_owned))
        .collect();
    let position = |t: &String| {
        let short = t.rsplit("::").next().unwrap_or(t);
        text.find(&format!("fn {short}(")).unwrap_or(usize::MAX)
    };
    tests.sort_by_key(|t| (position(t), t.clone()));
    if tests.is_empty() {
        return Ok(Verdict::NotDone(failure(
            Kind::TestFails,
            "it has no tests: did the `mod tests` at the end of the file get lost?",
        )));
    }
    for test in &tests {
        if let Err(f) = run_one(pkg, exe, test)? {
            return Ok(Verdict::NotDone(f));
        }
    }
    Ok(Verdict::Done { tests: tests.len() })
}

/// Run one test alone, in a process group of its own, with the package's deadline.
fn run_one(pkg: &Package, exe: &Path, test: &str) -> anyhow::Result<Result<(), Failure>> {
    let mut child = Command::new(exe)
        .args([test, "--exact", "--test-threads=1", "--nocapture"])
        .env("RUST_BACKTRACE", "0")
        .current_dir(&pkg.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot run {}", exe.display()))?;
    let group = child.id() as i32;
    let stdout = collect(child.stdout.take());
    let stderr = collect(child.stderr.take());
    let status = wait_until(&mut child, Instant::now() + pkg.deadline)?;
    if status.is_none() {
        // The test and everything it forked: they share its process group.
        let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
        child.wait().context("reaping a killed test")?;
    }
    let left = leftovers(group);
    if !left.is_empty() {
        let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
    }
    let out = stdout.finish(Duration::from_secs(2));
    let err = stderr.finish(Duration::from_secs(2));
    let with_test = |f: Failure| Failure {
        test: Some(test.to_owned()),
        ..f
    };
    let Some(status) = status else {
        return Ok(Err(with_test(Failure {
            output: printed_tail(&out, &err),
            ..failure(
                Kind::Hangs,
                format!(
                    "it did not finish within {} s: a deadlock, or a wait for something that \
                     never comes. It was killed, with every process it had started.",
                    pkg.deadline.as_secs_f64()
                ),
            )
        })));
    };
    if status.success() {
        if left.is_empty() {
            return Ok(Ok(()));
        }
        return Ok(Err(with_test(failure(
            Kind::LeavesBehind,
            format!(
                "{LEFT_BEHIND} after the test ended, {} still running (now killed): \
                 wait for every child you start",
                left.join(", ")
            ),
        ))));
    }
    if let Some(signal) = status.signal() {
        let name = Signal::try_from(signal).map_or("an unknown signal", |s| s.as_str());
        return Ok(Err(with_test(Failure {
            output: printed_tail(&out, &err),
            ..failure(
                Kind::Crashes,
                format!("the test process was killed by signal {signal} ({name})"),
            )
        })));
    }
    let panics = panics(&err);
    let own = panics
        .iter()
        .find(|p| p.thread == test)
        .or_else(|| panics.first());
    let Some(own) = own else {
        return Ok(Err(with_test(Failure {
            output: printed_tail(&out, &err),
            ..failure(
                Kind::TestFails,
                format!("the test failed ({})", describe(status)),
            )
        })));
    };
    let mut message = own.message.clone();
    for p in panics.iter().filter(|p| !std::ptr::eq(*p, own)) {
        message.push_str(&format!(
            "\n(also: thread '{}' panicked at {}: {})",
            p.thread,
            p.location,
            p.message.lines().next().unwrap_or_default()
        ));
    }
    let kind = if own.message.starts_with(LEFT_BEHIND) {
        Kind::LeavesBehind
    } else {
        Kind::TestFails
    };
    // nothing_left's own line says nothing useful about where: its message does.
    let location = (kind == Kind::TestFails).then(|| format!("{}{}", pkg.shown_as, own.location));
    Ok(Err(with_test(Failure {
        location,
        ..failure(kind, message)
    })))
}
