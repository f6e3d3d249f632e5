//! Greenlet semantics (each test runs on its own test thread, with its own runtime).

use std::cell::Cell;
use std::rc::Rc;

use coroutines::{Generator, Greenlet, GreenletError, GreenletErrorKind, getcurrent, lessons, val};
use lesson::Cx;

#[test]
fn the_seeds_transcript_is_exactly_56_12_65_24() {
    let printed = lessons::greenlet::seed(&Cx::quiet(0.01)).unwrap();
    assert_eq!(printed, [56, 12, 65, 24]);
}

#[test]
fn values_pass_through_switch_and_a_return_goes_to_the_parent() {
    let g = Greenlet::new(|v| {
        let n = v.downcast::<i32>().unwrap();
        let back = getcurrent().parent().unwrap().switch(val(n + 1))?;
        Ok(val(back.downcast::<i32>().unwrap() * 10))
    })
    .unwrap();
    assert!(!g.started());
    assert_eq!(g.switch(val(1)).unwrap().downcast::<i32>().unwrap(), 2);
    assert!(g.started() && !g.dead());
    assert_eq!(g.switch(val(5)).unwrap().downcast::<i32>().unwrap(), 50);
    assert!(g.dead());
}

#[test]
fn a_child_returns_to_its_parent_not_to_whoever_switched_last() {
    let log = Rc::new(std::cell::RefCell::new(Vec::new()));
    let l = log.clone();
    let outer = Greenlet::new(move |_| {
        let l2 = l.clone();
        let inner = Greenlet::new(move |_| {
            l2.borrow_mut().push("inner runs");
            Ok(val("inner's result"))
        })?;
        assert_eq!(inner.parent(), Some(getcurrent()));
        let r = inner.switch(val(()))?;
        l.borrow_mut().push(r.downcast::<&str>().unwrap());
        Ok(val(()))
    })
    .unwrap();
    outer.switch(val(())).unwrap();
    assert_eq!(*log.borrow(), ["inner runs", "inner's result"]);
}

#[test]
fn switching_to_a_dead_greenlet_goes_to_its_parent() {
    let g = Greenlet::new(Ok).unwrap();
    g.switch(val(1)).unwrap();
    assert!(g.dead());
    let r = g.switch(val("back to main")).unwrap();
    assert_eq!(r.downcast::<&str>().unwrap(), "back to main");
}

#[test]
fn throw_raises_at_the_suspension_point_and_kills_an_unstarted_one() {
    let seen = Rc::new(Cell::new(false));
    let s = seen.clone();
    let g = Greenlet::new(move |_| {
        match getcurrent().parent().unwrap().switch(val(())) {
            Err(e) if e == GreenletError::thrown("boom") => s.set(true),
            _ => {}
        }
        Ok(val("handled"))
    })
    .unwrap();
    g.switch(val(())).unwrap();
    let r = g.throw("boom").unwrap();
    assert!(seen.get());
    assert_eq!(r.downcast::<&str>().unwrap(), "handled");
    let fresh = Greenlet::new(|_| Ok(val("never runs"))).unwrap();
    assert_eq!(
        fresh.throw("early").unwrap_err(),
        GreenletError::thrown("early")
    );
    assert!(fresh.dead());
}

