//! Lesson `poison` (beyond the seed, about its `lock.acquire()` ... `lock.release()`): a thread
//! panics inside a locked section. Rust's guard releases the lock anyway and marks it poisoned,
//! so the next user learns the data may be half-updated. The seed's pattern, with no `finally`,
//! would leave the lock held forever.

use std::sync::Mutex;

use anyhow::{bail, ensure};
use lesson::{Activity, Cx};

use super::Held;
use crate::Semaphore;

/// Two accounts; a transfer debits one, then credits the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accounts {
    /// Debited first.
    pub alice: i64,
    /// Credited second.
    pub bob: i64,
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    let bank = Mutex::new(Accounts { alice: 100, bob: 0 });
    let outcome = std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("teller".into())
            .spawn_scoped(s, || {
                let mut a = Held::new(
                    cx,
                    bank.lock().unwrap_or_else(|e| e.into_inner()),
                    "holding the bank's lock",
                );
                a.alice -= 50;
                cx.say("debited alice 50, now crashing before crediting bob");
                panic!("the teller crashed mid-transfer");
            })
            .map(|t| t.join())
    })?;
    ensure!(outcome.is_err(), "the teller was meant to panic");
    match bank.lock() {
        Ok(_) => bail!("the mutex was not poisoned"),
        Err(poisoned) => {
            let mut a = poisoned.into_inner();
            cx.say(format!(
                "lock() -> Err(PoisonError): the lock was released, the data is suspect: {:?}",
                *a
            ));
            a.bob += 50;
            cx.say(format!(
                "recovered: finished the transfer by hand: {:?}",
                *a
            ));
        }
    }
    bank.clear_poison();
    let ok = bank.lock().is_ok();
    cx.say(format!(
        "clear_poison(); lock() -> {}",
        if ok { "Ok" } else { "Err" }
    ));
    ensure!(ok, "still poisoned");

    cx.explain(
        "The seed's style: acquire(), work, release() with no try/finally. If the work raises,\n\
         release() never runs. Here is that style, with a one-permit semaphore used as Python's\n\
         Lock (acquire().forget() = a bare acquire()):",
    );
    let lock = Semaphore::new(1);
    let outcome = std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("careless".into())
            .spawn_scoped(s, || {
                lock.acquire().forget();
                // The span ends as the thread dies; the permit stays taken.
                let _held = cx.span(Activity::Hold, "acquire()d, never released");
                cx.say("acquire(); now raising before release()");
                panic!("the careless thread raised");
            })
            .map(|t| t.join())
    })?;
    ensure!(outcome.is_err(), "the careless thread was meant to panic");
    let stuck = {
        let _waiting = cx.span(Activity::Wait, "acquire(timeout=1 s)");
        lock.acquire_timeout(cx.scaled(1.0)).is_none()
    };
    cx.say(format!(
        "the next acquire(timeout=1 s) -> {}",
        if stuck {
            "timed out: the lock is held forever by a dead thread"
        } else {
            "got it?!"
        }
    ));
    ensure!(stuck, "the leaked lock was free");
    Ok(())
}
