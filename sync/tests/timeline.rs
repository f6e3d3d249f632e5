//! What `--timeline` shows for each lesson (issue 18): the speakers who ran appear in the
//! records, and the spans the lessons claim are there: holding a lock or a permit, waiting for
//! one, for an event or at a barrier. Checked on the records, by counts and orderings.

use std::collections::BTreeSet;

use lesson::testing::{index, run_lesson};
use lesson::{Activity, Cx, Kind, Record, RunFn};
use sync::lessons::{barrier, condition, deadlock, event, poison, race, rlock, semaphore, timer};

const SCALE: f64 = 0.05;

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

fn speakers(t: &[Record]) -> BTreeSet<&str> {
    t.iter().map(|r| r.speaker.as_str()).collect()
}

fn named(prefix: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{prefix}{i}")).collect()
}

fn assert_speakers(t: &[Record], want: &[String]) {
    let have = speakers(t);
    for w in want {
        assert!(have.contains(w.as_str()), "no record of {w} in {have:?}");
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

/// The most spans open at one instant (a span is open from `at` up to, not including, its end).
fn max_overlap(spans: &[&Record]) -> usize {
    let mut edges: Vec<(std::time::Duration, i32)> = spans
        .iter()
        .flat_map(|r| [(r.at, 1), (r.end(), -1)])
        .collect();
    // At a tie an end comes first: a span that ends as another begins does not overlap it.
    edges.sort();
    let (mut open, mut most) = (0i32, 0i32);
    for (_, d) in edges {
        open += d;
        most = most.max(open);
    }
    most as usize
}

/// Whether spans of two different speakers ever overlap.
fn two_speakers_overlap(spans: &[&Record]) -> bool {
    spans.iter().any(|x| {
        spans
            .iter()
            .any(|y| x.speaker != y.speaker && x.at < y.end() && y.at < x.end())
    })
}

/// `cargo run -p sync -- semaphore --timeline`: the five threads inside for the seed's 3 s are
/// overlapping bars: at most 5 "inside" spans overlap at any instant, and 5 do at some instant.
#[test]
fn semaphore_draws_at_most_five_overlapping_holds_and_five_at_once() {
    let (_, t) = run(semaphore::run);
    assert_speakers(&t, &named("Thread-", 10));
    assert_speakers(&t, &[main_thread()]);
    let inside = spans(&t, Activity::Hold, "inside the semaphore");
    assert_eq!(inside.len(), 10);
    assert_eq!(
        inside
            .iter()
            .map(|r| r.speaker.as_str())
            .collect::<BTreeSet<_>>()
            .len(),
        10
    );
    assert_eq!(max_overlap(&inside), 5, "{inside:#?}");
    // A thread that waited for a permit got in only after its wait.
    for w in spans(&t, Activity::Wait, "waiting for a permit") {
        let hold = inside.iter().find(|h| h.speaker == w.speaker).unwrap();
        assert!(w.end() <= hold.at, "{w:?} {hold:?}");
    }
    assert!(!spans(&t, Activity::Wait, "waiting for a permit").is_empty());
    let timed = spans(&t, Activity::Wait, "acquire_timeout(1 s)");
    assert_eq!(timed.len(), 1);
    assert!(timed[0].end() - timed[0].at >= Cx::quiet(SCALE).scaled(1.0));
}

/// `cargo run -p sync -- deadlock --timeline`: every thread's holds and waits are drawn, also
/// the lines the narration only counts; the deadlock victims' last waits end as they give up;
/// the RLock of fix (a) is held by one thread at a time.
#[test]
fn deadlock_draws_every_hold_and_wait_and_the_rlock_held_by_one_thread_at_a_time() {
    let (said, t) = run(deadlock::run);
    assert_speakers(&t, &named("Thread-", 5));
    let part1_end = said[index(&said, "the seed's lock order: ")].at;
    let rlock_end = said[index(&said, "one RLock under both names")].at;
    let part1 = |r: &&Record| r.end() <= part1_end;
    // Part 1: each lock taken is a hold span and a doLock line, said or counted.
    let holds = spans(&t, Activity::Hold, "holding lock")
        .into_iter()
        .filter(part1)
        .count();
    let shown = said
        .iter()
        .filter(|r| r.at <= part1_end && r.text.starts_with("doLock"))
        .count();
    let summary = &said[index(&said, "the seed's lock order: ")].text;
    assert!(
        summary.contains(&format!("({} more doLockA/doLockB lines", holds - shown)),
        "{holds} holds, {shown} lines shown: {summary}"
    );
    // Every victim waited for one lock, holding the other, until it gave up.
    let reports: Vec<&Record> = said
        .iter()
        .filter(|r| r.text.starts_with("deadlock: "))
        .collect();
    assert!(!reports.is_empty());
    for report in &reports {
        let wait = spans(&t, Activity::Wait, ": waiting for lock")
            .into_iter()
            .rfind(|w| w.speaker == report.speaker && w.end() <= report.at)
            .unwrap_or_else(|| panic!("no wait of {} before {report:?}", report.speaker));
        let other = if wait.text.ends_with("lockA") {
            "lockB"
        } else {
            "lockA"
        };
        assert!(
            spans(&t, Activity::Hold, &format!("holding {other}"))
                .iter()
                .any(|h| h.speaker == report.speaker && h.at <= wait.at && wait.end() <= h.end()),
            "{} waited ({}) without holding {other}",
            report.speaker,
            wait.text
        );
    }
    // Fix (a): ten turns, twenty holds of the one RLock, never two threads at once.
    let rlock: Vec<&Record> = spans(&t, Activity::Hold, "holding the RLock")
        .into_iter()
        .filter(|r| r.at >= part1_end && r.end() <= rlock_end)
        .collect();
    assert_eq!(rlock.len(), 20);
    assert!(!two_speakers_overlap(&rlock), "{rlock:#?}");
    // Fix (b): lockA held by one thread at a time, ten times.
    let lock_a: Vec<&Record> = spans(&t, Activity::Hold, "holding lockA")
        .into_iter()
        .filter(|r| r.at >= rlock_end)
        .collect();
    assert_eq!(lock_a.len(), 10);
    assert!(!two_speakers_overlap(&lock_a));
}

/// `cargo run -p sync -- race --timeline`: the hundred threads hold the lock one at a time.
#[test]
fn race_draws_a_hundred_holds_one_at_a_time() {
    let (_, t) = run(race::run);
    assert_speakers(&t, &named("Thread-", race::THREADS));
    let holds = spans(&t, Activity::Hold, "holding the lock");
    assert_eq!(holds.len(), race::THREADS);
    assert_eq!(max_overlap(&holds), 1);
}

/// `cargo run -p sync -- rlock --timeline`: main holds the RLock (count 2 inside count 1) while
/// the outsider is kept out; the plain lock's second `lock()` waits until the cycle is seen.
#[test]
fn rlock_draws_the_nested_holds_and_the_wait_for_itself() {
    let (said, t) = run(rlock::run);
    let main = main_thread();
    assert_speakers(&t, &[main.clone(), "outsider".to_owned()]);
    let one = spans(&t, Activity::Hold, "holding the RLock (count 1)");
    let two = spans(&t, Activity::Hold, "holding the RLock (count 2)");
    assert_eq!((one.len(), two.len()), (1, 1));
    assert!(one[0].at <= two[0].at && two[0].end() <= one[0].end());
    let kept_out = said
        .iter()
        .filter(|r| r.text == "try_acquire() -> kept out")
        .collect::<Vec<_>>();
    assert_eq!(kept_out.len(), 2);
    assert!(
        kept_out
            .iter()
            .all(|r| one[0].at <= r.at && r.at <= one[0].end())
    );
    let itself = spans(&t, Activity::Wait, "waiting for itself");
    assert_eq!(itself.len(), 1);
    assert!(itself[0].end() <= said[index(&said, "second lock() -> deadlock")].at);
}

/// `cargo run -p sync -- event --timeline`: every worker waits twice, and each wait ends after
/// the boss's set.
#[test]
fn event_draws_each_workers_two_waits_ending_after_the_sets() {
    let (said, t) = run(event::run);
    let mut want = named("worker-", event::WORKERS);
    want.extend(["boss".to_owned(), "waiter".to_owned(), main_thread()]);
    assert_speakers(&t, &want);
    let first_set = said[index(&said, "boss: everyone works")].at;
    let second_set = said[index(&said, "boss: it is 22:00")].at;
    for w in named("worker-", event::WORKERS) {
        let word: Vec<&Record> = spans(&t, Activity::Wait, "for the boss's word")
            .into_iter()
            .filter(|r| r.speaker == w)
            .collect();
        let home: Vec<&Record> = spans(&t, Activity::Wait, "for the end of the day")
            .into_iter()
            .filter(|r| r.speaker == w)
            .collect();
        assert_eq!((word.len(), home.len()), (1, 1), "{w}");
        assert!(
            word[0].end() >= first_set && home[0].end() >= second_set,
            "{w}"
        );
        assert!(
            home[0].at < second_set,
            "{w} was not waiting when the boss spoke"
        );
    }
    assert_eq!(spans(&t, Activity::Wait, "wait(timeout=1 s)").len(), 1);
}

/// `cargo run -p sync -- condition --timeline`: the consumer's waits end only after a put.
#[test]
fn condition_draws_the_consumers_waits_and_the_producers_holds() {
    let (said, t) = run(condition::run);
    assert_speakers(&t, &["consumer".to_owned(), main_thread()]);
    let waits = spans(&t, Activity::Wait, "the shelf is empty");
    assert!(!waits.is_empty());
    let first_put = said[index(&said, "put item 1")].at;
    assert!(waits.iter().all(|w| w.end() >= first_put));
    assert_eq!(
        spans(&t, Activity::Hold, "holding the shelf's lock").len(),
        condition::ITEMS as usize
    );
}

/// `cargo run -p sync -- barrier --timeline`: every party waits at its barrier; no wait at
/// `sync::Barrier` ends before the action is done.
#[test]
fn barrier_draws_every_partys_wait() {
    let (said, t) = run(barrier::run);
    let mut want = named("std-", barrier::PARTIES);
    want.extend(named("runner-", barrier::PARTIES));
    want.extend(named("party-", barrier::PARTIES - 1));
    assert_speakers(&t, &want);
    assert_eq!(
        spans(&t, Activity::Wait, "at std's barrier").len(),
        barrier::PARTIES
    );
    let waits = spans(&t, Activity::Wait, "wait(): at the barrier");
    assert_eq!(waits.len(), barrier::PARTIES);
    let done = said[index(&said, "action done")].at;
    assert!(waits.iter().all(|w| w.end() >= done));
    assert_eq!(
        spans(&t, Activity::Wait, "wait(timeout=1 s): at the barrier").len(),
        barrier::PARTIES - 1
    );
}

/// `cargo run -p sync -- timer --timeline`: main waits in join() until the timer fires.
#[test]
fn timer_draws_main_waiting_for_the_timer() {
    let (said, t) = run(timer::run);
    assert_speakers(&t, &["timer".to_owned(), main_thread()]);
    let join = spans(&t, Activity::Wait, "join(): waiting for the timer");
    assert_eq!(join.len(), 1);
    assert!(join[0].end() >= said[index(&said, "the 2 s timer fired")].at);
}

/// `cargo run -p sync -- poison --timeline`: the teller and the careless thread die holding
/// what they took; main then waits in vain for the leaked permit.
#[test]
fn poison_draws_the_holds_that_end_in_a_panic_and_the_vain_wait() {
    let (said, t) = run(poison::run);
    assert_speakers(
        &t,
        &["teller".to_owned(), "careless".to_owned(), main_thread()],
    );
    assert_eq!(
        spans(&t, Activity::Hold, "holding the bank's lock").len(),
        1
    );
    assert_eq!(spans(&t, Activity::Hold, "never released").len(), 1);
    let vain = spans(&t, Activity::Wait, "acquire(timeout=1 s)");
    assert_eq!(vain.len(), 1);
    assert!(vain[0].end() <= said[index(&said, "timed out: the lock is held forever")].at);
}
