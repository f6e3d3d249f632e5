//! Each lesson's claims, on its narration records, under a deadline.

use std::time::Duration;

use lesson::testing::index;
use lesson::{Cx, Record, within};
use queues::lessons::{channels, fifo, lifo, priority, producer_consumer, sizes, why_queues};

const SCALE: f64 = 0.02;

fn run(f: lesson::RunFn) -> Vec<Record> {
    lesson::testing::run_lesson(Cx::quiet(SCALE), f)
}

fn texts<'a>(r: &'a [Record], prefix: &str) -> Vec<&'a str> {
    r.iter()
        .filter(|x| x.text.starts_with(prefix))
        .map(|x| x.text.as_str())
        .collect()
}

#[test]
fn why_queues_racy_version_errors_and_both_fixes_take_each_item_once() {
    let outcomes = within(Duration::from_secs(60), "racy", || {
        why_queues::racy(&Cx::quiet(SCALE)).unwrap()
    });
    let errors: Vec<_> = outcomes.iter().filter_map(|o| o.error.as_ref()).collect();
    assert_eq!(errors.len(), 1, "{outcomes:?}");
    // Both looked at 5 before either removed it (the lesson waits for both looks): one removed
    // it, the other found it gone and stopped; the first then took the rest alone.
    assert_eq!(
        errors[0].as_str(),
        "remove(5): 5 is not in the list any more"
    );
    let mut removed: Vec<&[i32]> = outcomes.iter().map(|o| o.removed.as_slice()).collect();
    removed.sort();
    assert_eq!(removed, [&[][..], &[5, 4, 3, 2, 1][..]], "{outcomes:?}");
    let r = run(why_queues::run);
    let looks: Vec<usize> = (0..r.len())
        .filter(|&i| r[i].text == "the last item is 5")
        .collect();
    assert_eq!(looks.len(), 2, "{r:#?}");
    assert_ne!(r[looks[0]].speaker, r[looks[1]].speaker);
    assert!(looks[1] < index(&r, "error: remove(5)"), "{r:#?}");
    index(&r, "1 thread(s) stopped on an error; the two removed");
    index(&r, "one locked pop()");
    index(&r, "a Queue:");
}

#[test]
fn fifo_blocked_put_waits_for_the_consumer_then_drains_in_order() {
    let r = run(fifo::run);
    index(&r, "put(7) on a full queue waited 1 s -> Full");
    assert!(index(&r, "get(), making room") < index(&r, "put(7) returned"));
    index(&r, "got 10");
    index(&r, "try_put(6) -> Full(6)");
    assert_eq!(
        texts(&r, "try_get()"),
        [
            "try_get() -> 9",
            "try_get() -> 8",
            "try_get() -> 7",
            "try_get() -> Empty: done"
        ]
    );
}

#[test]
fn lifo_reverses_the_seeds_items() {
    let r = run(lifo::run);
    assert_eq!(
        texts(&r, "get() -> "),
        [
            "get() -> {\"name\": \"lucky\"}",
            "get() -> 123",
            "get() -> 你好",
            "get() -> ShutDown: the loop ends"
        ]
    );
}

#[test]
fn priority_comes_out_1_2_3_and_ties_in_order() {
    let r = run(priority::run);
    let got = texts(&r, "get() -> priority");
    assert!(
        got[0].contains("priority 1")
            && got[1].contains("priority 2")
            && got[2].contains("priority 3")
    );
    assert!(
        got[3].ends_with("one") && got[4].ends_with("first five") && got[6].ends_with("third five")
    );
}

/// Issue 18 (`cargo run -p queues -- priority`, `-- sizes`, `-- lifo`): the seed's consumer
/// `while 1: q.get()` never ends. The lesson shows its consumer still there after the last
/// item (the queue empty), names the seed's loop as endless, and ends its own with
/// `shutdown()`: the waiting get() returns ShutDown, after main said so, as its last line.
#[test]
fn the_seeds_endless_get_loop_is_shown_waiting_then_shut_down() {
    for (lesson, f, items) in [
        ("lifo", lifo::run as lesson::RunFn, lifo::ITEMS.len()),
        ("priority", priority::run, 3),
        ("sizes", sizes::run, sizes::ITEMS.len()),
    ] {
        let r = run(f);
        let took: Vec<usize> = (0..r.len())
            .filter(|&i| r[i].speaker == "consumer" && r[i].text.starts_with("get() -> "))
            .collect();
        assert_eq!(took.len(), items + 1, "{lesson}: {r:#?}");
        let last_item = took[items - 1];
        let still = index(&r, "1 s later: qsize 0, and the consumer has not ended");
        let endless = index(
            &r,
            "the seed's `while 1: q.get()` has no way out and waits forever",
        );
        let stopped = took[items];
        assert_eq!(
            r[stopped].text, "get() -> ShutDown: the loop ends",
            "{lesson}"
        );
        assert!(
            last_item < still && still < endless && endless < stopped,
            "{lesson}: {r:#?}"
        );
        assert!(r[still].speaker != "consumer" && r[endless].speaker != "consumer");
    }
}

