//! Faults at chosen moments (issue 19): a worker SIGKILLed mid-chunk, between two tasks of a
//! chunk, or idle; a task or result that cannot be encoded or is over the frame limit; the
//! pool's settings at their edges. (Process and descriptor limits lowered in a child process
//! are in `faults_limits.rs`.)
//!
//! Each checks: one result per task, in its place; `WorkerDied` only for a task that had
//! started (the probe counts starts in shared memory, so "each task ran at most once" is
//! checked too); no hang (every test under a deadline); no child left; the pool usable after.

mod support;

use std::collections::HashMap;

use lesson::within;
use pool::{Pool, PoolError, TaskError};
use support::{
    KillOnDecode, LONG, Out, PanicOnDecode, StallOnDecode, Work, assert_no_children, eventually,
    exited, kill_now, probe, serial, sq,
};

fn died_by_kill(r: &Result<Out, TaskError>, pid: i32) -> bool {
    matches!(r, Err(TaskError::WorkerDied { pid: p, signal: Some(9), .. }) if *p == pid)
}

/// After a fault: the pool runs a fresh map correctly, is back to full strength, and leaves
/// nothing behind once joined.
fn still_usable(mut p: Pool<Work>, n: usize) {
    let work: Vec<Work> = (0..200).map(Work::Square).collect();
    let want: Vec<Out> = (0..200).map(sq).collect();
    assert_eq!(p.map(work.clone(), 7).unwrap(), want);
    assert_eq!(p.map(work, 1).unwrap(), want);
    eventually("the pool is back to full strength", || {
        p.live_workers() == n && p.worker_pids().len() == n
    });
    p.close();
    p.join().unwrap();
    assert_no_children();
}

/// Issue 19, item 1, with `imap`: only the task the dead worker was running fails; the tasks of
/// its chunk it had finished keep their results, those it had not started run elsewhere.
#[test]
fn a_worker_killed_mid_chunk_fails_only_its_running_task_imap() {
    let _fork = serial();
    within(LONG, "mid-chunk kill, imap", || {
        let pr = probe();
        pr.reset();
        let p: Pool<Work> = Pool::new(2).unwrap();
        let work: Vec<Work> = (0..40)
            .map(|i| {
                if i == 13 {
                    Work::Block(i)
                } else {
                    Work::Square(i)
                }
            })
            .collect();
        let results = std::thread::scope(|s| {
            let it = p.imap(work, 8).unwrap();
            let reader = s.spawn(move || it.collect::<Vec<_>>());
            let victim = pr.wait_ready();
            kill_now(victim);
            (reader.join().unwrap(), victim)
        });
        let (results, victim) = results;
        assert_eq!(results.len(), 40);
        for (i, r) in results.iter().enumerate() {
            if i == 13 {
                assert!(died_by_kill(r, victim), "{i}: {r:?}");
            } else {
                assert_eq!(r, &Ok(sq(i as u32)), "{i}");
            }
        }
        assert_eq!(pr.starts(40), vec![1; 40], "each task ran exactly once");
        assert!(!p.worker_pids().contains(&victim));
        still_usable(p, 2);
    });
}

/// Issue 19, item 1, with `imap_unordered` and `map`.
#[test]
fn a_worker_killed_mid_chunk_fails_only_its_running_task_unordered_and_map() {
    let _fork = serial();
    within(LONG, "mid-chunk kill, imap_unordered and map", || {
        let pr = probe();
        let p: Pool<Work> = Pool::new(3).unwrap();
        for unordered in [true, false] {
            pr.reset();
            let work: Vec<Work> = (0..60)
                .map(|i| {
                    if i == 27 {
                        Work::Block(i)
                    } else {
                        Work::Nap(i, 50)
                    }
                })
                .collect();
            let (results, victim) = std::thread::scope(|s| {
                let reader = s.spawn(|| {
                    if unordered {
                        p.imap_unordered(work, 10).unwrap().collect::<Vec<_>>()
                    } else {
                        vec![p.map(work, 10).map(|_| Out::N(0))]
                    }
                });
                let victim = pr.wait_ready();
                kill_now(victim);
                (reader.join().unwrap(), victim)
            });
            if unordered {
                assert_eq!(results.len(), 60);
                let died = results.iter().filter(|r| died_by_kill(r, victim)).count();
                assert_eq!(died, 1, "{results:?}");
                let mut got: Vec<Out> = results.into_iter().filter_map(Result::ok).collect();
                got.sort_by_key(|o| match o {
                    Out::N(n) => *n,
                    _ => u64::MAX,
                });
                let want: Vec<Out> = (0..60).filter(|&i| i != 27).map(sq).collect();
                assert_eq!(got, want);
            } else {
                // map waits for every task and reports the first error: the killed one.
                assert!(died_by_kill(&results[0], victim), "{results:?}");
            }
            assert_eq!(pr.starts(60), vec![1; 60], "each task ran exactly once");
        }
        still_usable(p, 3);
    });
}

