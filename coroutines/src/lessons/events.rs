//! Lesson `events` (驱动事件): event-driven programming. Keystrokes arrive from another thread
//! (the "keyboard") at the seed's 0.5, 1.0 and 1.5 s; a program that polls for them checks
//! again and again, mostly for nothing, while an event loop sleeps in the kernel until one
//! comes and then runs the callback registered for it. Callbacks run one at a time, on one
//! thread: one that blocks holds up every other, which is why the next lessons make the waits
//! cooperative (select / poll / epoll, and the hub).

use std::cell::RefCell;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use lesson::{Activity, Cx};

use crate::events::EventLoop;

/// The keys the keyboard sends, and when (seed seconds); then it closes the line.
pub const KEYS: [(u8, f64); 3] = [(b'a', 0.5), (b'b', 1.0), (b'c', 1.5)];

/// Start the keyboard: a thread that writes [`KEYS`] at their times after `start` into its
/// end of a pair, then closes it. The other end, non-blocking.
fn keyboard(cx: &Cx, start: Instant) -> anyhow::Result<(UnixStream, std::thread::JoinHandle<()>)> {
    let (mut tx, rx) = UnixStream::pair().context("socketpair")?;
    rx.set_nonblocking(true)?;
    let kb = cx.as_speaker("keyboard");
    let t = std::thread::Builder::new()
        .name("keyboard".into())
        .spawn(move || {
            for (key, at) in KEYS {
                let due = kb.scaled(at);
                std::thread::sleep(due.saturating_sub(start.elapsed()));
                kb.say(format!("key {:?} pressed", char::from(key)));
                if tx.write_all(&[key]).is_err() {
                    return;
                }
            }
        })?;
    Ok((rx, t))
}

/// The polling way: look at the line every 10 ms (the seed's `time.sleep(0.01)`, scaled),
/// until it closes. (the keys, in order; how many looks it took; how many found nothing).
///
/// # Errors
/// If the socket pair or the keyboard's thread cannot be made, or a read fails.
pub fn poll_keys(cx: &Cx) -> anyhow::Result<(Vec<u8>, usize, usize)> {
    let (mut rx, t) = keyboard(cx, Instant::now())?;
    let (mut keys, mut looks, mut empty) = (Vec::new(), 0, 0);
    let mut buf = [0u8; 8];
    loop {
        looks += 1;
        match rx.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => keys.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                empty += 1;
                cx.sleep(0.01);
            }
            Err(e) => return Err(e).context("reading the keyboard"),
        }
    }
    t.join()
        .map_err(|_| anyhow::anyhow!("the keyboard thread panicked"))?;
    Ok((keys, looks, empty))
}

/// What the event loop did with the keyboard: the keys each callback got, in order; a timer's
/// run among them; and how many times the loop waited.
#[derive(Debug, Default)]
pub struct Dispatched {
    /// Each callback's line: `key 'a'`, `timer`, `end of input`.
    pub callbacks: Vec<String>,
    /// The keys read, in order.
    pub keys: Vec<u8>,
    /// How many times the loop waited for an event.
    pub waits: usize,
}

/// The event-driven way: a reader callback for the line, and a timer at the seed's 1.25 s;
/// the loop runs until nothing is left to wait for.
///
/// # Errors
/// If the socket pair, the keyboard's thread or the loop cannot be made, or the loop's wait
/// fails.
pub fn dispatch_keys(cx: &Cx) -> anyhow::Result<Dispatched> {
    // The keys and the timer count from the same instant, so the timer (the seed's 1.25 s)
    // comes between 'b' and 'c' however long the set-up below takes (under valgrind it takes
    // longer than the 0.25 s, scaled, between the timer and 'c').
    let start = Instant::now();
    let (rx, t) = keyboard(cx, start)?;
    let out = Rc::new(RefCell::new(Dispatched::default()));
    let mut ev = EventLoop::new()?;
    let me = cx.as_speaker("event loop");
    let (o, c, fd) = (out.clone(), me.clone(), rx.as_raw_fd());
    let mut rx2 = rx.try_clone()?;
    ev.add_reader(rx.as_fd(), move |ev| {
        let _work = c.span(Activity::Work, "callback");
        let mut buf = [0u8; 8];
        match rx2.read(&mut buf) {
            Ok(0) | Err(_) => {
                c.say("callback: end of input; no more reader");
                o.borrow_mut().callbacks.push("end of input".into());
                ev.remove_reader(fd);
            }
            Ok(n) => {
                for &k in &buf[..n] {
                    c.say(format!("callback: got key {:?}", char::from(k)));
                    o.borrow_mut()
                        .callbacks
                        .push(format!("key {:?}", char::from(k)));
                    o.borrow_mut().keys.push(k);
                }
            }
        }
    })?;
    let (o, c) = (out.clone(), me.clone());
    ev.call_later(cx.scaled(1.25).saturating_sub(start.elapsed()), move |_| {
        c.say("callback: the timer is due");
        o.borrow_mut().callbacks.push("timer".into());
    });
    {
        let _waiting = me.span(Activity::Wait, "waits for events");
        ev.run()?;
    }
    t.join()
        .map_err(|_| anyhow::anyhow!("the keyboard thread panicked"))?;
    drop(rx);
    out.borrow_mut().waits = ev.waits();
    Ok(std::mem::take(&mut *out.borrow_mut()))
}

