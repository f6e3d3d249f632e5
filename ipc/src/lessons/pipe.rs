//! Lesson `pipe` (管道): the seed's exchange over a two-way pipe, with typed messages; then
//! who must close which end for end-of-file to come, shown happening both ways.

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use lesson::{Activity, Cx};

use super::child;
use crate::{AtomicValue, FrameError, Pipe};

/// The seed's `[12, {"name": "yuan"}, "hello"]`, as a type: both ends agree on it, and the
/// receiver can only ever decode these fields (pickle would build any object it is sent).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Greeting {
    /// 12
    pub number: i32,
    /// {"name": "yuan"}
    pub info: BTreeMap<String, String>,
    /// "hello"
    pub text: String,
}

/// The exchange: what the parent received, and what it got from `recv` once the child had
/// exited (end-of-file).
pub fn exchange(cx: &Cx) -> anyhow::Result<(Greeting, FrameError)> {
    let (parent_end, child_end) = Pipe::duplex::<String, Greeting>()?;
    cx.say(format!(
        "two ends, two objects: parent end fd {}, child end fd {}",
        parent_end.as_raw_fd(),
        child_end.as_raw_fd()
    ));
    let mut p = child(cx, "Process-1", move |cx| -> anyhow::Result<()> {
        let greeting = Greeting {
            number: 12,
            info: BTreeMap::from([("name".to_owned(), "yuan".to_owned())]),
            text: "hello".to_owned(),
        };
        child_end.send(&greeting)?;
        let reply = {
            let _waiting = cx.span(Activity::Wait, "recv(): the parent's reply");
            child_end.recv()?
        };
        cx.say(format!(
            "child (end fd {}): the parent says {reply:?}",
            child_end.as_raw_fd()
        ));
        Ok(())
    })
    .close_in_child(&parent_end);
    p.start()?;
    let got = {
        let _waiting = cx.span(Activity::Wait, "recv(): the child's greeting");
        parent_end
            .recv_timeout(cx.long_wait())
            .context("waiting for the child's greeting")?
    };
    cx.say(format!("parent: the child says {got:?}"));
    parent_end.send(&"你好".to_owned())?;
    ensure!(p.join()? == 0, "the child failed");
    let after = parent_end
        .recv()
        .expect_err("nothing more can come from an exited child");
    Ok((got, after))
}

/// The parent keeps a copy of the child's end (an `Arc` the child's closure shares, so the
/// parent's copy is not dropped at the fork). After the child has sent "bye" and exited:
/// whether the parent saw end-of-file while it held that copy (it cannot: `false`), and the
/// error of its `recv` once it dropped the copy.
pub fn parent_keeps_child_end(cx: &Cx) -> anyhow::Result<(bool, FrameError)> {
    let (parent_end, child_end) = Pipe::duplex::<(), String>()?;
    let child_end = Arc::new(child_end);
    let for_child = Arc::clone(&child_end);
    let mut p = child(cx, "Process-2", move |cx| -> anyhow::Result<()> {
        for_child.send(&"bye".to_owned())?;
        cx.say("child: sent \"bye\"; exiting (my copy of my end closes)");
        Ok(())
    })
    .close_in_child(&parent_end);
    p.start()?;
    ensure!(p.join()? == 0, "the child failed");
    let bye = parent_end.recv_timeout(cx.long_wait())?;
    cx.say(format!("parent: recv() -> {bye:?}; the child has exited"));
    // The child is gone. Had its end been closed everywhere, end-of-file would be readable
    // now; it is not, because this process still holds a copy of it.
    let eof_while_copy = parent_end.poll(std::time::Duration::ZERO)?;
    cx.say(format!(
        "parent: anything to read (end-of-file)? {eof_while_copy}: I still hold a copy of the \
         child's end, so recv() would wait forever"
    ));
    drop(child_end);
    let after = parent_end
        .recv_timeout(cx.long_wait())
        .expect_err("nothing was sent after bye");
    cx.say(format!(
        "parent: dropped my copy of the child's end; recv() -> {after}"
    ));
    Ok((eof_while_copy, after))
}

