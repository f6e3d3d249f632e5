//! Lesson `pipe` (管道): the seed's exchange over a two-way pipe, with typed messages.

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;

use anyhow::{Context, ensure};
use lesson::Cx;
use processes::Process;
use serde::{Deserialize, Serialize};

use crate::{FrameError, Pipe};

/// The seed's `[12, {"name": "yuan"}, "hello"]`, as a type: both ends agree on it, and the
/// receiver can only ever decode these fields (pickle would build any object it is sent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    let c = cx.clone();
    let mut child = Process::new(move || -> anyhow::Result<()> {
        let greeting = Greeting {
            number: 12,
            info: BTreeMap::from([("name".to_owned(), "yuan".to_owned())]),
            text: "hello".to_owned(),
        };
        child_end.send(&greeting)?;
        let reply = child_end.recv()?;
        c.say(format!(
            "child (end fd {}): the parent says {reply:?}",
            child_end.as_raw_fd()
        ));
        Ok(())
    })
    .close_in_child(&parent_end);
    child.start()?;
    let got = parent_end
        .recv_timeout(cx.long_wait())
        .context("waiting for the child's greeting")?;
    cx.say(format!("parent: the child says {got:?}"));
    parent_end.send(&"你好".to_owned())?;
    ensure!(child.join()? == 0, "the child failed");
    let after = parent_end
        .recv()
        .expect_err("nothing more can come from an exited child");
    Ok((got, after))
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
        "The child closes the parent's end (close_in_child): with a copy of it open in the\n\
         child, the parent could never see end-of-file while the child lives.",
    );
    Ok(())
}
