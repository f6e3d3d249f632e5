//! Hub tasks: what their handles say (value, exception, killed), killing them, links,
//! `spawn_later`, and the state rules under unwinding. Tests that may crash run their body in
//! a child process (`support::isolated`).

mod support;

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::Duration;

use coroutines::hub::{self, Queue, TaskError, TaskExit, Trace, Waiting};
use coroutines::{Greenlet, val};
use lesson::within;
use support::isolated;

const FOREVER: Duration = Duration::from_secs(3600);

/// Counts its drops.
struct Counted(Rc<Cell<u32>>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

fn bounded<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    within(Duration::from_secs(60), name, f)
}

/// Calls `hub::sleep` from its destructor and notes whether the sleep failed.
struct SleepsWhenDropped(Rc<Cell<Option<bool>>>);

impl Drop for SleepsWhenDropped {
    fn drop(&mut self) {
        let failed = hub::sleep(Duration::from_millis(1)).is_err();
        self.0.set(Some(failed));
    }
}

/// A task whose destructor waits on the hub while the task's panic unwinds must not suspend
/// there: the panic count is the thread's, so every other task would then run "panicking"
/// (`std::thread::panicking()` true, a `Mutex` poisoned by any of them, a greenlet's switch
/// refused). The wait fails instead. Before the fix the other task saw `panicking() == true`.
#[test]
fn a_wait_while_a_task_panics_fails_and_no_other_task_runs_panicking() {
    isolated(
        "a_wait_while_a_task_panics_fails_and_no_other_task_runs_panicking",
        || {
            let failed = Rc::new(Cell::new(None));
            let seen = Rc::new(Cell::new(None));
            let f = failed.clone();
            let a = hub::spawn(move || {
                let _g = SleepsWhenDropped(f);
                panic!("boom");
            })
            .unwrap();
            let s = seen.clone();
            let b = hub::spawn(move || {
                for _ in 0..3 {
                    hub::yield_now().unwrap();
                    if std::thread::panicking() {
                        s.set(Some(true));
                    }
                }
                if s.get().is_none() {
                    s.set(Some(false));
                }
            })
            .unwrap();
            hub::joinall(&[&a, &b]).unwrap();
            assert_eq!(
                seen.get(),
                Some(false),
                "another task ran while a panic unwound"
            );
            assert_eq!(
                failed.get(),
                Some(true),
                "the wait during the unwind did not fail"
            );
            assert_eq!(a.exception().as_deref(), Some("boom"));
        },
    );
}

/// A task that kills itself: the exit is raised at the `kill` call, its destructors run, the
/// code after it does not, and the task ends killed.
#[test]
fn a_task_that_kills_itself_unwinds_from_the_kill() {
    bounded("self kill", || {
        let drops = Rc::new(Cell::new(0));
        let after = Rc::new(Cell::new(false));
        let me: Rc<RefCell<Option<hub::Spawned<()>>>> = Rc::default();
        let (d, a, m) = (drops.clone(), after.clone(), me.clone());
        let t = hub::spawn(move || {
            let _c = Counted(d);
            hub::yield_now().unwrap();
            let handle = m.borrow().clone().unwrap();
            let _ = handle.kill();
            a.set(true);
        })
        .unwrap();
        *me.borrow_mut() = Some(t.clone());
        hub::joinall(&[&t]).unwrap();
        assert!(t.killed() && t.done());
        assert!(!after.get(), "code after the kill ran");
        assert_eq!(drops.get(), 1);
        me.borrow_mut().take();
    });
}

/// A kill from a greenlet started inside the task (the task runs below it) cannot unwind the
/// task from there: it is raised at the task's next wait.
#[test]
fn a_kill_from_code_on_top_of_the_task_lands_at_its_next_wait() {
    bounded("kill from a greenlet on top", || {
        let reached = Rc::new(Cell::new(0));
        let slot: Rc<RefCell<Option<hub::Spawned<()>>>> = Rc::default();
        let (r, s) = (reached.clone(), slot.clone());
        let t = hub::spawn(move || {
            let s2 = s.clone();
            let g = Greenlet::new(move |_| {
                let me = s2.borrow().clone().unwrap();
                me.kill()
                    .map_err(|e| coroutines::GreenletError::thrown(e.to_string()))?;
                Ok(val(()))
            })
            .unwrap();
            g.switch(val(())).unwrap();
            r.set(1); // the kill did not unwind the task from inside the greenlet
            let _ = hub::yield_now(); // ... but here
            r.set(2);
        })
        .unwrap();
        *slot.borrow_mut() = Some(t.clone());
        hub::joinall(&[&t]).unwrap();
        assert_eq!(reached.get(), 1);
        assert!(t.killed());
        slot.borrow_mut().take();
    });
}

