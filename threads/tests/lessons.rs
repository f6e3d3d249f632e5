//! Each lesson's claims, checked on its narration records (at a small time scale).

use lesson::testing::index;
use lesson::{Cx, Record};
use threads::lessons::{daemon, gil, join, spawn};

/// The scale for lesson tests: the seed's 1 s becomes 40 ms, enough for the orderings the
/// lessons rely on (they sleep, the other side does not) to hold on a loaded machine.
const SCALE: f64 = 0.04;

fn cx() -> Cx {
    Cx::quiet(SCALE).with_exe(env!("CARGO_BIN_EXE_threads"))
}

fn indices(records: &[Record], needle: &str) -> Vec<usize> {
    records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.text.contains(needle))
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn gil_serial_and_parallel_results_are_equal() {
    let serial = gil::count_primes(0, 1, gil::LIMIT);
    assert_eq!(serial, 17984, "primes below 200000");
    for n in [1, 2, 3, 7] {
        assert_eq!(gil::parallel(gil::LIMIT, n), serial, "{n} threads");
    }
    // Odd limits and more workers than blocks still cover every number once.
    assert_eq!(gil::parallel(12_345, 40), gil::count_primes(0, 1, 12_345));
    let cx = cx();
    gil::run(&cx).unwrap();
    let r = cx.records();
    assert!(r[index(&r, "1 thread:")].text.contains("17984 primes"));
    assert!(r[index(&r, "threads:")].text.contains("17984 primes"));
    index(&r, "same result both ways");
}

#[test]
fn python_counts_the_same_primes_when_present() {
    match gil::python(20_000, 2).unwrap() {
        None => eprintln!("python3 not installed: Python side not checked"),
        Some(py) => assert_eq!(py.primes, gil::count_primes(0, 1, 20_000)),
    }
}

#[test]
fn spawn_threads_overlap_and_run_directly_stays_on_the_caller() {
    let cx = cx();
    spawn::run(&cx).unwrap();
    let r = cx.records();
    let hellos = [index(&r, "hello 10"), index(&r, "hello 9")];
    let dones = [index(&r, "done 10"), index(&r, "done 9")];
    assert!(hellos.iter().max() < dones.iter().min(), "{r:#?}");
    assert_eq!(r[hellos[0]].speaker, "Thread-1");
    assert_eq!(r[hellos[1]].speaker, "Thread-2");
    assert_eq!(r[index(&r, "running on number: 1")].speaker, "MyThread-1");
    index(&r, "the threads returned 1 and 2");
    let direct = &r[index(&r, "running on number: 3")];
    assert_eq!(Some(direct.speaker.as_str()), std::thread::current().name());
}

#[test]
fn join_orders_ending_before_or_after_the_game() {
    let cx = cx();
    join::run(&cx).unwrap();
    let r = cx.records();
    let stops = indices(&r, "stop to game");
    assert_eq!(stops.len(), 2);
    assert!(index(&r, "ending.... (without join)") < stops[0], "{r:#?}");
    assert!(index(&r, "ending.... (with join)") > stops[1], "{r:#?}");
    assert!(
        r[index(&r, "joined only the last")]
            .text
            .ends_with("still alive = [sleeper-1, sleeper-2]")
    );
    assert!(index(&r, "joined every thread") > index(&r, "slept 3 s"));
}

#[test]
fn daemon_main_returning_kills_threads_and_joining_emulates_python() {
    let lines = daemon::child_lines(&cx(), "main-returns").unwrap();
    assert!(lines.iter().any(|l| l.contains("begin to game")));
    assert!(lines.iter().any(|l| l.contains("ending")));
    assert!(!lines.iter().any(|l| l.contains("stop")), "{lines:?}");

    let cx = cx();
    daemon::run(&cx).unwrap();
    let r = cx.records();
    index(
        &r,
        "rust, main returned: music stopped? no, game stopped? no",
    );
    index(&r, "joining all: music stopped? yes, game stopped? yes");
    index(
        &r,
        "joining music only: music stopped? yes, game stopped? no",
    );
    assert!(index(&r, "scope returned") > index(&r, "stop to game"));
}

#[test]
fn a_helper_without_the_chapter_binary_is_an_error_not_a_panic() {
    let err = daemon::run(&Cx::quiet(SCALE)).unwrap_err();
    assert!(err.to_string().contains("chapter binary"), "{err}");
}
