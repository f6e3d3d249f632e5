//! Each lesson's claims, on its narration records, every lesson under a deadline.

use std::time::Duration;

use lesson::testing::{index, indices};
use lesson::{Cx, Record, within};
use sync::lessons::{barrier, condition, deadlock, event, poison, race, rlock, semaphore, timer};

/// Large enough that the seed's sleeps (3 s -> 150 ms) dwarf scheduling delays on a loaded machine.
const SCALE: f64 = 0.05;
const LIMIT: Duration = Duration::from_secs(60);

fn run(f: lesson::RunFn) -> Vec<Record> {
    lesson::testing::run_lesson(Cx::quiet(SCALE), f)
}

#[test]
fn race_without_a_lock_loses_exactly_99_updates_with_one_reaches_0() {
    for _ in 0..5 {
        assert_eq!(race::lost_update(race::THREADS), 99);
    }
    assert_eq!(race::atomic(race::THREADS), 0);
    let cx = Cx::quiet(SCALE);
    assert_eq!(race::locked(&cx, race::THREADS).unwrap(), 0);
    let r = run(race::run);
    index(&r, "num = 99");
    assert!(r[index(&r, "Mutex held")].text.ends_with("num = 0"));
    assert!(r[index(&r, "fetch_sub")].text.ends_with("num = 0"));
}

#[test]
fn deadlock_is_detected_and_both_fixes_finish() {
    let part = within(LIMIT, "seed lock order", || {
        deadlock::five_threads(&Cx::quiet(SCALE), false).unwrap()
    });
    assert!(!part.deadlocks.is_empty());
    for d in &part.deadlocks {
        assert_eq!(d.cycle.len(), 2, "{d}");
        let locks: Vec<_> = d.cycle.iter().map(|e| e.holds.as_str()).collect();
        assert!(locks.contains(&"lockA") && locks.contains(&"lockB"), "{d}");
    }
    assert_eq!(part.finished + part.deadlocks.len(), 5, "{part:?}");
    let r = run(deadlock::run);
    index(&r, "deadlock(s) detected; every thread ended");
    index(&r, "one RLock under both names: 5 of 5 threads finished");
    index(
        &r,
        "one lock order (A before B): 0 deadlock(s); all 5 threads finished",
    );
    let reports = indices(&r, "holds lockA and waits for lockB");
    assert!(!reports.is_empty());
}

/// Issue 18, claim 6 (`cargo run -p sync -- deadlock`): the lesson said "Thread-1 finishes
/// actionA and takes B" whoever did. Now it names the two threads of the first deadlock, and
/// they are the ones whose lines show it: the one in actionB said doLockA, doLockB (actionA)
/// and doLockB (actionB) before the report; the one in actionA said doLockA.
#[test]
fn deadlock_names_the_threads_of_the_first_deadlock_as_they_ran() {
    for _ in 0..3 {
        let r = lesson::testing::run_lesson(Cx::quiet(0.02), deadlock::run);
        let report = index(&r, "deadlock: ");
        let first = &r[index(&r, "the first deadlock: ")].text;
        // The report: "deadlock: T holds lockX and waits for lockY; U holds ...".
        let edges: Vec<(&str, &str)> = r[report].text["deadlock: ".len()..]
            .split(" -> ")
            .next()
            .unwrap()
            .split("; ")
            .map(|e| {
                let (who, rest) = e.split_once(" holds ").unwrap();
                (who, rest.split(' ').next().unwrap())
            })
            .collect();
        let holder = |lock: &str| edges.iter().find(|(_, l)| *l == lock).unwrap().0;
        let (in_b, in_a) = (holder("lockB"), holder("lockA"));
        assert_ne!(in_b, in_a);
        assert!(
            first.starts_with(&format!(
                "the first deadlock: {in_b} finished actionA and took lockB for actionB"
            )),
            "{first}"
        );
        assert!(
            first.contains(&format!("{in_a} had taken lockA for its actionA")),
            "{first}"
        );
        let lines_of = |who: &str| -> Vec<&str> {
            r[..report]
                .iter()
                .filter(|x| x.speaker == who)
                .map(|x| x.text.as_str())
                .collect()
        };
        assert_eq!(lines_of(in_b), ["doLockA", "doLockB", "doLockB"], "{r:#?}");
        assert_eq!(lines_of(in_a).last(), Some(&"doLockA"), "{r:#?}");
    }
}

