//! What `--timeline` shows for each lesson (issue 18): the child processes who ran appear in
//! the parent's records under the names Python gives them (`Process-1` ...), with spans of
//! what they did: holding the process lock, waiting for it, for a queue or a message.

use std::collections::BTreeSet;

use lesson::testing::run_lesson;
use lesson::{Activity, Cx, Kind, Record, RunFn};

static FORK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run(f: RunFn) -> Vec<Record> {
    let _fork = FORK.lock().unwrap_or_else(|e| e.into_inner());
    let cx = Cx::quiet(0.02);
    run_lesson(cx.clone(), f);
    cx.timeline()
}

fn speakers(t: &[Record]) -> BTreeSet<&str> {
    t.iter().map(|r| r.speaker.as_str()).collect()
}

fn assert_speakers(t: &[Record], names: impl IntoIterator<Item = String>) {
    let have = speakers(t);
    for n in names {
        assert!(have.contains(n.as_str()), "no record of {n} in {have:?}");
    }
}

fn processes(range: std::ops::RangeInclusive<u32>) -> impl Iterator<Item = String> {
    range.map(|i| format!("Process-{i}"))
}

/// Spans of `activity` by `speaker` whose text contains `text`.
fn spans(t: &[Record], speaker: &str, activity: Activity, text: &str) -> usize {
    t.iter()
        .filter(|r| {
            r.speaker == speaker
                && r.text.contains(text)
                && matches!(r.kind, Kind::Span { activity: a, .. } if a == activity)
        })
        .count()
}

/// `cargo run -p ipc -- lock --timeline`: ten printers, each waiting for and then holding the
/// lock; a holder killed; holds never overlap (it is one lock).
#[test]
fn lock_shows_ten_processes_holding_the_lock_one_at_a_time() {
    let t = run(ipc::lessons::lock::run);
    assert_speakers(&t, processes(1..=11));
    let mut holds: Vec<&Record> = t
        .iter()
        .filter(|r| {
            matches!(
                r.kind,
                Kind::Span {
                    activity: Activity::Hold,
                    ..
                }
            )
        })
        .collect();
    assert_eq!(holds.len(), 10, "{holds:#?}");
    for i in 1..=10 {
        let p = format!("Process-{i}");
        assert_eq!(spans(&t, &p, Activity::Hold, "holding the lock"), 1, "{p}");
        assert_eq!(spans(&t, &p, Activity::Wait, "acquire()"), 1, "{p}");
    }
    holds.sort_by_key(|r| r.at);
    for w in holds.windows(2) {
        assert!(w[0].end() <= w[1].at, "two holds overlap: {w:#?}");
    }
}

/// `cargo run -p ipc -- queue --timeline`: the producer, and the consumer waiting in `get()`.
#[test]
fn queue_shows_the_producer_and_the_waiting_consumer() {
    let t = run(ipc::lessons::queue::run);
    assert_speakers(
        &t,
        ["Process-1", "Process-3", "Process-4", "Process-5"].map(String::from),
    );
    // Four gets: 1, 2, 3 and the stop sentinel.
    assert_eq!(spans(&t, "Process-3", Activity::Wait, "get()"), 4);
}

/// `cargo run -p ipc -- pipe --timeline`: both sides wait for each other's message.
#[test]
fn pipe_shows_the_children_and_their_waits() {
    let t = run(ipc::lessons::pipe::run);
    assert_speakers(&t, processes(1..=4));
    assert_eq!(spans(&t, "Process-1", Activity::Wait, "recv()"), 1);
}

/// `cargo run -p ipc -- manager --timeline` and `shared-memory --timeline`: the writers and the
/// counters appear, each counter with its span of work.
#[test]
fn manager_and_shared_memory_show_their_processes() {
    let t = run(ipc::lessons::manager::run);
    assert_speakers(&t, processes(2..=6));
    let t = run(ipc::lessons::shared_memory::run);
    assert_speakers(&t, processes(1..=12));
    for i in 1..=12 {
        assert_eq!(
            spans(&t, &format!("Process-{i}"), Activity::Work, "increments")
                + spans(&t, &format!("Process-{i}"), Activity::Work, "fetch_adds"),
            1
        );
    }
}

/// `cargo run -p ipc -- event --timeline`: the five workers wait twice and sleep once each,
/// the boss sleeps, the killed holder holds.
#[test]
fn event_shows_workers_waiting_and_the_boss_sleeping() {
    let t = run(ipc::lessons::event::run);
    assert_speakers(&t, processes(1..=7));
    for i in 1..=5 {
        let p = format!("Process-{i}");
        assert_eq!(spans(&t, &p, Activity::Wait, "event.wait()"), 2, "{p}");
        assert_eq!(spans(&t, &p, Activity::Sleep, "sleep"), 1, "{p}");
    }
    assert_eq!(spans(&t, "Process-6", Activity::Sleep, "sleep"), 1);
}

/// `cargo run -p ipc -- shared-memory-by-name --timeline`: the child started with spawn (a
/// fresh process: its records come through a handoff) works on the parent's timeline.
#[test]
fn shared_memory_by_name_shows_the_spawned_child() {
    let _fork = FORK.lock().unwrap_or_else(|e| e.into_inner());
    let cx = Cx::quiet(0.02).with_exe(env!("CARGO_BIN_EXE_ipc"));
    run_lesson(cx.clone(), ipc::lessons::shared_memory_by_name::run);
    let t = cx.timeline();
    assert_speakers(&t, ["Process-1".to_owned()]);
    assert_eq!(spans(&t, "Process-1", Activity::Work, "increments"), 1);
}

/// `cargo run -p ipc -- wait --timeline` and `manager-served --timeline`: the children, and
/// the parent's waits.
#[test]
fn wait_and_manager_served_show_their_children() {
    let t = run(ipc::lessons::wait::run);
    assert_speakers(&t, processes(1..=4));
    for i in 1..=4 {
        assert_eq!(
            spans(&t, &format!("Process-{i}"), Activity::Sleep, "sleep"),
            1
        );
    }
    let _fork = FORK.lock().unwrap_or_else(|e| e.into_inner());
    let cx = Cx::quiet(0.02).with_exe(env!("CARGO_BIN_EXE_ipc"));
    run_lesson(cx.clone(), ipc::lessons::manager_served::run);
    let t = cx.timeline();
    assert_speakers(&t, ["Process-1".to_owned()]);
    assert!(spans(&t, "Process-1", Activity::Wait, "jobs.get()") >= 5);
}
