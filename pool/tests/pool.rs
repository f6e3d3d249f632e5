//! The pool's behaviour. Every test holds `support::FORK` (as nix's tests hold their
//! FORK_MTX): they fork workers, and they share the gauge and the probe in shared memory.

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lesson::{Cx, within};
use pool::lessons::tasks::{Square, Trouble, gauge};
use pool::lessons::{crash, crawler, pool as pool_lesson};
use pool::{Pool, PoolError, TaskError};
use support::{Work, serial};

const LONG: Duration = Duration::from_secs(60);

fn gone(pid: i32) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn never_more_than_n_at_once_and_n_is_reached() {
    let _fork = serial();
    let most = within(LONG, "gauge", || {
        let g = gauge().unwrap();
        g.reset();
        let mut p: Pool<Trouble> = Pool::new(3).unwrap();
        let results: Vec<u32> = p
            .map((0..9).map(|i| Trouble::Meet(i, 3)).collect(), 1)
            .unwrap();
        assert_eq!(results, (0..9).collect::<Vec<_>>());
        p.close();
        p.join().unwrap();
        g.most()
    });
    assert_eq!(most, 3);
}

#[test]
fn every_callback_runs_in_the_parent() {
    let _fork = serial();
    let seen = within(LONG, "callbacks", || {
        pool_lesson::run_pool(&Cx::quiet(0.01), 5, 12).unwrap()
    });
    let me = std::process::id();
    assert_eq!(seen.callback_pids.len(), 12);
    assert!(seen.callback_pids.iter().all(|&p| p == me));
    let got: BTreeSet<String> = seen.results.into_iter().collect();
    let want: BTreeSet<String> = (0..12).map(|i| format!("Hello {i}")).collect();
    assert_eq!(got, want);
    assert!(seen.most <= 5);
}

#[test]
fn apply_async_results_match_their_inputs_and_map_keeps_order() {
    let _fork = serial();
    within(LONG, "results", || {
        let mut p: Pool<Square> = Pool::new(2).unwrap();
        let handles: Vec<_> = (0..200)
            .map(|i| p.apply_async(Square(i)).unwrap())
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(h.get().unwrap(), (i * i) as u64);
        }
        let items: Vec<Square> = (0..1000).map(Square).collect();
        let want: Vec<u64> = (0..1000).map(|i| i * i).collect();
        assert_eq!(p.map(items.clone(), 7).unwrap(), want);
        assert_eq!(p.map(items.clone(), 1).unwrap(), want);
        let ordered: Vec<u64> = p
            .imap(items.clone(), 13)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(ordered, want);
        let mut unordered: Vec<u64> = p
            .imap_unordered(items, 13)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        unordered.sort();
        assert_eq!(unordered, want);
        assert_eq!(p.apply(Square(12)).unwrap(), 144);
        p.close();
        p.join().unwrap();
    });
}

#[test]
fn a_panicking_task_is_an_error_and_a_killed_worker_is_replaced() {
    let _fork = serial();
    let a = within(LONG, "trouble", || {
        crash::trouble(&Cx::quiet(0.01)).unwrap()
    });
    match &a.results[3] {
        Err(TaskError::Panicked(m)) => assert!(m.contains("task 3 panicked on purpose"), "{m}"),
        other => panic!("{other:?}"),
    }
    match a.results[6] {
        Err(TaskError::WorkerDied {
            pid,
            signal: Some(9),
            ..
        }) => {
            assert!(a.before.contains(&pid));
            assert!(!a.after.contains(&pid));
            assert!(gone(pid));
        }
        ref other => panic!("{other:?}"),
    }
    for (i, r) in a.results.iter().enumerate() {
        if i != 3 && i != 6 {
            assert_eq!(r, &Ok(i as u32));
        }
    }
    assert_eq!(a.live, 2);
}