/// A task that catches its exit lives on, as a greenlet that catches `GreenletExit` does; the
/// exit was raised once, and its later waits work. A wake-up of the wait it was killed in
/// (here: its turn after `yield_now`, already queued) is stale and does not cut its next
/// wait short.
#[test]
fn a_task_that_catches_its_exit_lives_on_and_a_stale_wake_up_does_not_reach_it() {
    bounded("catch the exit", || {
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = log.clone();
        let victim = hub::spawn(move || {
            let caught = catch_unwind(AssertUnwindSafe(hub::yield_now));
            let exit = caught.expect_err("the kill was not raised at the wait");
            l.borrow_mut()
                .push(format!("caught TaskExit: {}", exit.is::<TaskExit>()));
            let slept = hub::sleep(FOREVER);
            l.borrow_mut().push(format!("slept: {slept:?}"));
        })
        .unwrap();
        let v = victim.clone();
        let killer = hub::spawn(move || v.kill().unwrap()).unwrap();
        // The victim runs first and yields (its turn is queued after the killer's); the killer
        // kills it, so it catches the exit and sleeps for ever.
        hub::joinall(&[&killer]).unwrap();
        hub::sleep(Duration::from_millis(20)).unwrap();
        assert_eq!(*log.borrow(), ["caught TaskExit: true"]);
        assert!(
            !victim.done(),
            "a stale wake-up ended its sleep: {:?}",
            log.borrow()
        );
        victim.kill().unwrap();
        assert!(victim.done() && victim.killed());
    });
}

/// A killed task's destructors run; one that waits on the hub gets an error (state rule 7)
/// instead of suspending the unwinding task.
#[test]
fn a_killed_tasks_destructor_that_waits_gets_an_error() {
    isolated("a_killed_tasks_destructor_that_waits_gets_an_error", || {
        let failed = Rc::new(Cell::new(None));
        let f = failed.clone();
        let t = hub::spawn(move || {
            let _g = SleepsWhenDropped(f);
            hub::sleep(FOREVER)
        })
        .unwrap();
        hub::yield_now().unwrap();
        t.kill().unwrap();
        assert_eq!(failed.get(), Some(true));
        assert!(t.killed());
    });
}

/// Two tasks wait on an empty queue; an item arrives and the first is woken, but killed
/// before it runs: the wake-up passes on, and the second gets the item.
#[test]
fn a_woken_getter_killed_before_it_runs_passes_the_item_on() {
    bounded("pass the wake-up on", || {
        let q: Queue<u32> = Queue::new();
        let (q1, q2) = (q.clone(), q.clone());
        let first = hub::spawn(move || q1.get().ok()).unwrap();
        let second = hub::spawn(move || q2.get().ok()).unwrap();
        hub::yield_now().unwrap(); // both wait
        q.put(7).unwrap(); // wakes the first
        first.kill().unwrap();
        hub::joinall(&[&second]).unwrap();
        assert_eq!(second.take(), Some(Some(7)));
        assert!(first.killed());
    });
}

/// `Spawned::get` gives the value, the panic, or the kill; `value` copies the value.
#[test]
fn get_gives_the_value_the_panic_or_the_kill() {
    bounded("get", || {
        let ok = hub::spawn(|| 5).unwrap();
        let bad = hub::spawn(|| -> i32 { panic!("bad task") }).unwrap();
        let slow = hub::spawn(|| hub::sleep(FOREVER).map(|()| 1)).unwrap();
        assert_eq!(ok.get().unwrap(), 5);
        assert_eq!(ok.value(), None, "taken by get");
        match bad.get() {
            Err(e @ TaskError::Panicked(_)) => assert_eq!(e.message(), "bad task"),
            other => panic!("{other:?}"),
        }
        slow.kill().unwrap();
        assert!(matches!(slow.get(), Err(TaskError::Killed)));
        let v = hub::spawn(|| "kept").unwrap();
        hub::joinall(&[&v]).unwrap();
        assert_eq!((v.value(), v.value()), (Some("kept"), Some("kept")));
    });
}

