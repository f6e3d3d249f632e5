//! Lesson `greenlet` (协程, greenlet): the seed's test1 / test2, then values through switch,
//! parents, dead greenlets and throw.

use std::cell::{OnceCell, RefCell};
use std::rc::Rc;

use anyhow::ensure;
use lesson::Cx;

use crate::{Greenlet, GreenletError, val};

/// The seed's program: g1 runs test1, g2 runs test2, main calls `g2.switch()`. The numbers in
/// the order they were printed.
pub fn seed(cx: &Cx) -> anyhow::Result<Vec<i32>> {
    let printed = Rc::new(RefCell::new(Vec::new()));
    let say = {
        let (cx, printed) = (cx.clone(), printed.clone());
        move |n: i32| {
            cx.say(format!("{n}"));
            printed.borrow_mut().push(n);
        }
    };
    let g2_later: Rc<OnceCell<Greenlet>> = Rc::new(OnceCell::new());
    let (say1, g2) = (say.clone(), g2_later.clone());
    let g1 = Greenlet::new(move |_| {
        say1(12);
        if let Some(g2) = g2.get() {
            g2.switch(val(()))?;
        }
        say1(24);
        if let Some(g2) = g2.get() {
            g2.switch(val(()))?;
        }
        Ok(val(()))
    })?;
    let (say2, g1c) = (say, g1.clone());
    let g2 = Greenlet::new(move |_| {
        say2(56);
        g1c.switch(val(()))?;
        say2(65);
        g1c.switch(val(()))?;
        Ok(val(()))
    })?;
    let _ = g2_later.set(g2.clone());
    g2.switch(val(()))?;
    cx.say(format!(
        "main is back: g2 finished (dead: {}), g1 is left suspended (dead: {})",
        g2.dead(),
        g1.dead()
    ));
    let out = printed.borrow().clone();
    Ok(out)
}

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
    Ok(())
}
