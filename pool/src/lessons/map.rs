//! Lesson `map` (beyond the seed): `map`, `imap` and `imap_unordered` on the same work.

use anyhow::ensure;
use lesson::{Activity, Cx};

use crate::Pool;
use crate::lessons::tasks::Trouble;

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    let mut pool: Pool<Trouble> = Pool::new(3)?;
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
    let unordered: Vec<u32> = pool.imap_unordered(work(8), 1)?.collect::<Result<_, _>>()?;
    cx.say(format!(
        "imap_unordered: {unordered:?} (a stream, in the order they finished)"
    ));
    let mut sorted = unordered.clone();
    sorted.sort();
    ensure!(
        mapped == (0..8).collect::<Vec<_>>() && ordered == mapped,
        "order broken"
    );
    ensure!(sorted == mapped, "imap_unordered lost or repeated a result");
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
