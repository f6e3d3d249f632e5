//! A two-lesson chapter that shows how a chapter binary uses this crate, and that the crate's own
//! tests drive to check exit codes: `hello` succeeds, `fails` returns an error with a cause.

use anyhow::Context;
use lesson::{Activity, Chapter, Cx, Lesson};

fn hello(cx: &Cx) -> anyhow::Result<()> {
    cx.say("hello from main");
    let worker = cx.clone();
    std::thread::Builder::new()
        .name("Thread-1".into())
        .spawn(move || {
            worker.say("hello from a thread");
            worker.sleep(1.0);
            worker.say("goodbye from a thread");
        })?
        .join()
        .map_err(|_| anyhow::anyhow!("the thread panicked"))?;
    cx.say("done");
    Ok(())
}

/// Two helper processes narrate on this lesson's timeline while main waits for them.
fn children(cx: &Cx) -> anyhow::Result<()> {
    cx.say("starting two helpers");
    let mut running = Vec::new();
    for _ in 0..2 {
        running.push(cx.helper("child")?.spawn().context("starting a helper")?);
    }
    let _waiting = cx.span(Activity::Wait, "waiting for the helpers");
    for mut child in running {
        match lesson::wait_within(&mut child, cx.long_wait())? {
            Some(status) if status.success() => {}
            Some(status) => anyhow::bail!("a helper failed: {status}"),
            None => anyhow::bail!("a helper did not end in time: killed"),
        }
    }
    drop(_waiting);
    cx.say("both helpers ended");
    Ok(())
}

fn child(cx: &Cx) -> anyhow::Result<()> {
    cx.say("hello from a helper process");
    {
        let _work = cx.span(Activity::Work, "counting");
        std::hint::black_box((0..10_000u64).sum::<u64>());
    }
    cx.sleep(1.0);
    cx.say("goodbye from a helper process");
    Ok(())
}

fn fails(_cx: &Cx) -> anyhow::Result<()> {
    let missing: Result<(), std::io::Error> = Err(std::io::ErrorKind::NotFound.into());
    missing.context("reading the lesson's input")?;
    Ok(())
}

static CHAPTER: Chapter = Chapter {
    name: "lesson-demo",
    title: "how a chapter uses the lesson crate",
    lessons: &[
        Lesson {
            name: "hello",
            title: "narration from two threads",
            run: hello,
        },
        Lesson {
            name: "children",
            title: "two helper processes on one timeline",
            run: children,
        },
        Lesson {
            name: "fails",
            title: "a lesson that returns an error",
            run: fails,
        },
        Lesson {
            name: "a-name-longer-than-the-column",
            title: "a lesson that only says hello",
            run: |cx| {
                cx.say("hello");
                Ok(())
            },
        },
    ],
    helpers: &[Lesson {
        name: "child",
        title: "a helper process that narrates",
        run: child,
    }],
};

fn main() -> std::process::ExitCode {
    lesson::main(&CHAPTER)
}
