//! greenlet's own test suite (greenlet 3.5.6, `greenlet/tests/`), ported to [`Greenlet`]:
//! one module per original file, each test named after its original. Python exceptions become
//! [`GreenletError`]s (`SomeError` is `GreenletError::thrown("SomeError")`), `GreenletExit`
//! is [`GreenletErrorKind::Exit`] (and the value [`GreenletExit`] where greenlet hands the
//! instance back), and checks of reference counts become checks of drop counts. What was left
//! out, and why, is in the README's conformance table.

mod support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use coroutines::{
    Generator, Greenlet, GreenletError, GreenletErrorKind, GreenletExit, Val, getcurrent, val,
};

type Res = Result<Val, GreenletError>;

/// Counts its drops.
struct Counted(Rc<Cell<u32>>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

fn some_error() -> GreenletError {
    GreenletError::thrown("SomeError")
}

/// The current greenlet's parent (there is one: these run inside greenlets).
fn parent() -> Greenlet {
    getcurrent().parent().expect("a greenlet's parent")
}

mod test_greenlet {
    use super::*;

    /// greenlet's `fmain`: wait in the parent; log what is raised there and re-raise it;
    /// raise `SomeError` if resumed normally.
    fn fmain(seen: Rc<RefCell<Vec<GreenletErrorKind>>>) -> impl FnOnce(Val) -> Res {
        move |_| match parent().switch(val(())) {
            Err(e) => {
                seen.borrow_mut().push(e.kind().clone());
                Err(e)
            }
            Ok(_) => Err(some_error()),
        }
    }

    fn do_simple_test() {
        let lst = Rc::new(RefCell::new(Vec::new()));
        let l = lst.clone();
        let g = Greenlet::new(move |_| {
            l.borrow_mut().push(1);
            parent().switch(val(()))?;
            l.borrow_mut().push(3);
            Ok(val(()))
        })
        .unwrap();
        lst.borrow_mut().push(0);
        g.switch(val(())).unwrap();
        lst.borrow_mut().push(2);
        g.switch(val(())).unwrap();
        lst.borrow_mut().push(4);
        assert_eq!(*lst.borrow(), [0, 1, 2, 3, 4]);
    }

    #[test]
    fn test_simple() {
        do_simple_test();
    }

    /// `greenlet(parent=None)`: the parent is the current greenlet.
    #[test]
    fn test_parent_equals_none() {
        let g = Greenlet::new(Ok).unwrap();
        assert_eq!(g.parent(), Some(getcurrent()));
    }

    #[test]
    fn test_two_children() {
        let lst = Rc::new(RefCell::new(Vec::new()));
        let f = |l: Rc<RefCell<Vec<i32>>>| {
            move |_| {
                l.borrow_mut().push(1);
                parent().switch(val(()))?;
                l.borrow_mut().extend([1, 1]);
                Ok(val(()))
            }
        };
        let g = Greenlet::new(f(lst.clone())).unwrap();
        let h = Greenlet::new(f(lst.clone())).unwrap();
        g.switch(val(())).unwrap();
        assert_eq!(lst.borrow().len(), 1);
        h.switch(val(())).unwrap();
        assert_eq!(lst.borrow().len(), 2);
        h.switch(val(())).unwrap();
        assert_eq!(lst.borrow().len(), 4);
        assert!(h.dead());
        g.switch(val(())).unwrap();
        assert_eq!(lst.borrow().len(), 6);
        assert!(g.dead());
    }

    /// A greenlet that starts a greenlet; nothing is left holding the outer one afterwards
    /// (greenlet checks `sys.getrefcount`; here: its function's captures are dropped once).
    #[test]
    fn test_two_recursive_children() {
        let lst = Rc::new(RefCell::new(Vec::new()));
        let drops = Rc::new(Cell::new(0));
        let (l, d) = (lst.clone(), drops.clone());
        let g = Greenlet::new(move |_| {
            let _c = Counted(d);
            l.borrow_mut().push('a');
            let l2 = l.clone();
            let inner = Greenlet::new(move |_| {
                l2.borrow_mut().push('b');
                parent().switch(val(()))?;
                Ok(val(()))
            })?;
            inner.switch(val(()))?;
            l.borrow_mut().push('c');
            Ok(val(()))
        })
        .unwrap();
        g.switch(val(())).unwrap();
        assert_eq!(*lst.borrow(), ['a', 'b', 'c']);
        assert_eq!(drops.get(), 1);
        assert_eq!(
            Rc::strong_count(&lst),
            1,
            "a capture of the greenlets leaked"
        );
    }

    /// Greenlets on ten threads at once, each thread its own root.
    #[test]
    fn test_threads() {
        let threads: Vec<_> = (0..10)
            .map(|_| std::thread::spawn(do_simple_test))
            .collect();
        for t in threads {
            t.join().expect("a thread's greenlets failed");
        }
    }

    /// An error raised in g2 goes to its parent g1 (where `fmain` logs and re-raises it) and
    /// then to main; g2 and g1 are then dead, so switching to g2 goes straight to main.
    #[test]
    fn test_exception() {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let g1 = Greenlet::new(fmain(seen.clone())).unwrap();
        let g2 = Greenlet::new(fmain(seen.clone())).unwrap();
        g1.switch(val(())).unwrap();
        g2.switch(val(())).unwrap();
        g2.set_parent(&g1).unwrap();
        assert!(seen.borrow().is_empty());
        assert_eq!(g2.switch(val(())).unwrap_err(), some_error());
        assert_eq!(
            *seen.borrow(),
            [GreenletErrorKind::Thrown("SomeError".into())]
        );
        let value = g2.switch(val(())).unwrap();
        assert!(value.is::<()>());
        let value = g2.switch(val(25)).unwrap();
        assert_eq!(value.downcast::<i32>().unwrap(), 25);
        assert_eq!(seen.borrow().len(), 1);
    }

    /// `send_exception(g, exc)`: a child of g raises `KeyError`; it reaches g's suspension
    /// point, and then main.
    #[test]
    fn test_send_exception() {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let g1 = Greenlet::new(fmain(seen.clone())).unwrap();
        g1.switch(val(())).unwrap();
        let crasher = Greenlet::new(|v| Err(v.downcast::<GreenletError>().unwrap())).unwrap();
        crasher.set_parent(&g1).unwrap();
        let key_error = GreenletError::thrown("KeyError");
        assert_eq!(
            crasher.switch(val(key_error.clone())).unwrap_err(),
            key_error
        );
        assert_eq!(
            *seen.borrow(),
            [GreenletErrorKind::Thrown("KeyError".into())]
        );
    }

    /// Dropping a suspended greenlet raises `GreenletExit` in it.
    #[test]
    fn test_dealloc() {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let g1 = Greenlet::new(fmain(seen.clone())).unwrap();
        let g2 = Greenlet::new(fmain(seen.clone())).unwrap();
        g1.switch(val(())).unwrap();
        g2.switch(val(())).unwrap();
        assert!(seen.borrow().is_empty());
        drop(g1);
        assert_eq!(*seen.borrow(), [GreenletErrorKind::Exit]);
        drop(g2);
        assert_eq!(
            *seen.borrow(),
            [GreenletErrorKind::Exit, GreenletErrorKind::Exit]
        );
    }

    /// A greenlet answers its `GreenletExit` with another error: greenlet hands it to the
    /// "unraisable" hook; here it is reported on stderr, and the drop completes.
    #[test]
    fn test_dealloc_catches_greenlet_exit_throws_other() {
        let name = "test_greenlet::test_dealloc_catches_greenlet_exit_throws_other";
        let Some(out) = support::isolated(name, || {
            let g = Greenlet::new(|_| match parent().switch(val(())) {
                Err(e) if e.is_exit() => Err(some_error()),
                _ => Ok(val(())),
            })
            .unwrap();
            g.switch(val(())).unwrap();
            drop(g);
            assert!(std::thread::panicking().then_some(()).is_none());
        }) else {
            return;
        };
        let err = support::stderr(&out);
        assert!(
            err.contains("ended with an error: thrown: SomeError"),
            "{}",
            support::describe(&out)
        );
    }

    /// Two threads each run a greenlet that sleeps (greenlet's thread-state bug).
    #[test]
    fn test_thread_bug() {
        let runner = |ms: u64| {
            move || {
                let g = Greenlet::new(move |_| {
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                    Ok(val(()))
                })
                .unwrap();
                g.switch(val(())).unwrap();
            }
        };
        let t1 = std::thread::spawn(runner(20));
        let t2 = std::thread::spawn(runner(30));
        t1.join().unwrap();
        t2.join().unwrap();
    }

    /// While a dropped greenlet handles its `GreenletExit`, its parent is the greenlet that
    /// dropped it, and it can switch to another greenlet; afterwards its parent is restored.
    #[test]
    fn test_parent_restored_on_kill() {
        let hub = Greenlet::new(|_| Ok(val(()))).unwrap();
        let main = getcurrent();
        let result: Rc<RefCell<Vec<Greenlet>>> = Rc::default();
        let (r, h) = (result.clone(), hub.view());
        let g = Greenlet::new(move |_| {
            match main.switch(val(())) {
                Err(e) if e.is_exit() => {
                    r.borrow_mut().push(getcurrent().parent().unwrap());
                    r.borrow_mut().push(getcurrent());
                    h.switch(val(()))?;
                }
                other => drop(other),
            }
            Ok(val(()))
        })
        .unwrap();
        g.set_parent(&hub).unwrap();
        g.switch(val(())).unwrap();
        drop(g);
        let result = result.borrow();
        assert_eq!(result.len(), 2, "the kill did not reach the greenlet");
        assert_eq!(result[0], getcurrent(), "its parent was not the killer");
        assert_eq!(
            result[1].parent(),
            Some(hub.view()),
            "its parent was not restored"
        );
        assert!(
            hub.dead(),
            "the switch from the exit handler did not happen"
        );
    }

    /// A greenlet drops every handle of itself, then switches a value to its parent: it is
    /// killed once it has switched away (its `finally` runs), and the value still arrives.
    #[test]
    fn test_dealloc_switch_args_not_lost() {
        let seen = Rc::new(Cell::new(false));
        let slot: Rc<RefCell<Option<Greenlet>>> = Rc::default();
        let (s, sl) = (seen.clone(), slot.clone());
        let worker = Greenlet::new(move |_| {
            struct Finally(Rc<Cell<bool>>);
            impl Drop for Finally {
                fn drop(&mut self) {
                    self.0.set(true);
                }
            }
            let value = parent().switch(val(()))?;
            drop(sl.borrow_mut().take());
            let _finally = Finally(s);
            parent().switch(value)?;
            Ok(val(()))
        })
        .unwrap();
        worker.switch(val(())).unwrap();
        let initiator = Greenlet::new(|_| Ok(val(42))).unwrap();
        initiator.set_parent(&worker).unwrap();
        let worker_named = worker.view();
        *slot.borrow_mut() = Some(worker);
        let value = initiator.switch(val(())).unwrap();
        assert!(seen.get(), "the worker's finally did not run");
        assert_eq!(value.downcast::<i32>().unwrap(), 42);
        assert!(worker_named.dead());
    }

    /// A greenlet ends; its parent has not started yet: the parent starts with the value.
    #[test]
    fn test_falling_off_end_switches_to_unstarted_parent_works() {
        let parent_never_started =
            Greenlet::new(|x| Ok(val((x.downcast::<i32>().unwrap(), 24)))).unwrap();
        let child = Greenlet::new(|_| Ok(val(42))).unwrap();
        child.set_parent(&parent_never_started).unwrap();
        let result = child.switch(val(())).unwrap();
        assert_eq!(result.downcast::<(i32, i32)>().unwrap(), (42, 24));
    }

    /// Switching to a dead greenlet whose parent was changed to an unstarted one starts that.
    #[test]
    fn test_switch_to_dead_greenlet_reparent() {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let s = seen.clone();
        let parent_never_started = Greenlet::new(move |_| {
            s.borrow_mut().push(24);
            Ok(val(()))
        })
        .unwrap();
        let s = seen.clone();
        let child = Greenlet::new(move |_| {
            s.borrow_mut().push(42);
            Ok(val(()))
        })
        .unwrap();
        child.switch(val(())).unwrap();
        assert_eq!(*seen.borrow(), [42]);
        child.set_parent(&parent_never_started).unwrap();
        let result = child.switch(val(())).unwrap();
        assert!(result.is::<()>());
        assert_eq!(*seen.borrow(), [42, 24]);
    }

    /// A greenlet suspended deep in a recursion (greenlet: through C calls) resumes there.
    #[test]
    fn test_get_stack_with_nested_c_calls() {
        fn recurse(v: i64) -> Result<i64, GreenletError> {
            if v > 0 {
                Ok(v * recurse(v - 1)?)
            } else {
                parent()
                    .switch(val(()))?
                    .downcast::<i64>()
                    .map_err(|_| GreenletError::thrown("not an i64"))
            }
        }
        let gr = Greenlet::new(|v| Ok(val(recurse(v.downcast::<i64>().unwrap())?))).unwrap();
        gr.switch(val(5i64)).unwrap();
        assert_eq!(
            gr.switch(val(10i64)).unwrap().downcast::<i64>().unwrap(),
            1200
        );
    }

    /// greenlet issue 245: greenlets that keep a (non-owning) handle of themselves when
    /// killed leave nothing behind.
    #[test]
    fn test_issue_245_reference_counting_subclass_no_threads() {
        let glets: Rc<RefCell<Vec<Greenlet>>> = Rc::default();
        let drops = Rc::new(Cell::new(0));
        for _ in 0..10 {
            let (gl, d) = (glets.clone(), drops.clone());
            Greenlet::new(move |_| {
                let _c = Counted(d);
                if let Err(e) = parent().switch(val(()))
                    && e.is_exit()
                {
                    gl.borrow_mut().push(getcurrent());
                }
                Ok(val(()))
            })
            .unwrap()
            .switch(val(()))
            .unwrap();
        }
        assert_eq!(glets.borrow().len(), 10);
        assert_eq!(drops.get(), 10);
        assert!(glets.borrow().iter().all(Greenlet::dead));
        drop(glets);
    }

    #[test]
    fn test_main_greenlet_parent_is_none() {
        assert_eq!(getcurrent().parent(), None);
    }

    #[test]
    fn test_trivial_cycle() {
        let glet = Greenlet::new(Ok).unwrap();
        let err = glet.set_parent(&glet).unwrap_err();
        assert_eq!(err.kind(), &GreenletErrorKind::CyclicParent);
        assert_eq!(err.to_string(), "cyclic parent chain");
    }

    #[test]
    fn test_trivial_cycle_main() {
        let err = getcurrent().set_parent(&getcurrent()).unwrap_err();
        assert_eq!(err.to_string(), "cannot set the parent of a main greenlet");
    }

    #[test]
    fn test_deeper_cycle() {
        let g1 = Greenlet::new(Ok).unwrap();
        let g2 = Greenlet::new(Ok).unwrap();
        let g3 = Greenlet::new(Ok).unwrap();
        g1.set_parent(&g2).unwrap();
        g2.set_parent(&g3).unwrap();
        let err = g3.set_parent(&g1).unwrap_err();
        assert_eq!(err.to_string(), "cyclic parent chain");
        assert_eq!(g3.parent(), Some(getcurrent()));
    }
}

mod test_throw {
    use super::*;

    fn switch(v: Val) -> Res {
        parent().switch(v)
    }

    /// `f` catches what is thrown and answers "ok".
    fn f() -> impl FnOnce(Val) -> Res {
        |_| {
            match switch(val("ok")) {
                Err(e) if e == GreenletError::thrown("RuntimeError") => {
                    switch(val("ok"))?;
                    return Ok(val(()));
                }
                _ => {}
            }
            switch(val("fail"))
        }
    }

    #[test]
    fn test_class() {
        let g = Greenlet::new(f()).unwrap();
        assert_eq!(g.switch(val(())).unwrap().downcast::<&str>().unwrap(), "ok");
        let res = g.throw("RuntimeError").unwrap();
        assert_eq!(res.downcast::<&str>().unwrap(), "ok");
    }

    #[test]
    fn test_val() {
        let f = |_| {
            if let Err(e) = switch(val("ok"))
                && let GreenletErrorKind::Thrown(m) = e.kind()
                && m == "ciao"
            {
                switch(val("ok"))?;
                return Ok(val(()));
            }
            switch(val("fail"))
        };
        for _ in 0..2 {
            let g = Greenlet::new(f).unwrap();
            assert_eq!(g.switch(val(())).unwrap().downcast::<&str>().unwrap(), "ok");
            let res = g.throw("ciao").unwrap();
            assert_eq!(res.downcast::<&str>().unwrap(), "ok");
        }
    }

    /// `g.throw()` raises `GreenletExit`; the greenlet ends and its parent gets the
    /// `GreenletExit` value; thrown at the dead greenlet, it comes straight back.
    #[test]
    fn test_kill() {
        let g = Greenlet::new(|_| {
            switch(val("ok"))?;
            switch(val("fail"))
        })
        .unwrap();
        assert_eq!(g.switch(val(())).unwrap().downcast::<&str>().unwrap(), "ok");
        let res = g.throw_exit().unwrap();
        assert!(res.is::<GreenletExit>());
        assert!(g.dead());
        let res = g.throw_exit().unwrap();
        assert!(res.is::<GreenletExit>());
    }

    #[test]
    fn test_throw_goes_to_original_parent() {
        let main = getcurrent();
        let f1 = move || {
            let main = main.clone();
            move |_| match main.switch(val("f1 ready to catch")) {
                Err(e) if e == GreenletError::thrown("IndexError") => Ok(val("caught")),
                _ => Ok(val("normal exit")),
            }
        };
        let main2 = getcurrent();
        let f2 = move || {
            let main = main2.clone();
            move |_| main.switch(val("from f2"))
        };
        let index_error = GreenletError::thrown("IndexError");

        // Thrown into an unstarted g2: it dies at once; so does g1 (unstarted, parent of g2).
        let g1 = Greenlet::new(f1()).unwrap();
        let g2 = Greenlet::new(f2()).unwrap();
        g2.set_parent(&g1).unwrap();
        assert_eq!(g2.throw("IndexError").unwrap_err(), index_error);
        assert!(g2.dead());
        assert!(g1.dead());

        // g1 waits, ready to catch: g2 (unstarted) dies and g1 catches.
        let g1 = Greenlet::new(f1()).unwrap();
        let g2 = Greenlet::new(f2()).unwrap();
        g2.set_parent(&g1).unwrap();
        let res = g1.switch(val(())).unwrap();
        assert_eq!(res.downcast::<&str>().unwrap(), "f1 ready to catch");
        let res = g2.throw("IndexError").unwrap();
        assert_eq!(res.downcast::<&str>().unwrap(), "caught");
        assert!(g2.dead());
        assert!(g1.dead());

        // The same with g2 started: raised at its suspension point, it reaches g1.
        let g1 = Greenlet::new(f1()).unwrap();
        let g2 = Greenlet::new(f2()).unwrap();
        g2.set_parent(&g1).unwrap();
        let res = g1.switch(val(())).unwrap();
        assert_eq!(res.downcast::<&str>().unwrap(), "f1 ready to catch");
        let res = g2.switch(val(())).unwrap();
        assert_eq!(res.downcast::<&str>().unwrap(), "from f2");
        let res = g2.throw("IndexError").unwrap();
        assert_eq!(res.downcast::<&str>().unwrap(), "caught");
        assert!(g2.dead());
        assert!(g1.dead());
    }
}

/// greenlet's `genlet`: a generator made of a greenlet. `next` makes the consumer its parent
/// and switches to it; `Yield` finds the nearest genlet up the parents and switches the value
/// to that genlet's parent. `child` is for `Yield(value, level)` of the nested tests.
mod genlet {
    use super::*;

    /// Where a genlet's child is kept (for `Yield(.., level > 1)`).
    type ChildSlot = Rc<RefCell<Option<Greenlet>>>;

    thread_local! {
        /// Every genlet of this thread (views), with its child slot.
        static GENLETS: RefCell<Vec<(Greenlet, ChildSlot)>> = RefCell::default();
    }

    fn child_of(g: &Greenlet) -> Option<ChildSlot> {
        GENLETS.with(|all| {
            all.borrow()
                .iter()
                .find(|(x, _)| x == g)
                .map(|(_, c)| c.clone())
        })
    }

    pub struct Genlet {
        g: Greenlet,
        child: ChildSlot,
    }

    impl Genlet {
        pub fn new(f: impl FnOnce() -> Result<(), GreenletError> + 'static) -> Genlet {
            let g = Greenlet::new(move |_| f().map(|()| val(()))).unwrap();
            let child = Rc::new(RefCell::new(None));
            GENLETS.with(|all| all.borrow_mut().push((g.view(), child.clone())));
            Genlet { g, child }
        }
    }

    impl Iterator for Genlet {
        type Item = Val;

        fn next(&mut self) -> Option<Val> {
            let target = if self.child.borrow().is_some() {
                // The deepest child, unlinking the ones on the way (greenlet's `__next__`).
                let mut child = self.child.borrow().clone().unwrap();
                while let Some(link) = child_of(&child)
                    && let Some(grandchild) = link.borrow().clone()
                {
                    *link.borrow_mut() = None;
                    child = grandchild;
                }
                child
            } else {
                self.g.set_parent(&getcurrent()).unwrap();
                self.g.view()
            };
            let result = target.switch(val(())).unwrap();
            self.g.started().then_some(result)
        }
    }

    /// `Yield(value, level)`.
    pub fn yield_level(value: Val, level: u32) -> Result<(), GreenletError> {
        let mut g = getcurrent();
        for l in (1..=level).rev() {
            let Some(_) = child_of(&g) else {
                return Err(GreenletError::thrown(
                    "RuntimeError: yield outside a genlet",
                ));
            };
            let up = g.parent().unwrap();
            if l > 1 {
                *child_of(&up)
                    .ok_or_else(|| GreenletError::thrown("RuntimeError: yield outside a genlet"))?
                    .borrow_mut() = Some(g.view());
            }
            g = up;
        }
        g.switch(value)?;
        Ok(())
    }

    /// `Yield(value)` of test_generator: the nearest genlet up the parents.
    pub fn yield_(value: Val) -> Result<(), GreenletError> {
        let mut g = getcurrent();
        while child_of(&g).is_none() {
            g = g
                .parent()
                .ok_or_else(|| GreenletError::thrown("RuntimeError: yield outside a genlet"))?;
        }
        g.parent().unwrap().switch(value)?;
        Ok(())
    }
}

mod test_generator {
    use super::genlet::{Genlet, yield_};
    use super::*;

    #[test]
    fn test_generator() {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let g = |n: i32| {
            let seen = seen.clone();
            Genlet::new(move || {
                for i in 0..n {
                    seen.borrow_mut().push(i);
                    yield_(val(i))?;
                }
                Ok(())
            })
        };
        for _ in 0..3 {
            for j in g(5) {
                seen.borrow_mut().push(j.downcast::<i32>().unwrap());
            }
        }
        let once = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4];
        assert_eq!(*seen.borrow(), once.repeat(3));
    }
}

