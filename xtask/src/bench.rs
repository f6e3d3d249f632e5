//! `cargo xtask bench`: every chapter's benchmark next to its Python counterpart and its floor.
//!
//! The Rust benches (`<chapter>/benches/*.rs`) and the Python scripts (`bench/python/*.py`)
//! print `BENCH {json}` lines. Each figure of [`FIGURES`] names the line it takes from each side
//! and from the floor (the raw mechanism underneath), and its target from the chapter's issue.
//! Rust and Python runs alternate, round after round, and each side's figure is the median over
//! the rounds of values that are themselves medians of at least five runs.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

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

const fn sel(name: &'static str, params: &'static [(&'static str, &'static str)]) -> Sel {
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
    fn describe(&self) -> String {
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

/// Every figure, in chapter order.
pub const FIGURES: &[Figure] = &[
    Figure {
        label: "thread start+join (1000)",
        chapter: "threads",
        rust: sel("thread_spawn_join_1000", &[]),
        python: Some(("threads.py", sel("thread_spawn_join_1000", &[]))),
        floor: Some(sel("thread_spawn_join_1000_raw", &[])),
        targets: &[Target::VsFloor(1.2)],
    },
    Figure {
        label: "GIL: CPU-bound speedup, 2 threads",
        chapter: "threads",
        rust: sel("gil_speedup", &[("threads", "2")]),
        python: Some(("gil.py", sel("gil_speedup", &[("threads", "2")]))),
        floor: None,
        targets: &[Target::PerThread(0.9)],
    },
    Figure {
        label: "locked counter, 4 threads",
        chapter: "sync",
        rust: sel("locked_counter", &[]),
        python: Some(("locked_counter.py", sel("locked_counter", &[]))),
        floor: None,
        targets: &[Target::VsPython(4.0)],
    },
    Figure {
        label: "Semaphore acquire+release",
        chapter: "sync",
        rust: sel("semaphore_acquire_release", &[("contended", "no")]),
        python: Some(("sync.py", sel("semaphore_acquire_release", &[]))),
        floor: Some(sel("mutex_lock_unlock", &[])),
        targets: &[Target::VsFloor(2.0)],
    },
    Figure {
        label: "Event set -> wake, one core",
        chapter: "sync",
        rust: sel("event_set_to_wake", &[("pinned", "one core")]),
        python: Some((
            "event.py",
            sel("event_set_to_wake", &[("pinned", "one core")]),
        )),
        floor: None,
        targets: &[],
    },
    Figure {
        label: "Event set -> wake, unpinned",
        chapter: "sync",
        rust: sel("event_set_to_wake", &[("pinned", "no")]),
        python: Some(("event.py", sel("event_set_to_wake", &[("pinned", "no")]))),
        floor: None,
        targets: &[],
    },
    Figure {
        label: "Queue FIFO 1P1C, maxsize 1000",
        chapter: "queues",
        rust: sel("queue_1p1c_fifo", &[("maxsize", "1000")]),
        python: Some((
            "queue_throughput.py",
            sel("queue_1p1c_fifo", &[("maxsize", "1000")]),
        )),
        floor: Some(sel("queue_1p1c_crossbeam", &[("maxsize", "1000")])),
        targets: &[Target::VsFloor(2.0)],
    },
    Figure {
        label: "Queue FIFO 1P1C, maxsize 3",
        chapter: "queues",
        rust: sel("queue_1p1c_fifo", &[("maxsize", "3")]),
        python: Some((
            "queue_throughput.py",
            sel("queue_1p1c_fifo", &[("maxsize", "3")]),
        )),
        floor: Some(sel("queue_1p1c_crossbeam", &[("maxsize", "3")])),
        targets: &[Target::VsFloor(2.0)],
    },
    Figure {
        label: "LifoQueue 1P1C",
        chapter: "queues",
        rust: sel("queue_1p1c_lifo", &[]),
        python: Some(("queue_throughput.py", sel("queue_1p1c_lifo", &[]))),
        floor: None,
        targets: &[],
    },
    Figure {
        label: "PriorityQueue 1P1C",
        chapter: "queues",
        rust: sel("queue_1p1c_priority", &[]),
        python: Some(("queue_throughput.py", sel("queue_1p1c_priority", &[]))),
        floor: None,
        targets: &[],
    },
    Figure {
        label: "Process start+join, fork (1000 started, then joined)",
        chapter: "processes",
        rust: sel(
            "process_start_join",
            &[("pattern", "1000 started, then joined")],
        ),
        python: Some((
            "process_start.py",
            sel("process_start_join", &[("method", "fork")]),
        )),
        floor: Some(sel(
            "process_start_join_raw",
            &[("pattern", "1000 started, then joined")],
        )),
        targets: &[Target::VsFloor(1.5), Target::VsPython(8.0)],
    },
    Figure {
        label: "Process start+join, spawn",
        chapter: "processes",
        rust: sel("process_spawn_start_join", &[]),
        python: Some(("process_start.py", sel("process_spawn_start_join", &[]))),
        floor: None,
        targets: &[Target::VsPython(10.0)],
    },
    Figure {
        label: "Connection round trip, one core",
        chapter: "ipc",
        rust: sel("pipe_round_trip", &[("pinned", "one core")]),
        python: Some(("ipc.py", sel("pipe_round_trip", &[("pinned", "one core")]))),
        floor: Some(sel("pipe_round_trip_raw", &[("pinned", "one core")])),
        targets: &[Target::VsFloor(1.5)],
    },
    Figure {
        label: "Connection round trip, unpinned",
        chapter: "ipc",
        rust: sel("pipe_round_trip", &[("pinned", "no")]),
        python: Some(("ipc.py", sel("pipe_round_trip", &[("pinned", "no")]))),
        floor: Some(sel("pipe_round_trip_raw", &[("pinned", "no")])),
        targets: &[Target::VsFloor(1.5)],
    },
    Figure {
        label: "Connection bulk, 1 MiB messages (typed)",
        chapter: "ipc",
        rust: sel("pipe_bulk_typed", &[]),
        python: Some(("ipc.py", sel("pipe_bulk_typed", &[]))),
        floor: Some(sel("pipe_bulk_raw", &[])),
        targets: &[Target::VsFloor(1.43), Target::VsPython(2.5)],
    },
    Figure {
        label: "Connection bulk, 1 MiB messages (send_bytes)",
        chapter: "ipc",
        rust: sel("pipe_bulk_send_bytes", &[]),
        python: Some(("ipc.py", sel("pipe_bulk_send_bytes", &[]))),
        floor: Some(sel("pipe_bulk_raw", &[])),
        targets: &[Target::VsFloor(1.43), Target::VsPython(2.5)],
    },
    Figure {
        label: "ipc Queue, child -> parent",
        chapter: "ipc",
        rust: sel("queue_child_to_parent", &[]),
        python: Some(("ipc.py", sel("queue_child_to_parent", &[]))),
        floor: None,
        targets: &[Target::VsPython(10.0)],
    },
    Figure {
        label: "Manager dict sets, 5 processes",
        chapter: "ipc",
        rust: sel("manager_dict_set", &[]),
        python: Some(("ipc.py", sel("manager_dict_set", &[]))),
        // A bare poll server over socketpairs, the same exchange with nothing else.
        floor: Some(sel("manager_dict_set_raw", &[])),
        targets: &[Target::VsPython(5.0)],
    },
    Figure {
        label: "Pool apply_async + callback, Pool(2)",
        chapter: "pool",
        rust: sel("pool_apply_async_callback", &[("processes", "2")]),
        python: Some((
            "pool.py",
            sel("pool_apply_async_callback", &[("processes", "2")]),
        )),
        floor: None,
        targets: &[Target::VsPython(10.0)],
    },
    Figure {
        label: "Pool apply_async + callback, Pool(5)",
        chapter: "pool",
        rust: sel("pool_apply_async_callback", &[("processes", "5")]),
        python: Some((
            "pool.py",
            sel("pool_apply_async_callback", &[("processes", "5")]),
        )),
        floor: None,
        targets: &[Target::VsPython(10.0)],
    },
    Figure {
        label: "Pool map, default chunks",
        chapter: "pool",
        rust: sel("pool_map", &[("processes", "2"), ("chunking", "default")]),
        python: Some(("pool.py", sel("pool_map", &[]))),
        floor: None,
        targets: &[],
    },
    Figure {
        label: "greenlet switch",
        chapter: "coroutines",
        rust: sel("greenlet_switch", &[]),
        python: Some(("greenlet_switch.py", sel("greenlet_switch", &[]))),
        floor: Some(sel("corosensei_switch_raw", &[])),
        targets: &[Target::VsFloor(2.5), Target::VsPython(50.0)],
    },
    Figure {
        label: "hub echo, 1000 connections",
        chapter: "coroutines",
        rust: sel("hub_echo_round_trips", &[]),
        // gevent's server is driven by the Rust bench's own client, so its line comes from
        // the Rust run (see RUST_RUN).
        python: Some((RUST_RUN, sel("hub_echo_round_trips_gevent", &[]))),
        floor: Some(sel("hub_echo_round_trips_raw", &[])),
        targets: &[Target::VsPython(5.0), Target::VsFloor(1.5)],
    },
    Figure {
        // What each server itself spends per round trip (the round trips per second are
        // capped by the one client's core); the kernel's TCP work is most of the floor.
        label: "hub echo, server CPU per round trip",
        chapter: "coroutines",
        rust: sel("hub_echo_server_cpu", &[]),
        python: Some((RUST_RUN, sel("hub_echo_server_cpu_gevent", &[]))),
        floor: Some(sel("hub_echo_server_cpu_raw", &[])),
        targets: &[],
    },
    Figure {
        label: "10 000 sleeping greenlets, RSS",
        chapter: "coroutines",
        rust: sel("hub_10000_sleeping_tasks_rss", &[]),
        python: Some(("gevent_memory.py", sel("hub_10000_sleeping_tasks_rss", &[]))),
        floor: None,
        targets: &[Target::VsPython(1.0)],
    },
];

/// Python scripts that need more than the standard library.
pub fn script_needs(script: &str) -> &'static [&'static str] {
    match script {
        "greenlet_switch.py" => &["greenlet"],
        "gevent_memory.py" => &["gevent"],
        _ => &[],
    }
}

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

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Bars: Rust's speedup over Python per figure on a log scale (1x in the middle), and its
/// overhead over the floor.
pub fn svg(rows: &[Row], title: &str) -> String {
    let with_py: Vec<&Row> = rows.iter().filter(|r| r.vs_python.is_some()).collect();
    let with_floor: Vec<&Row> = rows.iter().filter(|r| r.vs_floor.is_some()).collect();
    let bar_h = 18.0;
    let label_w = 330.0;
    let plot_w = 420.0;
    let height = 60.0 + (with_py.len() + with_floor.len()) as f64 * (bar_h + 6.0) + 60.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"10\" y=\"20\" font-size=\"15\">{}</text>\n",
        escape(title),
        w = label_w + plot_w + 120.0
    );
    // log10 scale from 0.1x to 1000x.
    let x_of = |v: f64| label_w + (v.max(0.1).log10() + 1.0) / 4.0 * plot_w;
    let mut y = 40.0;
    let _ = writeln!(
        s,
        "<text x=\"10\" y=\"{y}\" font-weight=\"bold\">Rust vs Python (times better, log scale; 1x = same)</text>"
    );
    y += 10.0;
    let one = x_of(1.0);
    for r in &with_py {
        let v = r.vs_python.unwrap_or(1.0);
        let (x0, x1) = if v >= 1.0 {
            (one, x_of(v))
        } else {
            (x_of(v), one)
        };
        let color = if v >= 1.0 { "#3a7" } else { "#c44" };
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><rect x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{bar_h}\" fill=\"{color}\"/><text x=\"{:.1}\" y=\"{:.1}\">{v:.1}x</text>",
            label_w - 6.0,
            y + 13.0,
            escape(&r.label),
            (x1 - x0).max(1.0),
            x0.max(x1) + 4.0,
            y + 13.0
        );
        y += bar_h + 6.0;
    }
    let _ = writeln!(
        s,
        "<line x1=\"{one:.1}\" y1=\"50\" x2=\"{one:.1}\" y2=\"{y:.1}\" stroke=\"#333\"/>"
    );
    y += 24.0;
    let _ = writeln!(
        s,
        "<text x=\"10\" y=\"{y}\" font-weight=\"bold\">Overhead over the floor (cost vs the raw mechanism; 1x = none)</text>"
    );
    y += 10.0;
    for r in &with_floor {
        let v = r.vs_floor.unwrap_or(1.0);
        let x1 = x_of(v.max(1.0));
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><rect x=\"{one:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{bar_h}\" fill=\"#58c\"/><text x=\"{:.1}\" y=\"{:.1}\">{v:.2}x</text>",
            label_w - 6.0,
            y + 13.0,
            escape(&r.label),
            (x1 - one).max(1.0),
            x1 + 4.0,
            y + 13.0
        );
        y += bar_h + 6.0;
    }
    s.push_str("</svg>\n");
    s
}