/// The tracer sees each hand-over: a task runs, waits (and for what), runs again, ends; two
/// tasks that sleep take turns on the thread.
#[test]
fn the_tracer_sees_every_hand_over_in_order() {
    bounded("tracer", || {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let s = seen.clone();
        hub::set_tracer(Some(Rc::new(move |t| s.borrow_mut().push(t)))).unwrap();
        let start = std::time::Instant::now();
        let a = hub::spawn(move || {
            hub::sleep_until(start + Duration::from_millis(10)).unwrap();
        })
        .unwrap();
        let b = hub::spawn(move || {
            hub::sleep_until(start + Duration::from_millis(20)).unwrap();
        })
        .unwrap();
        hub::joinall(&[&a, &b]).unwrap();
        hub::set_tracer(None).unwrap();
        let (a, b) = (a.id(), b.id());
        assert_eq!(
            *seen.borrow(),
            [
                Trace::Runs(a),
                Trace::Waits(a, Waiting::Sleep),
                Trace::Runs(b),
                Trace::Waits(b, Waiting::Sleep),
                Trace::Runs(a),
                Trace::Ends(a),
                Trace::Runs(b),
                Trace::Ends(b),
            ]
        );
    });
}

/// A sleep from outside any task lets the tasks that are ready run, however short it is:
/// `gevent.sleep(d)` always runs the ready greenlets. Before the fix, a sleep whose deadline
/// had passed by the time the hub looked (a short sleep on a loaded machine, or under
/// valgrind) returned without running them, and tests that spawn, sleep 1 ms and look were
/// flaky (gevent_channel's `test_get_nowait_unlock_channel` failed under memcheck so).
#[test]
fn a_sleep_outside_any_task_runs_the_ready_tasks_even_past_its_deadline() {
    bounded("sleep runs the ready tasks", || {
        let ran = Rc::new(Cell::new(0));
        let r = ran.clone();
        let t = hub::spawn(move || r.set(r.get() + 1)).unwrap();
        hub::sleep_until(std::time::Instant::now()).unwrap();
        assert_eq!(ran.get(), 1, "the ready task did not run");
        assert!(t.done());
        // And a task that yields for ever does not keep the sleep from ending.
        let spinner = hub::spawn(|| while hub::yield_now().is_ok() {}).unwrap();
        hub::sleep(Duration::from_millis(5)).unwrap();
        spinner.kill().unwrap();
        assert!(spinner.killed());
    });
}

/// A task that yields for ever does not starve the others' timers or sockets: the hub looks at
/// them (without waiting) between turns while some task is always ready, as gevent's loop
/// polls between its callbacks. Before the fix the sleeper's timer was never looked at, and
/// the join never ended.
#[test]
fn a_task_that_always_yields_does_not_starve_a_sleeping_one() {
    within(Duration::from_secs(20), "no starvation", || {
        let spinner = hub::spawn(|| while hub::yield_now().is_ok() {}).unwrap();
        let sleeper = hub::spawn(|| hub::sleep(Duration::from_millis(5)).is_ok()).unwrap();
        hub::joinall(&[&sleeper]).unwrap();
        assert_eq!(sleeper.take(), Some(true));
        spinner.kill().unwrap();
    });
}

/// Kills a task when dropped.
struct KillsWhenDropped(hub::Spawned<()>);

impl Drop for KillsWhenDropped {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

/// A killed task whose destructor kills another: the second unwinds on its own stack while
/// the first is unwinding (two unwinds at once, each caught at its task's top), and both end
/// killed, with no abort. In a child process, in case it aborts.
#[test]
fn a_killed_tasks_destructor_can_kill_another_task() {
    isolated("a_killed_tasks_destructor_can_kill_another_task", || {
        let drops = Rc::new(Cell::new(0));
        let d = drops.clone();
        let second = hub::spawn(move || {
            let _c = Counted(d);
            let _ = hub::sleep(FOREVER);
        })
        .unwrap();
        let guard = KillsWhenDropped(second.clone());
        let first = hub::spawn(move || {
            let _g = guard;
            let _ = hub::sleep(FOREVER);
        })
        .unwrap();
        hub::yield_now().unwrap(); // both sleep
        first.kill().unwrap();
        assert!(first.killed() && second.killed());
        assert_eq!(drops.get(), 1);
        assert!(!std::thread::panicking());
    });
}
