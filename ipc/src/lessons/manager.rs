//! Lesson `manager` (Managers): five processes write into a dict and a list owned by a manager
//! server; the parent sees every write.

use anyhow::ensure;
use lesson::Cx;
use processes::Process;

use super::child;
use crate::{Data, Manager};

/// What the parent sees afterwards: the dict's items and the list.
pub type Seen = (Vec<(Data, Data)>, Vec<Data>);

/// The seed's `fun(d, l, i)` in 5 processes (`Process-2` to `Process-6`: Python's manager
/// server is the program's first process, `SyncManager-1`); the dict's items and the list, as
/// the parent sees them afterwards.
pub fn five_writers(cx: &Cx) -> anyhow::Result<Seen> {
    let manager = Manager::start()?;
    let d = manager.dict()?;
    let l = manager.list((0..5).map(Data::from))?;
    let mut procs: Vec<Process> = (0..5)
        .map(|i| {
            let (d, l) = (d.clone(), l.clone());
            child(
                cx,
                &format!("Process-{}", i + 2),
                move |cx| -> anyhow::Result<()> {
                    d.set(i, format!("dict {i}"))?;
                    l.append(i)?;
                    cx.say(format!("child {i}: d[{i}] set, {i} appended"));
                    Ok(())
                },
            )
        })
        .collect();
    for p in &mut procs {
        p.start()?;
    }
    for p in &mut procs {
        ensure!(p.join()? == 0, "a child failed");
    }
    Ok((d.items()?, l.items()?))
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    cx.explain(
        "A queue or a pipe passes messages; a manager shares objects: a server process owns\n\
         them and every process talks to it through proxies (a round trip per call).",
    );
    let (items, list) = five_writers(cx)?;
    let dict: Vec<String> = items.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    cx.say(format!("parent: d = {{{}}}", dict.join(", ")));
    cx.say(format!("parent: l = {}", Data::List(list.clone())));
    ensure!(items.len() == 5, "a dict write is missing");
    let mut tail: Vec<Data> = list[5..].to_vec();
    tail.sort();
    ensure!(
        list.len() == 10 && tail == (0..5).map(Data::from).collect::<Vec<_>>(),
        "a list append is missing"
    );
    cx.explain(
        "The appends arrive in whatever order the children ran. Python's Manager offers list,\n\
         dict, Namespace, Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event, Barrier,\n\
         Queue, Value and Array. Here: dict, list and an atomic integer value on the server;\n\
         for the rest, shared memory is faster: ipc::Lock, Value, Array, AtomicValue, and\n\
         ipc::Queue (lessons lock, shared-memory, queue).",
    );
    Ok(())
}
