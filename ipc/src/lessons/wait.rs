//! Lesson `wait` (beyond the seed: `multiprocessing.connection.wait`): one parent, three
//! children that answer after different pauses, and one that just exits; the parent waits on
//! all their pipes and the quiet one's sentinel at once, and handles each as it becomes ready.

use anyhow::ensure;
use lesson::{Activity, Cx};
use processes::Process;

use super::child;
use crate::Pipe;
use crate::connection::{Waitable, sentinel, wait};

/// Child `i` answers after `PAUSES[i]` seconds, at the lesson's time scale.
pub const PAUSES: [f64; 3] = [3.0, 1.0, 2.0];

/// Start the three talkers and the quiet one, wait on everything; what became ready, in the
/// order it did (`"pipe 1"`, `"sentinel"` ...).
pub fn in_order_of_readiness(cx: &Cx) -> anyhow::Result<Vec<String>> {
    let mut ends = Vec::new();
    let mut procs: Vec<Process> = Vec::new();
    for (i, pause) in PAUSES.into_iter().enumerate() {
        let (r, w) = Pipe::oneway::<String>()?;
        let mut p = child(
            cx,
            &format!("Process-{}", i + 1),
            move |cx| -> anyhow::Result<()> {
                cx.sleep(pause);
                w.send(&format!("done after {pause} s"))?;
                Ok(())
            },
        )
        .close_in_child(&r);
        p.start()?;
        ends.push(r);
        procs.push(p);
    }
    let mut quiet = child(cx, "Process-4", |cx| cx.sleep(0.5));
    quiet.start()?;
    let quiet_pid = quiet
        .pid()
        .ok_or_else(|| anyhow::anyhow!("the quiet child has no pid"))?;
    let quiet_sentinel = sentinel(quiet_pid)?;
    let mut order = Vec::new();
    let mut open: Vec<usize> = vec![0, 1, 2, 3];
    while !open.is_empty() {
        let objects: Vec<&dyn Waitable> = open
            .iter()
            .map(|&k| {
                if k < 3 {
                    &ends[k] as &dyn Waitable
                } else {
                    &quiet_sentinel as &dyn Waitable
                }
            })
            .collect();
        let ready = {
            let _waiting = cx.span(Activity::Wait, "wait(pipes + sentinel)");
            wait(&objects, Some(cx.long_wait()))?
        };
        ensure!(!ready.is_empty(), "nothing became ready in time");
        let mut done = Vec::new();
        for i in ready {
            let k = open[i];
            if k < 3 {
                let msg = ends[k].recv()?;
                cx.say(format!("parent: pipe {} ready -> {msg:?}", k + 1));
                order.push(format!("pipe {}", k + 1));
            } else {
                cx.say("parent: the quiet child's sentinel ready: it has exited");
                order.push("sentinel".to_owned());
            }
            done.push(k);
        }
        open.retain(|k| !done.contains(k));
    }
    for p in procs.iter_mut().chain(std::iter::once(&mut quiet)) {
        ensure!(p.join()? == 0, "{} failed", p.name());
    }
    Ok(order)
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    cx.explain(
        "connection.wait(objects, timeout) returns the objects ready to read: connections with\n\
         a message (or end-of-file), and process sentinels whose process has exited. One\n\
         thread serves many children without guessing which to recv() from first.",
    );
    let order = in_order_of_readiness(cx)?;
    cx.say(format!("parent: handled in the order {order:?}"));
    let mut each = order.clone();
    each.sort();
    ensure!(
        each == ["pipe 1", "pipe 2", "pipe 3", "sentinel"],
        "each object once: {order:?}"
    );
    cx.explain(
        "The order follows the pauses (0.5, 1, 2, 3 of the seed's seconds) unless the machine\n\
         delays a child: wait() reports what is ready, whoever it is, when it is.",
    );
    Ok(())
}