#[test]
fn a_worker_killed_from_outside_mid_task_fails_that_task_within_a_deadline() {
    let _fork = serial();
    within(LONG, "external kill", || {
        let pr = support::probe();
        pr.reset();
        let mut p: Pool<Work> = Pool::new(2).unwrap();
        // One task waits at a gate in its worker; once it is there, that worker is killed.
        let long = p.apply_async(Work::Block(0)).unwrap();
        let other = p.apply_async(Work::Nap(1, 1000)).unwrap();
        let victim = pr.wait_ready();
        support::kill_now(victim);
        match long.get() {
            Err(TaskError::WorkerDied {
                pid,
                signal: Some(9),
                ..
            }) => assert_eq!(pid, victim),
            other => panic!("{other:?}"),
        }
        assert_eq!(other.get(), Ok(support::sq(1)));
        // The pool goes on with a fresh worker.
        assert_eq!(p.apply(Work::Square(5)), Ok(support::sq(5)));
        support::eventually("two workers again", || p.live_workers() == 2);
        assert!(!p.worker_pids().contains(&victim));
        p.close();
        p.join().unwrap();
    });
}

#[test]
fn join_before_close_is_an_error_and_close_refuses_new_work() {
    let _fork = serial();
    within(LONG, "close/join", || {
        let mut p: Pool<Square> = Pool::new(1).unwrap();
        assert_eq!(p.join(), Err(PoolError::StillOpen));
        p.close();
        assert!(matches!(p.apply_async(Square(1)), Err(PoolError::Closed)));
        p.join().unwrap();
    });
}

#[test]
fn terminate_reaps_workers_and_fails_what_was_not_done() {
    let _fork = serial();
    within(LONG, "terminate", || {
        let mut p: Pool<Trouble> = Pool::new(2).unwrap();
        let pids = p.worker_pids();
        let handles: Vec<_> = (0..10)
            .map(|i| p.apply_async(Trouble::Slow(i, 2000)).unwrap())
            .collect();
        std::thread::sleep(Duration::from_millis(100));
        let t = Instant::now();
        p.terminate();
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "terminate waited for the tasks"
        );
        for h in handles {
            assert!(h.get().is_err());
        }
        for pid in pids {
            assert!(gone(pid), "worker {pid} was not reaped");
        }
    });
}

#[test]
fn a_panicking_callback_does_not_wedge_the_pool() {
    let _fork = serial();
    within(LONG, "callback panic", || {
        let mut p: Pool<Square> = Pool::new(1).unwrap();
        let r = p
            .apply_async_with(Square(3), |_| panic!("callback bug"), |_| {})
            .unwrap();
        assert_eq!(r.get().unwrap(), 9);
        let ok = Arc::new(Mutex::new(None));
        let seen = ok.clone();
        let r = p
            .apply_async_with(Square(4), move |v| *seen.lock().unwrap() = Some(*v), |_| {})
            .unwrap();
        assert_eq!(r.get().unwrap(), 16);
        assert_eq!(*ok.lock().unwrap(), Some(16));
        p.close();
        p.join().unwrap();
    });
}

#[test]
fn maxtasksperchild_replaces_workers() {
    let _fork = serial();
    within(LONG, "maxtasksperchild", || {
        let mut p: Pool<Trouble> = Pool::<Trouble>::builder()
            .processes(1)
            .maxtasksperchild(2)
            .build()
            .unwrap();
        let mut pids = BTreeSet::new();
        for i in 0..6 {
            pids.insert(p.worker_pids()[0]);
            assert_eq!(p.apply(Trouble::Fine(i)).unwrap(), i);
        }
        assert!(pids.len() >= 3, "{pids:?}");
        p.close();
        p.join().unwrap();
    });
}

#[test]
fn the_crawler_writes_one_line_per_good_page_and_reports_the_bad_one() {
    let _fork = serial();
    let (lines, errors) = within(LONG, "crawler", || {
        crawler::crawl(&Cx::quiet(0.01)).unwrap()
    });
    assert_eq!(lines.len(), 3, "{lines:?}");
    for (path, size) in crawler::PAGES {
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.contains(&format!("{path}> size:[{size}]")))
                .count(),
            1,
            "{path}: {lines:?}"
        );
    }
    assert_eq!(errors.len(), 1);
    assert!(errors[0].contains("HTTP 500"), "{errors:?}");
}

