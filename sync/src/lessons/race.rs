//! Lesson `race` (同步锁lock): 100 threads each read a shared number, pause, and write it back
//! minus one. Without a lock updates are lost; with one (or one atomic step) the result is 0.
//!
//! The seed's program, ported word for word, does not compile in safe Rust: a thread may not
//! borrow a local that it could outlive, nor may 100 threads borrow it mutably at once.
//!
//! ```compile_fail,E0373
//! let mut num = 100;
//! let mut threads = Vec::new();
//! for _ in 0..100 {
//!     threads.push(std::thread::spawn(|| {
//!         let temp = num;
//!         std::thread::sleep(std::time::Duration::from_millis(1));
//!         num = temp - 1;
//!     }));
//! }
//! for t in threads {
//!     t.join().unwrap();
//! }
//! ```
//!
//! Sharing it properly (`Arc`) still does not compile, because `Arc` gives shared, read-only
//! access — writing needs a lock or an atomic:
//!
//! ```compile_fail,E0594
//! let num = std::sync::Arc::new(100);
//! let n = num.clone();
//! std::thread::spawn(move || {
//!     let temp = *n;
//!     *n = temp - 1;
//! });
//! ```
//!
//! The same program with the number inside a `Mutex`, shared through an `Arc`, compiles and
//! always gives 0. (It is here as the twin of the two programs above: stable rustdoc does not
//! check a `compile_fail` test's error code, so this one shows that what they lack is only
//! the lock.)
//!
//! ```
//! use std::sync::{Arc, Mutex};
//!
//! let num = Arc::new(Mutex::new(100));
//! let mut threads = Vec::new();
//! for _ in 0..100 {
//!     let num = Arc::clone(&num);
//!     threads.push(std::thread::spawn(move || {
//!         let mut num = num.lock().unwrap();
//!         let temp = *num;
//!         std::thread::sleep(std::time::Duration::from_micros(10));
//!         *num = temp - 1;
//!     }));
//! }
//! for t in threads {
//!     t.join().unwrap();
//! }
//! assert_eq!(*num.lock().unwrap(), 0);
//! ```
//!
//! So the lost update is shown here with an atomic read and a separate atomic write: no
//! undefined behaviour, the same wrong answer.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Barrier, Mutex, TryLockError};

use anyhow::{Context, ensure};
use lesson::{Activity, Cx};

use super::{Held, pause_holding};

/// How many threads, and the starting value, as in the seed.
pub const THREADS: usize = 100;

/// Read, wait until every thread has read, write back minus one. Every thread reads the
/// starting value, so all but one update are lost: the result is `threads - 1`, every time.
/// (The seed's `time.sleep(0.001)` makes this interleaving likely; the barrier makes it certain.)
pub fn lost_update(threads: usize) -> i64 {
    let num = AtomicI64::new(threads as i64);
    let everyone_has_read = Barrier::new(threads);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let temp = num.load(Ordering::SeqCst);
                everyone_has_read.wait();
                num.store(temp - 1, Ordering::SeqCst);
            });
        }
    });
    num.load(Ordering::SeqCst)
}

/// The seed's fix: hold a lock across read, pause and write. `pause` is the seed's 0.001 s.
/// The threads are named `Thread-1` ... as in Python; on the timeline each waits for the lock,
/// then holds it, one at a time.
pub fn locked(cx: &Cx, threads: usize) -> anyhow::Result<i64> {
    let num = Mutex::new(threads as i64);
    std::thread::scope(|s| -> anyhow::Result<()> {
        for i in 1..=threads {
            let num = &num;
            std::thread::Builder::new()
                .name(format!("Thread-{i}"))
                .spawn_scoped(s, move || {
                    let guard = match num.try_lock() {
                        Ok(guard) => guard,
                        Err(TryLockError::Poisoned(e)) => e.into_inner(),
                        Err(TryLockError::WouldBlock) => {
                            let _waiting = cx.span(Activity::Wait, "waiting for the lock");
                            num.lock().unwrap_or_else(|e| e.into_inner())
                        }
                    };
                    // The guard is the lock held: released when it goes out of scope, even on
                    // panic.
                    let mut held = Held::new(cx, guard, "holding the lock: read, pause, write");
                    let temp = **held;
                    pause_holding(cx, 0.001);
                    **held = temp - 1;
                })
                .context("spawning a thread")?;
        }
        Ok(())
    })?;
    Ok(num.into_inner().unwrap_or_else(|e| e.into_inner()))
}

/// The Rust fix when the update is a single step: one atomic read-modify-write.
pub fn atomic(threads: usize) -> i64 {
    let num = AtomicI64::new(threads as i64);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                num.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    num.load(Ordering::SeqCst)
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    cx.explain(
        "The seed's `temp = num; sleep; num = temp - 1` in 100 threads does not compile in safe\n\
         Rust (see this module's docs): the compiler rejects the data race outright.\n\
         Reproduced without undefined behaviour: atomic read, all threads read, atomic write.",
    );
    let lost = lost_update(THREADS);
    cx.say(format!(
        "no lock: {THREADS} threads each read {THREADS} and wrote {THREADS} - 1 -> num = {lost} (99 updates lost)"
    ));
    ensure!(lost == THREADS as i64 - 1, "expected 99, got {lost}");
    let with_lock = locked(cx, THREADS)?;
    cx.say(format!(
        "Mutex held across read, pause, write -> num = {with_lock}"
    ));
    ensure!(with_lock == 0, "the locked version gave {with_lock}");
    let with_atomic = atomic(THREADS);
    cx.say(format!(
        "one atomic fetch_sub per thread -> num = {with_atomic}"
    ));
    ensure!(with_atomic == 0, "the atomic version gave {with_atomic}");
    cx.explain(
        "The seed says a plain `num -= 1` happens to give 0 'because it is fast': that is the\n\
         GIL switching threads only every few milliseconds, not a guarantee. In Rust `num -= 1`\n\
         on shared data does not compile; fetch_sub is the atomic version of it.",
    );
    Ok(())
}
