//! `cargo xtask bench`: every chapter's benchmark next to its Python counterpart and its floor.
//!
//! The Rust benches (`<chapter>/benches/*.rs`) and the Python scripts (`bench/python/*.py`)
//! print `BENCH {json}` lines. Each figure of [`FIGURES`] names the line it takes from each side
//! and from the floor (the raw mechanism underneath), and its target from the chapter's issue.
//! Rust and Python runs alternate, round after round, and each side's figure is the median over
//! the rounds of values that are themselves medians of at least five runs.
//!
//! `figures` holds the table of figures and their targets, `run` drives the rounds, `report`
//! pairs the lines into rows and writes the Markdown table, `svg` draws the charts.

use serde_json::Value;

mod figures;
mod report;
pub(crate) mod run;
mod svg;

pub use figures::{CALLGRIND, FIGURES, script_needs};
pub use report::{
    COUNTS, CountRow, Row, convert, count_rows, counts_table, human, human_spread, pair, per_op,
    table,
};
pub use run::{gil_series, machine};
pub use svg::{gil_svg, svg};

/// One `BENCH {...}` line.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The figure's name.
    pub name: String,
    /// Its unit (`ns`, `items/s`, ...).
    pub unit: String,
    /// The value (a median).
    pub value: f64,
    /// Everything else the bench said about it.
    pub params: serde_json::Map<String, Value>,
}

/// The BENCH lines in `text`, and a complaint for each BENCH line that did not parse.
pub fn parse(text: &str) -> (Vec<Line>, Vec<String>) {
    let mut lines = Vec::new();
    let mut bad = Vec::new();
    for raw in text.lines() {
        let Some(json) = raw.trim().strip_prefix("BENCH ") else {
            continue;
        };
        let parsed = serde_json::from_str::<Value>(json).ok().and_then(|v| {
            Some(Line {
                name: v.get("name")?.as_str()?.to_owned(),
                unit: v.get("unit")?.as_str()?.to_owned(),
                value: v.get("value")?.as_f64()?,
                params: v
                    .get("params")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default(),
            })
        });
        match parsed {
            Some(l) => lines.push(l),
            None => bad.push(raw.to_owned()),
        }
    }
    (lines, bad)
}

/// Picks lines: by name, and by the values of some params (compared as text).
#[derive(Debug, Clone, Copy)]
pub struct Sel {
    /// The line's name.
    pub name: &'static str,
    /// Params that must have these values.
    pub params: &'static [(&'static str, &'static str)],
}

fn param_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.as_f64().map_or_else(|| n.to_string(), |f| format!("{f}")),
        other => other.to_string(),
    }
}

impl Sel {
    /// Whether `line` is this selection's.
    pub fn matches(&self, line: &Line) -> bool {
        line.name == self.name
            && self
                .params
                .iter()
                .all(|(k, v)| line.params.get(*k).is_some_and(|p| param_text(p) == *v))
    }
}

pub(crate) const fn sel(
    name: &'static str,
    params: &'static [(&'static str, &'static str)],
) -> Sel {
    Sel { name, params }
}

/// What a figure's target compares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// Rust at least this many times better than Python.
    VsPython(f64),
    /// Rust at most this many times the floor's cost (1.0 = as good as the floor).
    VsFloor(f64),
    /// The Rust value itself at least this times the `threads` param (the GIL speedup).
    PerThread(f64),
}

impl Target {
    pub(crate) fn describe(&self) -> String {
        match self {
            Target::VsPython(x) => format!(">= {x}x Python"),
            Target::VsFloor(x) => format!("<= {x}x floor"),
            Target::PerThread(x) => format!(">= {x} x threads"),
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Figure {
    /// What the row is called.
    pub label: &'static str,
    /// The chapter whose bench prints the Rust line.
    pub chapter: &'static str,
    /// The Rust line.
    pub rust: Sel,
    /// The Python script (in `bench/python/`) and its line, if there is a counterpart.
    pub python: Option<(&'static str, Sel)>,
    /// The floor's line (from the same Rust bench run).
    pub floor: Option<Sel>,
    /// Targets from the chapter's issue.
    pub targets: &'static [Target],
}

/// In place of a script name: the Python side's line is printed by the Rust bench itself
/// (which drove the Python server with its own client).
pub const RUST_RUN: &str = "(rust bench)";
