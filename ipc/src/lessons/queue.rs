//! Lesson `queue` (进程间的通信): a child puts 1, 2, 3 on a process queue and another child
//! gets them in the seed's `while 1: q.get()` loop, which never ends in Python (here it is
//! stopped cleanly); a thread queue made before the fork does not cross.

use anyhow::{Context, ensure};
use lesson::{Activity, Cx};

use super::child;
use crate::Queue;

/// The seed's `fun`: `Process-1` puts 1, 2, 3 and is joined; then the seed's `fun2` in
/// `Process-3` gets them in a loop that never ends by itself: once it waits for a fourth
/// item, the parent finds it still running (a `join` with a timeout) and puts a stop sentinel
/// (`None`), which ends the loop. Returns what the consumer got, and whether it was still
/// waiting when the parent looked.
pub fn across(cx: &Cx) -> anyhow::Result<(Vec<u32>, bool)> {
    let q: Queue<Option<u32>> = Queue::new()?;
    let got: Queue<u32> = Queue::new()?;
    let producer_q = q.clone();
    let mut p = child(cx, "Process-1", move |cx| -> anyhow::Result<()> {
        for i in 1..=3 {
            producer_q.put(&Some(i))?;
        }
        cx.say("child: put 1, 2, 3");
        Ok(())
    });
    p.start()?;
    ensure!(p.join()? == 0, "the producer failed");
    // The seed makes `Process(target=fun2)` first and never starts it (Process-2), then the
    // one it starts: Python names that one Process-3.
    let (consumer_q, got_q) = (q.clone(), got.clone());
    let mut p2 = child(cx, "Process-3", move |cx| -> anyhow::Result<()> {
        loop {
            let item = {
                let _waiting = cx.span(Activity::Wait, "get(): waiting for an item");
                consumer_q.get()?
            };
            match item {
                Some(i) => {
                    cx.say(format!("child: get() -> {i}"));
                    got_q.put(&i)?;
                }
                None => {
                    cx.say("child: get() -> None, the stop sentinel: leaving the loop");
                    return Ok(());
                }
            }
        }
    });
    p2.start()?;
    let items = (0..3)
        .map(|_| got.get_timeout(cx.long_wait()))
        .collect::<Result<Vec<_>, _>>()
        .context("getting what the consumer got")?;
    // It has handled all three; now it waits in get() for a fourth that nobody puts.
    let still_waiting = {
        let _waiting = cx.span(Activity::Wait, "p2.join(timeout=1 s)");
        !p2.join_timeout(cx.scaled(1.0))?
    };
    cx.say(format!(
        "parent: p2.join(timeout=1 s) -> still running: {still_waiting}: its loop waits for a \
         fourth item"
    ));
    q.put(&None)?;
    let code = {
        let _waiting = cx.span(Activity::Wait, "p2.join()");
        p2.join()?
    };
    cx.say(format!(
        "parent: put None (a stop sentinel); Process-3 left its loop, joined, exitcode {code}"
    ));
    ensure!(code == 0, "the consumer failed");
    Ok((items, still_waiting))
}

/// A crossbeam channel made before the fork: the child sends into its own copy. The parent's
/// `recv_timeout` result (a time-out) and the child's exit code.
pub fn thread_queue_does_not_cross(
    cx: &Cx,
) -> anyhow::Result<(Result<u32, crossbeam::channel::RecvTimeoutError>, i32)> {
    let (tx, rx) = crossbeam::channel::unbounded::<u32>();
    // The parent keeps a sender too, so its receive can only time out (not see "disconnected").
    let _parent_tx = tx.clone();
    let mut p = child(cx, "Process-4", move |cx| {
        for i in 1..=3 {
            let _ = tx.send(i);
        }
        cx.say("child: sent 1, 2, 3 into the thread queue (my copy of it)");
    });
    p.start()?;
    let code = p.join()?;
    Ok((rx.recv_timeout(cx.scaled(1.0)), code))
}

/// Python's trap, reported instead of hung: a child puts 1 KiB items while nobody reads, with
/// `put_timeout`; once the queue is full it gets a time-out and exits, so the parent's join
/// returns. Then the parent drains what fitted. Returns (items that fitted, the child's exit
/// code, items drained).
pub fn full_queue(cx: &Cx) -> anyhow::Result<(u32, i32, u32)> {
    let q: Queue<Vec<u8>> = Queue::new()?;
    let fitted = crate::AtomicValue::new(std::sync::atomic::AtomicU32::new(0))?;
    let (child_q, child_fitted) = (q.clone(), fitted.clone());
    let mut p = child(cx, "Process-5", move |c| {
        let item = vec![7u8; 1024];
        loop {
            match child_q.put_timeout(&item, c.scaled(1.0)) {
                Ok(()) => {
                    child_fitted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                Err(e) => {
                    c.say(format!(
                        "child: put_timeout -> {e}; giving up instead of hanging"
                    ));
                    return;
                }
            }
        }
    });
    p.start()?;
    let code = p.join()?;
    let fitted = fitted.load(std::sync::atomic::Ordering::SeqCst);
    let mut drained = 0;
    while q.try_get().is_ok() {
        drained += 1;
    }
    Ok((fitted, code, drained))
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    let (got, still_waiting) = across(cx)?;
    cx.say(format!(
        "parent: Process-3 got {got:?} from the process queue"
    ));
    ensure!(got == [1, 2, 3], "got {got:?}");
    ensure!(still_waiting, "the consumer's loop ended by itself");
    cx.explain(
        "The seed's fun2 is `while 1: data = q.get()`: after the third item its get() waits\n\
         for a fourth that never comes, so the seed's p2.join(), and the program, never end.\n\
         Here the parent saw it still waiting and put a stop sentinel (None) to end it.",
    );
    cx.explain(
        "The seed's second half: a queue made for threads (queue.Queue; here a crossbeam\n\
         channel) is plain memory. fork copies it; the child's put lands in its own copy.",
    );
    let (got, code) = thread_queue_does_not_cross(cx)?;
    cx.say(format!(
        "parent: the child exited {code}; recv_timeout(1 s) on the thread queue -> {got:?}"
    ));
    ensure!(got.is_err(), "a thread queue crossed processes?!");
    ensure!(code == 0, "the thread-queue child failed (exit {code})");
    cx.explain(
        "Python's multiprocessing.Queue hides a feeder thread that writes after put() returns;\n\
         joining a child before reading what it put deadlocks once the pipe is full. Here put()\n\
         writes itself and waits in the child when the queue is full; put_timeout() reports it:",
    );
    let (fitted, code, drained) = full_queue(cx)?;
    cx.say(format!(
        "parent: joined the child first (exit {code}): {fitted} items of 1 KiB had fitted in the \
         queue's {} KiB; drained {drained}",
        crate::queue::CAPACITY / 1024
    ));
    ensure!(code == 0, "the full-queue child failed (exit {code})");
    ensure!(
        fitted > 0 && fitted as usize * 1024 <= crate::queue::CAPACITY,
        "{fitted} items of 1 KiB in a queue of {} bytes",
        crate::queue::CAPACITY
    );
    ensure!(drained == fitted, "lost items in the full-queue demo");
    cx.explain(
        "The rule stays: drain the queue before joining its producers, or join with a timeout.",
    );
    Ok(())
}
