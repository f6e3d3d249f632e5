//! Lesson `pids` (查看进程号): getpid / getppid for the parent and its children. Every
//! child's parent pid is ours; ours is whatever started us (the seed's "PyCharm" is a shell,
//! cargo, or the test runner here).

use std::collections::BTreeSet;

use anyhow::{bail, ensure};
use lesson::{Activity, Cx};
use nix::unistd::{Pid, getpid, getppid};

use crate::Process;

fn info(cx: &Cx, title: &str, parent: Pid) -> anyhow::Result<()> {
    cx.say(format!(
        "title: {title}; parent pid {}, my pid {}",
        getppid(),
        getpid()
    ));
    if getppid() != parent {
        bail!("my parent is {}, not {parent}", getppid());
    }
    Ok(())
}

/// Start one child, then three, each checking that its parent pid is `getpid()` here.
/// Returns the children's pids (all distinct, none ours).
pub fn children(cx: &Cx) -> anyhow::Result<Vec<i32>> {
    let me = getpid();
    let mut pids = Vec::new();
    let mut procs: Vec<Process> = std::iter::once("lucky child".to_owned())
        .chain((0..3).map(|i| format!("child {i}")))
        .map(|title| {
            let cx = cx.clone();
            Process::new(move || info(&super::as_me(&cx), &title, me))
        })
        .collect();
    // The first alone, as in the seed; then the three together.
    for (i, p) in procs.iter_mut().enumerate() {
        p.start()?;
        pids.push(p.pid().unwrap_or_default());
        if i == 0 {
            ensure!(p.join()? == 0, "the child's parent was not us");
        }
    }
    let _waiting = cx.span(Activity::Wait, "join the three children");
    for p in procs.iter_mut().skip(1) {
        ensure!(p.join()? == 0, "a child's parent was not us");
    }
    Ok(pids)
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    cx.say(format!(
        "title: main process; parent pid {} (whatever started us), my pid {}",
        getppid(),
        getpid()
    ));
    let pids = children(cx)?;
    let distinct: BTreeSet<i32> = pids.iter().copied().collect();
    cx.say(format!(
        "children's pids {pids:?}: {} distinct, each child's parent pid was {}",
        distinct.len(),
        getpid()
    ));
    ensure!(distinct.len() == pids.len(), "pids repeated");
    ensure!(
        !distinct.contains(&getpid().as_raw()),
        "a child had our pid"
    );
    Ok(())
}
