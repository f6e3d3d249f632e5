//! Running `cargo xtask bench`: build, alternate Rust and Python rounds, pair, write the report.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{Context, bail};

use super::{self as bench, FIGURES, Line};
use crate::{CHAPTERS, root, show};

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// "N cores, CPU model, Linux kernel" from /proc.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    format!("{cores} cores, {model}, Linux {kernel}")
}

fn today() -> String {
    Command::new("date")
        .arg("+%Y-%m-%d")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "today".into())
}

fn run_capture(cmd: &mut Command, limit: Duration) -> anyhow::Result<String> {
    show(cmd);
    let out = lesson::output_within(cmd, limit)?;
    if !out.status.success() {
        bail!(
            "{:?} failed ({}): {}",
            cmd.get_program(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether `python3` runs, and which of the needed modules it lacks.
fn python_status() -> Result<(), String> {
    let mut cmd = Command::new("python3");
    cmd.arg("--version");
    match lesson::output_within(&mut cmd, Duration::from_secs(30)) {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err("python3 not found: install Python 3 to compare".into()),
    }
}

fn has_modules(modules: &[&str]) -> bool {
    if modules.is_empty() {
        return true;
    }
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(format!("import {}", modules.join(", ")));
    lesson::output_within(&mut cmd, Duration::from_secs(60)).is_ok_and(|o| o.status.success())
}

/// The bench executable of `chapter` (from cargo's JSON messages).
fn bench_executable(chapter: &str) -> anyhow::Result<PathBuf> {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root()).args([
        "bench",
        "--no-run",
        "--quiet",
        "--message-format=json",
        "--package",
        chapter,
    ]);
    let out = run_capture(&mut cmd, Duration::from_secs(1200))?;
    out.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v["reason"] == "compiler-artifact"
                && v["target"]["kind"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|k| k == "bench"))
        })
        .find_map(|v| v["executable"].as_str().map(PathBuf::from))
        .with_context(|| format!("no bench executable for {chapter}"))
}

/// The callgrind pass of `--counts`: each of [`bench::CALLGRIND`]'s groups (of the chosen
/// chapters) once under `valgrind --tool=callgrind`, collecting only inside
/// `lesson::counters::callgrind_region` and dumping a part file as it returns; the bench reads
/// its own parts back (see `lesson::bench::Counters`) and prints `instructions_per_op`.
fn callgrind_pass(chapters: &[&str]) -> anyhow::Result<Vec<Line>> {
    let mut version = Command::new("valgrind");
    version.arg("--version");
    if !lesson::output_within(&mut version, Duration::from_secs(30))
        .is_ok_and(|o| o.status.success())
    {
        eprintln!(
            "xtask bench --counts: valgrind not found (apt-get install valgrind); no instruction counts"
        );
        return Ok(Vec::new());
    }
    let dir = target_dir().join("bench").join("callgrind");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let region = "lesson::counters::callgrind_region";
    let mut lines = Vec::new();
    for (chapter, groups) in bench::CALLGRIND {
        if !chapters.contains(chapter) {
            continue;
        }
        let exe = bench_executable(chapter)?;
        let prefix = dir.join(chapter);
        let mut cmd = Command::new("valgrind");
        cmd.current_dir(root())
            .env(lesson::bench::CALLGRIND_ENV, &prefix)
            .arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}.%p", prefix.display()))
            .arg("--collect-atstart=no")
            .arg(format!("--toggle-collect={region}"))
            .arg(format!("--dump-after={region}"))
            .arg(&exe)
            .arg("--bench")
            .args(*groups);
        let out = run_capture(&mut cmd, Duration::from_secs(1200))?;
        lines.extend(bench::parse(&out).0);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(lines)
}

