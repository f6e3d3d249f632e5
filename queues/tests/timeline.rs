//! What `--timeline` shows for each lesson (issue 18): the speakers who ran appear in the
//! records, and the spans the lessons claim are there: holding the list's lock, waiting for a
//! full or an empty queue, for `join()`, on two channels. Checked by counts and orderings.

use std::collections::BTreeSet;

use lesson::testing::{index, run_lesson};
use lesson::{Activity, Cx, Kind, Record, RunFn};
use queues::lessons::{channels, fifo, lifo, priority, producer_consumer, sizes, why_queues};

const SCALE: f64 = 0.02;

/// The lesson's lines, and everything it recorded (lines and spans).
fn run(f: RunFn) -> (Vec<Record>, Vec<Record>) {
    let cx = Cx::quiet(SCALE);
    let said = run_lesson(cx.clone(), f);
    (said, cx.timeline())
}

/// The thread a lesson run by [`run`] calls `main` (it runs on a thread named after the test).
fn main_thread() -> String {
    std::thread::current().name().unwrap().to_owned()
}

fn assert_speakers(t: &[Record], want: &[&str]) {
    let have: BTreeSet<&str> = t.iter().map(|r| r.speaker.as_str()).collect();
    for w in want {
        assert!(have.contains(w), "no record of {w} in {have:?}");
    }
}

/// The spans of `activity` whose text contains `text`.
fn spans<'a>(t: &'a [Record], activity: Activity, text: &str) -> Vec<&'a Record> {
    t.iter()
        .filter(|r| {
            matches!(r.kind, Kind::Span { activity: a, .. } if a == activity)
                && r.text.contains(text)
        })
        .collect()
}

/// `cargo run -p queues -- why-queues --timeline`: each thread holds the list's lock to look
/// and again to remove (never both threads at once), with its pause in between.
#[test]
fn why_queues_draws_the_two_locked_steps_and_the_gap() {
    let (_, t) = run(why_queues::run);
    assert_speakers(&t, &["Thread-1", "Thread-2", &main_thread()]);
    let holds = spans(&t, Activity::Hold, "holding the list's lock");
    // Five items popped, and each thread's last pop() found the list empty.
    let pops = holds.iter().filter(|h| h.text.ends_with("pop")).count();
    assert_eq!(pops, why_queues::ITEMS.len() + 2);
    for who in ["Thread-1", "Thread-2"] {
        for step in ["look", "remove"] {
            assert!(
                holds
                    .iter()
                    .any(|h| h.speaker == who && h.text.ends_with(step)),
                "{who} never held the lock to {step}"
            );
        }
    }
    // The two look-then-remove threads share one list: never both inside its lock (the racy
    // version and the pop version use a list each, one after the other).
    for x in &holds {
        for y in &holds {
            if x.speaker != y.speaker {
                assert!(x.end() <= y.at || y.end() <= x.at, "{x:?} overlaps {y:?}");
            }
        }
    }
}

/// `cargo run -p queues -- fifo --timeline`: main waits on the full queue twice: 1 s in vain,
/// then until the consumer makes room. The consumer starts its pause only once main's wait has
/// begun (a handshake in the lesson), so the order holds on a loaded machine too.
#[test]
fn fifo_draws_main_waiting_on_the_full_queue() {
    let (said, t) = run(fifo::run);
    assert_speakers(&t, &["consumer", &main_thread()]);
    let timed = spans(&t, Activity::Wait, "put(7, timeout=1 s)");
    assert_eq!(timed.len(), 1);
    assert!(timed[0].end() - timed[0].at >= Cx::quiet(SCALE).scaled(1.0));
    let blocked = spans(&t, Activity::Wait, "put(7): the queue is full");
    assert_eq!(blocked.len(), 1);
    let pause: Vec<&Record> = spans(&t, Activity::Sleep, "sleep")
        .into_iter()
        .filter(|s| s.speaker == "consumer")
        .collect();
    assert_eq!(pause.len(), 1);
    let room = said[index(&said, "get(), making room")].at;
    assert!(
        blocked[0].at <= pause[0].at && pause[0].end() <= room && room <= blocked[0].end(),
        "main's wait {:?}..{:?}, the consumer's pause {:?}..{:?}, room made at {room:?}",
        blocked[0].at,
        blocked[0].end(),
        pause[0].at,
        pause[0].end()
    );
}

/// `cargo run -p queues -- lifo|priority|sizes --timeline`: the seed's loop's consumer is
/// drawn waiting in get() from before main says it has not ended until after the shutdown.
#[test]
fn the_seeds_loop_draws_the_consumer_waiting_until_the_shutdown() {
    for f in [lifo::run as RunFn, priority::run, sizes::run] {
        let (said, t) = run(f);
        assert_speakers(&t, &["consumer", &main_thread()]);
        let still = said[index(&said, "the consumer has not ended")].at;
        let shutdown = said[index(&said, "has no way out and waits forever")].at;
        let waits = spans(&t, Activity::Wait, "get(): the queue is empty");
        let last = waits
            .iter()
            .filter(|w| w.speaker == "consumer")
            .max_by_key(|w| w.at)
            .unwrap();
        assert!(last.at <= still && shutdown <= last.end(), "{last:?}");
    }
}

