//! Each lesson's claims, on its narration records, under a deadline.

use std::time::Duration;

use lesson::testing::index;
use lesson::{Cx, Record, within};
use processes::lessons::{api, spawn, start_methods, thousand};

fn run(f: lesson::RunFn) -> Vec<Record> {
    processes::register(processes::ENTRIES);
    // 0.1: the children's 1 s sleep becomes 100 ms, far above scheduling delays, so "all
    // three alive at once" holds even on a loaded machine.
    let cx = Cx::quiet(0.1).with_exe(env!("CARGO_BIN_EXE_processes"));
    lesson::testing::run_lesson(cx, f)
}

#[test]
fn spawn_runs_three_at_once_and_children_change_only_their_copy() {
    let r = run(spawn::run);
    assert_eq!(
        r.iter()
            .filter(|x| x.text.contains("alive at the same time: 3"))
            .count(),
        2
    );
    index(&r, "exit codes [0, 0, 0]");
    index(&r, "the parent's counter is still 0");
}

#[test]
fn thousand_runs_both_sides() {
    let cx = Cx::quiet(0.02);
    let (failures, _) = within(Duration::from_secs(120), "processes", move || {
        thousand::processes(&cx, 50).unwrap()
    });
    assert_eq!(failures, 0);
    let r = run(thousand::run);
    index(&r, "processes started then joined");
    index(&r, "threads started then joined");
    index(&r, "a process cost");
}

#[test]
fn api_timeouts_signals_and_failures_have_python_exit_codes() {
    let r = run(api::run);
    index(&r, "before start: name sleeper, is_alive() false");
    index(&r, "join_timeout(0.5 s) -> false; is_alive() true");
    index(&r, "join() -> exitcode 0; is_alive() false");
    index(&r, "exitcode -15");
    index(&r, "exitcode -9");
    index(&r, "a child that panics -> exitcode 1");
    index(&r, "a child that returns an error -> exitcode 1");
    // Python's child would wait for its non-daemon thread; this one exits when its body does.
    index(
        &r,
        "a child that starts a never-ending thread and returns -> exitcode 0: the child did not wait",
    );
    index(&r, "the thread finished? true");
    index(&r, "the normal child was joined (finished: true)");
    index(&r, "(finished: false); alive now: false");
    index(&r, "parent SIGKILLed; its daemon child");
}

#[test]
fn start_methods_fork_inherits_spawn_does_not() {
    let r = run(start_methods::run);
    index(
        &r,
        "fork child inherited it (exit 0); spawn child did not (exit 0)",
    );
    index(&r, "descriptors open: only stdin, stdout and stderr");
    index(&r, "an unknown entry: start() -> Err");
}
