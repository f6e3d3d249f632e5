//! What `--timeline` shows for the chapter (issue 18): greenlets and hub tasks narrate under
//! their own names, and each stretch they run is a working span ended at the switch, so the
//! records show who handed the thread to whom, in order. Checked on the records.

use std::time::Duration;

use lesson::testing::{index, run_lesson};
use lesson::{Activity, Cx, Kind, PageServer, Record, within};

use coroutines::lessons::{events, gevent, greenlet, r#yield};

/// The thread a lesson run by `run_lesson` runs on is named after the test: the root speaks
/// under that name.
fn main_thread() -> String {
    std::thread::current().name().unwrap().to_owned()
}

fn spans(t: &[Record], activity: Activity) -> Vec<&Record> {
    t.iter()
        .filter(|r| matches!(r.kind, Kind::Span { activity: a, .. } if a == activity))
        .collect()
}

fn speakers(t: &[Record]) -> Vec<&str> {
    lesson::speakers(t)
}

/// The most spans open at one instant.
fn max_overlap(spans: &[&Record]) -> usize {
    let mut edges: Vec<(Duration, i32)> = spans
        .iter()
        .flat_map(|r| [(r.at, 1), (r.end(), -1)])
        .collect();
    edges.sort();
    let (mut open, mut most) = (0i32, 0i32);
    for (_, d) in edges {
        open += d;
        most = most.max(open);
    }
    most as usize
}

/// `cargo run -p coroutines -- greenlet --timeline`: main, g2 and g1 each have rows, and
/// their working stretches, in order, are the seed's hand-overs; g1, left suspended, runs once
/// more when its last handle goes, to end with `GreenletExit`.
#[test]
fn greenlet_rows_show_the_hand_overs_in_order() {
    let cx = Cx::quiet(0.01);
    run_lesson(cx.clone(), greenlet::run);
    let t = cx.timeline();
    let main = main_thread();
    for who in [main.as_str(), "g1", "g2"] {
        assert!(speakers(&t).contains(&who), "no row for {who}");
    }
    let work = spans(&t, Activity::Work);
    let turns: Vec<&str> = work.iter().map(|r| r.speaker.as_str()).collect();
    assert_eq!(
        turns,
        [&*main, "g2", "g1", "g2", "g1", "g2", &*main, "g1"],
        "the hand-overs main -> g2 -> g1 -> g2 -> g1 -> g2 -> main, then g1's kill"
    );
    assert_eq!(work[7].text, "GreenletExit: ends");
    // A hand-over is one: no two stretches overlap.
    assert_eq!(max_overlap(&spans(&t, Activity::Work)), 1);
    let said: Vec<(&str, &str)> = t
        .iter()
        .filter(|r| r.kind == Kind::Said && ["12", "24", "56", "65"].contains(&r.text.as_str()))
        .map(|r| (r.speaker.as_str(), r.text.as_str()))
        .collect();
    assert_eq!(
        said,
        [("g2", "56"), ("g1", "12"), ("g2", "65"), ("g1", "24")]
    );
}

/// `cargo run -p coroutines -- gevent --timeline`: eight rows, `Greenlet-1` to `Greenlet-8`.
/// Unpatched, each task holds the thread from its start to its end (blocked in recv), one
/// after another; patched, each hands the thread on at its connect and read, in the order
/// spawned, and all four wait for their replies at once.
#[test]
fn gevent_rows_show_serial_tasks_then_overlapping_waits() {
    let t = within(Duration::from_secs(60), "gevent", || {
        let cx = Cx::quiet(0.01);
        let server = PageServer::start(&[], Duration::from_millis(300)).unwrap();
        let paths: Vec<String> = gevent::PAGES.iter().map(|n| format!("/page/{n}")).collect();
        gevent::crawl(&cx, &server, &paths, false, 1).unwrap();
        gevent::crawl(&cx, &server, &paths, true, 5).unwrap();
        cx.timeline()
    });
    let name = |i: usize| format!("Greenlet-{i}");
    for i in 1..=8 {
        assert!(
            speakers(&t).contains(&name(i).as_str()),
            "no row for {}",
            name(i)
        );
    }
    let of = |r: &&Record, range: std::ops::RangeInclusive<usize>| {
        range.into_iter().any(|i| r.speaker == name(i))
    };
    // Unpatched: one working stretch each, in order, none overlapping another.
    let work: Vec<&Record> = spans(&t, Activity::Work)
        .into_iter()
        .filter(|r| of(r, 1..=4))
        .collect();
    let order: Vec<&str> = work.iter().map(|r| r.speaker.as_str()).collect();
    assert_eq!(
        order,
        ["Greenlet-1", "Greenlet-2", "Greenlet-3", "Greenlet-4"]
    );
    assert_eq!(
        max_overlap(&work),
        1,
        "unpatched tasks ran at the same time"
    );
    let held: Vec<&Record> = spans(&t, Activity::Hold)
        .into_iter()
        .filter(|r| of(r, 1..=4))
        .collect();
    assert_eq!(
        held.len(),
        4,
        "each unpatched task holds the thread in recv"
    );
    // Patched: the first stretches in the order spawned, and four reads waiting at once.
    let mut first: Vec<&str> = Vec::new();
    for r in spans(&t, Activity::Work)
        .into_iter()
        .filter(|r| of(r, 5..=8))
    {
        if !first.contains(&r.speaker.as_str()) {
            first.push(&r.speaker);
        }
    }
    assert_eq!(
        first,
        ["Greenlet-5", "Greenlet-6", "Greenlet-7", "Greenlet-8"]
    );
    let reads: Vec<&Record> = spans(&t, Activity::Wait)
        .into_iter()
        .filter(|r| of(r, 5..=8) && r.text == "waits to read")
        .collect();
    assert_eq!(
        max_overlap(&reads),
        4,
        "the four patched tasks did not wait at once"
    );
}

/// `cargo run -p coroutines -- yield --timeline`: the producer (the lesson's thread, its own
/// row) and the consumer generator (a row of its own) take turns, as the lesson says: made
/// bun 1, eating bun 1, made bun 2, ... in order, nothing else between; and on one thread:
/// the lesson names the thread each ran on, the same one, which is the lesson's.
#[test]
fn yield_producer_and_consumer_take_turns_on_one_thread() {
    let said = run_lesson(Cx::quiet(0.01), r#yield::run);
    let main = main_thread();
    let turns: Vec<(&str, &str)> = said
        .iter()
        .filter(|r| r.text.contains(" bun "))
        .map(|r| (r.speaker.as_str(), r.text.as_str()))
        .collect();
    let lines: Vec<(String, String)> = (1..=5)
        .flat_map(|i| {
            [
                (main.clone(), format!("producer: made bun {i}")),
                ("consumer".to_owned(), format!("consumer: eating bun {i}")),
            ]
        })
        .collect();
    let want: Vec<(&str, &str)> = lines
        .iter()
        .map(|(who, what)| (who.as_str(), what.as_str()))
        .collect();
    assert_eq!(
        turns, want,
        "the producer and the consumer did not take turns"
    );
    let line = &said[index(&said, "the producer ran on ")].text;
    let (producer, consumer) = line
        .strip_prefix("the producer ran on ")
        .and_then(|rest| rest.split_once(", the consumer on "))
        .unwrap_or_else(|| panic!("{line}"));
    assert!(
        producer.starts_with(&format!("thread {main:?} (ThreadId(")),
        "the producer did not run on the lesson's thread: {line}"
    );
    assert_eq!(consumer, producer, "not one thread: {line}");
    // Every line was said in this process.
    assert!(said.iter().all(|r| r.pid == std::process::id()));
}

/// `cargo run -p coroutines -- events --timeline`: the keyboard thread and the event loop have
/// rows; each key the loop got came after the keyboard pressed it.
#[test]
fn events_rows_show_the_keyboard_and_the_loop() {
    let cx = Cx::quiet(0.05);
    run_lesson(cx.clone(), events::run);
    let t = cx.records();
    let s = speakers(&t);
    assert!(
        s.contains(&"keyboard") && s.contains(&"event loop"),
        "{s:?}"
    );
    for key in ["'a'", "'b'", "'c'"] {
        let pressed = t
            .iter()
            .rposition(|r| r.speaker == "keyboard" && r.text == format!("key {key} pressed"))
            .unwrap();
        let got = t
            .iter()
            .position(|r| r.speaker == "event loop" && r.text == format!("callback: got key {key}"))
            .unwrap();
        assert!(pressed < got, "key {key} got before it was pressed");
    }
}
