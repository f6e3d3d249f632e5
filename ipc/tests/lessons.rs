//! Each lesson's claims on its narration records. The lessons fork, so (as in tests/ipc.rs)
//! they run one at a time.

use lesson::testing::{index, indices};
use lesson::{Cx, Record};

static FORK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run(f: lesson::RunFn) -> Vec<Record> {
    let _fork = FORK.lock().unwrap_or_else(|e| e.into_inner());
    lesson::testing::run_lesson(Cx::quiet(0.02), f)
}

/// `cargo run -p ipc -- queue`: the seed's `fun2` loop (`while 1: q.get()`) gets 1, 2, 3 and
/// then waits for a fourth item forever in Python; here the parent finds it still waiting and
/// ends it with a stop sentinel.
#[test]
fn queue_crosses_a_thread_queue_does_not_and_a_full_queue_is_reported() {
    let r = run(ipc::lessons::queue::run);
    let got: Vec<usize> = (1..=3)
        .map(|i| index(&r, &format!("child: get() -> {i}")))
        .collect();
    assert!(got.is_sorted(), "the consumer's gets out of order");
    let waiting = index(&r, "p2.join(timeout=1 s) -> still running: true");
    let stopped = index(&r, "get() -> None, the stop sentinel");
    assert!(got[2] < waiting && waiting < stopped);
    index(&r, "Process-3 left its loop, joined, exitcode 0");
    index(&r, "parent: Process-3 got [1, 2, 3] from the process queue");
    index(
        &r,
        "parent: the child exited 0; recv_timeout(1 s) on the thread queue -> Err(Timeout)",
    );
    let gave_up = index(&r, "child: put_timeout -> ");
    assert_eq!(r[gave_up].speaker, "Process-5");
    // "joined the child first (exit 0): N items of 1 KiB had fitted in the queue's 64 KiB;
    // drained M": the child exited cleanly, what fitted is within 64 KiB, all of it drained.
    let full = &r[index(&r, "parent: joined the child first (exit 0): ")].text;
    let number_before = |marker: &str| -> u32 {
        let head = &full[..full
            .find(marker)
            .unwrap_or_else(|| panic!("{marker:?} in {full:?}"))];
        let digits = head.rsplit(' ').next().unwrap_or_default();
        digits
            .parse()
            .unwrap_or_else(|_| panic!("no number before {marker:?} in {full:?}"))
    };
    let fitted = number_before(" items of 1 KiB had fitted in the queue's 64 KiB;");
    let drained: u32 = full
        .rsplit("drained ")
        .next()
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("no drained count in {full:?}"));
    assert_eq!(ipc::queue::CAPACITY, 64 * 1024, "the lesson says 64 KiB");
    assert!(
        fitted > 0 && fitted <= 64,
        "{fitted} items of 1 KiB in 64 KiB: {full:?}"
    );
    assert!(gave_up < index(&r, "parent: joined the child first"));
    assert_eq!(drained, fitted, "{full:?}");
}

/// `cargo run -p ipc -- pipe` (issue 18, claim 1): the parent's end-of-file waits for its own
/// copy of the child's end; the child's end-of-file waits for its inherited copy of the
/// parent's end, which `close_in_child` closes.
#[test]
fn pipe_exchanges_and_ends_with_eof() {
    let r = run(ipc::lessons::pipe::run);
    index(&r, "two ends, two objects");
    index(&r, "the child says Greeting { number: 12");
    index(&r, "recv() after the child exited -> end of file");
    let copy = index(
        &r,
        "anything to read (end-of-file)? false: I still hold a copy",
    );
    let dropped = index(
        &r,
        "dropped my copy of the child's end; recv() -> end of file",
    );
    assert!(copy < dropped);
    let held = index(
        &r,
        "my own inherited copy of the parent's end keeps it open",
    );
    assert_eq!(r[held].speaker, "Process-3");
    index(
        &r,
        "without close_in_child, the child saw end-of-file: false",
    );
    let eof = index(
        &r,
        "child: the parent closed its end; recv() -> end of file",
    );
    assert_eq!(r[eof].speaker, "Process-4");
    index(
        &r,
        "with close_in_child(&parent_end), the child saw end-of-file: true",
    );
}