mod test_generator_nested {
    use super::genlet::{Genlet, yield_level};
    use super::*;

    type Seen = Rc<RefCell<Vec<i32>>>;

    fn ints(it: impl Iterator<Item = Val>) -> Vec<i32> {
        it.map(|v| v.downcast::<i32>().unwrap()).collect()
    }

    fn gr1(n: i32) -> Genlet {
        Genlet::new(move || {
            for ii in 1..n {
                yield_level(val(ii), 1)?;
                yield_level(val(ii * ii), 2)?;
            }
            Ok(())
        })
    }

    fn gr2(n: i32, seen: Seen) -> Genlet {
        Genlet::new(move || {
            for ii in gr1(n) {
                seen.borrow_mut().push(ii.downcast::<i32>().unwrap());
            }
            Ok(())
        })
    }

    #[test]
    fn test_layered_genlets() {
        let seen: Seen = Rc::default();
        for ii in gr2(5, seen.clone()) {
            seen.borrow_mut().push(ii.downcast::<i32>().unwrap());
        }
        assert_eq!(*seen.borrow(), [1, 1, 2, 4, 3, 9, 4, 16]);
    }

    fn perms(l: Vec<i32>) -> Genlet {
        Genlet::new(move || {
            if l.len() > 1 {
                for &e in &l {
                    let rest: Vec<i32> = l.iter().copied().filter(|&x| x != e).collect();
                    let mut any = false;
                    for p in perms(rest) {
                        let mut out = vec![e];
                        out.extend(p.downcast::<Vec<i32>>().unwrap());
                        yield_level(val(out), 1)?;
                        any = true;
                    }
                    assert!(any);
                }
            } else {
                yield_level(val(l), 1)?;
            }
            Ok(())
        })
    }