/// One callback that blocks (sleeps the seed's 1 s in the loop's thread): a timer due at the
/// seed's 0.2 s runs only after it. How late the timer ran.
///
/// # Errors
/// If the loop cannot be made or its wait fails.
pub fn blocked_timer(cx: &Cx) -> anyhow::Result<Duration> {
    let mut ev = EventLoop::new()?;
    let me = cx.as_speaker("event loop");
    let late = Rc::new(RefCell::new(Duration::ZERO));
    let due = Instant::now() + cx.scaled(0.2);
    let (l, c) = (late.clone(), me.clone());
    ev.call_later(cx.scaled(0.2), move |_| {
        *l.borrow_mut() = Instant::now().saturating_duration_since(due);
        c.say("callback: the timer, at last");
    });
    let c = me.clone();
    ev.call_soon(move |_| {
        c.say("callback: a slow one, blocking for the seed's 1 s");
        let _blocked = c.span(Activity::Work, "blocking callback");
        std::thread::sleep(c.scaled(1.0));
    });
    ev.run()?;
    let late = *late.borrow();
    Ok(late)
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    cx.explain("Polling: look for a key every 10 ms until the keyboard is done.");
    let (keys, looks, empty) = poll_keys(cx)?;
    cx.say(format!(
        "polling read {:?} after {looks} looks, {empty} of them for nothing",
        String::from_utf8_lossy(&keys)
    ));
    ensure!(keys == b"abc", "polling read {keys:?}");

    cx.explain(
        "Event-driven: register a callback for \"the keyboard line is readable\" and one timer;\n\
         the loop sleeps in epoll until an event comes, then runs its callback.",
    );
    let d = dispatch_keys(cx)?;
    cx.say(format!(
        "the event loop ran {} callbacks ({}) after {} waits: it woke only for events",
        d.callbacks.len(),
        d.callbacks.join(", "),
        d.waits
    ));
    ensure!(d.keys == b"abc", "the loop read {:?}", d.keys);
    ensure!(
        d.callbacks.iter().filter(|c| *c == "timer").count() == 1,
        "the timer ran {:?}",
        d.callbacks
    );
    // Each wait ended with an event: a key (or several), the timer, or the end of input, each
    // of which ran a callback that logged a line or more. So at most one wait per line, however
    // the keys are spaced (keys that come together are read after one wait).
    ensure!(
        d.waits <= d.callbacks.len(),
        "{} waits for {} callbacks",
        d.waits,
        d.callbacks.len()
    );

    cx.explain("One thread runs every callback. A callback that blocks holds up all the others:");
    let late = blocked_timer(cx)?;
    cx.say(format!(
        "the timer due at the seed's 0.2 s ran {:.3} s late",
        late.as_secs_f64()
    ));
    ensure!(late >= cx.scaled(0.8), "the timer was only {late:?} late");
    cx.explain(
        "So in an event loop nothing may block: reads and writes must be non-blocking, and the\n\
         loop waits for all of them at once (select / poll / epoll, next). gevent's hub is such\n\
         a loop, whose callbacks are greenlets: code that reads straight down, and gives the\n\
         thread back wherever it would wait.",
    );
    Ok(())
}