#[test]
fn manager_shows_every_write() {
    let r = run(ipc::lessons::manager::run);
    index(
        &r,
        "parent: d = {0: \"dict 0\", 1: \"dict 1\", 2: \"dict 2\", 3: \"dict 3\", 4: \"dict 4\"}",
    );
    index(&r, "parent: l = [0, 1, 2, 3, 4, ");
}

#[test]
fn lock_joins_ten_and_recovers_from_a_dead_holder() {
    let r = run(ipc::lessons::lock::run);
    index(
        &r,
        "joined all 10, exit codes [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]",
    );
    let holding = index(&r, "holder: I have the lock, and I will never let go");
    assert_eq!(r[holding].speaker, "Process-11");
    // SIGKILL is signal 9: Python's exitcode for it is -9.
    let killed = index(
        &r,
        "parent: killed the holder (exitcode -9) while it held the lock",
    );
    let recovered = index(&r, "owner_died() = true; afterwards the lock works: true");
    assert!(holding < killed && killed < recovered);
}

#[test]
fn shared_memory_loses_then_counts_exactly() {
    let r = run(ipc::lessons::shared_memory::run);
    index(&r, "read then write: counter = 200 (wanted 800)");
    index(&r, "under ipc::Value's lock: counter = 800");
    index(&r, "fetch_add on ipc::AtomicValue: counter = 800");
}

/// `cargo run -p ipc -- event`: the seed's boss speaks first, every worker after the set, and
/// every worker's second line after the boss's second; a killed holder's permit comes back.
#[test]
fn event_boss_first_workers_after_and_a_dead_holders_permit_back() {
    let r = run(ipc::lessons::event::run);
    let boss = index(&r, "boss: 今天大家要加班到22点");
    let boss_again = index(&r, "boss: <22:00> 可以下班了");
    let firsts: Vec<usize> = indices(&r, "worker: 哎呀生活苦呀");
    let seconds: Vec<usize> = indices(&r, "worker: oyear下班了");
    assert_eq!((firsts.len(), seconds.len()), (5, 5));
    assert!(firsts.iter().all(|&i| i > boss && i < boss_again));
    assert!(seconds.iter().all(|&i| i > boss_again));
    // The boss asks is_set() before each set: not set before the first, and cleared by all
    // five workers before the second.
    let is_set: Vec<usize> = indices(&r, "event.is_set() -> ");
    assert_eq!(is_set.len(), 2, "{r:#?}");
    for &i in &is_set {
        assert_eq!(r[i].text, "boss: event.is_set() -> false");
        assert_eq!(r[i].speaker, "Process-6");
    }
    assert!(boss < is_set[0] && firsts.iter().all(|&i| is_set[0] < i));
    assert!(boss_again < is_set[1] && seconds.iter().all(|&i| is_set[1] < i));
    let mut speakers: Vec<&str> = firsts.iter().map(|&i| r[i].speaker.as_str()).collect();
    speakers.sort();
    assert_eq!(
        speakers,
        [
            "Process-1",
            "Process-2",
            "Process-3",
            "Process-4",
            "Process-5"
        ]
    );
    let holding = index(&r, "holder: I have the only permit");
    assert_eq!(r[holding].speaker, "Process-7");
    // SIGKILL is signal 9: Python's exitcode for it is -9.
    let killed = index(&r, "parent: killed the holder (exitcode -9)");
    let back = index(
        &r,
        "acquire() -> got it; owner_died() = true, reclaimed() = 1",
    );
    assert!(holding < killed && killed < back);
}

/// `cargo run -p ipc -- shared-memory-by-name`: a child started with spawn attaches both
/// blocks by name; after unlink the name is gone.
#[test]
fn shared_memory_by_name_crosses_a_spawn_and_unlinks() {
    let _fork = FORK.lock().unwrap_or_else(|e| e.into_inner());
    let cx = Cx::quiet(0.02).with_exe(env!("CARGO_BIN_EXE_ipc"));
    let r = lesson::testing::run_lesson(cx, ipc::lessons::shared_memory_by_name::run);
    let attached = index(&r, "by name; it says \"parent was here\"");
    assert_eq!(r[attached].speaker, "Process-1");
    index(&r, "child: counted to 1000");
    index(
        &r,
        "the child wrote \"child was here\"; the counter is 1000",
    );
    index(&r, "attaching");
    index(&r, "-> no shared memory named");
}

