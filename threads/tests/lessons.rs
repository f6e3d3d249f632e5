//! Each lesson's claims, checked on its narration records (at a small time scale).

use lesson::testing::index;
use lesson::{Activity, Cx, Kind, Record};
use threads::lessons::{daemon, gil, join, local, spawn};

/// The scale for lesson tests: the seed's 1 s becomes 40 ms, enough for the orderings the
/// lessons rely on (they sleep, the other side does not) to hold on a loaded machine.
const SCALE: f64 = 0.04;

fn cx() -> Cx {
    Cx::quiet(SCALE).with_exe(env!("CARGO_BIN_EXE_threads"))
}

fn indices(records: &[Record], needle: &str) -> Vec<usize> {
    records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.text.contains(needle))
        .map(|(i, _)| i)
        .collect()
}

/// Lines and spans of a lesson run.
fn timeline(f: lesson::RunFn) -> Vec<Record> {
    let cx = cx();
    let keep = cx.clone();
    lesson::testing::run_lesson(cx, f);
    keep.timeline()
}

fn spans(r: &[Record], who: &str, activity: Activity) -> usize {
    r.iter()
        .filter(|x| x.speaker == who)
        .filter(|x| matches!(x.kind, Kind::Span { activity: a, .. } if a == activity))
        .count()
}

#[test]
fn gil_serial_and_parallel_results_are_equal() {
    let serial = gil::count_primes(0, 1, gil::LIMIT);
    assert_eq!(serial, 17984, "primes below 200000");
    for n in [1, 2, 3, 7] {
        assert_eq!(gil::parallel(gil::LIMIT, n), serial, "{n} threads");
    }
    // Odd limits and more workers than blocks still cover every number once.
    assert_eq!(gil::parallel(12_345, 40), gil::count_primes(0, 1, 12_345));
    let (count, _, workers) = gil::observed(&Cx::quiet(SCALE), 12_345, 3, false).unwrap();
    assert_eq!(count, gil::count_primes(0, 1, 12_345));
    assert_eq!(workers.len(), 3);
    assert!(workers.iter().all(|w| !w.cpus.is_empty()));
}

/// The number before `needle` in `text` ("... speedup 1.93x" -> 1.93).
fn number_after(text: &str, needle: &str) -> f64 {
    let rest = &text[text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} in {text}"))
        + needle.len()..];
    let digits: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("a number after {needle:?} in {text}"))
}