/// The GIL chart: CPU-bound speedup against thread count, for Rust threads, Python threads and
/// Python processes. Each series is (threads, speedup).
pub fn gil_svg(series: &[(&str, Vec<(f64, f64)>)]) -> String {
    let (w, h, pad) = (520.0, 320.0, 50.0);
    let max_n = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(n, _)| *n))
        .fold(1.0f64, f64::max);
    let max_s = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, s)| *s))
        .fold(max_n, f64::max);
    let x = |n: f64| pad + (n - 1.0) / (max_n - 1.0).max(1.0) * (w - 2.0 * pad);
    let y = |v: f64| h - pad - v / max_s * (h - 2.0 * pad);
    let colors = ["#3a7", "#c44", "#58c"];
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"10\" y=\"20\" font-size=\"15\">CPU-bound speedup against threads (the GIL)</text>\n<line x1=\"{pad}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#333\"/><line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{b}\" stroke=\"#333\"/>\n",
        b = h - pad,
        r = w - pad
    );
    let mut n = 1.0;
    while n <= max_n {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{n}</text>",
            x(n),
            h - pad + 16.0
        );
        n += 1.0;
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">threads (or processes)</text>",
        w / 2.0,
        h - 12.0
    );
    for (i, (name, points)) in series.iter().enumerate() {
        let c = colors[i % colors.len()];
        let path: Vec<String> = points
            .iter()
            .map(|(n, v)| format!("{:.1},{:.1}", x(*n), y(*v)))
            .collect();
        let _ = writeln!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{c}\" stroke-width=\"2\"/>",
            path.join(" ")
        );
        for (n, v) in points {
            let _ = writeln!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{c}\"/>",
                x(*n),
                y(*v)
            );
        }
        // Only the last point is labelled: at one thread every series is near 1x.
        if let Some((n, v)) = points.last() {
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{c}\">{v:.2}x</text>",
                x(*n) + 6.0,
                y(*v) + 4.0
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" fill=\"{c}\">{}</text>",
            pad + 10.0,
            pad + 14.0 * i as f64,
            escape(name)
        );
    }
    s.push_str("</svg>\n");
    s
}
