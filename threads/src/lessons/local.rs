//! Lesson `local` (beyond the seed): `threading.local()` against `thread_local!`. Each thread
//! sees its own value; Python's is per *object* (every `local()` is a namespace of its own),
//! Rust's `thread_local!` per *static* (one per declaration, shared by every value of a type
//! that uses it); per-object thread-local storage is `thread_local::ThreadLocal`. And what
//! survives a fork: only the forking thread's values.

use std::cell::Cell;
use std::sync::mpsc;

use anyhow::{Context, ensure};
use lesson::{Activity, Cx};
use processes::Process;
use thread_local::ThreadLocal;

use crate::Thread;

thread_local! {
    /// The lesson's thread-local value: Python's `mydata = threading.local(); mydata.x = ...`.
    pub static MINE: Cell<u32> = const { Cell::new(0) };

    /// What a [`PerStatic`] counts with: one per thread, shared by every `PerStatic`.
    static COUNT: Cell<u32> = const { Cell::new(0) };
}

/// A counter built on `thread_local!`: every value of this type on a thread shares one count,
/// since the storage belongs to the static, not to the value.
#[derive(Debug, Default)]
pub struct PerStatic;

impl PerStatic {
    /// Count one; the new count on this thread.
    pub fn bump(&self) -> u32 {
        COUNT.with(|c| {
            c.set(c.get() + 1);
            c.get()
        })
    }
}

/// A counter that owns its thread-local storage (`thread_local::ThreadLocal`): per value and
/// per thread, as Python's `threading.local()` objects are.
#[derive(Debug, Default)]
pub struct PerObject {
    count: ThreadLocal<Cell<u32>>,
}

impl PerObject {
    /// Count one; the new count of this value on this thread.
    pub fn bump(&self) -> u32 {
        let c = self.count.get_or_default();
        c.set(c.get() + 1);
        c.get()
    }

    /// This value's count on every thread that used it (Python cannot list another thread's
    /// attributes of a `local`; the owner of a `ThreadLocal` can).
    pub fn all(&mut self) -> Vec<u32> {
        let mut v: Vec<u32> = self.count.iter_mut().map(|c| c.get()).collect();
        v.sort_unstable();
        v
    }
}

/// Fork a child from the calling thread; the child says what `MINE` holds there. Its exit code.
fn fork_and_look(cx: &Cx, name: &str) -> anyhow::Result<i32> {
    let c = cx.clone();
    let mut p = Process::new(move || {
        let c = processes::lessons::as_me(&c);
        c.say(format!(
            "in the child forked by this thread: MINE = {}",
            MINE.with(Cell::get)
        ));
    })
    .named(name);
    p.start()?;
    let _waiting = cx.span(Activity::Wait, format!("join {name}"));
    p.join()
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    cx.explain("1) thread_local!: each thread its own value (Python: threading.local())");
    MINE.with(|m| m.set(7));
    cx.say(format!("main set MINE = {}", MINE.with(Cell::get)));
    let workers: Vec<Thread<u32>> = (1..=3)
        .map(|i| {
            let cx = cx.clone();
            Thread::builder().name(format!("local-{i}")).spawn(move || {
                let before = MINE.with(Cell::get);
                MINE.with(|m| m.set(i * 10));
                cx.say(format!(
                    "found MINE = {before} (a fresh copy), set it to {}",
                    i * 10
                ));
                cx.sleep(1.0);
                let after = MINE.with(Cell::get);
                cx.say(format!(
                    "after a 1 s sleep beside the others: MINE = {after}"
                ));
                before * 1000 + after
            })
        })
        .collect::<Result<_, _>>()?;
    let mut seen = Vec::new();
    {
        let _waiting = cx.span(Activity::Wait, "join the three threads");
        for t in workers {
            seen.push(t.join()?);
        }
    }
    cx.say(format!(
        "each thread found 0 and kept its own: {seen:?}; main's MINE is still {}",
        MINE.with(Cell::get)
    ));
    ensure!(
        seen == [10, 20, 30],
        "a thread saw another's value: {seen:?}"
    );
    ensure!(MINE.with(Cell::get) == 7, "main's value changed");

    cx.explain(
        "2) per object or per static: in Python, a = local() and b = local() are two namespaces.\n\
         A thread_local! is one per static: two values of a type built on it share it.",
    );
    let (a, b) = (PerStatic, PerStatic);
    a.bump();
    a.bump();
    let shared = b.bump();
    cx.say(format!(
        "built on thread_local!: a.bump() twice, b.bump() once -> b counts {shared} (a's and b's \
         bumps land in one static)"
    ));
    ensure!(shared == 3, "the static was not shared");
    let (mut a, mut b) = (PerObject::default(), PerObject::default());
    a.bump();
    a.bump();
    let own = b.bump();
    std::thread::scope(|s| {
        s.spawn(|| a.bump());
    });
    cx.say(format!(
        "built on ThreadLocal (a field): a twice, b once -> b counts {own}; a on every thread \
         that used it: {:?}, b: {:?}",
        a.all(),
        b.all()
    ));
    ensure!(
        own == 1 && a.all() == [1, 2] && b.all() == [1],
        "per-object storage mixed up"
    );

    cx.explain(
        "3) what survives a fork: the child is a copy with one thread, the one that forked. It\n\
         keeps that thread's thread-local values; every other thread's are gone with it.\n\
         Python's child likewise keeps the forking thread's local() attributes.",
    );
    let code = fork_and_look(cx, "forked-by-main")?;
    ensure!(code == 0, "the child forked by main failed");
    let (done_tx, done) = mpsc::channel();
    let c = cx.clone();
    let worker = Thread::builder().name("forker").spawn(move || {
        MINE.with(|m| m.set(42));
        c.say("set MINE = 42, and forks a child from this thread");
        let r = fork_and_look(&c, "forked-by-forker");
        let _ = done_tx.send(());
        r
    })?;
    done.recv_timeout(cx.long_wait())
        .context("the forking thread did not finish")?;
    let code = worker.join()?.context("forking from the worker")?;
    ensure!(code == 0, "the child forked by the worker failed");
    let said = cx.records();
    let saw = |who: &str| {
        said.iter()
            .find(|r| r.speaker == who)
            .map(|r| r.text.clone())
            .unwrap_or_default()
    };
    cx.say(format!(
        "forked by main: '{}'; forked by the worker: '{}'",
        saw("forked-by-main"),
        saw("forked-by-forker")
    ));
    cx.explain(
        "A thread_local!'s value is dropped when its thread ends (Python deletes a thread's\n\
         attributes of a local() the same way); a ThreadLocal keeps its values until it is\n\
         dropped itself, and a later thread may get an ended thread's slot back.",
    );
    Ok(())
}
