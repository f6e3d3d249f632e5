//! Lesson `queue` (进程间的通信): a child puts 1, 2, 3 on a process queue and the parent gets
//! them; a thread queue made before the fork does not cross.

use anyhow::{Context, ensure};
use lesson::Cx;
use processes::Process;

use crate::Queue;

/// A child puts 1, 2, 3 on a process queue; the parent's gets.
pub fn across(cx: &Cx) -> anyhow::Result<Vec<u32>> {
    let q: Queue<u32> = Queue::new()?;
    let child_q = q.clone();
    let c = cx.clone();
    let mut p = Process::new(move || -> anyhow::Result<()> {
        for i in 1..=3 {
            child_q.put(&i)?;
        }
        c.say("child: put 1, 2, 3");
        Ok(())
    });
    p.start()?;
    let got = (0..3)
        .map(|_| q.get_timeout(cx.long_wait()))
        .collect::<Result<Vec<_>, _>>()
        .context("getting what the child put")?;
    ensure!(p.join()? == 0, "the child failed");
    Ok(got)
}

/// A crossbeam channel made before the fork: the child sends into its own copy. The parent's
/// `recv_timeout` result (a time-out) and the child's exit code.
pub fn thread_queue_does_not_cross(
    cx: &Cx,
) -> anyhow::Result<(Result<u32, crossbeam::channel::RecvTimeoutError>, i32)> {
    let (tx, rx) = crossbeam::channel::unbounded::<u32>();
    // The parent keeps a sender too, so its receive can only time out (not see "disconnected").
    let _parent_tx = tx.clone();
    let c = cx.clone();
    let mut p = Process::new(move || {
        for i in 1..=3 {
            let _ = tx.send(i);
        }
        c.say("child: sent 1, 2, 3 into the thread queue (my copy of it)");
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
    let (child_q, child_fitted, c) = (q.clone(), fitted.clone(), cx.clone());
    let mut p = Process::new(move || {
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
    let got = across(cx)?;
    cx.say(format!("parent: got {got:?} from the process queue"));
    ensure!(got == [1, 2, 3], "got {got:?}");
    cx.explain(
        "The seed's second half: a queue made for threads (queue.Queue; here a crossbeam\n\
         channel) is plain memory. fork copies it; the child's put lands in its own copy.",
    );
    let (got, code) = thread_queue_does_not_cross(cx)?;
    cx.say(format!(
        "parent: the child exited {code}; recv_timeout(1 s) on the thread queue -> {got:?}"
    ));
    ensure!(got.is_err(), "a thread queue crossed processes?!");
    cx.explain(
        "Python's multiprocessing.Queue hides a feeder thread that writes after put() returns;\n\
         joining a child before reading what it put deadlocks once the pipe is full. Here put()\n\
         writes itself and waits in the child when the queue is full; put_timeout() reports it:",
    );
    let (fitted, code, drained) = full_queue(cx)?;
    cx.say(format!(
        "parent: joined the child first (exit {code}): {fitted} items of 1 KiB had fitted in the queue's 64 KiB; drained {drained}"
    ));
    ensure!(
        fitted > 0 && drained == fitted,
        "lost items in the full-queue demo"
    );
    cx.explain(
        "The rule stays: drain the queue before joining its producers, or join with a timeout.",
    );
    Ok(())
}
