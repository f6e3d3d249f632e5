//! Lesson `triggers` (水平触发 / 边缘触发): level- against edge-triggered epoll, walked through
//! wait by wait: what each wait returned, which reads followed, and the `WouldBlock` that ends
//! a drain.

use anyhow::ensure;
use lesson::Cx;

use crate::multiplex::{ReadResult, Reading, Step, walk_with};

/// What the reads after one wait returned, as text: `'a', WouldBlock`.
fn reads_text(reads: &[ReadResult]) -> String {
    reads
        .iter()
        .map(|r| match r {
            ReadResult::Byte(b) => format!("{:?}", char::from(*b)),
            ReadResult::WouldBlock => "WouldBlock".to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Walk (see [`walk_with`]) narrating each step as it happens; the bytes read, in order.
fn narrate(cx: &Cx, edge: bool, reading: Reading) -> anyhow::Result<Vec<u8>> {
    let mut wait = 0;
    let mut got = Vec::new();
    walk_with(edge, reading, &mut |step| match step {
        Step::Wrote(bytes) => cx.say(format!(
            "  the writer writes {:?} into the pipe",
            String::from_utf8_lossy(bytes)
        )),
        Step::Waited { events, reads } => {
            wait += 1;
            got.extend(reads.iter().filter_map(|r| match r {
                ReadResult::Byte(b) => Some(*b),
                ReadResult::WouldBlock => None,
            }));
            if *events == 0 {
                cx.say(format!(
                    "  wait {wait}: epoll_wait returns 0 events after 10 ms: no wake-up"
                ));
            } else {
                cx.say(format!(
                    "  wait {wait}: epoll_wait returns 1 event (EPOLLIN); {} read(s): {}",
                    reads.len(),
                    reads_text(reads)
                ));
            }
        }
    })?;
    Ok(got)
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    cx.explain(
        "One pipe, watched by epoll for reading. \"ab\" arrives, the reader waits three times,\n\
         then \"c\" arrives and it waits once more. Three readers: level-triggered reading one\n\
         byte per wake-up, edge-triggered reading one byte per wake-up, and edge-triggered\n\
         reading until the pipe says WouldBlock.",
    );

    cx.say("level-triggered, one byte per wake-up:");
    let got = narrate(cx, false, Reading::OneByte)?;
    cx.say(format!(
        "  => woken while data was waiting, every time: it read {:?} in order",
        String::from_utf8_lossy(&got)
    ));
    ensure!(got == b"abc", "level-triggered read {got:?}");

    cx.say("edge-triggered, one byte per wake-up:");
    let got = narrate(cx, true, Reading::OneByte)?;
    cx.say(format!(
        "  => 'b' sat in the pipe through waits 2 and 3 (no new data, no edge, no event); the \
         next arrival woke it, and it read 'b' late, leaving 'c' behind: read {:?} of \"abc\"",
        String::from_utf8_lossy(&got)
    ));
    ensure!(got == b"ab", "edge-triggered read {got:?}");

    cx.say("edge-triggered, reading until WouldBlock:");
    let got = narrate(cx, true, Reading::Drain)?;
    cx.say(format!(
        "  => each wake-up emptied the pipe, and the WouldBlock said so: it read {:?}, with one \
         wake-up per arrival",
        String::from_utf8_lossy(&got)
    ));
    ensure!(got == b"abc", "edge-triggered with drain read {got:?}");

    cx.explain(
        "Level-triggered: epoll reports \"readable\" for as long as it is true, so one read per\n\
         wake-up is enough (at the cost of a wake-up per read). Edge-triggered: it reports the\n\
         moment new data arrives, once. A reader that stops before the kernel says WouldBlock\n\
         (EAGAIN) leaves bytes that no event will announce; they wait for the next arrival,\n\
         maybe for ever. The hub's sockets are edge-triggered and read until a short read or\n\
         WouldBlock (hub/net.rs).",
    );
    Ok(())
}
