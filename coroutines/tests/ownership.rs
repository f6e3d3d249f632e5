//! Regression tests for the crashes, hangs and leaks of issue 14, each run in a child process
//! (so a crash fails the test instead of the suite): who owns a greenlet while it runs,
//! what the hub's state is after a task's panic, what a panic during a greenlet's kill does,
//! cycles of parents, and a greenlet's, a hub task's and a generator's stack overflow.

mod support;

use std::cell::{Cell, RefCell};
use std::hint::black_box;
use std::os::unix::process::ExitStatusExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::Duration;

use coroutines::{Generator, Greenlet, GreenletErrorKind, getcurrent, hub, val};
use support::{describe, isolated, run_child, stderr};

/// Counts its drops.
struct Counted(Rc<Cell<u32>>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// Drops the greenlet handle in its slot when dropped.
struct DropsSlot(Rc<RefCell<Option<Greenlet>>>);

impl Drop for DropsSlot {
    fn drop(&mut self) {
        let handle = self.0.borrow_mut().take();
        drop(handle);
    }
}

/// Uses `n` frames of stack, each with some data on it.
fn deep(n: u64) -> u64 {
    let frame = [n; 16];
    black_box(&frame);
    if n == 0 {
        0
    } else {
        deep(n - 1) + black_box(frame[5])
    }
}

/// Issue 14, bug 1: greenlet A runs and drops the last handle of suspended B; a destructor on
/// B's stack, run while B unwinds, drops A's last handle. A is running, so A must live on
/// until it suspends (before the fix its stack was freed under it: SIGSEGV).
#[test]
fn a_running_greenlet_dropped_from_a_destructor_on_another_stack_lives_until_it_suspends() {
    let name =
        "a_running_greenlet_dropped_from_a_destructor_on_another_stack_lives_until_it_suspends";
    isolated(name, || {
        let a_unwound = Rc::new(Cell::new(0));
        let slot_a: Rc<RefCell<Option<Greenlet>>> = Rc::default();
        let s = slot_a.clone();
        let b = Greenlet::new(move |_| {
            let _drops_a = DropsSlot(s);
            getcurrent().parent().unwrap().switch(val(()))?;
            Ok(val(()))
        })
        .unwrap();
        b.switch(val(())).unwrap();
        let d = a_unwound.clone();
        let a = Greenlet::new(move |_| {
            let _on_a = Counted(d);
            drop(b); // B unwinds; its destructor drops A's last owning handle
            let sum = deep(300); // A goes on using its own stack
            getcurrent().parent().unwrap().switch(val(sum))?;
            Ok(val(0u64))
        })
        .unwrap();
        // A handle that only names A (a child's parent link does not own), to switch with.
        let child = Greenlet::new(Ok).unwrap();
        let _ = child.set_parent(&a);
        let a_named = child.parent().unwrap();
        *slot_a.borrow_mut() = Some(a);
        let back = a_named.switch(val(())).unwrap();
        assert_eq!(back.downcast::<u64>().unwrap(), deep(300));
        assert_eq!(a_unwound.get(), 1, "A was not unwound once it suspended");
        assert!(a_named.dead());
    });
}

/// Bug 1 again, as the issue saw it: B does not end on the `GreenletExit` of its kill (it
/// switches back instead), so its stack is unwound on top of A's, while A runs; a destructor
/// there drops A's last handle. A must live on until it suspends.
#[test]
fn a_running_greenlet_dropped_from_a_destructor_of_a_greenlet_unwound_on_top_of_it_lives_on() {
    let name =
        "a_running_greenlet_dropped_from_a_destructor_of_a_greenlet_unwound_on_top_of_it_lives_on";
    isolated(name, || {
        let a_unwound = Rc::new(Cell::new(0));
        let slot_a: Rc<RefCell<Option<Greenlet>>> = Rc::default();
        let s = slot_a.clone();
        let b = Greenlet::new(move |_| {
            let _drops_a = DropsSlot(s);
            loop {
                // Ignores its kill: back to its parent (the killer, A, meanwhile).
                let _ = getcurrent().parent().unwrap().switch(val(()));
            }
        })
        .unwrap();
        b.switch(val(())).unwrap();
        let d = a_unwound.clone();
        let a = Greenlet::new(move |_| {
            let _on_a = Counted(d);
            drop(b); // B refuses to end, is unwound on top of A, and drops A's last handle
            let sum = deep(300);
            getcurrent().parent().unwrap().switch(val(sum))?;
            Ok(val(0u64))
        })
        .unwrap();
        let child = Greenlet::new(Ok).unwrap();
        let _ = child.set_parent(&a);
        let a_named = child.parent().unwrap();
        *slot_a.borrow_mut() = Some(a);
        let back = a_named.switch(val(())).unwrap();
        assert_eq!(back.downcast::<u64>().unwrap(), deep(300));
        assert_eq!(a_unwound.get(), 1, "A was not unwound once it suspended");
        assert!(a_named.dead());
    });
}

/// Issue 14, bug 2: a task panics, `joinall` is called and the caller catches whatever comes
/// out of it; the next hub wait on this thread must work (before the fix the hub still named
/// the panicked task as current, and the next wait suspended through its freed stack).
#[test]
fn a_hub_wait_after_a_task_panic_uses_no_freed_stack() {
    isolated("a_hub_wait_after_a_task_panic_uses_no_freed_stack", || {
        let bad = hub::spawn(|| -> u32 { panic!("a task's bug") }).unwrap();
        let caught = catch_unwind(AssertUnwindSafe(|| {
            let _ = hub::joinall(&[&bad]);
        }));
        let good = hub::spawn(|| {
            let _ = hub::sleep(Duration::from_millis(5));
            7u32
        })
        .unwrap();
        let _ = hub::joinall(&[&good]);
        assert_eq!(good.take(), Some(7));
        let outer = hub::spawn(|| {
            let inner = hub::spawn(|| 8u32).unwrap();
            let _ = hub::joinall(&[&inner]);
            inner.take()
        })
        .unwrap();
        let _ = hub::joinall(&[&outer]);
        assert_eq!(outer.take(), Some(Some(8)));
        println!("the panic came out of joinall: {}", caught.is_err());
    });
}

/// Issue 14, abort 3a (through the kill): a greenlet being dropped catches what its kill
/// raises and panics with another payload. The drop completes and the process lives.
#[test]
fn a_greenlet_that_answers_its_kill_with_another_panic_does_not_abort() {
    let name = "a_greenlet_that_answers_its_kill_with_another_panic_does_not_abort";
    let Some(out) = isolated(name, || {
        let g = Greenlet::new(|_| {
            let r = catch_unwind(AssertUnwindSafe(|| {
                getcurrent().parent().unwrap().switch(val(()))
            }));
            drop(r);
            panic!("a second panic, from a greenlet being dropped");
        })
        .unwrap();
        g.switch(val(())).unwrap();
        drop(g);
        println!("alive after the drop");
    }) else {
        return;
    };
    let err = stderr(&out);
    assert!(
        err.contains("a second panic, from a greenlet being dropped"),
        "{}",
        describe(&out)
    );
}

/// Issue 14, abort 3a (through the unwind): a greenlet ignores its kill and switches away, so
/// its stack is unwound; it catches that unwind and panics with another payload. The stray
/// panic is reported, the drop completes and the process lives.
#[test]
fn a_greenlet_that_catches_its_unwind_and_panics_again_does_not_abort() {
    let name = "a_greenlet_that_catches_its_unwind_and_panics_again_does_not_abort";
    let Some(out) = isolated(name, || {
        let g = Greenlet::new(|_| {
            loop {
                let r = catch_unwind(AssertUnwindSafe(|| {
                    getcurrent().parent().unwrap().switch(val(()))
                }));
                if r.is_err() {
                    panic!("a second panic, from a greenlet being unwound");
                }
            }
        })
        .unwrap();
        g.switch(val(())).unwrap();
        drop(g);
        println!("alive after the drop");
    }) else {
        return;
    };
    let err = stderr(&out);
    assert!(
        err.contains("a second panic, from a greenlet being unwound"),
        "{}",
        describe(&out)
    );
    assert!(err.contains("discarded"), "{}", describe(&out));
}

/// Logs what its switch from a destructor returned.
struct SwitchesOnDrop(Rc<RefCell<Vec<bool>>>);

impl Drop for SwitchesOnDrop {
    fn drop(&mut self) {
        let r = getcurrent()
            .parent()
            .unwrap()
            .switch(val("from a destructor"));
        self.0.borrow_mut().push(r.is_ok());
    }
}

/// Issue 14, abort 3b: a greenlet panics, a destructor run by that panic switches away, and
/// the greenlet is then dropped. Before the fix the switch suspended the greenlet in the
/// middle of its unwind, and dropping it aborted the process.
#[test]
fn a_greenlet_switching_from_a_destructor_during_a_panic_and_dropped_does_not_abort() {
    let name = "a_greenlet_switching_from_a_destructor_during_a_panic_and_dropped_does_not_abort";
    isolated(name, || {
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = log.clone();
        let g = Greenlet::new(move |_| {
            let _switches = SwitchesOnDrop(l);
            panic!("the first panic");
        })
        .unwrap();
        let r = g.switch(val(()));
        drop(g);
        let err = r.expect_err("the panic did not reach the parent");
        assert_eq!(
            err.kind(),
            &GreenletErrorKind::Panicked("the first panic".into())
        );
        assert_eq!(*log.borrow(), [false], "the switch during the panic worked");
        println!("alive after the drop");
    });
}

/// Issue 14, bug 4: `g.set_parent(&g)` was accepted; a switch into g then looped forever in
/// the walk up the parents, and the `Rc` cycle leaked g. Refused now, changing nothing.
#[test]
fn a_greenlet_cannot_be_its_own_parent() {
    isolated("a_greenlet_cannot_be_its_own_parent", || {
        let drops = Rc::new(Cell::new(0));
        let d = drops.clone();
        let g = Greenlet::new(move |v| {
            let _c = Counted(d);
            Ok(v)
        })
        .unwrap();
        let _ = g.set_parent(&g);
        let back = g.switch(val(5)).unwrap();
        assert_eq!(back.downcast::<i32>().unwrap(), 5);
        assert_eq!(g.parent(), Some(getcurrent()), "the cycle was accepted");
        drop(g);
        assert_eq!(drops.get(), 1, "the greenlet's function leaked");
    });
}

/// Issue 14, bug 4, a longer cycle: g1 -> g2 -> g3 -> g1 is refused at its last link.
#[test]
fn a_cycle_of_three_parents_is_refused() {
    isolated("a_cycle_of_three_parents_is_refused", || {
        let drops = Rc::new(Cell::new(0));
        let make = |d: Rc<Cell<u32>>| {
            Greenlet::new(move |v| {
                let _c = Counted(d);
                Ok(val(v.downcast::<i32>().unwrap() + 1))
            })
            .unwrap()
        };
        let (g1, g2, g3) = (
            make(drops.clone()),
            make(drops.clone()),
            make(drops.clone()),
        );
        let _ = g1.set_parent(&g2);
        let _ = g2.set_parent(&g3);
        let _ = g3.set_parent(&g1);
        assert_eq!(g3.parent(), Some(getcurrent()), "the cycle was accepted");
        // g1 returns to g2, which starts with g1's result, and so on up to the root.
        let back = g1.switch(val(0)).unwrap();
        assert_eq!(back.downcast::<i32>().unwrap(), 3);
        drop((g1, g2, g3));
        assert_eq!(drops.get(), 3, "a greenlet's function leaked");
    });
}

/// A kill cut short: K drops V's last handle, and V, given `GreenletExit`, switches to the
/// root instead of ending; then K itself is unwound (a destructor on W's unwinding stack drops
/// K's last handle), which unwinds K's kill of V half way. V must still be killed, not left
/// suspended with no owner (a leak: its stack and function were never freed).
#[test]
fn a_kill_cut_short_by_the_killers_unwind_still_kills_the_victim() {
    isolated(
        "a_kill_cut_short_by_the_killers_unwind_still_kills_the_victim",
        || {
            let v_dropped = Rc::new(Cell::new(0));
            let root = getcurrent();
            // V: on GreenletExit, goes to the root instead of ending (and again, forever).
            let (vd, r) = (Counted(v_dropped.clone()), root.clone());
            let v = Greenlet::new(move |_| {
                let _vd = vd;
                loop {
                    let _ = r.switch(val(()));
                }
            })
            .unwrap();
            v.switch(val(())).unwrap();
            // K: drops V's last handle when told to (and is suspended in that kill then).
            let r = root.clone();
            let k = Greenlet::new(move |_| {
                r.switch(val(()))?;
                drop(v);
                Ok(val(()))
            })
            .unwrap();
            k.switch(val(())).unwrap();
            let k_named = k.view();
            let k_slot = Rc::new(RefCell::new(Some(k)));
            // W: holds K's last handle on its stack; refuses its own kill, so it is unwound.
            let (ks, r) = (k_slot.clone(), root.clone());
            let w = Greenlet::new(move |_| {
                let _drops_k = DropsSlot(ks);
                loop {
                    let _ = r.switch(val(()));
                }
            })
            .unwrap();
            w.switch(val(())).unwrap();
            // K starts its kill of V; V goes back to the root.
            k_named.switch(val(())).unwrap();
            assert_eq!(v_dropped.get(), 0);
            // W's kill: W refuses, is unwound; its destructor drops K, which is unwound in the
            // middle of its kill of V.
            drop(w);
            assert!(k_named.dead());
            assert_eq!(v_dropped.get(), 1, "V was left alive with no owner");
        },
    );
}

/// Run this test's child part (`name`): it must die of SIGABRT with `message` on stderr.
fn aborts_saying(name: &str, message: &str) {
    let out = run_child(name, Duration::from_secs(60));
    assert_eq!(
        out.status.signal(),
        Some(nix::libc::SIGABRT),
        "{}",
        describe(&out)
    );
    assert!(stderr(&out).contains(message), "{}", describe(&out));
}

/// Issue 14, 5: a greenlet's stack overflow was a bare SIGSEGV; now it says what happened and
/// aborts, as std does for a thread.
#[test]
fn a_greenlet_stack_overflow_says_so_and_aborts() {
    let name = "a_greenlet_stack_overflow_says_so_and_aborts";
    if support::is_child(name) {
        let g = Greenlet::new(|_| Ok(val(deep(u64::MAX)))).unwrap();
        let _ = g.switch(val(()));
        unreachable!("the recursion came back");
    }
    aborts_saying(name, "greenlet has overflowed its stack");
}

/// The same for a hub task.
#[test]
fn a_hub_task_stack_overflow_says_so_and_aborts() {
    let name = "a_hub_task_stack_overflow_says_so_and_aborts";
    if support::is_child(name) {
        let t = hub::spawn(|| deep(u64::MAX)).unwrap();
        let _ = hub::joinall(&[&t]);
        unreachable!("the recursion came back");
    }
    aborts_saying(name, "hub task has overflowed its stack");
}

/// The same for a generator (it was still a bare SIGSEGV after the greenlet and hub task were
/// fixed: the handler had no mark for a running generator's stack).
#[test]
fn a_generator_stack_overflow_says_so_and_aborts() {
    let name = "a_generator_stack_overflow_says_so_and_aborts";
    if support::is_child(name) {
        let mut g = Generator::<u64, ()>::new(|_, n| {
            deep(n);
        });
        let _ = g.send(u64::MAX);
        unreachable!("the recursion came back");
    }
    aborts_saying(name, "generator has overflowed its stack");
}

/// A generator given a bigger stack recurses deeper than the default 1 MiB allows.
#[test]
fn a_generator_with_a_bigger_stack_goes_deeper() {
    // About 200 bytes a frame in a debug build: 20 000 frames need about 4 MiB.
    let mut g = Generator::with_stack_size(16 << 20, |y, n: u64| {
        let mut n = n;
        while let Some(next) = y.suspend(deep(n)) {
            n = next;
        }
    });
    assert_eq!(g.send(20_000), Some(20_000 * 20_001 / 2));
}
