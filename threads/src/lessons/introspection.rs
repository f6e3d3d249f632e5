//! Lesson `introspection` (其他方法): names, `is_alive`, the current thread, `enumerate()` /
//! `active_count()`, and `join` with a timeout — with the seed's camelCase names beside today's.

use std::sync::mpsc;

use anyhow::{Context, ensure};
use lesson::{Activity, Cx};

use crate::{Thread, active_count, enumerate};

fn names() -> String {
    enumerate()
        .into_iter()
        .map(|t| t.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    cx.explain(
        "the seed's names -> Python 3 today -> here:\n\
         getName()/setName()  -> t.name            -> Thread::name() (fixed at start)\n\
         isAlive()            -> t.is_alive()      -> Thread::is_alive() (isAlive removed in 3.9)\n\
         currentThread()      -> current_thread()  -> std::thread::current()\n\
         enumerate()          -> enumerate()       -> threads::enumerate()\n\
         activeCount()        -> active_count()    -> threads::active_count()\n\
         join(timeout)        -> join(timeout)     -> Thread::join_timeout() -> bool",
    );
    let me = std::thread::current();
    cx.say(format!(
        "current thread: name {:?}, kernel tid {}",
        me.name().unwrap_or("?"),
        nix::unistd::gettid()
    ));

    // Three workers that block until told to go: alive for as long as we need, no sleeping.
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = std::sync::Arc::new(std::sync::Mutex::new(go_rx));
    let mut workers = Vec::new();
    for i in 1..=3 {
        let (cx, go_rx) = (cx.clone(), go_rx.clone());
        let spawn = move || -> usize {
            let me = std::thread::current();
            cx.say(format!(
                "I am {}, kernel tid {}",
                me.name().unwrap_or("?"),
                nix::unistd::gettid()
            ));
            // Wait for one "go"; a closed channel also lets us out.
            let _waiting = cx.span(Activity::Wait, "wait for the go");
            let _ = go_rx.lock().map(|rx| rx.recv());
            i * 10
        };
        let t = if i == 3 {
            Thread::spawn(spawn)? // no name given: Python-style Thread-N
        } else {
            Thread::builder().name(format!("worker-{i}")).spawn(spawn)?
        };
        workers.push(t);
    }
    cx.say(format!(
        "enumerate() = [{}], active_count() = {} (Python's enumerate() always lists MainThread \
         too: it would say {} here)",
        names(),
        active_count(),
        active_count() + 1
    ));
    ensure!(active_count() == 3, "expected 3 live threads");

    let first = &workers[0];
    let finished = {
        let _waiting = cx.span(Activity::Wait, "join_timeout(1 s)");
        first.join_timeout(cx.scaled(1.0))
    };
    cx.say(format!(
        "{}.join_timeout(1 s) -> {finished}; is_alive() -> {}",
        first.name(),
        first.is_alive()
    ));
    ensure!(!finished, "a blocked thread cannot have finished");

    for _ in 0..3 {
        go_tx.send(()).context("a worker went away")?;
    }
    let mut values = Vec::new();
    let waiting = cx.span(Activity::Wait, "join the workers");
    for t in workers {
        let name = t.name().to_owned();
        values.push(t.join()?);
        cx.say(format!("joined {name}"));
    }
    drop(waiting);
    cx.say(format!(
        "their return values: {values:?}; enumerate() = [{}], active_count() = {} (Python: \
         [MainThread], 1: this registry lists only the threads started through Thread)",
        names(),
        active_count()
    ));
    ensure!(active_count() == 0, "threads still registered after join");

    cx.explain("a thread that panics: join() hands back the panic as an error");
    let bad = Thread::builder()
        .name("doomed")
        .spawn(|| -> u32 { panic!("something went wrong in the thread") })?;
    match bad.join() {
        Ok(v) => anyhow::bail!("the panicking thread returned {v}"),
        Err(e) => cx.say(format!("join() -> Err: {e}")),
    }
    cx.explain(
        "(Python prints the traceback through threading.excepthook and join() returns None;\n\
         the caller never learns. The panic message above the error line is Rust's hook.)",
    );
    Ok(())
}