/// `cargo run -p ipc -- wait`: every pipe and the quiet child's sentinel is reported ready,
/// each handled once.
#[test]
fn wait_reports_each_pipe_and_the_sentinel_once() {
    let r = run(ipc::lessons::wait::run);
    for i in 1..=3 {
        index(&r, &format!("parent: pipe {i} ready -> \"done after"));
    }
    index(&r, "the quiet child's sentinel ready: it has exited");
    let handled = index(&r, "parent: handled in the order");
    // At this scale the pauses are 10 to 60 ms apart: a busy machine may reorder them, and
    // the lesson must then say so (the next test runs it where the order is the pauses').
    let said = &r[handled + 1].text;
    let pauses_order = "[\"sentinel\", \"pipe 2\", \"pipe 3\", \"pipe 1\"]";
    let in_pauses_order = r[handled].text.contains(pauses_order);
    if said.contains("that is the order of the pauses") {
        assert!(in_pauses_order, "{r:#?}");
    } else {
        assert!(
            said.contains("that is not the order of the pauses") && !in_pauses_order,
            "{r:#?}"
        );
    }
}

/// `cargo run -p ipc -- wait` claims the order follows the pauses (0.5, 1, 2, 3 s). At a
/// quarter of the seed's time they are 125 ms and more apart, each counted from one instant
/// taken before the first child starts: the quiet child's sentinel first, then pipes 2, 3, 1.
#[test]
fn wait_handles_them_in_the_order_of_the_pauses() {
    let _fork = FORK.lock().unwrap_or_else(|e| e.into_inner());
    let r = lesson::testing::run_lesson(Cx::quiet(0.25), ipc::lessons::wait::run);
    let order = index(
        &r,
        "parent: handled in the order [\"sentinel\", \"pipe 2\", \"pipe 3\", \"pipe 1\"]",
    );
    let verdict = index(
        &r,
        "parent: that is the order of the pauses (0.5, 1, 2, 3 s)",
    );
    assert_eq!(verdict, order + 1);
    let ready: Vec<usize> = [
        "the quiet child's sentinel ready",
        "pipe 2 ready -> \"done after 1 s\"",
        "pipe 3 ready -> \"done after 2 s\"",
        "pipe 1 ready -> \"done after 3 s\"",
    ]
    .iter()
    .map(|l| index(&r, l))
    .collect();
    assert!(ready.is_sorted() && ready[3] < order, "{r:#?}");
}

/// The lesson's verdict on an order that is not the pauses' says so, and names theirs.
#[test]
fn wait_says_when_the_order_is_not_the_pauses() {
    use ipc::lessons::wait::{order_of_the_pauses, verdict};
    let expected = order_of_the_pauses();
    assert_eq!(expected, ["sentinel", "pipe 2", "pipe 3", "pipe 1"]);
    assert!(verdict(&expected).contains("that is the order of the pauses"));
    let late: Vec<String> = ["pipe 2", "sentinel", "pipe 3", "pipe 1"]
        .map(String::from)
        .into();
    let said = verdict(&late);
    assert!(
        said.contains("that is not the order of the pauses")
            && said.contains("[\"sentinel\", \"pipe 2\", \"pipe 3\", \"pipe 1\"]"),
        "{said}"
    );
}

/// `cargo run -p ipc -- manager-served`: a spawned client connects by address and works
/// through the published queue, namespace and registered tally.
#[test]
fn manager_served_reaches_a_spawned_client_by_address() {
    let _fork = FORK.lock().unwrap_or_else(|e| e.into_inner());
    let cx = Cx::quiet(0.02).with_exe(env!("CARGO_BIN_EXE_ipc"));
    let r = lesson::testing::run_lesson(cx, ipc::lessons::manager_served::run);
    let connected = index(&r, "client: connected to");
    assert_eq!(r[connected].speaker, "Process-1");
    index(&r, "client: job 4: tally.add(16) -> 30");
    index(&r, "client: got \"stop\": no more jobs");
    index(&r, "parent: tally.total() -> 30; status.last -> 4");
}
