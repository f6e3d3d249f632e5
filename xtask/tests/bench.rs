//! The bench report's pieces on fixed input: parsing, pairing, the table and the charts.

use std::collections::BTreeMap;

use xtask::bench::{self, Target};

const RUST: &str = r#"
Compiling something
BENCH {"name": "queue_1p1c_fifo", "unit": "items/s", "value": 30000000, "params": {"maxsize": 1000, "min": 25000000, "max": 33000000}}
BENCH {"name": "queue_1p1c_crossbeam", "unit": "items/s", "value": 40000000, "params": {"maxsize": 1000}}
BENCH {"name": "queue_1p1c_fifo", "unit": "items/s", "value": 1500000, "params": {"maxsize": 3}}
BENCH {"name": "queue_1p1c_crossbeam", "unit": "items/s", "value": 2000000, "params": {"maxsize": 3}}
BENCH {"name": "greenlet_switch", "unit": "ns", "value": 60, "params": {}}
BENCH {"name": "corosensei_switch_raw", "unit": "ns", "value": 1, "params": {}}
BENCH {"name": "gil_speedup", "unit": "x", "value": 1.0, "params": {"threads": 1}}
BENCH {"name": "gil_speedup", "unit": "x", "value": 1.95, "params": {"threads": 2}}
BENCH {not json}
"#;

const PYTHON: &str = r#"
BENCH {"name": "queue_1p1c_fifo", "unit": "items/s", "value": 750000, "params": {"maxsize": 1000}}
BENCH {"name": "queue_1p1c_fifo", "unit": "items/s", "value": 80000, "params": {"maxsize": 3}}
BENCH {"name": "gil_speedup", "unit": "x", "value": 1.02, "params": {"threads": 2, "processes_speedup": 1.8}}
BENCH {"name": "gil_speedup", "unit": "x", "value": 1.0, "params": {"threads": 1, "processes_speedup": 0.9}}
"#;

fn fixture() -> Vec<bench::Row> {
    let (rust, bad) = bench::parse(RUST);
    assert_eq!(bad, ["BENCH {not json}"]);
    let mut py = BTreeMap::new();
    py.insert("queue_throughput.py".to_owned(), bench::parse(PYTHON).0);
    py.insert("gil.py".to_owned(), bench::parse(PYTHON).0);
    let mut skipped = BTreeMap::new();
    skipped.insert(
        "greenlet_switch.py".to_owned(),
        "needs greenlet: python3 -m pip install greenlet gevent".to_owned(),
    );
    bench::pair(&rust, &py, &skipped)
}

#[test]
fn parse_reads_bench_lines_and_reports_bad_ones() {
    let (lines, bad) = bench::parse(RUST);
    assert_eq!(lines.len(), 8);
    assert_eq!(bad.len(), 1);
    assert_eq!(lines[0].name, "queue_1p1c_fifo");
    assert_eq!(lines[0].unit, "items/s");
    assert_eq!(lines[0].value, 30_000_000.0);
    assert_eq!(lines[0].params["maxsize"], 1000);
}

#[test]
fn pairing_matches_params_and_computes_both_ratios() {
    let rows = fixture();
    let fifo = rows
        .iter()
        .find(|r| r.label == "Queue FIFO 1P1C, maxsize 1000")
        .unwrap();
    assert_eq!(fifo.rust, 30e6);
    assert_eq!(fifo.python, Some(750e3));
    assert_eq!(fifo.vs_python, Some(40.0));
    assert_eq!(fifo.floor, Some(40e6));
    // Throughput: cost against the floor is floor / ours.
    assert!((fifo.vs_floor.unwrap() - 4.0 / 3.0).abs() < 1e-9);
    assert_eq!(fifo.targets, [(Target::VsFloor(2.0), Some(true))]);
    let three = rows
        .iter()
        .find(|r| r.label == "Queue FIFO 1P1C, maxsize 3")
        .unwrap();
    assert_eq!(three.python, Some(80e3));
    // Time per operation: cost against the floor is ours / floor.
    let sw = rows.iter().find(|r| r.label == "greenlet switch").unwrap();
    assert_eq!(sw.vs_floor, Some(60.0));
    assert_eq!(sw.python, None);
    assert!(
        sw.python_note
            .as_deref()
            .unwrap()
            .contains("pip install greenlet")
    );
    assert_eq!(
        sw.targets,
        [
            (Target::VsFloor(2.5), Some(false)),
            (Target::VsPython(50.0), None)
        ]
    );
    let gil = rows.iter().find(|r| r.label.starts_with("GIL")).unwrap();
    assert_eq!(gil.threads, Some(2.0));
    assert_eq!(gil.targets, [(Target::PerThread(0.9), Some(true))]);
    // Figures without a Rust line are not rows.
    assert!(rows.iter().all(|r| !r.label.starts_with("Manager")));
}

