//! Lesson `event` (beyond the seed: its 同步对象 boss and workers, as processes): five worker
//! processes wait on an `ipc::Event` until the boss process sets it; then a holder of a
//! process-shared semaphore is killed, and the next acquirer gets its permit back.

use std::time::Duration;

use anyhow::{Context, ensure};
use lesson::{Activity, Cx};
use processes::Process;

use super::child;
use crate::{Event, Semaphore};

/// Worker processes, as in the seed.
pub const WORKERS: usize = 5;

/// The seed's boss and workers, each a process: `Process-1` .. `Process-5` are the workers,
/// `Process-6` the boss (Python numbers them in the order the seed makes them).
///
/// The seed's workers clear the event a second after the boss sets it, and the boss sets it
/// again 5 s later; a worker slower than that would clear the second set and wait forever. So
/// the boss here also waits until every worker has cleared (a semaphore each releases) before
/// it sets the event again.
pub fn boss_and_workers(cx: &Cx) -> anyhow::Result<()> {
    let event = Event::new()?;
    let cleared = Semaphore::new(0)?;
    let limit = cx.long_wait();
    let mut procs: Vec<Process> = (0..WORKERS)
        .map(|i| {
            let (event, cleared) = (event.clone(), cleared.clone());
            child(
                cx,
                &format!("Process-{}", i + 1),
                move |cx| -> anyhow::Result<()> {
                    {
                        let _waiting = cx.span(Activity::Wait, "event.wait()");
                        ensure!(event.wait_timeout(limit), "the boss never set the event");
                    }
                    cx.say("worker: 哎呀生活苦呀 (life is hard)");
                    cx.sleep(1.0);
                    event.clear();
                    cleared.release()?;
                    {
                        let _waiting = cx.span(Activity::Wait, "event.wait() again");
                        ensure!(event.wait_timeout(limit), "the boss never set it again");
                    }
                    cx.say("worker: oyear下班了 (off work)");
                    Ok(())
                },
            )
        })
        .collect();
    let (e, c) = (event.clone(), cleared.clone());
    procs.push(child(cx, "Process-6", move |cx| -> anyhow::Result<()> {
        cx.say("boss: 今天大家要加班到22点 (overtime until 22:00 today)");
        cx.say(format!("boss: event.is_set() -> {}", e.is_set()));
        e.set();
        cx.sleep(5.0);
        {
            let _waiting = cx.span(Activity::Wait, "until the five workers have cleared");
            for _ in 0..WORKERS {
                c.acquire_timeout(limit)?
                    .context("a worker never cleared")?
                    .forget()?;
            }
        }
        cx.say("boss: <22:00> 可以下班了 (you may go home)");
        cx.say(format!("boss: event.is_set() -> {}", e.is_set()));
        e.set();
        Ok(())
    }));
    for p in &mut procs {
        p.start()?;
    }
    let _waiting = cx.span(Activity::Wait, "join(): the workers and the boss");
    for p in &mut procs {
        ensure!(p.join()? == 0, "{} failed", p.name());
    }
    Ok(())
}

/// A child takes a permit of a `Semaphore(1)` and is SIGKILLed holding it; the parent's
/// acquire waits, finds the holder dead, and gets the permit. The permits taken back.
pub fn holder_killed(cx: &Cx) -> anyhow::Result<u32> {
    let sem = Semaphore::new(1)?;
    let taken = Event::new()?;
    let (s, t) = (sem.clone(), taken.clone());
    let mut holder = child(cx, "Process-7", move |cx| -> anyhow::Result<()> {
        let _permit = s.acquire()?;
        let _holding = cx.span(Activity::Hold, "holding the permit");
        cx.say("holder: I have the only permit");
        t.set();
        std::thread::sleep(Duration::from_secs(600));
        Ok(())
    });
    holder.start()?;
    ensure!(
        taken.wait_timeout(cx.long_wait()),
        "the holder never took it"
    );
    holder.kill()?;
    let code = holder.join()?;
    cx.say(format!("parent: killed the holder (exitcode {code})"));
    let permit = {
        let _waiting = cx.span(Activity::Wait, "sem.acquire()");
        sem.acquire_timeout(cx.long_wait())?
            .context("the dead holder's permit never came back")?
    };
    cx.say(format!(
        "parent: acquire() -> got it; owner_died() = {}, reclaimed() = {}",
        permit.owner_died(),
        permit.reclaimed()
    ));
    Ok(permit.reclaimed())
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    cx.explain(
        "The seed's Event demo (同步对象) has threads; multiprocessing.Event is the same API\n\
         across processes. ipc::Event is one futex word in shared memory: set() wakes every\n\
         process sleeping on it, with no server and no pipe.",
    );
    boss_and_workers(cx)?;
    cx.explain(
        "The seed relies on its workers clearing within 5 s of the first set; a worker slower\n\
         than that clears the second set and waits forever. The boss here also waits for the\n\
         five clears (a process-shared Semaphore) before it sets the event again.",
    );
    let reclaimed = holder_killed(cx)?;
    ensure!(
        reclaimed == 1,
        "expected the one permit back, got {reclaimed}"
    );
    cx.explain(
        "multiprocessing.Semaphore is a POSIX semaphore: a process killed holding a permit\n\
         keeps it forever. ipc::Semaphore records who holds a permit (its Permit guard); a\n\
         waiter finds the dead holder and takes the permit back, and is told so.",
    );
    Ok(())
}