    /// Nested genlets; the `zip` abandons the longer one half way (it is then dropped, and
    /// killed, with the genlets inside it).
    #[test]
    fn test_permutations() {
        let all: Vec<Vec<i32>> = perms((0..4).collect())
            .map(|v| v.downcast::<Vec<i32>>().unwrap())
            .collect();
        assert_eq!(all.len(), 24);
        assert!(all.contains(&vec![0, 1, 2, 3]));
        assert!(all.contains(&vec![3, 2, 1, 0]));
        let res: Vec<(Vec<i32>, Vec<i32>)> = perms((0..4).collect())
            .zip(perms((0..3).collect()))
            .map(|(a, b)| {
                (
                    a.downcast::<Vec<i32>>().unwrap(),
                    b.downcast::<Vec<i32>>().unwrap(),
                )
            })
            .collect();
        let want: Vec<(Vec<i32>, Vec<i32>)> = vec![
            (vec![0, 1, 2, 3], vec![0, 1, 2]),
            (vec![0, 1, 3, 2], vec![0, 2, 1]),
            (vec![0, 2, 1, 3], vec![1, 0, 2]),
            (vec![0, 2, 3, 1], vec![1, 2, 0]),
            (vec![0, 3, 1, 2], vec![2, 0, 1]),
            (vec![0, 3, 2, 1], vec![2, 1, 0]),
        ];
        assert_eq!(res, want);
    }

