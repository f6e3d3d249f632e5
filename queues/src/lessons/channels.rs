//! Lesson `channels` (beyond the seed): what Rust programs usually use instead of a queue
//! object: channels, with a sending and a receiving end, that can be waited on together.

use std::time::Duration;

use anyhow::{Context, ensure};
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

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    cx.explain(
        "Two producers on two channels: numbers on one, words on the other, with a pause in\n\
         the middle. One loop waits on both at once with a timeout: crossbeam's select!.\n\
         (Python's queue.Queue cannot wait on two queues at once.)",
    );
    let (num_tx, num_rx) = channel::bounded::<u32>(4);
    let (word_tx, word_rx) = channel::unbounded::<&'static str>();
    let (nums, words, timeouts) = std::thread::scope(|s| -> anyhow::Result<_> {
        std::thread::Builder::new()
            .name("numbers".into())
            .spawn_scoped(s, move || {
                for n in 1..=3 {
                    let _ = num_tx.send(n);
                }
                cx.sleep(3.0);
                for n in 4..=6 {
                    let _ = num_tx.send(n);
                }
                // num_tx dropped here: the receiver sees the channel disconnect.
            })
            .context("spawning")?;
        std::thread::Builder::new()
            .name("words".into())
            .spawn_scoped(s, move || {
                for w in ["alpha", "beta"] {
                    let _ = word_tx.send(w);
                }
                cx.sleep(3.0);
                let _ = word_tx.send("gamma");
            })
            .context("spawning")?;
        let (mut nums, mut words, mut timeouts) = (Vec::new(), Vec::new(), 0);
        let (mut num_rx, mut word_rx) = (Some(num_rx), Some(word_rx));
        // A disconnected channel is swapped for one that never delivers, so select! skips it.
        let (never_num, never_word) = (channel::never::<u32>(), channel::never::<&str>());
        while num_rx.is_some() || word_rx.is_some() {
            let (n, w) = (
                num_rx.as_ref().unwrap_or(&never_num),
                word_rx.as_ref().unwrap_or(&never_word),
            );
            // Drawn as a wait only when neither channel has something at once.
            let got = match pick(n, w, None) {
                Got::Nothing => {
                    let _waiting = cx.span(Activity::Wait, "select!: waiting on both channels");
                    pick(n, w, Some(cx.scaled(1.0)))
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
                    timeouts += 1;
                    cx.say("nothing on either channel for 1 s");
                }
            }
        }
        Ok((nums, words, timeouts))
    })?;
    cx.say(format!(
        "got numbers {nums:?} and words {words:?}; {timeouts} time-outs while both producers paused"
    ));
    ensure!(
        nums == [1, 2, 3, 4, 5, 6] && words == ["alpha", "beta", "gamma"],
        "lost messages"
    );
    ensure!(timeouts >= 1, "the time-out branch never ran");

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
