//! Pairing the Rust, Python and floor lines into rows, and the Markdown table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::{FIGURES, Line, RUST_RUN, Sel, Target};

fn higher_is_better(unit: &str) -> bool {
    unit.ends_with("/s") || unit == "x"
}

/// Seconds per unit, for time units (so a Python figure in us pairs with a Rust one in ns).
fn time_unit(unit: &str) -> Option<f64> {
    match unit {
        "s" => Some(1.0),
        "ms" => Some(1e-3),
        "us" => Some(1e-6),
        "ns" => Some(1e-9),
        _ => None,
    }
}

/// `v` in unit `from`, expressed in unit `to` (unchanged when they are not both time units).
pub fn convert(v: f64, from: &str, to: &str) -> f64 {
    match (time_unit(from), time_unit(to)) {
        (Some(f), Some(t)) => v * f / t,
        _ => v,
    }
}

/// The median of the values of the lines `sel` picks (each round gives one).
fn median_of(lines: &[Line], sel: &Sel) -> Option<(f64, String, usize)> {
    let mut values: Vec<f64> = lines
        .iter()
        .filter(|l| sel.matches(l))
        .map(|l| l.value)
        .collect();
    let unit = lines.iter().find(|l| sel.matches(l))?.unit.clone();
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some((values[n / 2], unit, n))
}

/// The spread of the lines `sel` picks: the lowest `min` and the highest `max` their benches
/// reported (each over its own runs), converted to `unit`.
fn spread(lines: &[Line], sel: &Sel, unit: &str) -> Option<(f64, f64)> {
    let picked: Vec<&Line> = lines.iter().filter(|l| sel.matches(l)).collect();
    let get = |l: &Line, k: &str| {
        l.params
            .get(k)
            .and_then(Value::as_f64)
            .map(|v| convert(v, &l.unit, unit))
    };
    let lo = picked
        .iter()
        .filter_map(|l| get(l, "min"))
        .fold(f64::INFINITY, f64::min);
    let hi = picked
        .iter()
        .filter_map(|l| get(l, "max"))
        .fold(f64::NEG_INFINITY, f64::max);
    (lo.is_finite() && hi.is_finite()).then_some((lo.min(hi), lo.max(hi)))
}

/// A figure's numbers after pairing.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The figure's label.
    pub label: String,
    /// Unit of the Rust, Python and floor values.
    pub unit: String,
    /// Rust's value.
    pub rust: f64,
    /// Rust's spread (lowest min, highest max over runs and rounds), if reported.
    pub rust_spread: Option<(f64, f64)>,
    /// Python's value, if measured.
    pub python: Option<f64>,
    /// Python's spread, if reported.
    pub python_spread: Option<(f64, f64)>,
    /// The floor's value, if any.
    pub floor: Option<f64>,
    /// How many times better Rust is than Python (>1: Rust better).
    pub vs_python: Option<f64>,
    /// Rust's cost against the floor (1: as good as the floor; 2: twice the cost).
    pub vs_floor: Option<f64>,
    /// The threads param, for per-thread targets.
    pub threads: Option<f64>,
    /// Each target, and whether it was met (`None`: the figure needed for it is missing).
    pub targets: Vec<(Target, Option<bool>)>,
    /// Why the Python side is missing, if it is.
    pub python_note: Option<String>,
}

