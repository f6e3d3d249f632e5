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
