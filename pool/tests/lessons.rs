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

/// The tasks the pool lesson says started before any task had finished.
fn first_wave(r: &[Record]) -> Vec<usize> {
    let line = &r[index(r, "started before any task had finished: tasks [")].text;
    let list = line
        .split_once("tasks [")
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| list)
        .unwrap_or_else(|| panic!("no list of tasks in {line:?}"));
    list.split(", ")
        .filter(|t| !t.is_empty())
        .map(|t| t.parse().unwrap_or_else(|_| panic!("{t:?} in {line:?}")))
        .collect()
}

/// The most tasks the pool lesson says ran at once.
fn most_at_once(r: &[Record]) -> u64 {
    let line = &r[index(r, "tasks ran at once")].text;
    line.split_once("at most ")
        .and_then(|(_, rest)| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line:?}"))
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
    // Tasks of 10 ms: a busy machine may start one of the first five after another finished,
    // but the first wave is never empty and holds only tasks of the first five.
    let first = first_wave(&r);
    assert!(
        !first.is_empty() && first.iter().all(|&j| j < 5),
        "{first:?}"
    );
    assert!((1..=5).contains(&most_at_once(&r)), "{r:#?}");
}

/// `cargo run -p pool -- pool`: the seed's "five at a time". With tasks of 250 ms (a quarter
/// of the seed's second), the five workers all start their first task long before one ends:
/// tasks 0 to 4 are the first wave, five ran at once, and no later task started before a
/// worker was free (the lesson fails otherwise).
#[test]
fn pool_starts_the_first_five_before_any_finishes() {
    let _fork = FORK.lock().unwrap_or_else(|e| e.into_inner());
    let r = lesson::testing::run_lesson(Cx::quiet(0.25), pool::lessons::pool::run);
    assert_eq!(first_wave(&r), [0, 1, 2, 3, 4], "{r:#?}");
    index(
        &r,
        "started before any task had finished: tasks [0, 1, 2, 3, 4]; every later task started \
         only when a worker was free",
    );
    assert_eq!(most_at_once(&r), 5, "{r:#?}");
    index(&r, "at most 5 tasks ran at once");
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
    // "The temporary directories and the servers are gone now." Each crawl said where its db
    // file was (its db.txt lines above were read back from it): a directory of its own,
    // `pool-crawler-PID-...` under the temporary directory. Neither is left, nor any other of
    // this process's, and neither crawl's server still takes connections.
    let dbs: Vec<std::path::PathBuf> = r
        .iter()
        .filter_map(|l| l.text.strip_prefix("the db file: "))
        .filter_map(|t| t.split_once(" (in a temporary directory"))
        .map(|(path, _)| path.into())
        .collect();
    assert_eq!(dbs.len(), 2, "{r:#?}");
    let tmp = std::env::temp_dir();
    let prefix = format!("pool-crawler-{}-", std::process::id());
    let dirs: Vec<&std::path::Path> = dbs.iter().filter_map(|db| db.parent()).collect();
    assert!(dirs.len() == 2 && dirs[0] != dirs[1], "{dbs:?}");
    for dir in &dirs {
        assert_eq!(dir.parent(), Some(tmp.as_path()), "{dir:?}");
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        assert!(name.starts_with(&prefix), "{dir:?}");
        assert!(!dir.exists(), "{dir:?} is still there");
    }
    let left: Vec<std::path::PathBuf> = std::fs::read_dir(&tmp)
        .expect("the temporary directory")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let servers: std::collections::BTreeSet<&str> = r
        .iter()
        .filter_map(|l| l.text.split_once("> get http://"))
        .filter_map(|(_, url)| url.split('/').next())
        .collect();
    assert_eq!(servers.len(), 2, "{r:#?}");
    for addr in servers {
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "the server at {addr} still takes connections"
        );
    }
}

#[test]
fn map_orders_and_crash_recovers() {
    let r = run(pool::lessons::map::run);
    index(&r, "map: [0, 1, 2, 3, 4, 5, 6, 7]");
    index(&r, "imap: [0, 1, 2, 3, 4, 5, 6, 7]");
    // The tasks finish one at a time in FINISH_ORDER (each at its turn, the next turn handed
    // out when a result arrives): imap_unordered gives them in just that order.
    index(
        &r,
        &format!(
            "imap_unordered: {:?} (a stream, in the order they finished",
            pool::lessons::map::FINISH_ORDER
        ),
    );
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