#[test]
fn gil_claims_parallelism_only_when_its_figures_show_it() {
    // `cargo run -p threads -- gil` (issue 18, claim 5): a job of at least 200 ms, the best of
    // a few runs, and the sentence that the threads ran in parallel only when the measured
    // speedup reaches the lesson's bar; otherwise a reason instead. Which one appears depends on
    // the machine; that they agree with the printed figure does not.
    let r = timeline(gil::run);
    let said: Vec<&Record> = r.iter().filter(|x| x.kind == Kind::Said).collect();
    let pick = |needle: &str| {
        said.iter()
            .find(|x| x.text.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in {said:#?}"))
    };
    let threads_line = &pick("threads: ").text;
    // "... available_parallelism() = 2 (also a cgroup quota): 2 threads, one per CPU ..."
    let n = number_after(&pick("cpu_count() = ").text, "quota): ") as usize;
    let speedup = number_after(threads_line, "speedup ");
    assert!(pick("1 thread: ").text.contains("(best of 3)"));
    assert!(threads_line.contains("(best of 3)"));
    let claimed = said.iter().any(|x| x.text.starts_with("parallel: "));
    let explained = said
        .iter()
        .any(|x| x.text.starts_with("no parallel speedup shown"));
    assert!(
        claimed != explained,
        "exactly one of the claim and its reason: {said:#?}"
    );
    let bar = gil::parallel_threshold(n.max(1));
    if claimed {
        assert!(
            n >= 2 && speedup >= bar,
            "claimed at {speedup}x on {n} threads"
        );
    } else {
        assert!(
            n < 2 || speedup < bar,
            "a {speedup}x speedup on {n} threads went unclaimed"
        );
    }
    // The job is sized to take at least MIN_JOB of CPU time on one thread; a run's wall time
    // is at least its CPU time (0.9: the same job's CPU time varies a little from run to run).
    let serial_ms = number_after(&pick("1 thread: ").text, "primes in ");
    assert!(
        serial_ms >= gil::MIN_JOB.as_millis() as f64 * 0.9,
        "{serial_ms} ms"
    );
    // Every worker is a row with its computing spans, one per run, and a line with its CPU.
    for w in ["worker-1", "worker-2"].iter().take(n.max(1)) {
        assert_eq!(spans(&r, w, Activity::Work), gil::RUNS, "{w}");
        let line = said.iter().find(|x| x.speaker == *w).unwrap();
        assert!(line.text.contains("ran on CPU "), "{}", line.text);
        assert!(line.cpu.is_some());
    }
    // The GIL's release while sleeping, said beside the sleep demos' claim.
    let python = said.iter().find(|x| x.text.starts_with("python3"));
    if let Some(py) = python {
        assert!(py.text.contains("speedup"), "{}", py.text);
    }
}
#[test]
fn python_counts_the_same_primes_when_present() {
    match gil::python(20_000, 2).unwrap() {
        None => eprintln!("python3 not installed: Python side not checked"),
        Some(py) => assert_eq!(py.primes, gil::count_primes(0, 1, 20_000)),
    }
}

#[test]
fn spawn_threads_overlap_and_run_directly_stays_on_the_caller() {
    let cx = cx();
    spawn::run(&cx).unwrap();
    let r = cx.records();
    let hellos = [index(&r, "hello 10"), index(&r, "hello 9")];
    let dones = [index(&r, "done 10"), index(&r, "done 9")];
    assert!(hellos.iter().max() < dones.iter().min(), "{r:#?}");
    assert_eq!(r[hellos[0]].speaker, "Thread-1");
    assert_eq!(r[hellos[1]].speaker, "Thread-2");
    assert_eq!(r[index(&r, "running on number: 1")].speaker, "MyThread-1");
    index(&r, "the threads returned 1 and 2");
    let direct = &r[index(&r, "running on number: 3")];
    assert_eq!(Some(direct.speaker.as_str()), std::thread::current().name());
}

#[test]
fn join_orders_ending_before_or_after_the_game() {
    let cx = cx();
    join::run(&cx).unwrap();
    let r = cx.records();
    let stops = indices(&r, "stop to game");
    assert_eq!(stops.len(), 2);
    assert!(index(&r, "ending.... (without join)") < stops[0], "{r:#?}");
    assert!(index(&r, "ending.... (with join)") > stops[1], "{r:#?}");
    assert!(
        r[index(&r, "joined only the last")]
            .text
            .ends_with("still alive = [sleeper-1, sleeper-2]")
    );
    assert!(index(&r, "joined every thread") > index(&r, "slept 3 s"));
}

#[test]
fn daemon_main_returning_kills_threads_and_joining_emulates_python() {
    let lines = daemon::child_lines(&cx(), "main-returns").unwrap();
    assert!(lines.iter().any(|l| l.contains("begin to game")));
    assert!(lines.iter().any(|l| l.contains("ending")));
    assert!(!lines.iter().any(|l| l.contains("stop")), "{lines:?}");

    let cx = cx();
    daemon::run(&cx).unwrap();
    let r = cx.records();
    index(
        &r,
        "rust, main returned: music stopped? no, game stopped? no",
    );
    index(&r, "joining all: music stopped? yes, game stopped? yes");
    index(
        &r,
        "joining music only: music stopped? yes, game stopped? no",
    );
    assert!(index(&r, "scope returned") > index(&r, "stop to game"));
    // `cargo run -p threads -- daemon`: the seed's "hangs forever" without setDaemon is
    // corrected: the child waited for the game, then ended by itself.
    let waited = index(
        &r,
        "it does not hang, it waits. The process ended on its own after",
    );
    assert!(index(&r, "joining all: music stopped? yes, game stopped? yes") < waited);
}

#[test]
fn every_speaker_who_ran_has_a_row_with_its_activity() {
    // The threads chapter's timeline (`cargo run -p threads -- LESSON --timeline`): the threads
    // and helper processes that ran appear in the records under their names, with the spans
    // the lessons claim.
    let main = std::thread::current().name().unwrap_or("main").to_owned();
    let r = timeline(spawn::run);
    for who in ["Thread-1", "Thread-2", "MyThread-1", "MyThread-2"] {
        assert_eq!(spans(&r, who, Activity::Sleep), 1, "{who}");
    }
    let r = timeline(join::run);
    for who in ["music", "game", "sleeper-1", "sleeper-2", "sleeper-3"] {
        assert!(r.iter().any(|x| x.speaker == who), "{who}");
    }
    assert_eq!(spans(&r, "game", Activity::Sleep), 2);
    assert!(spans(&r, &main, Activity::Wait) >= 3, "main's joins");
    let r = timeline(daemon::run);
    for helper in ["main-returns", "python-default", "python-daemon"] {
        for thread in ["main", "music", "game"] {
            let who = format!("{helper}/{thread}");
            assert!(r.iter().any(|x| x.speaker == who), "{who}: {r:#?}");
        }
    }
    // Joined: the game slept its 5 s; killed with its process: no sleep was ever recorded.
    assert_eq!(spans(&r, "python-default/game", Activity::Sleep), 1);
    assert_eq!(spans(&r, "main-returns/game", Activity::Sleep), 0);
    assert_eq!(spans(&r, "python-default/main", Activity::Wait), 1);
}

#[test]
fn local_values_are_per_thread_per_object_and_a_fork_keeps_the_forkers() {
    // `cargo run -p threads -- local`.
    let r = timeline(local::run);
    index(
        &r,
        "each thread found 0 and kept its own: [10, 20, 30]; main's MINE is still 7",
    );
    index(&r, "a.bump() twice, b.bump() once -> b counts 3");
    index(
        &r,
        "a twice, b once -> b counts 1; a on every thread that used it: [1, 2], b: [1]",
    );
    let by_main = &r[index(&r, "in the child forked by this thread: MINE = 7")];
    assert_eq!(by_main.speaker, "forked-by-main");
    let by_worker = &r[index(&r, "in the child forked by this thread: MINE = 42")];
    assert_eq!(by_worker.speaker, "forked-by-forker");
    assert_ne!(by_main.pid, by_worker.pid);
    for who in ["local-1", "local-2", "local-3"] {
        assert_eq!(spans(&r, who, Activity::Sleep), 1, "{who}");
    }
    // Each thread's own static: the test thread's copy is untouched by the lesson's threads.
    let other = std::thread::spawn(|| local::MINE.with(std::cell::Cell::get))
        .join()
        .unwrap();
    assert_eq!(other, 0);
}

#[test]
fn a_helper_without_the_chapter_binary_is_an_error_not_a_panic() {
    let err = daemon::run(&Cx::quiet(SCALE)).unwrap_err();
    assert!(err.to_string().contains("chapter binary"), "{err}");
}
