//! Lesson `channels` (beyond the seed): what Rust programs usually use instead of a queue
//! object: channels, with a sending and a receiving end, that can be waited on together.

use std::time::Duration;

use anyhow::{Context, bail, ensure};
use crossbeam::channel::{self, Receiver, RecvError, RecvTimeoutError, SendTimeoutError};
use lesson::{Activity, Cx};

use crate::Queue;

/// What one `select!` over the two channels gave.
enum Got {
    Number(Result<u32, RecvError>),
    Word(Result<&'static str, RecvError>),
    Nothing,
}

/// Wait on both channels at once for at most `timeout`, or not at all (`None`).
fn pick(numbers: &Receiver<u32>, words: &Receiver<&'static str>, timeout: Option<Duration>) -> Got {
    match timeout {
        None => channel::select! {
            recv(numbers) -> msg => Got::Number(msg),
            recv(words) -> msg => Got::Word(msg),
            default => Got::Nothing,
        },
        Some(timeout) => channel::select! {
            recv(numbers) -> msg => Got::Number(msg),
            recv(words) -> msg => Got::Word(msg),
            default(timeout) => Got::Nothing,
        },
    }
}

/// A producer's pause: from when it says so on `paused` until main drops the sending end of
/// `resume` (after its select! has waited 1 s in vain), drawn on the timeline as a wait.
fn pause(cx: &Cx, paused: &channel::Sender<()>, resume: &Receiver<()>) {
    let _pause = cx.span(
        Activity::Wait,
        "paused: until main lets the producers go on",
    );
    // The span is open before main hears of the pause, and closes after main resumes us.
    let _ = paused.send(());
    // Nothing is ever sent on `resume`: it disconnects when main drops its end.
    let _ = resume.recv_timeout(cx.long_wait());
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    cx.explain(
        "Two producers on two channels: numbers on one, words on the other, with a pause in\n\
         the middle. One loop waits on both at once with a timeout: crossbeam's select!.\n\
         (Python's queue.Queue cannot wait on two queues at once.) The producers pause until\n\
         main has waited 1 s in vain, so the time-out falls in their pause on any machine:",
    );
    let (num_tx, num_rx) = channel::bounded::<u32>(4);
    let (word_tx, word_rx) = channel::unbounded::<&'static str>();
    let (paused_tx, paused_rx) = channel::unbounded::<()>();
    let (resume_tx, resume_rx) = channel::bounded::<()>(0);
    let (nums, words, timeouts) = std::thread::scope(|s| -> anyhow::Result<_> {
        let (paused, resume) = (paused_tx.clone(), resume_rx.clone());
        std::thread::Builder::new()
            .name("numbers".into())
            .spawn_scoped(s, move || {
                for n in 1..=3 {
                    let _ = num_tx.send(n);
                }
                pause(cx, &paused, &resume);
                for n in 4..=6 {
                    let _ = num_tx.send(n);
                }
                // num_tx dropped here: the receiver sees the channel disconnect.
            })
            .context("spawning")?;
        let (paused, resume) = (paused_tx, resume_rx);
        std::thread::Builder::new()
            .name("words".into())
            .spawn_scoped(s, move || {
                for w in ["alpha", "beta"] {
                    let _ = word_tx.send(w);
                }
                pause(cx, &paused, &resume);
                let _ = word_tx.send("gamma");
            })
            .context("spawning")?;
        {
            let _waiting = cx.span(Activity::Wait, "until both producers have paused");
            for _ in 0..2 {
                paused_rx
                    .recv_timeout(cx.long_wait())
                    .context("a producer never paused")?;
            }
        }
        cx.say("both producers have sent their first batch and paused");
        let (mut nums, mut words, mut timeouts) = (Vec::new(), Vec::new(), 0);
        let (mut num_rx, mut word_rx) = (Some(num_rx), Some(word_rx));
        // Dropped (the producers go on) at the first time-out.
        let mut resume = Some(resume_tx);
        // A disconnected channel is swapped for one that never delivers, so select! skips it.
        let (never_num, never_word) = (channel::never::<u32>(), channel::never::<&str>());
        while num_rx.is_some() || word_rx.is_some() {
            let (n, w) = (
                num_rx.as_ref().unwrap_or(&never_num),
                word_rx.as_ref().unwrap_or(&never_word),
            );
            // Drawn as a wait only when neither channel has something at once. While the
            // producers are paused, wait 1 s; once they go on, only a lesson bug could leave
            // both channels silent for the long wait.
            let got = match pick(n, w, None) {
                Got::Nothing => {
                    let _waiting = cx.span(Activity::Wait, "select!: waiting on both channels");
                    let limit = if resume.is_some() {
                        cx.scaled(1.0)
                    } else {
                        cx.long_wait()
                    };
                    pick(n, w, Some(limit))
                }
                got => got,
            };
            match got {
                Got::Number(Ok(n)) => {
                    cx.say(format!("number {n}"));
                    nums.push(n);
                }
                Got::Number(Err(_)) => {
                    cx.say("numbers: disconnected");
                    num_rx = None;
                }
                Got::Word(Ok(w)) => {
                    cx.say(format!("word {w}"));
                    words.push(w);
                }
                Got::Word(Err(_)) => {
                    cx.say("words: disconnected");
                    word_rx = None;
                }
                Got::Nothing => {
                    let Some(resume) = resume.take() else {
                        bail!("nothing on either channel long after the producers went on");
                    };
                    timeouts += 1;
                    cx.say(
                        "nothing on either channel for 1 s: both producers are paused; letting \
                         them go on",
                    );
                    drop(resume);
                }
            }
        }
        Ok((nums, words, timeouts))
    })?;
    cx.say(format!(
        "got numbers {nums:?} and words {words:?}; {timeouts} time-out(s), while both producers \
         paused"
    ));
    ensure!(
        nums == [1, 2, 3, 4, 5, 6] && words == ["alpha", "beta", "gamma"],
        "lost messages"
    );
    ensure!(timeouts == 1, "{timeouts} time-outs, not 1");

    cx.explain(
        "maxsize 0: in Python, Queue(0) has no limit. In crossbeam, bounded(0) has no room at\n\
         all: a send waits until a receiver takes the value (a rendezvous).",
    );
    let (tx, _rx) = channel::bounded::<u8>(0);
    let rendezvous = matches!(
        tx.send_timeout(1, cx.scaled(1.0)),
        Err(SendTimeoutError::Timeout(1))
    );
    let q = Queue::new(0);
    let mut unbounded = true;
    for i in 0..10_000 {
        unbounded &= q.try_put(i).is_ok();
    }
    cx.say(format!(
        "bounded(0).send with no receiver -> {}; Queue::new(0) took 10000 puts -> {}",
        if rendezvous { "timed out" } else { "sent?!" },
        if unbounded { "never full" } else { "full?!" }
    ));
    ensure!(rendezvous && unbounded, "maxsize 0 semantics");
    let (_tx, rx) = channel::bounded::<u8>(1);
    ensure!(
        rx.recv_timeout(Duration::ZERO) == Err(RecvTimeoutError::Timeout),
        "empty channel"
    );
    cx.explain(
        "When to use which: a channel (crossbeam, or std::sync::mpsc) to pass work between\n\
         threads: its ends close, select! waits on several, and it is the fastest hand-off\n\
         (cargo bench -p queues). This crate's Queue where you want Python's API: LIFO or\n\
         priority order, task_done/join, qsize, shutdown.",
    );
    Ok(())
}
