//! [`Generator`]: what a body may do while its generator is dropped, or while it panics,
//! without aborting the process. Each runs in a child process (before the fix, each aborted:
//! SIGABRT, checked with corosensei's own yielder in the body).

mod support;

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use coroutines::{Generator, Yielder};

/// Suspends from its destructor, and notes what that gave.
struct SuspendsOnDrop<'a, 'b>(&'a Yielder<'b, (), i32>, Rc<RefCell<Vec<Option<()>>>>);

impl Drop for SuspendsOnDrop<'_, '_> {
    fn drop(&mut self) {
        let got = self.0.suspend(2);
        self.1.borrow_mut().push(got);
    }
}

/// The body catches the unwind of its generator's drop and panics with another payload: the
/// stray panic is reported and the drop completes.
#[test]
fn a_generator_that_catches_its_unwind_and_panics_again_does_not_abort() {
    let name = "a_generator_that_catches_its_unwind_and_panics_again_does_not_abort";
    let Some(out) = support::isolated(name, || {
        let mut g = Generator::new(|y, (): ()| {
            let _ = catch_unwind(AssertUnwindSafe(|| y.suspend(1)));
            panic!("a second panic, from a generator being dropped");
        });
        assert_eq!(g.send(()), Some(1));
        drop(g);
        println!("alive after the drop");
    }) else {
        return;
    };
    let err = support::stderr(&out);
    assert!(err.contains("discarded"), "{}", support::describe(&out));
}

/// The body panics and a destructor run by that panic suspends: the suspension is refused
/// (`None`), and the panic comes out of `send` as any panic of the body does.
#[test]
fn a_generator_suspending_from_a_destructor_during_its_panic_does_not_abort() {
    let name = "a_generator_suspending_from_a_destructor_during_its_panic_does_not_abort";
    support::isolated(name, || {
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = log.clone();
        let mut g = Generator::new(move |y, (): ()| {
            let _s = SuspendsOnDrop(y, l);
            panic!("the body's panic");
        });
        let r = catch_unwind(AssertUnwindSafe(|| g.send(())));
        let payload = r.expect_err("the panic did not come out of send");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"the body's panic"));
        drop(g);
        assert_eq!(*log.borrow(), [None]);
    });
}

/// A generator dropped while suspended, whose destructor suspends: refused, and the drop
/// completes.
#[test]
fn a_generator_suspending_from_a_destructor_while_dropped_does_not_abort() {
    let name = "a_generator_suspending_from_a_destructor_while_dropped_does_not_abort";
    support::isolated(name, || {
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = log.clone();
        let mut g = Generator::new(move |y, (): ()| {
            let _s = SuspendsOnDrop(y, l);
            y.suspend(1);
        });
        assert_eq!(g.send(()), Some(1));
        drop(g);
        assert_eq!(*log.borrow(), [None]);
    });
}