    /// g1 is a plain generator (here: [`Generator`]), g2 a genlet that yields, g3 a genlet
    /// that yields from a nested function: the same sequence from each.
    #[test]
    fn test_genlet_simple() {
        let g1 = |n: i32, seen: Seen| -> Box<dyn Iterator<Item = i32>> {
            let mut producer = Generator::new(move |y, (): ()| {
                for i in 0..n {
                    seen.borrow_mut().push(i + 1);
                    if y.suspend(i).is_none() {
                        return;
                    }
                }
            });
            Box::new(std::iter::from_fn(move || producer.send(())))
        };
        let g2 = |n: i32, seen: Seen| -> Box<dyn Iterator<Item = i32>> {
            Box::new(
                Genlet::new(move || {
                    for i in 0..n {
                        seen.borrow_mut().push(i + 1);
                        yield_level(val(i), 1)?;
                    }
                    Ok(())
                })
                .map(|v| v.downcast::<i32>().unwrap()),
            )
        };
        fn nested(i: i32) -> Result<(), GreenletError> {
            yield_level(val(i), 1)
        }
        let g3 = |n: i32, seen: Seen| -> Box<dyn Iterator<Item = i32>> {
            Box::new(
                Genlet::new(move || {
                    for i in 0..n {
                        seen.borrow_mut().push(i + 1);
                        nested(i)?;
                    }
                    Ok(())
                })
                .map(|v| v.downcast::<i32>().unwrap()),
            )
        };
        let makers: [&dyn Fn(i32, Seen) -> Box<dyn Iterator<Item = i32>>; 3] = [&g1, &g2, &g3];
        for g in makers {
            let seen: Seen = Rc::default();
            for _ in 0..3 {
                for j in g(5, seen.clone()) {
                    seen.borrow_mut().push(j);
                }
            }
            let once = [1, 0, 2, 1, 3, 2, 4, 3, 5, 4];
            assert_eq!(*seen.borrow(), once.repeat(3));
        }
    }