/// Issue 18 (`cargo run -p queues -- sizes`): the seed says `q.join()` waits "until the queue
/// is empty". With qsize 0 and 3 tasks unfinished, join(timeout=1 s) times out and the
/// joiner's join() still waits; it returns only after the third task_done().
#[test]
fn sizes_join_waits_with_the_queue_empty_until_the_third_task_done() {
    let r = run(sizes::run);
    let empty = index(&r, "qsize 0, empty true, unfinished tasks 3");
    let timed_out = index(
        &r,
        "join(timeout=1 s) -> timed out: qsize 0, yet join() waits",
    );
    let dones: Vec<usize> = (1..=3)
        .map(|k| index(&r, &format!("task_done() {k} of 3")))
        .collect();
    let returned = index(&r, "join() returned");
    assert_eq!(r[returned].speaker, "joiner");
    assert!(empty < timed_out && timed_out < dones[0], "{r:#?}");
    assert!(dones[0] < dones[1] && dones[1] < dones[2], "{r:#?}");
    assert!(
        dones[2] < returned,
        "join returned before the last task_done: {r:#?}"
    );
    // The consumer took every item before that moment, and none was task_done() by it.
    let last_get = index(&r, "get() -> c: qsize 0");
    assert!(last_get < empty);
}

#[test]
fn sizes_reports_each_step_and_the_snapshot_race() {
    let r = run(sizes::run);
    index(&r, "new Queue(4): qsize 0, full false, empty true");
    index(&r, "after put a, b, c: qsize 3, full false, empty false");
    index(&r, "get() -> c: qsize 0, full false, empty true");
    index(&r, "put_nowait(d): qsize 4, full true, empty false");
    index(&r, "put_nowait(e) -> Full");
    index(
        &r,
        "2 threads saw an item, 1 got it, 1 found the queue empty",
    );
}

#[test]
fn producer_consumer_every_bun_once_with_backpressure_join_then_shutdown() {
    let report = within(Duration::from_secs(60), "model", || {
        producer_consumer::run_model(&Cx::quiet(SCALE)).unwrap()
    });
    let mut eaten = report.consumed.clone();
    eaten.sort();
    eaten.dedup();
    assert_eq!(
        eaten.len(),
        producer_consumer::PRODUCERS * producer_consumer::PER_PRODUCER
    );
    assert_eq!(report.consumed.len(), eaten.len());
    assert!(report.waits > 0);
    let r = run(producer_consumer::run);
    let joined = index(&r, "join() returned: unfinished = 0");
    let last_ate = r
        .iter()
        .rposition(|x| x.text.starts_with("ate bun"))
        .unwrap();
    assert!(last_ate < joined, "join returned before the last task_done");
    let home = lesson::testing::indices(&r, "ShutDown: going home");
    assert_eq!(home.len(), producer_consumer::CONSUMERS);
    assert!(home.iter().all(|&i| i > joined));
}

#[test]
fn channels_select_gets_everything_and_times_out_in_the_pause() {
    let r = run(channels::run);
    index(
        &r,
        "got numbers [1, 2, 3, 4, 5, 6] and words [\"alpha\", \"beta\", \"gamma\"]",
    );
    index(
        &r,
        "got numbers [1, 2, 3, 4, 5, 6] and words [\"alpha\", \"beta\", \"gamma\"]; 1 time-out(s), while both producers paused",
    );
    // The producers paused before the loop looked, and it timed out once, before any of the
    // second batch: 4, 5, 6 and gamma come only after it let them go on.
    let paused = index(&r, "both producers have sent their first batch and paused");
    let timeout = index(
        &r,
        "nothing on either channel for 1 s: both producers are paused; letting them go on",
    );
    assert!(paused < timeout);
    for first in [
        "number 1",
        "number 2",
        "number 3",
        "word alpha",
        "word beta",
    ] {
        assert!(
            paused < index(&r, first) && index(&r, first) < timeout,
            "{first}: {r:#?}"
        );
    }
    for second in ["number 4", "number 5", "number 6", "word gamma"] {
        assert!(timeout < index(&r, second), "{second}: {r:#?}");
    }
    assert_eq!(
        r.iter()
            .filter(|x| x.text.starts_with("nothing on either channel"))
            .count(),
        1
    );
    index(
        &r,
        "bounded(0).send with no receiver -> timed out; Queue::new(0) took 10000 puts -> never full",
    );
}
