//! Lesson `spawn` (进程的调用方法一/二): start processes from a function with arguments, or
//! from a type with `run()`; three at once, then joined.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::ensure;
use lesson::{Activity, Cx};

use super::as_me;
use crate::{Process, Run};

/// The seed's `f(name)`: sleep 1 s, then greet (under the child's own name on the timeline).
pub fn f((cx, name): (Cx, &'static str)) {
    let cx = as_me(&cx);
    cx.sleep(1.0);
    cx.say(format!("hello {name}"));
}

/// The seed's `myProcess` subclass, with a counter to show whose copy `run` changes.
pub struct MyProcess {
    /// For narration.
    pub cx: Cx,
    /// Its name (Python's `self.name`).
    pub name: String,
    /// Shared in a thread program; in a process each child changes its own copy.
    pub counter: Arc<AtomicUsize>,
}

impl Run for MyProcess {
    fn run(&mut self) -> anyhow::Result<()> {
        let cx = as_me(&self.cx);
        cx.sleep(1.0);
        let now = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        cx.say(format!(
            "{} hello (my copy of the counter: {now})",
            self.name
        ));
        Ok(())
    }
}

/// Start `procs`, check they all run at once, join them; the exit codes.
fn start_all_join_all(cx: &Cx, procs: &mut [Process]) -> anyhow::Result<Vec<i32>> {
    for p in procs.iter_mut() {
        p.start()?;
    }
    let alive = procs
        .iter_mut()
        .map(|p| p.is_alive())
        .filter(|&a| a)
        .count();
    cx.say(format!(
        "started {} processes; alive at the same time: {alive}",
        procs.len()
    ));
    ensure!(alive == procs.len(), "the processes did not overlap");
    let _waiting = cx.span(Activity::Wait, "join() each child");
    procs.iter_mut().map(|p| p.join()).collect()
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    cx.explain("1) Process(target=f, args=('luck',)) three times: started together, then joined");
    let mut procs: Vec<Process> = (0..3)
        .map(|_| Process::target(f, (cx.clone(), "luck")))
        .collect();
    let codes = start_all_join_all(cx, &mut procs)?;
    cx.say(format!("ending.... exit codes {codes:?}"));
    ensure!(codes == [0, 0, 0], "a child failed");

    cx.explain("2) the subclass style: a type implementing Run");
    let counter = Arc::new(AtomicUsize::new(0));
    let mut procs: Vec<Process> = (1..=3)
        .map(|i| {
            Process::from_run(MyProcess {
                cx: cx.clone(),
                name: format!("MyProcess-{i}"),
                counter: counter.clone(),
            })
            .named(format!("MyProcess-{i}"))
        })
        .collect();
    let codes = start_all_join_all(cx, &mut procs)?;
    ensure!(codes == [0, 0, 0], "a child failed");
    let seen = counter.load(Ordering::SeqCst);
    cx.say(format!(
        "joined; the parent's counter is still {seen}: each child changed its own copy"
    ));
    ensure!(seen == 0, "a child changed the parent's memory");
    cx.explain(
        "fork copies the parent's memory: an Arc<AtomicUsize> shared by threads is, after\n\
         fork, a separate counter in each process. Sharing needs the ipc chapter's tools.",
    );
    Ok(())
}