    /// `Yield` outside any genlet raises `RuntimeError`.
    #[test]
    fn test_genlet_bad() {
        let err = yield_level(val(10), 1).unwrap_err();
        assert_eq!(
            err,
            GreenletError::thrown("RuntimeError: yield outside a genlet")
        );
    }

    /// `ax(n)` yields everything `ax(n - 1)` yields, then n.
    #[test]
    fn test_nested_genlets() {
        fn ax(n: i32) -> Genlet {
            Genlet::new(move || {
                if n == 0 {
                    return Ok(());
                }
                for ii in ax(n - 1) {
                    yield_level(ii, 1)?;
                }
                yield_level(val(n), 1)
            })
        }
        assert_eq!(ints(ax(5)), [1, 2, 3, 4, 5]);
    }
}

mod test_leaks {
    use super::*;

    /// Values switched in and out a hundred times are all dropped (greenlet: the argument
    /// tuple's reference count is back where it was).
    #[test]
    fn test_arg_refs() {
        let args = Rc::new(("a", "b", "c"));
        let g = Greenlet::new(|v| {
            let mut v = v;
            loop {
                v = parent().switch(v)?;
            }
        })
        .unwrap();
        for _ in 0..100 {
            let back = g.switch(val(args.clone())).unwrap();
            assert!(back.is::<Rc<(&str, &str, &str)>>());
        }
        assert_eq!(
            Rc::strong_count(&args),
            1,
            "a value switched through was kept"
        );
        drop(g);
        assert_eq!(Rc::strong_count(&args), 1);
    }