#[test]
fn the_table_marks_met_and_unmet_targets() {
    let table = bench::table(&fixture(), "2 cores, test CPU, Linux 6", "2026-11-27");
    assert!(table.starts_with("Measured 2026-11-27 on 2 cores, test CPU, Linux 6."));
    assert!(table.contains("| Queue FIFO 1P1C, maxsize 1000 | 30.000 M items/s [25.000 .. 33.000] | 750.000 k items/s | 40.00x | 40.000 M items/s | 1.33x | <= 2x floor | yes |"), "{table}");
    assert!(table.contains("| greenlet switch | 60.000 ns | (needs greenlet: python3 -m pip install greenlet gevent) | - | 1.000 ns | 60.00x | <= 2.5x floor, >= 50x Python | **no**, ? |"), "{table}");
}

#[test]
fn the_charts_are_svg_with_a_bar_per_figure() {
    let rows = fixture();
    let svg = bench::svg(&rows, "test & chart");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("test &amp; chart"));
    let with_py = rows.iter().filter(|r| r.vs_python.is_some()).count();
    let with_floor = rows.iter().filter(|r| r.vs_floor.is_some()).count();
    assert_eq!(svg.matches("<rect x=").count(), with_py + with_floor);
    let series = xtask::bench_gil_series(&bench::parse(RUST).0, &bench::parse(PYTHON).0);
    assert_eq!(series[0].1, [(1.0, 1.0), (2.0, 1.95)]);
    assert_eq!(series[2].1, [(1.0, 0.9), (2.0, 1.8)]);
    let gil = bench::gil_svg(&series);
    assert_eq!(gil.matches("<polyline").count(), 3);
    assert!(gil.contains("Python processes"));
}

#[test]
fn time_units_are_converted_before_pairing() {
    let (rust, _) = bench::parse(
        r#"BENCH {"name": "process_spawn_start_join", "unit": "ns", "value": 1000000, "params": {}}"#,
    );
    let mut py = BTreeMap::new();
    py.insert(
        "process_start.py".to_owned(),
        bench::parse(r#"BENCH {"name": "process_spawn_start_join", "unit": "us", "value": 50000, "params": {}}"#).0,
    );
    let rows = bench::pair(&rust, &py, &BTreeMap::new());
    let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() <= b * 1e-12);
    assert!(close(rows[0].python, 50_000_000.0), "{:?}", rows[0].python);
    assert!(close(rows[0].vs_python, 50.0), "{:?}", rows[0].vs_python);
    assert!(close(Some(bench::convert(2.0, "ms", "us")), 2000.0));
    assert_eq!(bench::convert(2.0, "items/s", "ns"), 2.0);
}

#[test]
fn human_units() {
    assert_eq!(bench::human(4.2e9, "bytes/s"), "4.20 GB/s");
    assert_eq!(
        bench::human(62.8e6, "increments/s"),
        "62.800 M increments/s"
    );
    assert_eq!(bench::human(35_000.0, "ns"), "35.000 us");
    assert_eq!(bench::human(5.6, "ns"), "5.600 ns");
    assert_eq!(
        bench::human_spread(91_000.0, 85_500.0, 189_900.0, "ns"),
        "91.000 us [85.500 .. 189.900]"
    );
}