struct Counted(Rc<Cell<u32>>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn dropping_a_suspended_greenlet_unwinds_its_stack() {
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let g = Greenlet::new(move |_| {
        let _on_my_stack = Counted(d);
        getcurrent().parent().unwrap().switch(val(()))?;
        unreachable!("never resumed");
    })
    .unwrap();
    g.switch(val(())).unwrap();
    assert_eq!(drops.get(), 0);
    drop(g);
    assert_eq!(
        drops.get(),
        1,
        "the suspended stack's destructor did not run"
    );
}

#[test]
fn a_greenlet_whose_last_handle_goes_while_it_runs_is_unwound_when_it_suspends() {
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let slot: Rc<std::cell::RefCell<Option<Greenlet>>> = Rc::default();
    let s = slot.clone();
    let g = Greenlet::new(move |_| {
        let _on_my_stack = Counted(d);
        drop(s.borrow_mut().take()); // its last owning handle
        getcurrent().parent().unwrap().switch(val("suspended"))?;
        unreachable!("never resumed");
    })
    .unwrap();
    // A handle that only names `g` (a parent handle does not own), to switch with.
    let child = Greenlet::new(Ok).unwrap();
    child.set_parent(&g).unwrap();
    let named = child.parent().unwrap();
    *slot.borrow_mut() = Some(g);
    let r = named.switch(val(())).unwrap();
    assert_eq!(r.downcast::<&str>().unwrap(), "suspended");
    assert_eq!(
        drops.get(),
        1,
        "its stack was not unwound when it suspended"
    );
    assert!(named.dead());
}

/// Logs whether its switch from a destructor worked.
struct SwitchesOnDrop(Rc<std::cell::RefCell<Vec<Result<(), GreenletErrorKind>>>>);

impl Drop for SwitchesOnDrop {
    fn drop(&mut self) {
        let r = getcurrent().parent().unwrap().switch(val(()));
        self.0
            .borrow_mut()
            .push(r.map(drop).map_err(|e| e.kind().clone()));
    }
}

#[test]
fn a_dropped_greenlet_gets_greenlet_exit_and_a_switch_during_its_unwind_fails_cleanly() {
    let log = Rc::new(std::cell::RefCell::new(Vec::new()));
    let l = log.clone();
    let g = Greenlet::new(move |_| {
        let _outer = SwitchesOnDrop(l.clone());
        let _inner = SwitchesOnDrop(l);
        getcurrent().parent().unwrap().switch(val(()))?;
        unreachable!("resumed with a value");
    })
    .unwrap();
    g.switch(val(())).unwrap();
    drop(g);
    // The kill raised GreenletExit; `?` took it out, and `_inner`'s switch went to the
    // greenlet that dropped it (its parent meanwhile). It did not end, so its stack was
    // unwound from there: `_inner`'s switch never returned, and `_outer`'s, during the
    // unwind, failed.
    assert_eq!(
        *log.borrow(),
        [Err(GreenletErrorKind::CannotSwitch(
            "the greenlet is being unwound"
        ))]
    );
}

#[test]
fn a_panic_reaches_the_parent_as_an_error() {
    let g = Greenlet::new(|_| -> Result<coroutines::Val, GreenletError> { panic!("greenlet bug") })
        .unwrap();
    match g.switch(val(())) {
        Err(e) => assert_eq!(
            e.kind(),
            &GreenletErrorKind::Panicked("greenlet bug".into()),
            "wrong error: {e}"
        ),
        Ok(_) => panic!("a panicking greenlet returned a value"),
    }
    assert!(g.dead());
}

#[test]
fn a_generator_takes_sends_in_order_and_ends() {
    let mut g = Generator::new(|y, first: u32| {
        let mut x = first;
        for _ in 0..2 {
            let Some(next) = y.suspend(x * 10) else {
                return;
            };
            x = next;
        }
    });
    assert_eq!(g.send(1), Some(10));
    assert_eq!(g.send(2), Some(20));
    assert_eq!(g.send(3), None);
    assert!(g.done());
    assert_eq!(g.send(4), None);
    let acks = lessons::r#yield::produce_consume(&Cx::quiet(0.01), 3);
    assert_eq!(acks, ["ate 1", "ate 2", "ate 3"]);
}

/// A switch to a dead greenlet goes to its parent; while that parent runs, the dead one's
/// parent can still be changed (the hub held a borrow of it for the whole switch: found by
/// the model test, seed 15).
#[test]
fn the_parent_of_a_dead_greenlet_can_be_set_while_the_switch_through_it_runs() {
    let dead = Greenlet::new(Ok).unwrap();
    dead.switch(val(())).unwrap();
    let d = dead.view();
    let parent = Greenlet::new(move |_| {
        d.set_parent(&getcurrent().parent().unwrap())?;
        Ok(val("set"))
    })
    .unwrap();
    dead.set_parent(&parent).unwrap();
    let r = dead.switch(val(())).unwrap();
    assert_eq!(r.downcast::<&str>().unwrap(), "set");
    assert_eq!(dead.parent(), Some(getcurrent()));
}
