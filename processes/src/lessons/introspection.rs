//! Lesson `introspection` (进程模块的其他方法): the multiprocessing module's functions about
//! processes — `current_process()`, `parent_process()`, `active_children()`, `cpu_count()` —
//! and a `Process`'s `sentinel` and `close()`.

use std::os::fd::BorrowedFd;

use anyhow::{Context, ensure};
use lesson::{Activity, Cx, Handoff};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::{as_me, cx_of};
use crate::{
    Process, StartMethod, active_children, cpu_count, current_process, decode, parent_process,
    process_cpu_count,
};

/// What a child says about itself: its current_process() and parent_process().
fn introduce(cx: &Cx) -> anyhow::Result<()> {
    let me = current_process();
    let parent = parent_process().context("a child has a parent_process()")?;
    cx.say(format!(
        "current_process(): name {}, pid {}, start method {:?}; parent_process(): {} (pid {}), \
         alive {}",
        me.name,
        me.pid,
        me.start_method.context("a child knows its start method")?,
        parent.name(),
        parent.pid(),
        parent.is_alive()
    ));
    Ok(())
}

/// Spawn (and forkserver) entry `introduce`: say who we are and who our parent is, then sleep
/// the (seed) seconds passed.
///
/// # Errors
/// If the argument is not a `(Handoff, f64)`, or this process has no parent_process().
pub fn introduce_entry(arg: &[u8]) -> anyhow::Result<()> {
    let (handoff, seconds): (Handoff, f64) = decode(arg)?;
    let cx = cx_of(handoff);
    introduce(&cx)?;
    cx.sleep(seconds);
    Ok(())
}

fn started(cx: &Cx, method: StartMethod, seconds: f64) -> anyhow::Result<Process> {
    let name = format!("{method:?}-child").to_lowercase();
    let arg = (cx.handoff(), seconds);
    let p = match method {
        StartMethod::Fork => {
            let c = cx.clone();
            Process::new(move || -> anyhow::Result<()> {
                let c = as_me(&c);
                introduce(&c)?;
                c.sleep(seconds);
                Ok(())
            })
        }
        StartMethod::Spawn => Process::spawn_entry("introduce", &arg)?,
        StartMethod::Forkserver => Process::forkserver_entry("introduce", &arg)?,
    };
    let mut p = match cx.exe() {
        Some(exe) => p.exe(exe),
        None => p,
    }
    .named(name);
    p.start()?;
    Ok(p)
}

/// Wait on every sentinel at once (Python's `multiprocessing.connection.wait(sentinels)`):
/// the indices of those readable now.
fn wait_any(sentinels: &[BorrowedFd<'_>], cx: &Cx) -> anyhow::Result<Vec<usize>> {
    let mut fds: Vec<PollFd<'_>> = sentinels
        .iter()
        .map(|fd| PollFd::new(*fd, PollFlags::POLLIN))
        .collect();
    let limit = PollTimeout::try_from(cx.long_wait()).unwrap_or(PollTimeout::MAX);
    let n = poll(&mut fds, limit).context("poll on the sentinels")?;
    ensure!(n > 0, "no child ended within {:?}", cx.long_wait());
    Ok(fds
        .iter()
        .enumerate()
        .filter(|(_, f)| f.any().unwrap_or(false))
        .map(|(i, _)| i)
        .collect())
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    crate::register(crate::ENTRIES);
    let me = current_process();
    cx.say(format!(
        "current_process() here: name {}, pid {}, daemon {}; parent_process() -> {}",
        me.name,
        me.pid,
        me.daemon,
        if parent_process().is_none() {
            "None (the main process)"
        } else {
            "a parent"
        }
    ));
    cx.say(format!(
        "cpu_count() = {} (the machine's CPUs, Python's os.cpu_count()); process_cpu_count() = {} \
         (the ones this process may use: sched_getaffinity, Python 3.13)",
        cpu_count(),
        process_cpu_count()
    ));

    cx.explain("three children, one per start method, sleeping 1, 2 and 3 s:");
    let mut children = [
        started(cx, StartMethod::Fork, 1.0)?,
        started(cx, StartMethod::Spawn, 2.0)?,
        started(cx, StartMethod::Forkserver, 3.0)?,
    ];
    let listed: Vec<String> = active_children()
        .into_iter()
        .filter(|c| children.iter().any(|p| p.pid() == Some(c.pid)))
        .map(|c| format!("{} ({:?})", c.name, c.start_method))
        .collect();
    cx.say(format!("active_children() = [{}]", listed.join(", ")));
    ensure!(listed.len() == 3, "active_children() missed a child");

    cx.explain(
        "each Process has a sentinel, a descriptor readable once the child ends: one poll()\n\
         waits for whichever ends first (Python: multiprocessing.connection.wait)",
    );
    let mut order = Vec::new();
    {
        let _waiting = cx.span(Activity::Wait, "poll the sentinels");
        while order.len() < children.len() {
            let ready = {
                let (indices, fds): (Vec<usize>, Vec<BorrowedFd<'_>>) = children
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !order.contains(i))
                    .filter_map(|(i, p)| p.sentinel().map(|s| (i, s)))
                    .unzip();
                ensure!(!fds.is_empty(), "a child has no sentinel");
                wait_any(&fds, cx)?
                    .into_iter()
                    .map(|k| indices[k])
                    .collect::<Vec<_>>()
            };
            for i in ready {
                let code = children[i].join()?;
                cx.say(format!(
                    "sentinel of {} readable: it ended, exit code {code}",
                    children[i].name()
                ));
                ensure!(code == 0, "{} failed", children[i].name());
                order.push(i);
            }
        }
    }
    let left = active_children()
        .iter()
        .filter(|c| children.iter().any(|p| p.pid() == Some(c.pid)))
        .count();
    cx.say(format!(
        "joined all three; active_children() lists {left} of them"
    ));
    ensure!(left == 0, "a joined child is still listed");

    cx.explain("close() releases the sentinel; a closed process can no longer be joined");
    let first = &mut children[0];
    first.close()?;
    let err = first.join().expect_err("a closed process cannot be joined");
    cx.say(format!(
        "after close(): sentinel {:?}, exitcode {:?}, join() -> Err: {err}",
        first.sentinel().map(|_| "open"),
        first.exitcode()
    ));
    Ok(())
}