/// The child reads until end-of-file; the parent sends one message and closes its end. With
/// `close_in_child` (`closed_in_child == true`) the child's inherited copy of the parent's
/// end is closed before its body runs. Whether the child saw end-of-file once the parent had
/// closed its end (told through shared memory, so nothing here depends on timing).
pub fn child_waits_for_eof(cx: &Cx, closed_in_child: bool) -> anyhow::Result<bool> {
    let (parent_end, child_end) = Pipe::duplex::<String, ()>()?;
    let parent_closed = AtomicValue::new(AtomicBool::new(false))?;
    let saw_eof = AtomicValue::new(AtomicBool::new(false))?;
    let (closed, eof) = (parent_closed.clone(), saw_eof.clone());
    let name = if closed_in_child {
        "Process-4"
    } else {
        "Process-3"
    };
    let limit = cx.long_wait();
    let mut p = child(cx, name, move |cx| -> anyhow::Result<()> {
        let first = child_end.recv()?;
        cx.say(format!("child: recv() -> {first:?}"));
        let deadline = Instant::now() + limit;
        {
            let _waiting = cx.span(Activity::Wait, "waiting for the parent to close its end");
            while !closed.load(Ordering::SeqCst) {
                if Instant::now() >= deadline {
                    bail!("the parent never closed its end");
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        // The parent's own end is closed. End-of-file is readable at once if no copy is left.
        if child_end.poll(std::time::Duration::ZERO)? {
            let end = child_end.recv().expect_err("nothing more was sent");
            ensure!(
                matches!(end, FrameError::Eof),
                "expected end-of-file: {end}"
            );
            eof.store(true, Ordering::SeqCst);
            cx.say(format!("child: the parent closed its end; recv() -> {end}"));
        } else {
            cx.say(
                "child: the parent closed its end, but nothing to read: my own inherited copy \
                 of the parent's end keeps it open; recv() would wait forever",
            );
        }
        Ok(())
    });
    if closed_in_child {
        p = p.close_in_child(&parent_end);
    }
    p.start()?;
    parent_end.send(&"the last message".to_owned())?;
    parent_end.close();
    parent_closed.store(true, Ordering::SeqCst);
    cx.say("parent: sent one message and closed my end");
    ensure!(p.join()? == 0, "the child failed");
    Ok(saw_eof.load(Ordering::SeqCst))
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    let (got, after) = exchange(cx)?;
    ensure!(got.number == 12 && got.text == "hello", "wrong greeting");
    cx.say(format!("parent: recv() after the child exited -> {after}"));
    ensure!(
        matches!(after, FrameError::Eof),
        "expected end-of-file, got {after}"
    );
    cx.explain(
        "Who must close what: recv() sees end-of-file only when every copy of the OTHER end is\n\
         closed, in every process. The parent's end-of-file waits for every copy of the\n\
         child's end; a copy of the parent's end left in the child stops the child's.",
    );
    let (eof_while_copy, after) = parent_keeps_child_end(cx)?;
    ensure!(
        !eof_while_copy,
        "end-of-file came while the parent held a copy"
    );
    ensure!(matches!(after, FrameError::Eof), "expected end-of-file");
    cx.explain("The child's side: it reads until end-of-file, the parent closes its end.");
    let without = child_waits_for_eof(cx, false)?;
    cx.say(format!(
        "parent: without close_in_child, the child saw end-of-file: {without}"
    ));
    ensure!(!without, "end-of-file came through an open copy");
    let with = child_waits_for_eof(cx, true)?;
    cx.say(format!(
        "parent: with close_in_child(&parent_end), the child saw end-of-file: {with}"
    ));
    ensure!(with, "no end-of-file with close_in_child");
    cx.explain(
        "Moving the child's end into its closure closes the parent's copy at the fork;\n\
         close_in_child closes the child's copy of the parent's end. Python's fork start\n\
         method copies both ends into the child too: close the one you do not use there.",
    );
    Ok(())
}