    /// Greenlets left suspended on a thread that ends are killed with the thread's locals:
    /// their captures are dropped, nothing is left.
    #[test]
    fn test_threaded_adv_leak() {
        let drops = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        for _ in 0..2 {
            let d = drops.clone();
            std::thread::spawn(move || {
                struct Mark(std::sync::Arc<std::sync::atomic::AtomicU32>);
                impl Drop for Mark {
                    fn drop(&mut self) {
                        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                }
                let mut kept = Vec::new();
                for _ in 0..2 {
                    let m = Mark(d.clone());
                    let g = Greenlet::new(move |_| {
                        let _m = m;
                        parent().switch(val(()))?;
                        Ok(val(()))
                    })
                    .unwrap();
                    g.switch(val(())).unwrap();
                    kept.push(g);
                }
                // Finished greenlets too.
                let m = Mark(d.clone());
                Greenlet::new(move |_| {
                    drop(m);
                    Ok(val(()))
                })
                .unwrap()
                .switch(val(()))
                .unwrap();
            })
            .join()
            .unwrap();
        }
        assert_eq!(drops.load(std::sync::atomic::Ordering::SeqCst), 6);
    }

    /// Creating, running and dropping ten thousand greenlets leaves no stack mapped (greenlet
    /// checks the process's memory, within a tolerance; here the count of memory mappings, in
    /// a child process where nothing else maps or unmaps meanwhile: a leak of the greenlets'
    /// stacks would add at least a hundred; the allocator's own may add or free a few).
    #[test]
    fn test_untracked_memory_doesnt_increase() {
        support::isolated("test_leaks::test_untracked_memory_doesnt_increase", || {
            let maps = || {
                std::fs::read_to_string("/proc/self/maps")
                    .unwrap()
                    .lines()
                    .count()
            };
            let run_it = || {
                for _ in 0..10_000 {
                    Greenlet::new(|_| Ok(val(1)))
                        .unwrap()
                        .switch(val(()))
                        .unwrap();
                }
                // Some left suspended, some unstarted: killed when dropped.
                let kept: Vec<Greenlet> = (0..100)
                    .map(|i| {
                        let g = Greenlet::new(|_| parent().switch(val(()))).unwrap();
                        if i % 2 == 0 {
                            g.switch(val(())).unwrap();
                        }
                        g
                    })
                    .collect();
                drop(kept);
            };
            run_it();
            let before = maps();
            for _ in 0..3 {
                run_it();
            }
            let after = maps();
            assert!(
                after <= before + 10,
                "stacks were left mapped: {before} -> {after}"
            );
        });
    }
}

mod test_weakref {
    use super::*;