/// `cargo xtask bench [--quick] [--counts] [CHAPTER...]`.
pub fn bench(args: &[String]) -> anyhow::Result<ExitCode> {
    let quick = args.iter().any(|a| a == "--quick");
    let counts = args.iter().any(|a| a == "--counts");
    if let Some(bad) = args
        .iter()
        .find(|a| a.starts_with("--") && !["--quick", "--counts"].contains(&a.as_str()))
    {
        eprintln!("xtask bench: unknown option {bad:?}\noptions: --quick, --counts");
        return Ok(ExitCode::from(2));
    }
    let wanted: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(String::as_str)
        .collect();
    for w in &wanted {
        if !CHAPTERS.contains(w) {
            eprintln!(
                "xtask bench: unknown chapter {w:?}\nchapters: {}",
                CHAPTERS.join(", ")
            );
            return Ok(ExitCode::from(2));
        }
    }
    let chapters: Vec<&str> = if wanted.is_empty() {
        CHAPTERS.to_vec()
    } else {
        wanted
    };
    let rounds = if quick { 1 } else { 3 };
    let machine = machine();
    println!("machine: {machine}");
    println!(
        "{} round(s), Rust and Python alternating; each value is a median of >= 5 runs after a warm-up",
        rounds
    );

    let mut build = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    build
        .current_dir(root())
        .args(["bench", "--no-run", "--quiet"]);
    for c in &chapters {
        build.args(["--package", c]);
    }
    show(&build);
    if !build.status().context("cannot run cargo")?.success() {
        bail!("building the benches failed");
    }

    let python = python_status();
    let mut skipped: BTreeMap<String, String> = BTreeMap::new();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Scripts per chapter, from the figures (plus the GIL curve's gil.py runs).
    let scripts = |chapter: &str| -> Vec<&'static str> {
        let mut v: Vec<&'static str> = FIGURES
            .iter()
            .filter(|f| f.chapter == chapter)
            .filter_map(|f| f.python.map(|(s, _)| s))
            .filter(|s| *s != bench::RUST_RUN)
            .collect();
        v.dedup();
        v.into_iter().collect::<BTreeSet<_>>().into_iter().collect()
    };
    let total_steps = rounds * chapters.iter().map(|c| 1 + scripts(c).len()).sum::<usize>();
    let mut step = 0;
    let mut rust: Vec<Line> = Vec::new();
    let mut py: BTreeMap<String, Vec<Line>> = BTreeMap::new();
    for round in 1..=rounds {
        for &chapter in &chapters {
            step += 1;
            eprintln!("[bench {step}/{total_steps}] round {round}: {chapter} (Rust)");
            let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
            cmd.current_dir(root())
                .args(["bench", "--quiet", "--package", chapter]);
            let out = run_capture(&mut cmd, Duration::from_secs(1200))?;
            let (lines, bad) = bench::parse(&out);
            for b in bad {
                eprintln!("xtask bench: a malformed BENCH line from {chapter}: {b}");
            }
            rust.extend(lines);
            for script in scripts(chapter) {
                step += 1;
                eprintln!("[bench {step}/{total_steps}] round {round}: {script} (Python)");
                if let Err(why) = &python {
                    skipped.insert(script.into(), why.clone());
                    continue;
                }
                let needs = bench::script_needs(script);
                if !has_modules(needs) {
                    skipped.insert(
                        script.into(),
                        format!(
                            "needs {}: python3 -m pip install greenlet gevent",
                            needs.join(", ")
                        ),
                    );
                    continue;
                }
                let path = root().join("bench/python").join(script);
                let runs: Vec<Vec<String>> = if script == "gil.py" {
                    (1..=cores)
                        .map(|n| vec!["--threads".into(), n.to_string(), "--processes".into()])
                        .collect()
                } else {
                    vec![vec![]]
                };
                for extra in runs {
                    let mut cmd = Command::new("python3");
                    cmd.arg(&path).args(&extra);
                    match run_capture(&mut cmd, Duration::from_secs(1200)) {
                        Ok(out) => py
                            .entry(script.into())
                            .or_default()
                            .extend(bench::parse(&out).0),
                        Err(e) => {
                            skipped.insert(script.into(), format!("failed: {e:#}"));
                        }
                    }
                }
            }
        }
    }
    let callgrind = if counts {
        eprintln!("[bench] instructions per operation: the single-threaded groups under callgrind");
        callgrind_pass(&chapters)?
    } else {
        Vec::new()
    };
    let rows = bench::pair(&rust, &py, &skipped);
    let date = today();
    let mut table = bench::table(&rows, &machine, &date);
    let counts_table = bench::counts_table(&bench::count_rows(&rust, &callgrind));
    if !counts_table.is_empty() {
        table.push('\n');
        table.push_str(&counts_table);
    }
    let gil = gil_series(&rust, py.get("gil.py").map(Vec::as_slice).unwrap_or(&[]));
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("report.md"), &table)?;
    std::fs::write(
        dir.join("report.svg"),
        bench::svg(
            &rows,
            &format!("Rust against Python and the floor ({date}, {machine})"),
        ),
    )?;
    std::fs::write(dir.join("gil.svg"), bench::gil_svg(&gil))?;
    println!("\n{table}");
    for (script, why) in &skipped {
        println!("skipped {script}: {why}");
    }
    let unmet = rows
        .iter()
        .flat_map(|r| r.targets.iter())
        .filter(|(_, m)| *m == Some(false))
        .count();
    println!(
        "{} figures, {unmet} unmet target(s); written to {}",
        rows.len(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The GIL curve: Rust threads (the threads bench's gil_speedup lines), Python threads and
/// Python processes (gil.py's, one run per thread count).
pub fn gil_series(rust: &[Line], python: &[Line]) -> Vec<(&'static str, Vec<(f64, f64)>)> {
    let points = |lines: &[Line], f: &dyn Fn(&Line) -> Option<f64>| -> Vec<(f64, f64)> {
        let mut by_n: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
        for l in lines.iter().filter(|l| l.name == "gil_speedup") {
            if let (Some(n), Some(v)) = (l.params.get("threads").and_then(|v| v.as_f64()), f(l)) {
                by_n.entry(n as u64).or_default().push(v);
            }
        }
        by_n.into_iter()
            .map(|(n, mut v)| {
                v.sort_by(f64::total_cmp);
                (n as f64, v[v.len() / 2])
            })
            .collect()
    };
    vec![
        ("Rust threads", points(rust, &|l| Some(l.value))),
        ("Python threads", points(python, &|l| Some(l.value))),
        (
            "Python processes",
            points(python, &|l| {
                l.params.get("processes_speedup").and_then(|v| v.as_f64())
            }),
        ),
    ]
}