#[test]
fn get_timeout_gives_the_handle_back() {
    let _fork = serial();
    within(LONG, "get_timeout", || {
        let mut p: Pool<Trouble> = Pool::new(1).unwrap();
        let h = p.apply_async(Trouble::Slow(1, 300)).unwrap();
        let h = match h.get_timeout(Duration::from_millis(10)) {
            Err(h) => h,
            Ok(r) => panic!("finished early: {r:?}"),
        };
        assert!(!h.ready());
        assert_eq!(h.successful(), None);
        assert_eq!(h.get_timeout(LONG).map_err(|_| ()).unwrap(), Ok(1));
        p.close();
        p.join().unwrap();
    });
}

#[test]
fn join_returns_only_after_every_callback_has_run() {
    let _fork = serial();
    let done = within(LONG, "join waits for callbacks", || {
        let mut p: Pool<Square> = Pool::new(2).unwrap();
        let done = Arc::new(Mutex::new(0));
        for i in 0..10 {
            let done = done.clone();
            p.apply_async_with(
                Square(i),
                move |_| {
                    // A slow callback: join must still wait for it.
                    std::thread::sleep(Duration::from_millis(5));
                    *done.lock().unwrap() += 1;
                },
                |_| {},
            )
            .unwrap();
        }
        p.close();
        p.join().unwrap();
        *done.lock().unwrap()
    });
    assert_eq!(done, 10);
}

/// What `multiprocessing.current_process().name` says inside a pool worker.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct WhoAmI(bool);

impl pool::Task for WhoAmI {
    type Output = (i32, Option<String>);
    fn run(self) -> anyhow::Result<(i32, Option<String>)> {
        if self.0 {
            let _ =
                nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGKILL);
        }
        Ok((std::process::id() as i32, pool::current_worker_name()))
    }
}

#[test]
fn workers_are_named_as_python_names_them_and_a_replacement_takes_the_next_number() {
    let _fork = serial();
    within(LONG, "names", || {
        assert_eq!(pool::current_worker_name(), None, "the parent is no worker");
        let mut p: Pool<WhoAmI> = Pool::new(2).unwrap();
        let names = |p: &Pool<WhoAmI>| -> BTreeSet<String> {
            p.workers().into_iter().map(|(_, n)| n).collect()
        };
        assert_eq!(
            names(&p),
            BTreeSet::from(["ForkPoolWorker-1".into(), "ForkPoolWorker-2".into()])
        );
        let (pid, name) = p.apply(WhoAmI(false)).unwrap();
        let listed = p.workers();
        assert!(
            listed.contains(&(pid, name.clone().expect("a worker has a name"))),
            "{name:?} of pid {pid} is listed: {listed:?}"
        );
        assert!(matches!(
            p.apply(WhoAmI(true)),
            Err(TaskError::WorkerDied { .. })
        ));
        support::eventually("the dead worker is replaced", || p.live_workers() == 2);
        let now = names(&p);
        assert!(now.contains("ForkPoolWorker-3"), "the replacement: {now:?}");
        assert_eq!(now.len(), 2);
        p.close();
        p.join().unwrap();
    });
}

/// Python's order, `pool -- pool` (issue 18): with `workers` workers, task `j` may start only
/// once at least `j - (workers - 1)` tasks have finished (a worker takes its next task when
/// it is free, from one queue in order), and the tasks started before any finished are
/// exactly the first `workers` (they meet before any ends).
fn assert_pythons_order(before: &[Option<u32>], workers: usize) {
    for (j, b) in before.iter().enumerate() {
        let b = b.unwrap_or_else(|| panic!("task {j} never started: {before:?}"));
        assert!(
            b as usize + workers > j,
            "task {j} started when only {b} had finished: a worker was handed it before it was \
             free (finished-before per task: {before:?})"
        );
    }
    let first: Vec<usize> = (0..before.len())
        .filter(|&j| before[j] == Some(0))
        .collect();
    assert_eq!(
        first,
        (0..workers).collect::<Vec<_>>(),
        "the first wave (started before any task finished)"
    );
}

