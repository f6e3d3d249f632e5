//! The claims the lessons print (issue 18), each asserted: quoted by the command that prints it.

use std::time::Duration;

use coroutines::lessons::{events, gevent, tradeoffs, triggers};
use coroutines::multiplex::{ReadResult, Reading, Step, walk};
use lesson::testing::{index, run_lesson};
use lesson::{Cx, PageServer, within};

/// `cargo run -p coroutines -- tradeoffs`: the switch cost says which build measured it, and
/// a debug build points to the bench for the real figure.
#[test]
fn tradeoffs_says_which_build_measured_the_switch() {
    let said = run_lesson(Cx::quiet(0.01), tradeoffs::run);
    let line = &said[index(&said, "a greenlet switch:")].text;
    if cfg!(debug_assertions) {
        assert!(line.contains("debug build"), "{line}");
        index(&said, "cargo bench -p coroutines -- switch");
    } else {
        assert!(line.contains("release build"), "{line}");
        assert!(!said.iter().any(|r| r.text.contains("cargo bench")));
    }
}

/// `cargo run -p coroutines -- gevent`: as the seed wrote it (no `monkey.patch_all()`), the
/// four GETs run one after another although they are four tasks: the server never holds two
/// connections at once; patched, all four are open at once.
#[test]
fn gevent_the_seeds_crawl_is_serial_and_the_patched_one_overlaps() {
    let (seed, patched) = within(Duration::from_secs(60), "crawl", || {
        // Long enough that all four connections are certainly open at once on a loaded machine.
        let server = PageServer::start(&[], Duration::from_millis(300)).unwrap();
        let paths: Vec<String> = gevent::PAGES.iter().map(|n| format!("/page/{n}")).collect();
        let cx = Cx::quiet(0.01);
        let seed = gevent::crawl(&cx, &server, &paths, false, 1).unwrap();
        let patched = gevent::crawl(&cx, &server, &paths, true, 5).unwrap();
        let ok = |c: &gevent::Crawl| c.results.iter().all(|r| r.is_ok());
        assert!(ok(&seed) && ok(&patched));
        (
            (seed.most_open, seed.took),
            (patched.most_open, patched.names),
        )
    });
    assert_eq!(seed.0, 1, "the unpatched crawl overlapped");
    assert!(
        seed.1 >= Duration::from_millis(4 * 300),
        "four replies of 300 ms one after another"
    );
    assert_eq!(
        patched.0, 4,
        "the patched crawl did not hold all four connections at once"
    );
    assert_eq!(
        patched.1,
        ["Greenlet-5", "Greenlet-6", "Greenlet-7", "Greenlet-8"]
    );
}

/// `cargo run -p coroutines -- events`: the event loop ran one callback per key, in the order
/// the keys came, the timer once, and waited only for events (no spinning); polling read the
/// same keys.
#[test]
fn events_callbacks_run_once_per_event_in_order_and_the_loop_does_not_spin() {
    let d = within(Duration::from_secs(60), "events", || {
        events::dispatch_keys(&Cx::quiet(0.05)).unwrap()
    });
    assert_eq!(d.keys, b"abc");
    let keys: Vec<&String> = d
        .callbacks
        .iter()
        .filter(|c| c.starts_with("key"))
        .collect();
    assert_eq!(keys, ["key 'a'", "key 'b'", "key 'c'"]);
    assert_eq!(d.callbacks.iter().filter(|c| *c == "timer").count(), 1);
    assert_eq!(d.callbacks.last().map(String::as_str), Some("end of input"));
    assert!(
        d.waits >= 2 && d.waits <= 5,
        "{} waits for 5 events: {:?}",
        d.waits,
        d.callbacks
    );
    let (keys, looks, empty) = within(Duration::from_secs(60), "polling", || {
        events::poll_keys(&Cx::quiet(0.05)).unwrap()
    });
    assert_eq!(keys, b"abc");
    assert!(
        looks > empty && looks - empty <= 4,
        "{looks} looks, {empty} empty"
    );
}

/// `cargo run -p coroutines -- events`: a callback that blocks for the seed's 1 s makes the
/// timer due at 0.2 s run at least 0.8 s (scaled) late.
#[test]
fn events_a_blocking_callback_holds_up_the_timer() {
    let cx = Cx::quiet(0.05);
    let late = within(Duration::from_secs(60), "blocked", move || {
        events::blocked_timer(&cx).unwrap()
    });
    assert!(late >= Cx::quiet(0.05).scaled(0.8), "only {late:?} late");
}

fn read(bytes: &[u8], would_block: bool) -> Vec<ReadResult> {
    let mut r: Vec<ReadResult> = bytes.iter().map(|&b| ReadResult::Byte(b)).collect();
    if would_block {
        r.push(ReadResult::WouldBlock);
    }
    r
}

fn woke(reads: Vec<ReadResult>) -> Step {
    Step::Waited { events: 1, reads }
}

const NOTHING: Step = Step::Waited {
    events: 0,
    reads: Vec::new(),
};

/// `cargo run -p coroutines -- triggers`: every wait and read, for each reader.
#[test]
fn triggers_each_wait_and_read_as_narrated() {
    let (ab, c) = (Step::Wrote(b"ab"), Step::Wrote(b"c"));
    assert_eq!(
        walk(false, Reading::OneByte).unwrap(),
        [
            ab.clone(),
            woke(read(b"a", false)),
            woke(read(b"b", false)),
            NOTHING,
            c.clone(),
            woke(read(b"c", false))
        ],
        "level-triggered: woken while data waits"
    );
    assert_eq!(
        walk(true, Reading::OneByte).unwrap(),
        [
            ab.clone(),
            woke(read(b"a", false)),
            NOTHING,
            NOTHING,
            c.clone(),
            woke(read(b"b", false))
        ],
        "edge-triggered: 'b' waits for the next arrival, and 'c' is left behind"
    );
    assert_eq!(
        walk(true, Reading::Drain).unwrap(),
        [
            ab,
            woke(read(b"ab", true)),
            NOTHING,
            NOTHING,
            c,
            woke(read(b"c", true))
        ],
        "edge-triggered, drained: a WouldBlock ends each drain"
    );
    let said = run_lesson(Cx::quiet(0.01), triggers::run);
    index(&said, "3 read(s): 'a', 'b', WouldBlock");
    index(&said, "it read 'b' late");
}
