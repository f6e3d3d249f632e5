//! Lesson `wait` (beyond the seed: `multiprocessing.connection.wait`): one parent, three
//! children that answer after different pauses, and one that just exits; the parent waits on
//! all their pipes and the quiet one's sentinel at once, and handles each as it becomes ready.

use std::time::Instant;

use anyhow::ensure;
use lesson::{Activity, Cx};
use processes::Process;

use super::child;
use crate::Pipe;
use crate::connection::{Waitable, sentinel, wait};

/// Child `i` answers after `PAUSES[i]` seconds, at the lesson's time scale.
pub const PAUSES: [f64; 3] = [3.0, 1.0, 2.0];

/// The quiet child exits after this many seconds, at the lesson's time scale.
pub const QUIET_PAUSE: f64 = 0.5;

/// The order of the pauses: what [`in_order_of_readiness`] reports when every child acts on
/// time (`["sentinel", "pipe 2", "pipe 3", "pipe 1"]`).
pub fn order_of_the_pauses() -> Vec<String> {
    let mut by_pause: Vec<(f64, String)> = PAUSES
        .iter()
        .enumerate()
        .map(|(i, &p)| (p, format!("pipe {}", i + 1)))
        .chain([(QUIET_PAUSE, "sentinel".to_owned())])
        .collect();
    by_pause.sort_by(|a, b| a.0.total_cmp(&b.0));
    by_pause.into_iter().map(|(_, name)| name).collect()
}

/// What the lesson says of the order it saw: the order of the pauses, or not (a child, or
/// the parent, was run late by a busy machine).
pub fn verdict(order: &[String]) -> String {
    if order == order_of_the_pauses() {
        "parent: that is the order of the pauses (0.5, 1, 2, 3 s): wait() reported each when \
         it became ready"
            .to_owned()
    } else {
        format!(
            "parent: that is not the order of the pauses (0.5, 1, 2, 3 s), {:?}: the machine \
             ran a child or the parent late, and wait() reported what was ready when it looked",
            order_of_the_pauses()
        )
    }
}

/// Sleep until `deadline`, shown on the timeline as sleeping.
fn sleep_until(cx: &Cx, deadline: Instant) {
    let _span = cx.span(Activity::Sleep, "sleep");
    std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
}

/// Start the three talkers and the quiet one, wait on everything; what became ready, in the
/// order it did (`"pipe 1"`, `"sentinel"` ...). Every pause counts from one instant taken
/// before the first child starts, so the time a start takes does not shift the later ones.
pub fn in_order_of_readiness(cx: &Cx) -> anyhow::Result<Vec<String>> {
    let mut ends = Vec::new();
    let mut procs: Vec<Process> = Vec::new();
    let start = Instant::now();
    for (i, pause) in PAUSES.into_iter().enumerate() {
        let (r, w) = Pipe::oneway::<String>()?;
        let deadline = start + cx.scaled(pause);
        let mut p = child(
            cx,
            &format!("Process-{}", i + 1),
            move |cx| -> anyhow::Result<()> {
                sleep_until(cx, deadline);
                w.send(&format!("done after {pause} s"))?;
                Ok(())
            },
        )
        .close_in_child(&r);
        p.start()?;
        ends.push(r);
        procs.push(p);
    }
    let quiet_deadline = start + cx.scaled(QUIET_PAUSE);
    let mut quiet = child(cx, "Process-4", move |cx| sleep_until(cx, quiet_deadline));
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
    cx.say(verdict(&order));
    cx.explain(
        "The quiet child exits after 0.5 of the seed's seconds, the others answer after 3, 1\n\
         and 2 (pipes 1, 2, 3): wait() reports whatever is ready, whoever it is, when it is.\n\
         On a busy machine a child can be run late; the order then says so.",
    );
    Ok(())
}