#[test]
fn a_python_server_driven_by_the_rust_bench_pairs_from_the_rust_run() {
    let (rust, _) = bench::parse(
        r#"BENCH {"name": "hub_echo_round_trips", "unit": "round trips/s", "value": 100000, "params": {}}
BENCH {"name": "hub_echo_round_trips_raw", "unit": "round trips/s", "value": 140000, "params": {}}
BENCH {"name": "hub_echo_round_trips_gevent", "unit": "round trips/s", "value": 50000, "params": {}}"#,
    );
    let rows = bench::pair(&rust, &BTreeMap::new(), &BTreeMap::new());
    let echo = rows
        .iter()
        .find(|r| r.label.starts_with("hub echo"))
        .unwrap();
    assert_eq!(echo.python, Some(50_000.0));
    assert_eq!(echo.vs_python, Some(2.0));
    assert_eq!(echo.vs_floor, Some(1.4));
    // Floor-relative only (issue 14 retired the 5x-gevent target).
    assert_eq!(echo.targets, [(Target::VsFloor(1.5), Some(true))]);
}

/// Two rounds of a counted queue figure and its floor, a locked counter whose bench counted
/// only switches (as under getrusage), and a callgrind pass for the one-thread figure.
const COUNTED: &str = r#"
BENCH {"name": "queue_1p1c_fifo", "unit": "items/s", "value": 3e7, "params": {"maxsize": 1000, "ctx_per_op": 0.002, "migrations_per_op": 0, "syscalls_per_op": 0.004, "parks_per_op": 0.00001, "wakeups_per_op": 0.00002, "counts_via": "perf"}}
BENCH {"name": "queue_1p1c_crossbeam", "unit": "items/s", "value": 4e7, "params": {"maxsize": 1000, "ctx_per_op": 0.001, "migrations_per_op": 0, "syscalls_per_op": 0.002, "counts_via": "perf"}}
BENCH {"name": "queue_1p1c_fifo", "unit": "items/s", "value": 3e7, "params": {"maxsize": 1000, "ctx_per_op": 0.006, "migrations_per_op": 0.5, "syscalls_per_op": 0.008, "parks_per_op": 0.00003, "wakeups_per_op": 0.00004, "counts_via": "perf"}}
BENCH {"name": "queue_1p1c_crossbeam", "unit": "items/s", "value": 4e7, "params": {"maxsize": 1000, "ctx_per_op": 0.003, "migrations_per_op": 0, "syscalls_per_op": 0.002, "counts_via": "perf"}}
BENCH {"name": "locked_counter", "unit": "increments/s", "value": 5e7, "params": {"ctx_per_op": 0.25, "counts_via": "getrusage"}}
BENCH {"name": "queue_1p1c_fifo", "unit": "items/s", "value": 1e6, "params": {"maxsize": 3}}
BENCH {"name": "queue_put_get_one_thread", "unit": "items/s", "value": 1e7, "params": {"ctx_per_op": 0, "counts_via": "perf"}}
BENCH {"name": "queue_put_get_one_thread_crossbeam", "unit": "items/s", "value": 2e7, "params": {"ctx_per_op": 0, "instructions_per_op": 250, "counts_via": "perf"}}
"#;

const CALLGRIND: &str = r#"
BENCH {"name": "queue_put_get_one_thread_crossbeam", "unit": "items/s", "value": 1e6, "params": {"instructions_per_op": 214.0002, "counts_via": "callgrind"}}
BENCH {"name": "queue_put_get_one_thread", "unit": "items/s", "value": 1e6, "params": {"instructions_per_op": 305.4, "counts_via": "callgrind"}}
"#;

fn count_fixture() -> Vec<bench::CountRow> {
    let (rust, bad) = bench::parse(COUNTED);
    assert!(bad.is_empty());
    bench::count_rows(&rust, &bench::parse(CALLGRIND).0)
}

