//! The claims the lessons print (issue 18), each asserted: quoted by the command that prints it.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::Duration;

use coroutines::lessons::{events, gevent, greenlet, select_poll_epoll, tradeoffs, triggers};
use coroutines::multiplex::{ReadResult, Reading, Step, walk};
use coroutines::{Greenlet, getcurrent, val};
use lesson::testing::{index, run_lesson};
use lesson::{Cx, PageServer, within};

/// `cargo run -p coroutines -- tradeoffs`: the switch cost and the thread hand-off are given
/// as what this run measured, in which build, as one run's figures and not a guarantee, with
/// the bench that measures them; the two greenlets sharing a `Cell` lost no update.
#[test]
fn tradeoffs_gives_the_switch_cost_as_a_measurement_and_names_the_bench() {
    let said = run_lesson(Cx::quiet(0.01), tradeoffs::run);
    let line = &said[index(&said, "in this run a greenlet switch took ")].text;
    assert!(line.contains(" ns and a thread hand-off "), "{line}");
    if cfg!(debug_assertions) {
        assert!(line.contains("measured in a debug build"), "{line}");
    } else {
        assert!(line.contains("measured in a release build"), "{line}");
    }
    let bench = index(&said, "one run's figures, not a guarantee");
    assert!(
        said[bench]
            .text
            .ends_with("cargo bench -p coroutines -- switch handoff"),
        "{}",
        said[bench].text
    );
    index(
        &said,
        "two greenlets added 1000 each to a Cell, no lock: 2000",
    );
}

/// `cargo run -p coroutines -- tradeoffs` explains that a `RefCell` borrow held across a
/// switch makes the other greenlet's borrow panic: it does, with `BorrowMutError`'s "already
/// borrowed". Released before the switch, the same two borrows are fine.
#[test]
fn tradeoffs_a_refcell_borrow_held_across_a_switch_panics_in_the_other_greenlet() {
    /// A greenlet pushes to a shared `RefCell<Vec>` and switches back to the root, its borrow
    /// still held or not; then another greenlet pushes too. Its panic message, if it panicked,
    /// and what the vector holds at the end.
    fn borrow_in_turn(held_across_the_switch: bool) -> (Option<String>, Vec<&'static str>) {
        let shared = Rc::new(RefCell::new(Vec::new()));
        let s = shared.clone();
        let holder = Greenlet::new(move |_| {
            let mut v = Some(s.borrow_mut());
            if let Some(v) = v.as_mut() {
                v.push("holder");
            }
            if !held_across_the_switch {
                v = None;
            }
            getcurrent().parent().unwrap().switch(val(()))?;
            drop(v);
            Ok(val(()))
        })
        .unwrap();
        let s = shared.clone();
        let other = Greenlet::new(move |_| {
            let caught = catch_unwind(AssertUnwindSafe(|| s.borrow_mut().push("other")));
            let message = caught
                .err()
                .map(|payload| lesson::panic_message(payload.as_ref()));
            Ok(val(message))
        })
        .unwrap();
        holder.switch(val(())).unwrap();
        let message = other.switch(val(())).unwrap();
        let message = message.downcast::<Option<String>>().unwrap();
        // The holder ends (and lets go of its borrow, if it held it).
        holder.switch(val(())).unwrap();
        assert!(holder.dead() && other.dead());
        let v = shared.borrow().clone();
        (message, v)
    }
    let (panicked, v) = borrow_in_turn(true);
    let message = panicked.expect("the other greenlet's borrow did not panic");
    assert!(message.contains("already borrowed"), "{message}");
    assert_eq!(v, ["holder"]);
    assert_eq!(borrow_in_turn(false), (None, vec!["holder", "other"]));
}

/// `cargo run -p coroutines -- greenlet`: back in main after the seed's program, g2 (which
/// returned) is dead and g1 (suspended in its last switch) is not, as the line says.
#[test]
fn greenlet_main_is_back_with_g2_dead_and_g1_suspended() {
    let said = run_lesson(Cx::quiet(0.01), greenlet::run);
    let back = index(&said, "main is back:");
    let line = &said[back].text;
    assert!(
        line.starts_with(
            "main is back: g2 finished (dead: true), g1 is left suspended (dead: false);"
        ),
        "{line}"
    );
    let last = said
        .iter()
        .position(|r| r.speaker == "g1" && r.text == "24")
        .expect("g1 said 24");
    assert!(last < back, "main was back before g1's last line");
}

/// The "cost time X s" in a line of the gevent lesson.
fn cost_time(line: &str) -> f64 {
    line.split_once("cost time ")
        .and_then(|(_, rest)| rest.split_once(" s"))
        .and_then(|(secs, _)| secs.parse().ok())
        .unwrap_or_else(|| panic!("no cost time in {line:?}"))
}

