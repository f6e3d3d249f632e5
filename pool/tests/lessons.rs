//! Each lesson's claims on its narration records (one lesson at a time: they fork).

use std::time::Duration;

use lesson::testing::index;
use lesson::{Activity, Cx, Kind, Record};

const LIMIT: Duration = Duration::from_secs(120);

static FORK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run(f: lesson::RunFn) -> Vec<Record> {
    let _fork = FORK.lock().unwrap_or_else(|e| e.into_inner());
    lesson::testing::run_lesson(Cx::quiet(0.01), f)
}

#[test]
fn pool_runs_every_callback_in_the_parent() {
    let r = run(pool::lessons::pool::run);
    let me = std::process::id();
    index(&r, &format!("every callback ran in pid {me}: true"));
    let callbacks: Vec<&Record> = r
        .iter()
        .filter(|x| x.text.starts_with("callback: Hello"))
        .collect();
    assert_eq!(callbacks.len(), pool::lessons::pool::DEFAULT_COUNT);
    assert!(callbacks.iter().all(|x| x.speaker == "pool-results"));
}

/// `cargo run -p pool -- pool --timeline`: each task's lines and its sleeping span belong to
/// the worker that ran it, named as Python names it (`ForkPoolWorker-N`), from that worker's
/// own pid; the parent's `pool.join()` is a waiting span of the parent.
#[test]
fn pool_workers_narrate_under_their_names_on_the_timeline() {
    let _fork = FORK.lock().unwrap_or_else(|e| e.into_inner());
    let cx = Cx::quiet(0.01);
    let (seen, timeline) = lesson::within(LIMIT, "the pool lesson", move || {
        let seen = pool::lessons::pool::run_pool(&cx, 5, 20).expect("the lesson's pool");
        (seen, cx.timeline())
    });
    let names: Vec<String> = (1..=5).map(|n| format!("ForkPoolWorker-{n}")).collect();
    let mut listed: Vec<String> = seen.workers.iter().map(|(_, n)| n.clone()).collect();
    listed.sort();
    assert_eq!(
        listed, names,
        "Pool(5) names its workers ForkPoolWorker-1 to -5"
    );
    let mut ran = std::collections::BTreeSet::new();
    for i in 0..20 {
        let said = timeline
            .iter()
            .find(|r| r.kind == Kind::Said && r.text.contains(&format!(", task {i} (")))
            .unwrap_or_else(|| panic!("no line for task {i} in {timeline:#?}"));
        let slept = timeline
            .iter()
            .find(|r| {
                matches!(
                    r.kind,
                    Kind::Span {
                        activity: Activity::Sleep,
                        ..
                    }
                ) && r.text == format!("task {i}: sleep")
            })
            .unwrap_or_else(|| panic!("no sleeping span for task {i}"));
        let (pid, name) = seen
            .workers
            .iter()
            .find(|(_, n)| *n == said.speaker)
            .unwrap_or_else(|| panic!("task {i} said by {:?}, not a worker", said.speaker));
        assert_eq!(
            said.pid as i32, *pid,
            "{name}'s line comes from its own pid"
        );
        assert_eq!(
            slept.speaker, *name,
            "task {i} slept in the worker that ran it"
        );
        assert!(said.text.contains(&format!("pid {pid}")));
        ran.insert(name.clone());
    }
    assert!(!ran.is_empty());
    let join = timeline
        .iter()
        .find(|r| r.text == "pool.join()")
        .expect("the parent's join is on the timeline");
    assert!(matches!(
        join.kind,
        Kind::Span {
            activity: Activity::Wait,
            ..
        }
    ));
    assert_eq!(join.pid, std::process::id());
    assert!(
        lesson::speakers(&timeline)
            .iter()
            .all(|s| !s.starts_with("pid "))
    );
}

#[test]
fn apply_is_serial() {
    let r = run(pool::lessons::apply::run);
    index(&r, "at most 1 task ran at once");
    let order: Vec<usize> = (0..5)
        .map(|i| index(&r, &format!("apply -> Hello {i}")))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn crawler_records_pages_and_the_error() {
    let r = run(pool::lessons::crawler::run);
    for (path, size) in pool::lessons::crawler::PAGES {
        index(&r, &format!("{path}> size:[{size}]"));
    }
    index(&r, "error_callback: task failed: HTTP 500");
    // The seed's crawler as written (issue 18): its 500 page gives None, the callback
    // panics; Python's result thread dies there and join() hangs; here join returns.
    let panicked = index(
        &r,
        "a callback panicked on pool-results, caught: called `Option::unwrap()` on a `None` value",
    );
    let joined = index(
        &r,
        "p.join() returned; 3 db lines; 1 callback panicked; the 500 page's get(): Ok(None)",
    );
    assert!(panicked < joined);
}

#[test]
fn map_orders_and_crash_recovers() {
    let r = run(pool::lessons::map::run);
    index(&r, "map: [0, 1, 2, 3, 4, 5, 6, 7]");
    index(&r, "imap: [0, 1, 2, 3, 4, 5, 6, 7]");
    index(&r, "sum 499500");
    let r = run(pool::lessons::crash::run);
    index(&r, "task 3: Err(task panicked");
    index(&r, "task 6: Err(worker");
    index(&r, "2 alive");
}

/// `cargo run -p pool -- futures`: as_completed gives each future as its call completes (the
/// lesson opens the gates in FINISH_ORDER), said by the executor's named threads; a dead
/// worker breaks a ProcessPoolExecutor (every call not done fails, submit refused), while on
/// this crate's rule only the running call fails and the pool goes on.
#[test]
fn futures_as_completed_order_and_a_dead_worker_both_ways() {
    let r = run(pool::lessons::futures::run);
    let order: Vec<usize> = pool::lessons::futures::FINISH_ORDER
        .iter()
        .map(|i| index(&r, &format!("as_completed gives the future of call {i}")))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    for i in 0..5 {
        let said = &r[index(&r, &format!("call {i} returns"))];
        assert!(said.speaker.starts_with("ThreadPoolExecutor-"), "{said:?}");
    }
    index(
        &r,
        "map(f, 0..5) gives its results in input order: [0, 10, 20, 30, 40]",
    );
    let broken = index(&r, "call 4: Err(BrokenProcessPool)");
    index(
        &r,
        "BrokenProcessPool says: a child process terminated abruptly",
    );
    let refused = index(&r, "a submit after the death: Err(BrokenProcessPool)");
    let died = index(&r, "call 3: Err(worker");
    let ok = index(&r, "a submit after the death: Ok(6)");
    assert!(broken < refused && refused < died && died < ok);
}