/// Issue 18 (`cargo run -p sync -- deadlock` printed about 55 doLockA/doLockB lines): the seed's
/// order is told line by line only up to the first deadlock, then only the deadlock reports;
/// each fix shows its first thread's four lines and counts the other sixteen.
#[test]
fn deadlock_says_the_first_round_in_full_and_counts_the_rest() {
    let r = run(deadlock::run);
    let is_line = |x: &Record| x.text.starts_with("doLock");
    let first_report = index(&r, "deadlock: ");
    let part1_end = index(&r, "the seed's lock order: ");
    assert!(
        r[first_report..part1_end]
            .iter()
            .all(|x| x.text.starts_with("deadlock: ")),
        "a doLock line after the first deadlock: {r:#?}"
    );
    let rlock_end = index(&r, "one RLock under both names");
    let order_end = index(&r, "one lock order (A before B)");
    for (range, summary) in [
        (part1_end..rlock_end, rlock_end),
        (rlock_end..order_end, order_end),
    ] {
        let shown: Vec<&Record> = r[range].iter().filter(|x| is_line(x)).collect();
        assert_eq!(shown.len(), 4, "{shown:#?}");
        assert!(shown.iter().all(|x| x.speaker == shown[0].speaker));
        assert!(
            r[summary]
                .text
                .ends_with("16 lines of the other threads not shown"),
            "{}",
            r[summary].text
        );
        // Every thread began each of its two actions once; `1A 3A ... 1B ...`.
        let turns: Vec<&str> = r[summary]
            .text
            .split("in turn, to ")
            .nth(1)
            .unwrap()
            .split([';', '('])
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(turns.len(), 10, "{}", r[summary].text);
        for t in 1..=5 {
            let mine: Vec<&&str> = turns
                .iter()
                .filter(|x| x[..x.len() - 1] == t.to_string())
                .collect();
            assert_eq!(mine.len(), 2, "{turns:?}");
        }
    }
    let fix_a = &r[rlock_end].text;
    for t in 1..=5 {
        let a = fix_a.find(&format!(" {t}A")).unwrap();
        let b = fix_a.find(&format!(" {t}B")).unwrap();
        assert!(a < b, "{fix_a}");
    }
}

#[test]
fn rlock_reenters_and_keeps_the_outsider_out_until_zero() {
    let r = run(rlock::run);
    let texts: Vec<&str> = r.iter().map(|x| x.text.as_str()).collect();
    let want = [
        "acquire() -> count 1",
        "acquire() again, same thread -> count 2",
        "try_acquire() -> kept out",
        "release() -> count 1",
        "try_acquire() -> kept out",
        "release() -> count 0",
        "try_acquire() -> got it",
    ];
    assert_eq!(&texts[..want.len()], want);
    assert_eq!(r[2].speaker, "outsider");
    index(&r, " holds lock and waits for lock");
}

#[test]
fn semaphore_admits_at_most_5_and_reaches_5() {
    let most = within(LIMIT, "crowd", || {
        semaphore::crowd(&Cx::quiet(SCALE), 5, 10).unwrap()
    });
    assert_eq!(most, 5);
    let r = run(semaphore::run);
    assert_eq!(indices(&r, "inside (").len(), 10);
    for i in indices(&r, "inside (") {
        let n: usize = r[i].text["inside (".len()..]
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=5).contains(&n), "{}", r[i].text);
    }
    index(&r, "one release() too many -> Err");
    index(&r, "acquire_timeout(1 s) -> None");
}

#[test]
fn event_workers_speak_only_after_each_set() {
    let r = run(event::run);
    let first_set = index(&r, "boss: everyone works until 22:00");
    let second_set = index(&r, "boss: it is 22:00");
    let firsts = indices(&r, "worker: sigh");
    let seconds = indices(&r, "worker: finally");
    assert_eq!(firsts.len(), event::WORKERS);
    assert_eq!(seconds.len(), event::WORKERS);
    assert!(
        firsts.iter().all(|&i| i > first_set && i < second_set),
        "{r:#?}"
    );
    assert!(seconds.iter().all(|&i| i > second_set), "{r:#?}");
    let mut speakers: Vec<&str> = firsts.iter().map(|&i| r[i].speaker.as_str()).collect();
    speakers.sort();
    assert_eq!(
        speakers,
        ["worker-1", "worker-2", "worker-3", "worker-4", "worker-5"]
    );
    index(&r, "the waiter's wait() -> true");
    index(&r, "wait_timeout(1 s) -> false");
}

/// `cargo run -p sync -- event`: the boss looks at the flag before each set(): down both times
/// (the first time nobody has set it, the second time every worker has cleared it before
/// waiting again); and after set() then clear() the flag is down again.
#[test]
fn event_is_set_before_each_set_is_false() {
    let r = run(event::run);
    index(
        &r,
        "boss: everyone works until 22:00 tonight (is_set before: false)",
    );
    index(&r, "boss: it is 22:00, go home (is_set before: false)");
    index(
        &r,
        "the waiter's wait() -> true (the flag is down again: is_set() = false)",
    );
    assert!(indices(&r, "is_set before: true").is_empty(), "{r:#?}");
}

