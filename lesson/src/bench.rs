//! Benchmark support for the chapters' `benches/*.rs` (harness = false): measure a closure a
//! few times after a warm-up, and print `BENCH {json}` lines that `cargo xtask bench` collects.
//!
//! # Counts per operation
//!
//! A figure opts in to counts (context switches, CPU migrations, system calls and, where
//! measurable, instructions per operation; see [`Counters`] for where they come from) by
//! measuring with [`measure_counted`] or [`measure_pair_counted`] instead of [`measure`] or
//! [`measure_pair`], and adding the [`Counts`] to its params:
//!
//! ```
//! use lesson::bench::{measure_counted, report_per_op};
//!
//! const OPS: u64 = 1000;
//! let (sample, counts) = measure_counted(5, OPS, || {
//!     for i in 0..OPS {
//!         std::hint::black_box(i);
//!     }
//! });
//! report_per_op("spin", sample, OPS, &counts.with(&[("via", "a loop".into())]));
//! ```
//!
//! The counts cover the timed runs only (not the warm-up), with every thread and process the
//! measured closure creates; a helper thread spawned before the measurement is not counted
//! (open [`Counters`] before spawning it and use [`Counters::count`] around each run).

use std::fmt::Write;
use std::time::{Duration, Instant};

/// The spread of several timed runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// The fastest run.
    pub min: Duration,
    /// The middle run.
    pub median: Duration,
    /// The slowest run.
    pub max: Duration,
    /// How many runs (after the warm-up).
    pub runs: usize,
}

fn time(f: &mut impl FnMut()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

fn sample(mut times: Vec<Duration>) -> Sample {
    times.sort();
    Sample {
        min: times[0],
        median: times[times.len() / 2],
        max: times[times.len() - 1],
        runs: times.len(),
    }
}

/// Run `f` once to warm up, then `runs` times (at least 5), timing each.
pub fn measure(runs: usize, mut f: impl FnMut()) -> Sample {
    f();
    sample((0..runs.max(5)).map(|_| time(&mut f)).collect())
}

/// Measure two contenders fairly: one warm-up each, then `runs` (at least 5) rounds of
/// `a` then `b`, so that drift of the machine (frequency, other load) hits both alike.
pub fn measure_pair(runs: usize, mut a: impl FnMut(), mut b: impl FnMut()) -> (Sample, Sample) {
    let mut all = measure_all(runs, &mut [&mut a, &mut b]).into_iter();
    match (all.next(), all.next()) {
        (Some(a), Some(b)) => (a, b),
        _ => unreachable!("two contenders give two samples"),
    }
}

/// [`measure_pair`] for any number of contenders: one warm-up each, then `runs` (at least 5)
/// rounds of each in turn; one sample per contender, in order.
pub fn measure_all(runs: usize, fs: &mut [&mut dyn FnMut()]) -> Vec<Sample> {
    for f in fs.iter_mut() {
        f();
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); fs.len()];
    for _ in 0..runs.max(5) {
        for (f, t) in fs.iter_mut().zip(&mut times) {
            t.push(time(f));
        }
    }
    times.into_iter().map(sample).collect()
}

pub use crate::counters::{CALLGRIND_ENV, Counters, Counts, callgrind_region};

/// [`measure`] with counts: one warm-up (not counted), then `runs` (at least 5) timed runs of
/// `f`, each doing `ops` operations, with [`Counters`] enabled around each. Under callgrind
/// ([`CALLGRIND_ENV`]), one counted run only, whose timing means nothing.
pub fn measure_counted(runs: usize, ops: u64, mut f: impl FnMut()) -> (Sample, Counts) {
    let mut c = Counters::open();
    f();
    let runs = if c.under_callgrind() { 1 } else { runs.max(5) };
    let times = (0..runs).map(|_| c.count(ops, || time(&mut f))).collect();
    (sample(times), c.counts())
}

/// [`measure_pair`] with counts for each contender (see [`measure_counted`]).
pub fn measure_pair_counted(
    runs: usize,
    ops: u64,
    mut a: impl FnMut(),
    mut b: impl FnMut(),
) -> ((Sample, Counts), (Sample, Counts)) {
    let (mut ca, mut cb) = (Counters::open(), Counters::open());
    a();
    b();
    let runs = if ca.under_callgrind() { 1 } else { runs.max(5) };
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        ta.push(ca.count(ops, || time(&mut a)));
        tb.push(cb.count(ops, || time(&mut b)));
    }
    ((sample(ta), ca.counts()), (sample(tb), cb.counts()))
}