/// `cargo run -p queues -- sizes --timeline`: the joiner waits in join() with the queue empty,
/// until after the third task_done().
#[test]
fn sizes_draws_the_joiner_waiting_on_an_empty_queue() {
    let (said, t) = run(sizes::run);
    assert_speakers(
        &t,
        &["consumer", "joiner", "taker-1", "taker-2", &main_thread()],
    );
    let joiner = spans(&t, Activity::Wait, "join(): unfinished tasks");
    assert_eq!(joiner.len(), 1);
    let timed_out = said[index(&said, "join(timeout=1 s) -> timed out")].at;
    let third = said[index(&said, "task_done() 3 of 3")].at;
    assert!(joiner[0].at <= timed_out && third <= joiner[0].end());
}

/// `cargo run -p queues -- producer-consumer --timeline`: every producer and consumer has a row;
/// each "queue full" line is a producer's wait; main's join() ends after the last bun is eaten.
#[test]
fn producer_consumer_draws_the_waits_on_the_full_and_the_empty_queue() {
    let (said, t) = run(producer_consumer::run);
    let mut want: Vec<String> = (1..=producer_consumer::PRODUCERS)
        .map(|p| format!("producer-{p}"))
        .collect();
    want.extend((1..=producer_consumer::CONSUMERS).map(|c| format!("consumer-{c}")));
    want.push(main_thread());
    assert_speakers(&t, &want.iter().map(String::as_str).collect::<Vec<_>>());
    let full_lines = said
        .iter()
        .filter(|r| r.text.starts_with("queue full, waiting"))
        .count();
    assert!(full_lines > 0);
    assert_eq!(
        spans(&t, Activity::Wait, "put(): the queue is full").len(),
        full_lines
    );
    let join = spans(&t, Activity::Wait, "join(): buns not yet eaten");
    assert_eq!(join.len(), 1);
    let last_ate = said
        .iter()
        .rfind(|r| r.text.starts_with("ate bun"))
        .unwrap()
        .at;
    assert!(last_ate <= join[0].end());
}

/// `cargo run -p queues -- channels --timeline`: main waits on both channels at once while
/// both producers pause: exactly one time-out, after a wait of at least 1 s, and that wait and
/// its line fall inside each producer's pause (the producers pause until main has timed out,
/// so this holds whatever the scheduling).
#[test]
fn channels_draws_main_waiting_on_both_channels() {
    let (said, t) = run(channels::run);
    assert_speakers(&t, &["numbers", "words", &main_thread()]);
    let waits = spans(&t, Activity::Wait, "select!: waiting on both channels");
    let second = Cx::quiet(SCALE).scaled(1.0);
    let timeouts: Vec<&Record> = said
        .iter()
        .filter(|r| r.text.starts_with("nothing on either channel for 1 s"))
        .collect();
    assert_eq!(timeouts.len(), 1, "{said:#?}");
    let line = timeouts[0];
    // The wait that timed out is the one that ended last before the line.
    let wait = waits
        .iter()
        .filter(|w| w.end() <= line.at)
        .max_by_key(|w| w.end())
        .expect("no wait before the time-out");
    assert!(
        wait.end() - wait.at >= second,
        "a time-out after a wait of {:?}",
        wait.end() - wait.at
    );
    for who in ["numbers", "words"] {
        let pauses: Vec<&Record> = spans(&t, Activity::Wait, "paused: until main lets")
            .into_iter()
            .filter(|p| p.speaker == who)
            .collect();
        assert_eq!(pauses.len(), 1, "{who}: {t:#?}");
        let pause = pauses[0];
        assert!(
            pause.at <= wait.at && line.at <= pause.end(),
            "the time-out (wait {:?}..{:?}, line at {:?}) is not inside {who}'s pause \
             {:?}..{:?}",
            wait.at,
            wait.end(),
            line.at,
            pause.at,
            pause.end()
        );
    }
}

/// Bug found by the timeline (`cargo run -p queues -- why-queues --timeline`): the "one locked
/// pop()" fix held the list's lock through each thread's 1 s pause, because the guard made in
/// `while let Some(x) = list.lock()...pop()` lives until the end of the loop's body; the two
/// threads took turns instead of pausing side by side. The lock is held for the pop only
/// (this test fails on the loop as it was).
#[test]
fn why_queues_one_locked_pop_does_not_hold_the_lock_through_the_pause() {
    let (_, t) = run(why_queues::run);
    let pops = spans(&t, Activity::Hold, "holding the list's lock: pop");
    let sleeps = spans(&t, Activity::Sleep, "");
    for pop in &pops {
        assert!(
            !sleeps
                .iter()
                .any(|s| s.speaker == pop.speaker && pop.at <= s.at && s.end() <= pop.end()),
            "{} slept holding the lock: {pop:?}",
            pop.speaker
        );
    }
}