/// Pair every figure whose Rust line is present.
pub fn pair(
    rust: &[Line],
    python: &BTreeMap<String, Vec<Line>>,
    skipped: &BTreeMap<String, String>,
) -> Vec<Row> {
    let mut rows = Vec::new();
    for f in FIGURES {
        let Some((r, unit, _)) = median_of(rust, &f.rust) else {
            continue;
        };
        let up = higher_is_better(&unit);
        let rust_spread = spread(rust, &f.rust, &unit);
        let python_spread = match f.python {
            Some((RUST_RUN, sel)) => spread(rust, &sel, &unit),
            Some((script, sel)) => python.get(script).and_then(|l| spread(l, &sel, &unit)),
            None => None,
        };
        let (py, python_note) = match f.python {
            None => (None, Some("no counterpart".to_owned())),
            Some((RUST_RUN, sel)) => match median_of(rust, &sel) {
                Some((v, py_unit, _)) => (Some(convert(v, &py_unit, &unit)), None),
                None => (
                    None,
                    Some("not measured (python3 -m pip install gevent)".to_owned()),
                ),
            },
            Some((script, sel)) => match python.get(script).and_then(|l| median_of(l, &sel)) {
                Some((v, py_unit, _)) => (Some(convert(v, &py_unit, &unit)), None),
                None => (
                    None,
                    Some(
                        skipped
                            .get(script)
                            .cloned()
                            .unwrap_or_else(|| format!("{script} gave no such line")),
                    ),
                ),
            },
        };
        let floor = f.floor.and_then(|s| median_of(rust, &s)).map(|(v, _, _)| v);
        let vs_python = py.map(|p| if up { r / p } else { p / r });
        let vs_floor = floor.map(|fl| if up { fl / r } else { r / fl });
        let threads = rust
            .iter()
            .find(|l| f.rust.matches(l))
            .and_then(|l| l.params.get("threads"))
            .and_then(Value::as_f64);
        let targets = f
            .targets
            .iter()
            .map(|t| {
                let met = match t {
                    Target::VsPython(x) => vs_python.map(|v| v >= *x),
                    Target::VsFloor(x) => vs_floor.map(|v| v <= *x),
                    Target::PerThread(x) => threads.map(|n| r >= x * n),
                };
                (*t, met)
            })
            .collect();
        rows.push(Row {
            label: f.label.to_owned(),
            unit,
            rust: r,
            rust_spread,
            python: py,
            python_spread,
            floor,
            vs_python,
            vs_floor,
            threads,
            targets,
            python_note,
        });
    }
    rows
}

/// How a value of `unit` is shown: a divisor and the displayed unit.
fn display(v: f64, unit: &str) -> (f64, String) {
    if unit == "bytes/s" {
        return (1e9, "GB/s".into());
    }
    if let Some(per) = unit.strip_suffix("/s") {
        return if v >= 1e6 {
            (1e6, format!("M {per}/s"))
        } else if v >= 1e3 {
            (1e3, format!("k {per}/s"))
        } else {
            (1.0, format!("{per}/s"))
        };
    }
    if unit == "ns" && v >= 1e4 {
        return (1e3, "us".into());
    }
    (1.0, unit.into())
}

/// A value with its unit, readable: 62.8 M increments/s, 5.62 ns, 4.2 GB/s.
pub fn human(v: f64, unit: &str) -> String {
    let (div, shown) = display(v, unit);
    if unit == "bytes/s" {
        return format!("{:.2} {shown}", v / div);
    }
    format!("{:.3} {shown}", v / div)
}

/// A value and its spread in the value's displayed unit: `91.0 us [85.5 .. 189.9]`.
pub fn human_spread(v: f64, lo: f64, hi: f64, unit: &str) -> String {
    let (div, _) = display(v, unit);
    format!("{} [{:.3} .. {:.3}]", human(v, unit), lo / div, hi / div)
}

/// The report as a Markdown table, under a line naming the machine and the date.
pub fn table(rows: &[Row], machine: &str, date: &str) -> String {
    let mut out = format!(
        "Measured {date} on {machine}. Each value is a median; in brackets the lowest and highest run.\n\n| figure | Rust | Python | Rust vs Python | floor | overhead vs floor | target | met |\n|---|---|---|---|---|---|---|---|\n"
    );
    for r in rows {
        let with_spread = |v: f64, sp: Option<(f64, f64)>| match sp {
            Some((lo, hi)) => human_spread(v, lo, hi, &r.unit),
            None => human(v, &r.unit),
        };
        let py = match (r.python, &r.python_note) {
            (Some(p), _) => with_spread(p, r.python_spread),
            (None, Some(n)) => format!("({n})"),
            (None, None) => "-".into(),
        };
        let targets: Vec<String> = r.targets.iter().map(|(t, _)| t.describe()).collect();
        let met: Vec<&str> = r
            .targets
            .iter()
            .map(|(_, m)| match m {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "?",
            })
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.label,
            with_spread(r.rust, r.rust_spread),
            py,
            r.vs_python.map_or("-".into(), |v| format!("{v:.2}x")),
            r.floor.map_or("-".into(), |f| human(f, &r.unit)),
            r.vs_floor.map_or("-".into(), |v| format!("{v:.2}x")),
            if targets.is_empty() {
                "-".into()
            } else {
                targets.join(", ")
            },
            if met.is_empty() {
                "-".into()
            } else {
                met.join(", ")
            },
        );
    }
    out
}

