//! Lesson `timer` (beyond the seed): `threading.Timer`, a function run once after a delay,
//! unless cancelled.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::ensure;
use lesson::{Activity, Cx};

use crate::Timer;

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    let fired = Arc::new(AtomicBool::new(false));
    let c = cx.clone();
    let flag = fired.clone();
    let t = Timer::start(cx.scaled(2.0), move || {
        flag.store(true, Ordering::SeqCst);
        c.say("the 2 s timer fired");
    })?;
    cx.say("started a 2 s timer, waiting for it");
    let ran = {
        let _waiting = cx.span(Activity::Wait, "join(): waiting for the timer");
        t.join()
    };
    ensure!(
        ran && fired.load(Ordering::SeqCst),
        "the timer did not fire"
    );
    cx.say("join() -> it ran");

    let fired = Arc::new(AtomicBool::new(false));
    let flag = fired.clone();
    let c = cx.clone();
    let t = Timer::start(cx.scaled(30.0), move || {
        flag.store(true, Ordering::SeqCst);
        c.say("the 30 s timer fired");
    })?;
    cx.say("started a 30 s timer");
    cx.sleep(1.0);
    let cancelled = t.cancel();
    cx.say(format!(
        "cancel() after 1 s -> {cancelled}: it never fires (fired: {})",
        fired.load(Ordering::SeqCst)
    ));
    ensure!(
        cancelled && !fired.load(Ordering::SeqCst),
        "the cancelled timer fired"
    );
    cx.explain(
        "cancel() returns at once: the timer thread sleeps on a channel, and the cancel message\n\
         wakes it. Python's cancel() cannot say whether it was in time; this one returns false\n\
         when the function had already started.",
    );
    Ok(())
}