#[test]
fn condition_consumer_gets_every_item_in_order() {
    let r = run(condition::run);
    let took: Vec<&str> = indices(&r, "took item")
        .iter()
        .map(|&i| r[i].text.as_str())
        .collect();
    assert_eq!(
        took,
        [
            "took item 1",
            "took item 2",
            "took item 3",
            "took item 4",
            "took item 5"
        ]
    );
    for k in 1..=5 {
        assert!(index(&r, &format!("put item {k}")) < index(&r, &format!("took item {k}")));
    }
}

#[test]
fn barrier_every_past_follows_every_arrival_with_one_leader() {
    let r = run(barrier::run);
    let at = indices(&r, "at the barrier");
    let past = indices(&r, "past the barrier");
    assert_eq!((at.len(), past.len()), (barrier::PARTIES, barrier::PARTIES));
    assert!(at.iter().max() < past.iter().min());
    assert_eq!(indices(&r, "[std] is_leader() -> true").len(), 1);
    assert_eq!(indices(&r, "[std] released").len(), barrier::PARTIES);
    index(&r, "wait(timeout=1 s) -> Err(BrokenBarrier)");
    index(&r, "reset() -> broken = false");
}

/// `cargo run -p sync -- barrier`: once two parties' time-outs broke it, the barrier says so,
/// and a third party's wait() gets BrokenBarrier without waiting for anyone (no other party
/// exists: a wait that blocked would hang the lesson past its deadline). It comes after both
/// time-outs and before the reset.
#[test]
fn barrier_a_broken_barrier_refuses_the_third_party() {
    let r = run(barrier::run);
    let timeouts = indices(&r, "a party's wait(timeout=1 s) -> Err(BrokenBarrier)");
    assert_eq!(timeouts.len(), barrier::PARTIES - 1, "{r:#?}");
    let third = index(
        &r,
        "broken = true; the third party would get BrokenBarrier at once: Err(BrokenBarrier)",
    );
    let reset = index(&r, "reset() -> broken = false");
    assert!(
        timeouts.iter().all(|&t| t < third) && third < reset,
        "{r:#?}"
    );
}

/// Bug 6 of issue 16: `threading.Barrier(n, action)` runs the action before any party is
/// released, so the action's line comes before every "past the barrier" line, every run.
#[test]
fn barrier_action_runs_before_any_party_is_released() {
    for round in 0..10 {
        let r = run(barrier::run);
        let action = indices(&r, "action done");
        assert!(!action.is_empty(), "no action line");
        let past = indices(&r, "past the barrier");
        assert!(
            action.iter().max() < past.iter().min(),
            "round {round}: a party passed before the action ran: {r:#?}"
        );
    }
}

#[test]
fn timer_fires_and_a_cancelled_one_never_does() {
    let r = run(timer::run);
    index(&r, "the 2 s timer fired");
    index(&r, "cancel() after 1 s -> true");
    assert!(indices(&r, "the 30 s timer fired").is_empty());
}

/// `cargo run -p sync -- timer`: "the 2 s timer fired" comes no earlier than 2 s (scaled) after
/// the line said just before the timer was started, and the 30 s timer is cancelled no earlier
/// than 1 s after it was started. Lower bounds only: a loaded machine makes them later, never
/// earlier.
#[test]
fn timer_fires_after_its_delay_and_is_cancelled_after_1_s() {
    let r = run(timer::run);
    let cx = Cx::quiet(SCALE);
    let starting = r[index(&r, "starting a 2 s timer")].at;
    let fired = r[index(&r, "the 2 s timer fired")].at;
    assert!(
        fired - starting >= cx.scaled(2.0),
        "fired {:?} after the start, before 2 s ({:?})",
        fired - starting,
        cx.scaled(2.0)
    );
    let started = r[index(&r, "started a 30 s timer")].at;
    let cancelled = r[index(&r, "cancel() after 1 s -> true")].at;
    assert!(cancelled - started >= cx.scaled(1.0), "{r:#?}");
}

/// `cargo run -p sync -- timer`: cancel() returns false once the function has started; the
/// function's line comes first (the lesson calls cancel() only after hearing it started).
#[test]
fn timer_cancel_after_the_function_started_returns_false() {
    let r = run(timer::run);
    let started = index(&r, "the 0 s timer's function started");
    let cancel = index(
        &r,
        "cancel() after its function started -> false: too late, it ran",
    );
    assert!(started < cancel, "{r:#?}");
}

#[test]
fn poison_is_observed_and_recovered_and_the_leaked_lock_stays_held() {
    let r = run(poison::run);
    index(&r, "lock() -> Err(PoisonError)");
    index(&r, "Accounts { alice: 50, bob: 0 }");
    index(&r, "Accounts { alice: 50, bob: 50 }");
    index(&r, "clear_poison(); lock() -> Ok");
    index(&r, "timed out: the lock is held forever");
}
