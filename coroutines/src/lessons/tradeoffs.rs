//! Lesson `tradeoffs` (协程的优势): the seed's claims. A switch against a thread hand-off, as
//! this run measured them (the seed: nanoseconds against microseconds; one run's figures are
//! not a guarantee, and the lesson names the bench that measures them, [`BENCH`]); greenlets
//! on one thread share state with no lock; and one hub uses one core, so more cores need more
//! processes, each with its own hub.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Instant;

use anyhow::ensure;
use lesson::Cx;

use crate::{Greenlet, val};

/// The command that measures a switch in a release build, against raw corosensei (the
/// lesson adds `handoff`: the thread hand-off too).
pub const BENCH: &str = "cargo bench -p coroutines -- switch";

/// What build measured the figures: a debug build (unoptimised, as `cargo run` makes) is many
/// times slower than a release build at a switch, and says so.
pub fn build() -> &'static str {
    if cfg!(debug_assertions) {
        "measured in a debug build (unoptimised: a switch there costs many times what it does \
         in a release build)"
    } else {
        "measured in a release build"
    }
}

/// Switches for the measurements.
pub const ROUNDS: u32 = 20_000;

/// Nanoseconds per greenlet switch (a ping-pong round trip counts as two).
///
/// # Errors
/// If the greenlet cannot be made or a switch fails.
pub fn switch_ns(rounds: u32) -> anyhow::Result<f64> {
    let g = Greenlet::new(|_| {
        loop {
            let main = crate::getcurrent().parent();
            if let Some(m) = main {
                m.switch(val(()))?;
            }
        }
    })?;
    let t = Instant::now();
    for _ in 0..rounds {
        g.switch(val(()))?;
    }
    Ok(t.elapsed().as_secs_f64() * 1e9 / (2.0 * f64::from(rounds)))
}

/// Nanoseconds per thread hand-off (a ping-pong over two channels; a round trip counts as two).
pub fn thread_handoff_ns(rounds: u32) -> f64 {
    let (to, from_main) = crossbeam::channel::bounded::<u32>(0);
    let (back, from_thread) = crossbeam::channel::bounded::<u32>(0);
    let t = std::thread::spawn(move || {
        while let Ok(v) = from_main.recv() {
            if back.send(v).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    for i in 0..rounds {
        let _ = to.send(i);
        let _ = from_thread.recv();
    }
    let ns = start.elapsed().as_secs_f64() * 1e9 / (2.0 * f64::from(rounds));
    drop(to);
    let _ = t.join();
    ns
}

/// Two greenlets increment one `Cell` in turn, with no lock; the final count (see
/// [`shared_counter_among`]).
///
/// # Errors
/// If a greenlet cannot be made or a switch fails.
pub fn shared_counter(rounds: u32) -> anyhow::Result<u32> {
    Ok(shared_counter_among(2, rounds)?.0)
}

/// `greenlets` greenlets add 1 to one `Cell`, `rounds` times each, with no lock: each reads
/// the count, writes it back one higher and switches to the root, which resumes them in
/// turn. The final count, and who added each 1 (greenlet numbers from 0), in order.
///
/// # Errors
/// If a greenlet cannot be made or a switch fails.
pub fn shared_counter_among(greenlets: usize, rounds: u32) -> anyhow::Result<(u32, Vec<usize>)> {
    let count = Rc::new(Cell::new(0u32));
    let who = Rc::new(RefCell::new(Vec::new()));
    let all = (0..greenlets)
        .map(|me| {
            let (count, who) = (count.clone(), who.clone());
            Greenlet::new(move |_| {
                for _ in 0..rounds {
                    // Read and write with no switch in between: no other greenlet can run here.
                    count.set(count.get() + 1);
                    who.borrow_mut().push(me);
                    if let Some(m) = crate::getcurrent().parent() {
                        m.switch(val(()))?;
                    }
                }
                Ok(val(()))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    // One more turn each than they add: the last lets each return.
    for _ in 0..=rounds {
        for g in &all {
            g.switch(val(()))?;
        }
    }
    let who = who.borrow().clone();
    Ok((count.get(), who))
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    let sw = switch_ns(ROUNDS)?;
    let th = thread_handoff_ns(ROUNDS / 10);
    cx.say(format!(
        "in this run a greenlet switch took {sw:.0} ns and a thread hand-off {th:.0} ns \
         ({:.0}x), {}",
        th / sw.max(1e-9),
        build()
    ));
    cx.say(format!(
        "one run's figures, not a guarantee (the build and the machine's load change them); \
         the bench measures both in a release build: {BENCH} handoff"
    ));
    let n = shared_counter(1000)?;
    cx.say(format!(
        "two greenlets added 1000 each to a Cell, no lock: {n}"
    ));
    ensure!(n == 2000, "lost updates between greenlets?!");
    cx.explain(
        "No lock is needed because only one greenlet runs at a time and a switch happens only\n\
         where the code says so (a Cell is not Sync: the compiler keeps it on this thread).\n\
         Hold a RefCell borrow across a switch, though, and the other greenlet's borrow\n\
         panics. And it is one thread: one core. The seed's answer, several processes each\n\
         running its own hub, is the processes chapter's Process with a hub inside each.",
    );
    Ok(())
}
