//! Lesson `timer` (beyond the seed): `threading.Timer`, a function run once after a delay,
//! unless cancelled.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, ensure};
use lesson::{Activity, Cx};

use crate::Timer;

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    let fired = Arc::new(AtomicBool::new(false));
    let c = cx.clone();
    let flag = fired.clone();
    // Said before the start: the timer cannot fire before this line's time plus 2 s.
    cx.say("starting a 2 s timer, then waiting for it");
    let t = Timer::start(cx.scaled(2.0), move || {
        flag.store(true, Ordering::SeqCst);
        c.say("the 2 s timer fired");
    })?;
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
        "cancel() of a timer still waiting returns at once: the timer thread sleeps on a\n\
         channel, and the cancel message wakes it. Python's cancel() cannot say whether it was\n\
         in time; this one returns false when the function had already started (and waits for\n\
         it to finish):",
    );
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let c = cx.clone();
    let t = Timer::start(Duration::ZERO, move || {
        c.say("the 0 s timer's function started");
        let _ = started_tx.send(());
    })?;
    started_rx
        .recv_timeout(cx.long_wait())
        .context("the 0 s timer never fired")?;
    let cancelled = t.cancel();
    cx.say(format!(
        "cancel() after its function started -> {cancelled}: too late, it ran"
    ));
    ensure!(
        !cancelled,
        "cancel() claimed to stop a function that had started"
    );
    Ok(())
}
