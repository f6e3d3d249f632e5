//! Lesson `excepthook` (beyond the seed): `threading.excepthook` against
//! `std::panic::set_hook`. Both are called with what went wrong in a thread and may report it
//! their own way; Rust's runs in the panicking thread *before* its stack unwinds, for every
//! thread including `main`, and is one per process.

use std::panic::{AssertUnwindSafe, PanicHookInfo};
use std::sync::{Arc, Mutex};

use anyhow::ensure;
use lesson::Cx;

use crate::Thread;

/// The hook in place before ours, to chain to and to put back.
type Hook = Box<dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static>;

/// Says when it is dropped: shows where in the unwinding the hook runs.
struct Guard(Cx);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.say("the thread's destructors run (unwinding)");
    }
}

/// Replace the panic hook with one that narrates through `cx` the panics of threads whose name
/// starts with `worker` and of the thread that installed it (`main`, in the lesson), and hands
/// every other to the previous hook; the previous hook, to put back with
/// [`std::panic::set_hook`].
pub fn install(cx: &Cx) -> Arc<Hook> {
    let previous: Arc<Hook> = Arc::new(std::panic::take_hook());
    let (cx, chain) = (cx.clone(), Arc::clone(&previous));
    let installer = std::thread::current().id();
    std::panic::set_hook(Box::new(move |info| {
        let me = std::thread::current();
        let name = me.name().unwrap_or("<unnamed>");
        if !name.starts_with("worker") && me.id() != installer {
            return chain(info);
        }
        let place = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        cx.say(format!(
            "my hook: thread {name} panicked at {place}: {}",
            lesson::panic_message(info.payload())
        ));
    }));
    previous
}

/// Put `previous` back as the process's panic hook.
pub fn restore(previous: Arc<Hook>) {
    std::panic::set_hook(Box::new(move |info| previous(info)));
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    cx.explain(
        "1) Python: an exception that leaves a thread's run() goes to threading.excepthook,\n\
         which prints 'Exception in thread NAME' and the traceback; join() returns None.\n\
         Rust: a panic calls the panic hook (the default prints 'thread NAME panicked at ...';\n\
         this chapter's prints one line), and join() returns the panic as an Err.",
    );
    let t = Thread::builder()
        .name("default-hook")
        .spawn(|| -> () { panic!("nobody replaced the hook") })?;
    let err = t.join().expect_err("the thread panicked");
    cx.say(format!(
        "join() -> Err: {err} (the hook's line is on stderr)"
    ));

    cx.explain(
        "2) threading.excepthook = my_hook  ->  std::panic::set_hook(Box::new(my_hook)).\n\
         Like Python's hook (args.thread), it knows the thread: this one narrates the panics of\n\
         threads named worker-* and of main, and hands the others to the previous hook.",
    );
    let previous = install(cx);
    let outcome = (|| -> anyhow::Result<Vec<String>> {
        let lock = Arc::new(Mutex::new(0));
        let workers: Vec<Thread<()>> = (1..=2)
            .map(|i| {
                let (cx, lock) = (cx.clone(), Arc::clone(&lock));
                Thread::builder()
                    .name(format!("worker-{i}"))
                    .spawn(move || {
                        let _guard = Guard(cx.clone());
                        let _held = lock.lock();
                        panic!("bad input #{i}");
                    })
            })
            .collect::<Result<_, _>>()?;
        let other = Thread::builder()
            .name("other")
            .spawn(|| -> () { panic!("not a worker: the previous hook reports me") })?;
        let mut errors: Vec<String> = workers
            .into_iter()
            .chain([other])
            .filter_map(|t| t.join().err().map(|e| e.to_string()))
            .collect();
        errors.sort();
        cx.say(format!(
            "the mutex the workers held while panicking is poisoned: {}",
            lock.is_poisoned()
        ));
        // The same hook serves main: a panic here, caught so the lesson goes on.
        let caught = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let _guard = Guard(cx.clone());
            panic!("main panics too");
        }));
        let message = caught
            .err()
            .map(|payload| lesson::panic_message(payload.as_ref()));
        cx.say(format!(
            "catch_unwind on main -> Err: {} (the hook ran all the same, before the unwinding; \
             Python's sys.excepthook sees only an exception nobody caught)",
            message.as_deref().unwrap_or("none: main did not panic")
        ));
        Ok(errors)
    })();
    restore(previous);
    let errors = outcome?;
    cx.say(format!("join() of each -> Err: {}", errors.join("; ")));
    ensure!(errors.len() == 3, "a thread did not panic: {errors:?}");
    let hooked = cx
        .records()
        .iter()
        .filter(|r| r.text.starts_with("my hook:"))
        .count();
    ensure!(
        hooked == 3,
        "the hook saw {hooked} panics, not 3 (two workers and main)"
    );
    cx.explain(
        "3) the differences:\n\
         - the hook runs in the panicking thread before its stack unwinds: its line comes\n\
         \x20 before that thread's destructors ran (and released the mutex, poisoned);\n\
         \x20 Python's excepthook runs after run() has raised, its finally blocks done;\n\
         - it serves every thread, main included, as above (Python: sys.excepthook for the\n\
         \x20 main thread), and runs even for a panic that is caught;\n\
         - it is one per process: set it once, early, or put the previous one back as here;\n\
         - with panic = \"abort\" in Cargo.toml the hook still runs, then the process aborts.",
    );
    Ok(())
}
