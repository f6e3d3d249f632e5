//! Lesson `semaphore` (信号量): Semaphore(5) and 10 threads: at most five inside at once.

use std::sync::Barrier;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, ensure};
use lesson::{Activity, Cx};

use super::{Held, pause_holding};
use crate::{BoundedSemaphore, Semaphore};

/// Run `threads` threads through a semaphore of `permits`; each holds a permit for the seed's
/// 3 s. The threads start together (a barrier), as the seed's loop of `start()` calls means
/// them to. On the timeline each is a wait (while no permit is free) and a hold (inside).
/// Returns the most threads that were ever inside at once.
pub fn crowd(cx: &Cx, permits: usize, threads: usize) -> anyhow::Result<usize> {
    let sem = Semaphore::new(permits);
    let inside = AtomicUsize::new(0);
    let most = AtomicUsize::new(0);
    let start = Barrier::new(threads);
    std::thread::scope(|s| -> anyhow::Result<()> {
        for i in 1..=threads {
            let (sem, inside, most, start) = (&sem, &inside, &most, &start);
            std::thread::Builder::new()
                .name(format!("Thread-{i}"))
                .spawn_scoped(s, move || {
                    start.wait();
                    let permit = match sem.try_acquire() {
                        Some(permit) => permit,
                        None => {
                            let _waiting = cx.span(Activity::Wait, "waiting for a permit");
                            sem.acquire()
                        }
                    };
                    let _inside = Held::new(cx, permit, "inside the semaphore");
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    cx.say(format!("inside ({now} now)"));
                    pause_holding(cx, 3.0);
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
                .context("spawning a thread")?;
        }
        Ok(())
    })?;
    Ok(most.load(Ordering::SeqCst))
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    cx.explain(
        "Semaphore(5): ten threads want in, five get a permit, the rest wait for one to come\n\
         back. The permit is a guard: dropped at the end of the block, even on panic.",
    );
    let most = crowd(cx, 5, 10)?;
    cx.say(format!(
        "most threads inside at once: {most} (never more than 5)"
    ));
    ensure!(most == 5, "expected a high-water mark of 5, saw {most}");

    let sem = Semaphore::new(1);
    let held = Held::new(cx, sem.acquire(), "holding the only permit");
    let no = sem.try_acquire().is_none();
    cx.say(format!(
        "one permit, held: try_acquire() -> {}",
        if no {
            "None (acquire(blocking=False) -> False)"
        } else {
            "a permit?!"
        }
    ));
    let timed_out = {
        let _waiting = cx.span(Activity::Wait, "acquire_timeout(1 s)");
        sem.acquire_timeout(cx.scaled(1.0)).is_none()
    };
    cx.say(format!(
        "acquire_timeout(1 s) -> {}",
        if timed_out {
            "None after 1 s"
        } else {
            "a permit?!"
        }
    ));
    ensure!(no && timed_out, "a held single permit was handed out twice");
    drop(held);
    ensure!(sem.try_acquire().is_some(), "the permit did not come back");

    cx.explain(
        "A plain Semaphore lets release() push the count past where it started (as Python's\n\
         does); BoundedSemaphore calls that a bug:",
    );
    let bounded = BoundedSemaphore::new(2);
    bounded.acquire().forget();
    bounded.release()?;
    match bounded.release() {
        Ok(()) => anyhow::bail!("an over-release was accepted"),
        Err(e) => cx.say(format!(
            "BoundedSemaphore(2): one release() too many -> Err: {e}"
        )),
    }
    let plain = Semaphore::new(2);
    plain.release()?;
    cx.say(format!(
        "Semaphore(2): one release() too many -> Ok, now {} permits",
        plain.available()
    ));
    Ok(())
}