/// `cargo run -p coroutines -- gevent`, the whole lesson. Each reply comes the seed's 2 s
/// after its request, scaled: 0.3 s here, long enough that the four patched connections are
/// open at once however slow the machine (valgrind included). As the seed wrote it, each task
/// fetches its page (the sizes the seed's four sites stand for) before the next asks for its
/// own, four replies' delays one after another; patched, all four ask before any reply comes.
/// The lesson says the server held 1 connection at a time, then 4.
#[test]
fn gevent_the_whole_lesson_fetches_serially_as_written_then_all_at_once_patched() {
    let cx = Cx::quiet(0.15);
    let delay = cx.scaled(2.0).as_secs_f64();
    let said = run_lesson(cx, gevent::run);
    let at = |who: &str, starts: &str| -> usize {
        said.iter()
            .position(|r| r.speaker == who && r.text.starts_with(starts))
            .unwrap_or_else(|| panic!("{who} never said {starts:?}: {said:#?}"))
    };
    let (mut gets, mut received) = (Vec::new(), Vec::new());
    for task in 1..=8 {
        let who = format!("Greenlet-{task}");
        let size = gevent::PAGES[(task - 1) % 4];
        let lines: Vec<&str> = said
            .iter()
            .filter(|r| r.speaker == who)
            .map(|r| r.text.as_str())
            .collect();
        let url = lines[0]
            .strip_prefix("GET: ")
            .unwrap_or_else(|| panic!("{who}: {lines:?}"));
        assert!(
            url.starts_with("http://127.0.0.1:") && url.ends_with(&format!("/page/{size}")),
            "{who}: {url}"
        );
        assert_eq!(
            lines,
            [
                lines[0].to_owned(),
                format!("{size} bytes received from {url}")
            ],
            "{who}"
        );
        gets.push(at(&who, "GET: "));
        received.push(at(&who, &format!("{size} bytes received")));
    }
    let seed = index(&said, "as the seed wrote it: cost time");
    let patched = index(&said, "patched: cost time");
    // As written: GET, reply, GET, reply... in the order spawned.
    let serial: Vec<usize> = (0..4).flat_map(|i| [gets[i], received[i]]).collect();
    assert!(serial.is_sorted(), "the unpatched fetches overlapped");
    assert!(received[3] < seed && seed < gets[4]);
    // Patched: the four GETs, in the order spawned, all before the first reply.
    assert!(
        gets[4..].is_sorted(),
        "the patched tasks did not start in order"
    );
    assert!(
        gets[7] < *received[4..].iter().min().unwrap(),
        "a reply came before all four had asked"
    );
    assert!(*received[4..].iter().max().unwrap() < patched);
    let (seed, patched) = (&said[seed].text, &said[patched].text);
    assert!(
        seed.ends_with("the server held at most 1 connection(s) at once"),
        "{seed}"
    );
    assert!(
        patched.ends_with("the server held at most 4 connection(s) at once"),
        "{patched}"
    );
    // Lower bounds only (the times are printed to the millisecond): four delays one after
    // another as written, at least one patched. Which is faster is not asserted here.
    assert!(cost_time(seed) >= 4.0 * delay - 0.0005, "{seed}");
    assert!(cost_time(patched) >= delay - 0.0005, "{patched}");
}

/// `cargo run -p coroutines -- select-poll-epoll`, the whole lesson: select, poll and epoll
/// in turn each serve the 100 clients, every client getting its own line back; then
/// `SelectSelector` refuses a descriptor numbered 1100 with an error.
#[test]
fn select_poll_epoll_the_whole_lesson_serves_every_client_on_each_and_select_refuses_fd_1100() {
    let said = run_lesson(Cx::quiet(0.01), select_poll_epoll::run);
    let n = select_poll_epoll::CLIENTS;
    assert_eq!(n, 100);
    // What the clients send (`multiplex::run_clients`): each its own line.
    let bytes: usize = (0..n)
        .map(|i| format!("client {i} says hello\n").len())
        .sum();
    let mut order = Vec::new();
    for backend in ["Select", "Poll", "Epoll"] {
        let i = index(&said, &format!("{backend}: "));
        order.push(i);
        let line = &said[i].text;
        let head = format!(
            "{backend}: {n}/{n} clients got their bytes back; {n} accepted, {bytes} bytes \
             echoed, {n} open at most, "
        );
        let waits: usize = line
            .strip_prefix(&head)
            .and_then(|rest| rest.strip_suffix(" waits"))
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("{line:?} is not {head:?}N waits"));
        // Counted, not timed: the first wait finds only the listener; each client sends its
        // line only once the one before got its echo back, so each line takes a wait of its
        // own; and the clients close only after the last echo, so the closes take one more.
        assert!(waits >= n + 2, "{line}");
        // And no wait was for nothing: each brought an accept, a read of a byte or more, or
        // a close.
        assert!(waits <= n + bytes + n, "{line}");
    }
    let refused = index(&said, "SelectSelector.register(fd ");
    order.push(refused);
    assert!(
        order.is_sorted(),
        "not select, poll, epoll, then the refusal"
    );
    let line = &said[refused].text;
    let fd: i32 = line
        .strip_prefix("SelectSelector.register(fd ")
        .and_then(|rest| rest.split_once(')'))
        .and_then(|(fd, _)| fd.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(fd >= 1100, "{line}");
    assert_eq!(
        *line,
        format!(
            "SelectSelector.register(fd {fd}): select cannot watch fd {fd}: it only handles fds \
             below 1024 (use poll or epoll)"
        )
    );
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
    assert_eq!(d.callbacks.len(), 5, "{:?}", d.callbacks);
    // Counted, not timed: each wait ended with an event (the loop waits with no time limit
    // but the timer's, rounded up), and each event ran a callback, which logged a line or
    // more: at most one wait per line, however the keys are spaced (keys that come together
    // are read in one wait, which only lowers the count). And at least two: one for the keys,
    // read before the end of input, and one for the end of input.
    assert!(
        d.waits >= 2 && d.waits <= d.callbacks.len(),
        "{} waits for the events of {:?}",
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
