//! Lesson `lock` (进程同步): ten processes print under a process lock; then a holder is killed
//! and the next process gets the lock back, told that its owner died.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use lesson::{Activity, Cx};
use processes::Process;

use super::child;
use crate::Lock;

/// Ten children (`Process-1` to `Process-10`, as Python names them) take the lock, say their
/// number, release. Their exit codes.
pub fn ten_printers(cx: &Cx, lock: &Lock) -> anyhow::Result<Vec<i32>> {
    let mut procs: Vec<Process> = (0..10)
        .map(|i| {
            let lock = lock.clone();
            child(
                cx,
                &format!("Process-{}", i + 1),
                move |cx| -> anyhow::Result<()> {
                    let held = {
                        let _waiting = cx.span(Activity::Wait, "acquire(): waiting for the lock");
                        lock.acquire()?
                    };
                    let holding = cx.span(Activity::Hold, "holding the lock");
                    cx.say(format!("{i}"));
                    // The span ends while the lock is still held: ended after the release,
                    // it could end after the next holder's span began (two holds drawn
                    // overlapping on the timeline).
                    drop(holding);
                    drop(held);
                    Ok(())
                },
            )
        })
        .collect();
    for p in &mut procs {
        p.start()?;
    }
    procs.iter_mut().map(|p| p.join()).collect()
}

/// A child takes the lock and is SIGKILLed while holding it; then we take it. Returns
/// whether our guard said the owner died, and whether the lock works normally afterwards.
pub fn holder_killed(cx: &Cx, lock: &Lock) -> anyhow::Result<(bool, bool)> {
    let l = lock.clone();
    let mut holder = child(cx, "Process-11", move |cx| -> anyhow::Result<()> {
        let _held = l.acquire()?;
        cx.say("holder: I have the lock, and I will never let go");
        std::thread::sleep(Duration::from_secs(600));
        Ok(())
    });
    holder.start()?;
    // Wait until the child holds it: our try_acquire then fails.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match lock.try_acquire()? {
            None => break,
            Some(_free) => {}
        }
        if Instant::now() >= deadline {
            bail!("the holder never took the lock");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    holder.kill()?;
    let code = holder.join()?;
    cx.say(format!(
        "parent: killed the holder (exitcode {code}) while it held the lock"
    ));
    let _waiting = cx.span(Activity::Wait, "acquire(): the holder was killed");
    let died = match lock.acquire_timeout(cx.long_wait())? {
        Some(g) => g.owner_died(),
        None => bail!("the lock stayed held after its owner died"),
    };
    let usable = lock.try_acquire()?.is_some_and(|g| !g.owner_died());
    Ok((died, usable))
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    cx.explain(
        "The seed writes `p = Process(...).start()`: start() returns None, so the seed keeps no\n\
         handle and never calls join(). Python still waits for those ten children: at exit its\n\
         multiprocessing atexit handler joins every non-daemon child it started. Here every\n\
         Process handle is kept and joined (dropping a running one waits for it too; the\n\
         seed's one-liner in Rust would drop it at the end of the statement, and wait then).",
    );
    let lock = Lock::new()?;
    let codes = ten_printers(cx, &lock)?;
    cx.say(format!("parent: joined all 10, exit codes {codes:?}"));
    ensure!(codes.iter().all(|&c| c == 0), "a printer failed");
    let (died, usable) = holder_killed(cx, &lock)?;
    cx.say(format!(
        "parent: acquire() -> got it, owner_died() = {died}; afterwards the lock works: {usable}"
    ));
    ensure!(died && usable, "robust recovery");
    cx.explain(
        "A robust mutex: the kernel notes who holds it, and when that process dies the next\n\
         acquire succeeds and says so (EOWNERDEAD). Python's multiprocessing.Lock has no owner:\n\
         it would stay locked forever. The data the dead owner was changing may be half done.",
    );
    Ok(())
}