    /// A dead greenlet's handle is all that is left of it: a view of it only names it.
    #[test]
    fn test_dead_weakref() {
        let drops = Rc::new(Cell::new(0));
        let d = drops.clone();
        let g = Greenlet::new(move |_| {
            let _c = Counted(d);
            Ok(val(()))
        })
        .unwrap();
        g.switch(val(())).unwrap();
        let o = g.view();
        drop(g);
        assert_eq!(drops.get(), 1);
        assert!(o.dead());
    }

    /// An unstarted greenlet dropped: its function (and what it holds) is dropped unrun.
    #[test]
    fn test_inactive_weakref() {
        let drops = Rc::new(Cell::new(0));
        let c = Counted(drops.clone());
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        let g = Greenlet::new(move |_| {
            let _c = c;
            r.set(true);
            Ok(val(()))
        })
        .unwrap();
        let o = g.view();
        drop(g);
        assert_eq!(drops.get(), 1);
        assert!(o.dead());
    }

    /// greenlet: a child's parent link keeps the parent alive, so the parent is killed only
    /// when the child goes. Here a parent link does not own (no cycle collector to break the
    /// cycles that would make): the parent is killed when its last owning handle goes, while
    /// the child lives; the child, when it later ends, goes on to the parent's parent.
    #[test]
    fn test_dealloc_weakref() {
        let seen: Rc<RefCell<Vec<bool>>> = Rc::default();
        let slot: Rc<RefCell<Option<Greenlet>>> = Rc::default();
        let (s, sl) = (seen.clone(), slot.clone());
        let g = Greenlet::new(move |_| {
            struct Finally(Rc<RefCell<Vec<bool>>>, Rc<RefCell<Option<Greenlet>>>);
            impl Drop for Finally {
                fn drop(&mut self) {
                    // Whether the child is still there when the parent goes.
                    let alive = self.1.borrow().as_ref().is_some_and(|c| !c.dead());
                    self.0.borrow_mut().push(alive);
                }
            }
            let _finally = Finally(s, sl);
            parent().switch(val(()))?;
            Ok(val(()))
        })
        .unwrap();
        g.switch(val(())).unwrap();
        let g2 = Greenlet::new(|_| Ok(val("g2 ran"))).unwrap();
        g2.set_parent(&g).unwrap();
        *slot.borrow_mut() = Some(g2.clone());
        drop(g);
        assert_eq!(*seen.borrow(), [true], "divergence: the parent went first");
        let r = g2.switch(val(())).unwrap();
        assert_eq!(r.downcast::<&str>().unwrap(), "g2 ran");
    }
}

mod test_gc {
    use super::*;