/// Issue 19, item 1 (between tasks): a worker killed after finishing some tasks of a chunk
/// and before starting the next (it is decoding it): no task fails, none runs twice.
#[test]
fn a_worker_killed_between_two_tasks_of_a_chunk_fails_none() {
    let _fork = serial();
    within(LONG, "kill between tasks", || {
        let pr = probe();
        pr.reset();
        pr.decode_armed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let p: Pool<Work> = Pool::new(2).unwrap();
        let work: Vec<Work> = (0..20)
            .map(|i| {
                if i == 4 {
                    Work::Stall(i, StallOnDecode)
                } else {
                    Work::Square(i)
                }
            })
            .collect();
        let results = std::thread::scope(|s| {
            let it = p.imap(work, 10).unwrap();
            let reader = s.spawn(move || it.collect::<Vec<_>>());
            let victim = pr.wait_ready();
            kill_now(victim);
            reader.join().unwrap()
        });
        let want: Vec<Result<Out, TaskError>> = (0..20).map(|i| Ok(sq(i))).collect();
        assert_eq!(results, want);
        assert_eq!(pr.starts(20), vec![1; 20], "each task ran exactly once");
        still_usable(p, 2);
    });
}

/// A task whose decoding panics fails alone with `TaskEncoding` (the worker lives); a task
/// whose decoding kills its worker is not re-run for ever: after a second worker died decoding
/// it, it fails with `WorkerDied`, and the tasks around it run, each once.
#[test]
fn a_task_that_breaks_its_decoder_fails_alone_and_does_not_loop() {
    let _fork = serial();
    within(LONG, "tasks that break their decoder", || {
        let pr = probe();
        pr.reset();
        let p: Pool<Work> = Pool::new(2).unwrap();
        let before = p.worker_pids();
        match p.apply(Work::BadDecode(1, PanicOnDecode)) {
            Err(TaskError::TaskEncoding(m)) => assert!(m.contains("panicked"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(p.worker_pids(), before, "the worker lived on");
        assert!(matches!(
            p.apply(Work::DeadlyDecode(2, KillOnDecode)),
            Err(TaskError::WorkerDied {
                signal: Some(9),
                ..
            })
        ));
        let work: Vec<Work> = (10..30)
            .map(|i| {
                if i == 17 {
                    Work::DeadlyDecode(i, KillOnDecode)
                } else {
                    Work::Square(i)
                }
            })
            .collect();
        let results: Vec<_> = p.imap(work, 5).unwrap().collect();
        assert_eq!(results.len(), 20);
        for (k, r) in results.iter().enumerate() {
            let i = k as u32 + 10;
            if i == 17 {
                assert!(matches!(r, Err(TaskError::WorkerDied { .. })), "{r:?}");
            } else {
                assert_eq!(r, &Ok(sq(i)));
            }
        }
        let starts = pr.starts(30);
        assert_eq!((starts[1], starts[2], starts[17]), (0, 0, 0));
        assert!(
            starts[10..30]
                .iter()
                .enumerate()
                .all(|(k, &s)| s == u32::from(k != 7))
        );
        still_usable(p, 2);
    });
}

/// Issue 19, item 2: idle workers killed, then tasks submitted: none of them had started on a
/// dead worker, so none fails.
#[test]
fn idle_workers_killed_then_every_new_task_runs() {
    let _fork = serial();
    within(LONG, "idle kill", || {
        let pr = probe();
        pr.reset();
        let p: Pool<Work> = Pool::new(2).unwrap();
        let pids = p.worker_pids();
        for &pid in &pids {
            kill_now(pid);
        }
        eventually("both workers have exited", || {
            pids.iter().all(|&pid| exited(pid))
        });
        let handles: Vec<_> = (0..10)
            .map(|i| p.apply_async(Work::Square(i)).unwrap())
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(h.get(), Ok(sq(i as u32)), "task {i}");
        }
        assert_eq!(pr.starts(10), vec![1; 10]);
        still_usable(p, 2);
    });
}

/// Issue 19, item 4: a task that cannot be encoded, or is over the frame limit, fails at once
/// with an encoding error; it never reaches a worker, and the worker and the pool go on.
#[test]
fn an_unencodable_or_oversized_task_fails_at_once() {
    let _fork = serial();
    within(LONG, "unencodable tasks", || {
        let pr = probe();
        pr.reset();
        let p: Pool<Work> = Pool::new(1).unwrap();
        let before = p.worker_pids();
        match p.apply(Work::Huge(1, vec![0u8; 17 << 20].into())) {
            Err(TaskError::TaskEncoding(m)) => assert!(m.contains("over the limit"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            p.apply(Work::Unsendable(2, ())),
            Err(TaskError::TaskEncoding(_))
        ));
        let work: Vec<Work> = (10..20)
            .map(|i| match i {
                13 => Work::Unsendable(i, ()),
                16 => Work::Huge(i, vec![0u8; 17 << 20].into()),
                _ => Work::Square(i),
            })
            .collect();
        let results: Vec<_> = p.imap(work, 4).unwrap().collect();
        for (k, r) in results.iter().enumerate() {
            let i = k as u32 + 10;
            match i {
                13 | 16 => assert!(matches!(r, Err(TaskError::TaskEncoding(_))), "{i}: {r:?}"),
                _ => assert_eq!(r, &Ok(sq(i)), "{i}"),
            }
        }
        assert_eq!(results.len(), 10);
        let starts = pr.starts(20);
        assert_eq!((starts[1], starts[2], starts[13], starts[16]), (0, 0, 0, 0));
        assert_eq!(p.worker_pids(), before, "the worker lived on");
        still_usable(p, 1);
    });
}

/// Issue 19, item 6: a result that cannot be encoded, or is over the frame limit, is a
/// result-encoding error for that task (Python's MaybeEncodingError), and the worker lives.
#[test]
fn an_unencodable_or_oversized_result_is_an_encoding_error_and_the_worker_lives() {
    let _fork = serial();
    within(LONG, "unencodable results", || {
        probe().reset();
        let p: Pool<Work> = Pool::new(1).unwrap();
        let before = p.worker_pids();
        assert!(matches!(
            p.apply(Work::BadResult(1)),
            Err(TaskError::ResultEncoding(_))
        ));
        match p.apply(Work::BigResult(2, 17 << 20)) {
            Err(TaskError::ResultEncoding(m)) => assert!(m.contains("over the limit"), "{m}"),
            other => panic!("{other:?}"),
        }
        // A large result under the limit goes through (on its own, past the journal).
        match p.apply(Work::BigResult(3, 1 << 20)) {
            Ok(Out::Bytes(b)) => assert_eq!(b.len(), 1 << 20),
            other => panic!("{other:?}"),
        }
        let work: Vec<Work> = (0..12)
            .map(|i| match i {
                2 | 7 => Work::BadResult(i),
                5 => Work::BigResult(i, 200_000),
                _ => Work::Square(i),
            })
            .collect();
        let results: Vec<_> = p.imap(work, 6).unwrap().collect();
        assert_eq!(results.len(), 12);
        for (i, r) in results.iter().enumerate() {
            match i {
                2 | 7 => assert!(matches!(r, Err(TaskError::ResultEncoding(_))), "{i}: {r:?}"),
                5 => assert!(matches!(r, Ok(Out::Bytes(b)) if b.len() == 200_000)),
                _ => assert_eq!(r, &Ok(sq(i as u32))),
            }
        }
        assert_eq!(p.worker_pids(), before, "the worker lived on");
        still_usable(p, 1);
    });
}

/// Issue 19, item 7: `Pool(0)` and `maxtasksperchild(0)` are errors (Python: ValueError).
#[test]
fn zero_processes_or_zero_maxtasksperchild_is_an_error() {
    assert!(matches!(Pool::<Work>::new(0), Err(PoolError::Invalid(_))));
    assert!(matches!(
        Pool::<Work>::builder().processes(0).build::<Work>(),
        Err(PoolError::Invalid(_))
    ));
    assert!(matches!(
        Pool::<Work>::builder()
            .processes(1)
            .maxtasksperchild(0)
            .build::<Work>(),
        Err(PoolError::Invalid(_))
    ));
}

fn tasks_per_pid(results: &[Result<Out, TaskError>]) -> HashMap<i32, usize> {
    let mut per = HashMap::new();
    for r in results {
        match r {
            Ok(Out::Pid(pid)) => *per.entry(*pid).or_insert(0) += 1,
            other => panic!("{other:?}"),
        }
    }
    per
}

/// Issue 19, item 8: a worker never runs more than `maxtasksperchild` tasks, however the
/// tasks were batched or chunked.
#[test]
fn a_worker_never_runs_more_than_maxtasksperchild() {
    let _fork = serial();
    within(LONG, "maxtasksperchild", || {
        let mut p: Pool<Work> = Pool::<Work>::builder()
            .processes(1)
            .maxtasksperchild(2)
            .build()
            .unwrap();
        let handles: Vec<_> = (0..20)
            .map(|i| p.apply_async(Work::Pid(i)).unwrap())
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.get()).collect();
        let per = tasks_per_pid(&results);
        assert!(per.values().all(|&n| n <= 2), "{per:?}");
        assert_eq!(per.values().sum::<usize>(), 20);
        let results: Vec<_> = p
            .imap((0..20).map(Work::Pid).collect(), 10)
            .unwrap()
            .collect();
        let per = tasks_per_pid(&results);
        assert!(per.values().all(|&n| n <= 2), "{per:?}");
        assert_eq!(per.values().sum::<usize>(), 20);
        p.close();
        p.join().unwrap();
        let mut p: Pool<Work> = Pool::<Work>::builder()
            .processes(3)
            .maxtasksperchild(3)
            .build()
            .unwrap();
        let results: Vec<_> = p
            .imap_unordered((0..50).map(Work::Pid).collect(), 5)
            .unwrap()
            .collect();
        let per = tasks_per_pid(&results);
        assert!(per.values().all(|&n| n <= 3), "{per:?}");
        assert_eq!(per.values().sum::<usize>(), 50);
        p.close();
        p.join().unwrap();
        assert_no_children();
    });
}

/// A worker killed while idle between two `apply_async` waves, and a task that kills its own
/// worker in the middle of a wave: only that task fails; the waves complete.
#[test]
fn kills_between_and_during_apply_async_waves() {
    let _fork = serial();
    within(LONG, "apply_async waves", || {
        let pr = probe();
        pr.reset();
        let p: Pool<Work> = Pool::new(2).unwrap();
        let first: Vec<_> = (0..50)
            .map(|i| p.apply_async(Work::Square(i)).unwrap())
            .collect();
        for (i, h) in first.into_iter().enumerate() {
            assert_eq!(h.get(), Ok(sq(i as u32)));
        }
        let idle = p.worker_pids()[0];
        kill_now(idle);
        eventually("the idle worker exited", || exited(idle));
        let (second, victim) = std::thread::scope(|s| {
            let h = s.spawn(|| {
                (50..100)
                    .map(|i| {
                        p.apply_async(if i == 70 {
                            Work::Block(i)
                        } else {
                            Work::Nap(i, 100)
                        })
                        .unwrap()
                    })
                    .collect::<Vec<_>>()
            });
            let victim = pr.wait_ready();
            kill_now(victim);
            (h.join().unwrap(), victim)
        });
        for (k, h) in second.into_iter().enumerate() {
            let i = k as u32 + 50;
            let r = h.get();
            if i == 70 {
                assert!(died_by_kill(&r, victim), "{r:?}");
            } else {
                assert_eq!(r, Ok(sq(i)), "{i}");
            }
        }
        assert_eq!(pr.starts(100), vec![1; 100]);
        still_usable(p, 2);
    });
}

/// Terminate while a worker is dead and its tasks are queued: everything not done is
/// `Terminated`, one result per task, and every child is reaped.
#[test]
fn terminate_after_a_death_fails_the_rest_and_reaps_everything() {
    let _fork = serial();
    within(LONG, "terminate after a death", || {
        let pr = probe();
        pr.reset();
        let mut p: Pool<Work> = Pool::new(2).unwrap();
        let it = p
            .imap(
                (0..30)
                    .map(|i| {
                        if i == 0 {
                            Work::Block(i)
                        } else {
                            Work::Nap(i, 20_000)
                        }
                    })
                    .collect(),
                3,
            )
            .unwrap();
        let victim = pr.wait_ready();
        kill_now(victim);
        p.terminate();
        let results: Vec<_> = it.collect();
        assert_eq!(results.len(), 30);
        assert!(
            results
                .iter()
                .enumerate()
                .all(|(i, r)| r == &Ok(sq(i as u32)) || r.is_err()),
            "{results:?}"
        );
        assert!(matches!(
            p.apply_async(Work::Square(1)),
            Err(PoolError::Closed)
        ));
        assert!(p.worker_pids().is_empty());
        drop(p);
        assert_no_children();
    });
}