#[test]
fn count_rows_pair_each_side_and_take_the_median_over_rounds() {
    let rows = count_fixture();
    let fifo: Vec<&bench::CountRow> = rows
        .iter()
        .filter(|r| r.label == "Queue FIFO 1P1C, maxsize 1000")
        .collect();
    assert_eq!(fifo.len(), 2, "{rows:?}");
    let (ours, floor) = (fifo[0], fifo[1]);
    assert_eq!((ours.side, floor.side), ("Rust", "floor"));
    // Two rounds: the median of two values is the upper one (as for the figures).
    assert_eq!(ours.counts, [Some(0.006), Some(0.5), Some(0.008), None]);
    assert_eq!(floor.counts, [Some(0.003), Some(0.0), Some(0.002), None]);
    // The queue's own counts, by name, only on its side.
    assert_eq!(
        ours.other,
        [
            ("parks_per_op".to_owned(), 0.00003),
            ("wakeups_per_op".to_owned(), 0.00004)
        ]
    );
    assert!(floor.other.is_empty());
}

#[test]
fn count_rows_leave_out_what_was_not_counted() {
    let rows = count_fixture();
    // Only switches were counted for the locked counter; it has no floor line at all.
    let counter: Vec<_> = rows
        .iter()
        .filter(|r| r.label.starts_with("locked counter"))
        .collect();
    assert_eq!(counter.len(), 1);
    assert_eq!(counter[0].counts, [Some(0.25), None, None, None]);
    // A figure whose lines carry no counts has no row (maxsize 3 here), nor do figures
    // without lines.
    assert!(rows.iter().all(|r| r.label != "Queue FIFO 1P1C, maxsize 3"));
    assert!(rows.iter().all(|r| !r.label.starts_with("greenlet")));
}

#[test]
fn callgrind_instructions_win_over_perf_and_say_where_they_come_from() {
    let rows = count_fixture();
    let one: Vec<_> = rows
        .iter()
        .filter(|r| r.label.starts_with("Queue put+get, one thread"))
        .collect();
    assert_eq!(one.len(), 2);
    assert_eq!(one[0].counts[3], Some(305.4));
    assert_eq!(one[0].instructions_via.as_deref(), Some("callgrind"));
    assert_eq!(one[1].counts[3], Some(214.0002));
    assert_eq!(one[1].instructions_via.as_deref(), Some("callgrind"));
    // Without the callgrind pass, perf's count stands, named as such.
    let perf_only = bench::count_rows(&bench::parse(COUNTED).0, &[]);
    let floor = perf_only
        .iter()
        .find(|r| r.label.starts_with("Queue put+get") && r.side == "floor")
        .unwrap();
    assert_eq!(floor.counts[3], Some(250.0));
    assert_eq!(floor.instructions_via.as_deref(), Some("perf"));
}

#[test]
fn the_counts_table_renders_dashes_for_missing_counts() {
    let table = bench::counts_table(&count_fixture());
    assert!(table.starts_with("Counts per operation"), "{table}");
    assert!(
        table.contains(
            "| figure | side | context switches | migrations | syscalls | instructions | other |"
        ),
        "{table}"
    );
    assert!(
        table.contains("| Queue FIFO 1P1C, maxsize 1000 | Rust | 0.00600 | 0.500 | 0.00800 | - | parks 0.0000300, wakeups 0.0000400 |"),
        "{table}"
    );
    assert!(
        table.contains("| Queue FIFO 1P1C, maxsize 1000 | floor | 0.00300 | 0 | 0.00200 | - | - |"),
        "{table}"
    );
    assert!(
        table.contains("| locked counter, 4 threads | Rust | 0.250 | - | - | - | - |"),
        "{table}"
    );
    assert!(
        table.contains(
            "| Queue put+get, one thread (no waiting) | Rust | 0 | - | - | 305 (callgrind) | - |"
        ),
        "{table}"
    );
    // No counts at all: no table.
    assert_eq!(bench::counts_table(&[]), "");
    let (plain, _) = bench::parse(RUST);
    assert!(bench::count_rows(&plain, &[]).is_empty());
}

#[test]
fn per_op_shows_three_significant_digits() {
    assert_eq!(bench::per_op(0.0), "0");
    assert_eq!(bench::per_op(0.002), "0.00200");
    assert_eq!(bench::per_op(0.0472), "0.0472");
    assert_eq!(bench::per_op(2.98), "2.98");
    assert_eq!(bench::per_op(29.8), "29.8");
    assert_eq!(bench::per_op(305.4), "305");
}