fn waves(p: &Pool<Trouble>, count: u32, workers: u64, ms: u64) -> Vec<Option<u32>> {
    let g = gauge().unwrap();
    g.reset();
    let handles: Vec<_> = (0..count)
        .map(|i| p.apply_async(Trouble::Wave { i, n: workers, ms }).unwrap())
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.get(), Ok(i as u32));
    }
    g.finished_before(count as usize)
}

#[test]
fn tasks_start_one_per_free_worker_in_submission_order_as_in_python() {
    let _fork = serial();
    within(LONG, "Python's order", || {
        // Tasks of 3 ms: longer than a batch's threshold, whatever the machine's load.
        gauge().unwrap(); // before the workers are forked
        let mut p: Pool<Trouble> = Pool::new(5).unwrap();
        assert_pythons_order(&waves(&p, 20, 5, 3), 5);
        p.close();
        p.join().unwrap();
    });
}

#[test]
fn max_batch_1_keeps_pythons_order_even_for_tiny_tasks() {
    let _fork = serial();
    within(LONG, "max_batch(1)", || {
        gauge().unwrap();
        let mut p: Pool<Trouble> = pool::Builder::default()
            .processes(4)
            .max_batch(1)
            .build()
            .unwrap();
        // Tasks that take no time: the default would batch them once it saw how short they
        // are; max_batch(1) never does. (The first wave meets, so none ends before the fourth
        // has started.)
        for _ in 0..3 {
            assert_pythons_order(&waves(&p, 40, 4, 0), 4);
        }
        p.close();
        p.join().unwrap();
        assert_eq!(
            Pool::<Trouble>::builder()
                .max_batch(0)
                .build::<Trouble>()
                .map(|_| ()),
            Err(PoolError::Invalid(
                "max_batch must be at least 1 (or not set)".into()
            ))
        );
    });
}

/// `pool -- crawler`, the seed's crawler as written (issue 18): a 500 page gives `None`, its
/// callback panics on the result thread. Python's result-handler thread dies there and
/// `pool.join()` waits forever; here join returns (under a deadline), every other callback
/// ran, the panic is counted with its message, and the task's result is still `Ok(None)`.
#[test]
fn the_seeds_crawler_as_written_does_not_hang_join() {
    let _fork = serial();
    let seen = within(LONG, "the seed's crawler as written", || {
        crawler::crawl_as_written(&Cx::quiet(0.01)).unwrap()
    });
    assert_eq!(seen.lines.len(), crawler::PAGES.len(), "{seen:?}");
    assert_eq!(seen.panics.len(), 1, "{seen:?}");
    assert!(seen.panics[0].contains("on a `None` value"), "{seen:?}");
    for (url, r) in &seen.results {
        if url.ends_with("/broken") {
            assert_eq!(r, &Ok(None));
        } else {
            assert!(matches!(r, Ok(Some(_))), "{url}: {r:?}");
        }
    }
}

#[test]
fn callback_panics_are_counted_and_kept_and_results_still_arrive() {
    let _fork = serial();
    within(LONG, "callback panics", || {
        let mut p: Pool<Square> = Pool::new(2).unwrap();
        let handles: Vec<_> = (0..100u64)
            .map(|i| {
                p.apply_async_with(
                    Square(i),
                    move |v| assert!(*v % 400 != 0, "a square of a multiple of 20: {v}"),
                    |_| {},
                )
                .unwrap()
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(
                h.get(),
                Ok((i * i) as u64),
                "the result arrives all the same"
            );
        }
        p.close();
        p.join().unwrap();
        assert_eq!(p.callback_panic_count(), 5);
        let kept = p.callback_panics();
        assert_eq!(kept.len(), 5);
        assert!(
            kept.iter()
                .all(|m| m.starts_with("a square of a multiple of 20")),
            "{kept:?}"
        );
    });
}