/// The counts every figure's row of the second table shows, in this order.
pub const COUNTS: &[(&str, &str)] = &[
    ("ctx_per_op", "context switches"),
    ("migrations_per_op", "migrations"),
    ("syscalls_per_op", "syscalls"),
    ("instructions_per_op", "instructions"),
];

/// One row of the counts table: a figure's Rust side or its floor, with the median over the
/// rounds of each count per operation its bench reported.
#[derive(Debug, Clone, PartialEq)]
pub struct CountRow {
    /// The figure's label.
    pub label: String,
    /// `Rust` or `floor`.
    pub side: &'static str,
    /// Each of [`COUNTS`], if reported.
    pub counts: Vec<Option<f64>>,
    /// Where the instruction count came from (`perf`, `callgrind`), if there is one.
    pub instructions_via: Option<String>,
    /// Other counts per operation the bench reported (`parks_per_op`...), by name.
    pub other: Vec<(String, f64)>,
}

/// The median over rounds of param `key` of the lines `sel` picks.
fn median_param(lines: &[Line], sel: &Sel, key: &str) -> Option<f64> {
    let mut v: Vec<f64> = lines
        .iter()
        .filter(|l| sel.matches(l))
        .filter_map(|l| l.params.get(key).and_then(Value::as_f64))
        .collect();
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then(|| v[v.len() / 2])
}

/// The counts table's rows: for each figure of [`FIGURES`], its Rust side and its floor, when
/// their lines carry any count per operation, from the timed rounds (`rust`) or, for
/// instructions, from the callgrind pass (`callgrind`, which wins when both have one).
pub fn count_rows(rust: &[Line], callgrind: &[Line]) -> Vec<CountRow> {
    let mut rows = Vec::new();
    for f in FIGURES {
        for (side, sel) in [("Rust", Some(f.rust)), ("floor", f.floor)] {
            let Some(sel) = sel else { continue };
            let mut counts: Vec<Option<f64>> = COUNTS
                .iter()
                .map(|(k, _)| median_param(rust, &sel, k))
                .collect();
            let mut instructions_via = counts[3].map(|_| "perf".to_owned());
            if let Some(v) = median_param(callgrind, &sel, "instructions_per_op") {
                counts[3] = Some(v);
                instructions_via = Some("callgrind".into());
            }
            let mut keys: Vec<&String> = rust
                .iter()
                .filter(|l| sel.matches(l))
                .flat_map(|l| l.params.keys())
                .filter(|k| k.ends_with("_per_op") && !COUNTS.iter().any(|(c, _)| c == k))
                .collect();
            keys.sort();
            keys.dedup();
            let other: Vec<(String, f64)> = keys
                .into_iter()
                .filter_map(|k| median_param(rust, &sel, k).map(|v| (k.clone(), v)))
                .collect();
            if counts.iter().all(Option::is_none) && other.is_empty() {
                continue;
            }
            rows.push(CountRow {
                label: f.label.to_owned(),
                side,
                counts,
                instructions_via,
                other,
            });
        }
    }
    rows
}

/// A count per operation, readable at any size: 0, 0.000123, 0.0472, 2.98, 305.
pub fn per_op(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        // Three significant digits.
        let digits = (2 - v.abs().log10().floor() as i32).max(0) as usize;
        format!("{v:.digits$}")
    }
}

/// The counts table (Markdown), or an empty string when no figure has a count.
pub fn counts_table(rows: &[CountRow]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "Counts per operation (mean over the timed runs, median over rounds; \"-\": not counted on this machine). Context switches, migrations and syscalls from perf_event_open (or getrusage for switches), counted in-process over the timed phase, threads and children included; instructions from callgrind (`cargo xtask bench --counts`, single-threaded figures) or perf where the processor exposes them.\n\n| figure | side | context switches | migrations | syscalls | instructions | other |\n|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let cell = |v: Option<f64>| v.map_or("-".into(), per_op);
        let instructions = match (&r.counts[3], &r.instructions_via) {
            (Some(v), Some(via)) => format!("{} ({via})", per_op(*v)),
            (v, _) => cell(*v),
        };
        let other = if r.other.is_empty() {
            "-".into()
        } else {
            r.other
                .iter()
                .map(|(k, v)| format!("{} {}", k.trim_end_matches("_per_op"), per_op(*v)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.label,
            r.side,
            cell(r.counts[0]),
            cell(r.counts[1]),
            cell(r.counts[2]),
            instructions,
            other
        );
    }
    out
}
