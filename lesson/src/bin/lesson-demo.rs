//! A two-lesson chapter that shows how a chapter binary uses this crate, and that the crate's own
//! tests drive to check exit codes: `hello` succeeds, `fails` returns an error with a cause.

use anyhow::Context;
use lesson::{Chapter, Cx, Lesson};

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
    helpers: &[],
};

fn main() -> std::process::ExitCode {
    lesson::main(&CHAPTER)
}