    /// A greenlet that returns the main greenlet (a view of it) leaves nothing behind.
    #[test]
    fn test_dead_circular_ref() {
        let g = Greenlet::new(|_| Ok(val(getcurrent().parent().unwrap()))).unwrap();
        let main = g.switch(val(())).unwrap().downcast::<Greenlet>().unwrap();
        assert_eq!(main, getcurrent());
        assert!(g.dead());
    }

    /// A greenlet holding a handle of itself (greenlet's `o.self = o`): with a view (which
    /// does not own), dropping the last owner still frees it. (An *owning* handle of itself
    /// would be an `Rc` cycle, which Rust does not collect: a leak, as with any `Rc`.)
    #[test]
    fn test_circular_greenlet() {
        let drops = Rc::new(Cell::new(0));
        let me: Rc<RefCell<Option<Greenlet>>> = Rc::default();
        let (c, m) = (Counted(drops.clone()), me.clone());
        let o = Greenlet::new(move |_| {
            let _c = c;
            let _keep = m;
            Ok(val(()))
        })
        .unwrap();
        *me.borrow_mut() = Some(o.view());
        drop(o);
        assert_eq!(drops.get(), 1);
    }

    /// An unstarted greenlet whose function is a method of it: freed when dropped.
    #[test]
    fn test_inactive_ref() {
        let drops = Rc::new(Cell::new(0));
        let c = Counted(drops.clone());
        let o = Greenlet::new(move |_| {
            let _c = c;
            Ok(val(()))
        })
        .unwrap();
        drop(o);
        assert_eq!(drops.get(), 1);
    }

    /// greenlet's `test_finalizer_crash`: a suspended greenlet holding an object with a
    /// finalizer, in a cycle with a list that holds the greenlet, is collected: here, dropped
    /// while its finalizer runs in the kill (`GreenletExit` caught, `finally` runs), no crash.
    #[test]
    fn test_finalizer_crash() {
        let finalized = Rc::new(Cell::new(0));
        let got_exit = Rc::new(Cell::new(false));
        let array: Rc<RefCell<Vec<Greenlet>>> = Rc::default();
        let (f, e) = (finalized.clone(), got_exit.clone());
        let g = Greenlet::new(move |_| {
            let _object_with_finalizer = Counted(f);
            if let Err(err) = parent().switch(val(())) {
                e.set(err.is_exit());
            }
            Ok(val(()))
        })
        .unwrap();
        g.switch(val(())).unwrap();
        array.borrow_mut().push(g);
        drop(array);
        assert!(got_exit.get());
        assert_eq!(finalized.get(), 1);
    }
}
