//! Lesson `map` (beyond the seed): `map` and `imap` on work whose early items finish last,
//! `imap_unordered` on tasks made to finish one at a time in a set order.

use anyhow::{Context, ensure};
use lesson::{Activity, Cx};

use crate::lessons::tasks::{Trouble, gauge};
use crate::{Builder, Pool};

/// The order in which the lesson lets the 8 tasks given to `imap_unordered` finish, one at a
/// time. Pool(3) hands out tasks in order, one to each free worker, so each task here is among
/// the three running when its turn comes.
pub const FINISH_ORDER: [u32; 8] = [2, 1, 0, 5, 4, 3, 7, 6];

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    // The turns live in shared memory the workers inherit: made before the pool forks them.
    let g = gauge().context("no shared memory for the turns")?;
    // One task per free worker, in order (see FINISH_ORDER), whatever the tasks' lengths.
    let mut pool: Pool<Trouble> = Builder::default().processes(3).max_batch(1).build()?;
    // Earlier items sleep longer, so they finish later.
    let work = |n: u32| -> Vec<Trouble> {
        (0..n)
            .map(|i| Trouble::Slow(i, u64::from(n - i) * 3))
            .collect()
    };
    let waiting = cx.span(Activity::Wait, "pool.map(...)");
    let mapped = pool.map(work(8), 1)?;
    waiting.end();
    cx.say(format!("map: {mapped:?} (all at once, in order)"));
    let ordered: Vec<u32> = pool.imap(work(8), 1)?.collect::<Result<_, _>>()?;
    cx.say(format!(
        "imap: {ordered:?} (a stream, in order: early finishers wait in a buffer)"
    ));
    ensure!(
        mapped == (0..8).collect::<Vec<_>>() && ordered == mapped,
        "order broken"
    );
    // Task i may finish at its turn, its place in FINISH_ORDER; the next turn comes only once
    // a result has arrived, so the tasks finish one at a time, in that order.
    g.reset();
    let mut turns: Vec<(u32, u64)> = FINISH_ORDER.iter().copied().zip(0..).collect();
    turns.sort_unstable();
    let tasks = turns
        .into_iter()
        .map(|(i, turn)| Trouble::Turn { i, turn })
        .collect();
    let mut unordered = Vec::new();
    for result in pool.imap_unordered(tasks, 1)? {
        unordered.push(result?);
        g.next_turn();
    }
    cx.say(format!(
        "imap_unordered: {unordered:?} (a stream, in the order they finished: each task waited \
         for its turn, {FINISH_ORDER:?}, handed out as each result arrived)"
    ));
    ensure!(
        unordered == FINISH_ORDER,
        "imap_unordered gave {unordered:?}, not the order the tasks finished in"
    );
    let big: Vec<Trouble> = (0..1000).map(Trouble::Fine).collect();
    let chunk = pool.default_chunksize(big.len());
    let sum: u32 = pool.map(big, chunk)?.iter().sum();
    cx.say(format!(
        "map over 1000 items in chunks of {chunk}: sum {sum}"
    ));
    ensure!(sum == 999 * 1000 / 2, "wrong sum");
    cx.explain(
        "map: you want every result and have the memory. imap: a long input, results handled in\n\
         order as they come. imap_unordered: handle each as soon as it is done. A chunk is a\n\
         batch of items per message: bigger chunks, fewer round trips, coarser balancing.",
    );
    pool.close();
    pool.join()?;
    Ok(())
}