/// Whether the bench group `group` should run: the names given on the command line (after
/// `cargo bench -p CRATE --`) select groups by substring; with none given, every group runs.
/// Flags (`--bench`, which cargo passes) are ignored.
///
/// ```
/// // With no names on the command line (as in this doc test), every group is selected.
/// assert!(lesson::bench::selected("bulk"));
/// ```
pub fn selected(group: &str) -> bool {
    selected_by(std::env::args().skip(1), group)
}

/// Run each of `groups` (a name and the function printing its figures) that [`selected`]
/// selects, in order: `cargo bench -p CRATE -- NAME...` runs some groups only.
pub fn run_selected(groups: &[(&str, fn())]) {
    for (name, run) in groups {
        if selected(name) {
            run();
        }
    }
}

fn selected_by(args: impl Iterator<Item = String>, group: &str) -> bool {
    let names: Vec<String> = args.filter(|a| !a.starts_with('-')).collect();
    names.is_empty() || names.iter().any(|n| group.contains(n.as_str()))
}

/// A JSON value for [`line()`]'s params.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// A number.
    Num(f64),
    /// A string (escaped on output).
    Str(String),
}

impl From<f64> for Param {
    fn from(v: f64) -> Param {
        Param::Num(v)
    }
}

impl From<usize> for Param {
    fn from(v: usize) -> Param {
        Param::Num(v as f64)
    }
}

impl From<&str> for Param {
    fn from(v: &str) -> Param {
        Param::Str(v.to_owned())
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_number(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "null".to_owned()
    }
}

/// One `BENCH {...}` line (DESIGN.md's format).
///
/// ```
/// let l = lesson::bench::line("spawn", "us", 12.5, &[("threads", 1000usize.into()), ("via", "std".into())]);
/// assert_eq!(l, r#"BENCH {"name": "spawn", "unit": "us", "value": 12.5, "params": {"threads": 1000, "via": "std"}}"#);
/// ```
pub fn line(name: &str, unit: &str, value: f64, params: &[(&str, Param)]) -> String {
    let params: Vec<String> = params
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Param::Num(n) => json_number(*n),
                Param::Str(s) => json_string(s),
            };
            format!("{}: {v}", json_string(k))
        })
        .collect();
    format!(
        "BENCH {{\"name\": {}, \"unit\": {}, \"value\": {}, \"params\": {{{}}}}}",
        json_string(name),
        json_string(unit),
        json_number(value),
        params.join(", ")
    )
}

/// Print a sample as a BENCH line whose value is the median in `unit` (`"ms"`, `"us"` or
/// `"ns"`), with min, max and runs added to `params`.
pub fn report(name: &str, unit: &str, sample: Sample, params: &[(&str, Param)]) {
    let scale = match unit {
        "s" => 1.0,
        "ms" => 1e3,
        "us" => 1e6,
        _ => 1e9,
    };
    let v = |d: Duration| d.as_secs_f64() * scale;
    let mut all: Vec<(&str, Param)> = params.to_vec();
    all.push(("min", v(sample.min).into()));
    all.push(("max", v(sample.max).into()));
    all.push(("runs", sample.runs.into()));
    println!("{}", line(name, unit, v(sample.median), &all));
}

/// Print a sample of `ops` operations each as a BENCH line whose value is the median time of
/// one operation in nanoseconds (as a float: per-operation times are often a few ns), with min,
/// max and runs added to `params`. Returns that median.
pub fn report_per_op(name: &str, sample: Sample, ops: u64, params: &[(&str, Param)]) -> f64 {
    let ns = |d: Duration| d.as_secs_f64() * 1e9 / ops.max(1) as f64;
    let mut all: Vec<(&str, Param)> = params.to_vec();
    all.push(("ops", (ops as f64).into()));
    all.push(("min", ns(sample.min).into()));
    all.push(("max", ns(sample.max).into()));
    all.push(("runs", sample.runs.into()));
    let median = ns(sample.median);
    println!("{}", line(name, "ns", median, &all));
    median
}

#[cfg(test)]
mod tests {
    use super::selected_by;

    fn args(a: &[&str]) -> impl Iterator<Item = String> {
        a.iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn names_select_groups_by_substring_and_flags_are_ignored() {
        assert!(selected_by(args(&["--bench"]), "bulk"));
        assert!(selected_by(args(&["--bench", "bulk"]), "bulk"));
        assert!(selected_by(args(&["man"]), "manager"));
        assert!(!selected_by(args(&["--bench", "bulk"]), "manager"));
        assert!(selected_by(args(&["queue", "lock"]), "lock"));
    }
}
