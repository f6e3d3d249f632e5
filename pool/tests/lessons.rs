//! Each lesson's claims on its narration records (one lesson at a time: they fork).

use lesson::testing::index;
use lesson::{Cx, Record};

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
