//! Lesson `greenlet` (协程, greenlet): the seed's test1 / test2, then values through switch,
//! parents, dead greenlets and throw.

use std::cell::{OnceCell, RefCell};
use std::rc::Rc;

use anyhow::ensure;
use lesson::Cx;

use super::turns::Turn;
use crate::{Greenlet, GreenletError, val};

/// The seed's program: g1 runs test1, g2 runs test2, main calls `g2.switch()`. The numbers in
/// the order they were printed. Each greenlet narrates under its own name (`g1`, `g2`), and
/// each stretch it runs is a working span on the timeline, ended at its switch: the hand-overs
/// main -> g2 -> g1 -> g2 -> g1 -> g2 -> main.
///
/// # Errors
/// If a greenlet cannot be made (no stack) or a switch fails.
pub fn seed(cx: &Cx) -> anyhow::Result<Vec<i32>> {
    let printed = Rc::new(RefCell::new(Vec::new()));
    let say = |cx: Cx| {
        let printed = printed.clone();
        move |n: i32| {
            cx.say(format!("{n}"));
            printed.borrow_mut().push(n);
        }
    };
    let g2_later: Rc<OnceCell<Greenlet>> = Rc::new(OnceCell::new());
    let (cx1, g2) = (cx.as_speaker("g1"), g2_later.clone());
    let say1 = say(cx1.clone());
    let g1 = Greenlet::new(move |_| {
        let mut turn = Turn::begin(&cx1);
        say1(12);
        if let Some(g2) = g2.get() {
            turn.switch(g2, val(()))?;
        }
        say1(24);
        if let Some(g2) = g2.get() {
            turn.switch(g2, val(()))?;
        }
        Ok(val(()))
    })?;
    let (cx2, g1c) = (cx.as_speaker("g2"), g1.clone());
    let say2 = say(cx2.clone());
    let g2 = Greenlet::new(move |_| {
        let mut turn = Turn::begin(&cx2);
        say2(56);
        turn.switch(&g1c, val(()))?;
        say2(65);
        turn.switch(&g1c, val(()))?;
        Ok(val(()))
    })?;
    let _ = g2_later.set(g2.clone());
    let mut main = Turn::begin(cx);
    main.switch(&g2, val(()))?;
    drop(main);
    cx.say(format!(
        "main is back: g2 finished (dead: {}), g1 is left suspended (dead: {}); when its last \
         handle goes, GreenletExit is raised in it and it ends",
        g2.dead(),
        g1.dead()
    ));
    let out = printed.borrow().clone();
    Ok(out)
}

/// A greenlet handed to another thread: the program the compiler refuses.
pub const NOT_SEND_SNIPPET: &str = "\
let g = Greenlet::new(|v| Ok(v))?;
std::thread::spawn(move || {
    let _ = g.switch(val(()));
});";

/// What rustc says about [`NOT_SEND_SNIPPET`] (its key lines; `tests/not_send.rs` compiles the
/// snippet and checks that rustc says exactly these).
pub const NOT_SEND_ERROR: [&str; 2] = [
    "error[E0277]: `Rc<coroutines::greenlet::Inner>` cannot be sent between threads safely",
    "note: required because it appears within the type `Greenlet`",
];

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    let printed = seed(cx)?;
    ensure!(printed == [56, 12, 65, 24], "printed {printed:?}");

    cx.explain(
        "values travel through switch, and a finished greenlet's result goes to its parent:",
    );
    let doubler = Greenlet::new(|v| {
        let n = v
            .downcast::<i32>()
            .map_err(|_| GreenletError::thrown("not an i32"))?;
        let more = crate::getcurrent()
            .parent()
            .map(|p| p.switch(val(n * 2)))
            .transpose()?
            .and_then(|v| v.downcast::<i32>().ok())
            .unwrap_or(0);
        Ok(val(format!("done with {more}")))
    })?;
    let first = doubler.switch(val(21))?;
    let first = first.downcast::<i32>().unwrap_or(-1);
    cx.say(format!(
        "doubler.switch(21) -> {first} (switched back to main, its parent)"
    ));
    let last = doubler.switch(val(7))?;
    let last = last.downcast::<String>().unwrap_or_default();
    cx.say(format!(
        "doubler.switch(7) -> {last:?} (its return value); dead: {}",
        doubler.dead()
    ));
    ensure!(
        first == 42 && last == "done with 7" && doubler.dead(),
        "switch values"
    );

    let again = doubler.switch(val("anyone?"))?;
    let again = again.downcast::<&str>().unwrap_or("");
    cx.say(format!(
        "switch to the dead doubler -> goes to its parent: {again:?} comes straight back"
    ));
    ensure!(again == "anyone?", "switch to a dead greenlet");

    let worker = Greenlet::new(|_| {
        let root = crate::getcurrent().parent();
        match root.map(|p| p.switch(val(()))) {
            Some(Err(e)) => Err(e),
            _ => Ok(val("no exception")),
        }
    })?;
    worker.switch(val(()))?;
    let thrown = worker.throw("stop working");
    cx.say(format!(
        "worker.throw(\"stop working\") -> raised in the worker, which let it out: {thrown:?}"
    ));
    ensure!(
        thrown.err() == Some(GreenletError::thrown("stop working")),
        "throw"
    );

    cx.explain(
        "greenlet finds out at run time that a greenlet was used from another thread\n\
         (\"cannot switch to a different thread\"). Here the compiler refuses the program:",
    );
    cx.explain(NOT_SEND_SNIPPET);
    cx.say("rustc says:");
    for line in NOT_SEND_ERROR {
        cx.say(format!("  {line}"));
    }
    cx.explain(
        "A greenlet's stack belongs to its thread (its handle holds an Rc, which is not Send).\n\
         A greenlet made on the other thread is fine.",
    );
    Ok(())
}
