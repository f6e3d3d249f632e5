//! The tasks the lessons (and tests and benches) give the pool.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use ipc::{Array, AtomicValue};
use lesson::{Activity, Handoff};
use serde::{Deserialize, Serialize};

use crate::Task;

/// How many tasks run at once, across the worker processes, and in what order they started:
/// counters in shared memory, made once per program and inherited by every worker forked after.
pub struct Gauge {
    running: AtomicValue<AtomicU64>,
    most: AtomicValue<AtomicU64>,
    finished: AtomicValue<AtomicU64>,
    /// Set: the tasks that wait for it ([`Trouble::Hold`]) go on.
    released: AtomicValue<AtomicBool>,
    /// Whose turn it is to finish ([`Trouble::Turn`]): counted up by [`Gauge::next_turn`].
    turn: AtomicValue<AtomicU64>,
    /// Per task number (the first [`Gauge::TRACKED`]): 1 + how many tasks had finished when it
    /// started; 0 if it has not started.
    before: Array<u32>,
}

static GAUGE: OnceLock<Option<Gauge>> = OnceLock::new();

/// The program's gauge (made on first use: do that before starting a pool).
pub fn gauge() -> Option<&'static Gauge> {
    GAUGE
        .get_or_init(|| {
            Some(Gauge {
                running: AtomicValue::new(AtomicU64::new(0)).ok()?,
                most: AtomicValue::new(AtomicU64::new(0)).ok()?,
                finished: AtomicValue::new(AtomicU64::new(0)).ok()?,
                released: AtomicValue::new(AtomicBool::new(false)).ok()?,
                turn: AtomicValue::new(AtomicU64::new(0)).ok()?,
                before: Array::new(Gauge::TRACKED, 0).ok()?,
            })
        })
        .as_ref()
}

impl Gauge {
    /// Tasks numbered below this have their start recorded ([`Gauge::finished_before`]).
    pub const TRACKED: usize = 4096;

    /// Zero every counter and forget every start.
    pub fn reset(&self) {
        self.running.store(0, Ordering::SeqCst);
        self.most.store(0, Ordering::SeqCst);
        self.finished.store(0, Ordering::SeqCst);
        self.released.store(false, Ordering::SeqCst);
        self.turn.store(0, Ordering::SeqCst);
        if let Ok(mut b) = self.before.lock() {
            b.fill(0);
        }
    }

    /// Task `i` starts: it runs, and the tasks finished by now are noted.
    fn enter(&self, i: u32) {
        // Read and note the tasks finished before this one counts as running: tasks that
        // wait for it to run (`Trouble::Meet`) cannot finish in between.
        let done = self.finished.load(Ordering::SeqCst);
        if let (Ok(mut b), Some(slot)) = (self.before.lock(), usize::try_from(i).ok())
            && let Some(v) = b.get_mut(slot)
        {
            *v = u32::try_from(done + 1).unwrap_or(u32::MAX);
        }
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
    }

    fn leave(&self) {
        self.finished.fetch_add(1, Ordering::SeqCst);
        self.running.fetch_sub(1, Ordering::SeqCst);
    }

    /// Let the tasks that wait for it ([`Trouble::Hold`]) go on.
    pub fn release(&self) {
        self.released.store(true, Ordering::SeqCst);
    }

    /// Let the task whose turn is next ([`Trouble::Turn`]) finish: turns count from 0 at
    /// [`Gauge::reset`].
    pub fn next_turn(&self) {
        self.turn.fetch_add(1, Ordering::SeqCst);
    }

    /// The most tasks that were running at once since the last reset.
    pub fn most(&self) -> u64 {
        self.most.load(Ordering::SeqCst)
    }

    /// For tasks `0..n`: how many tasks had finished when each started (`None`: it did not
    /// start, or its number is not tracked).
    pub fn finished_before(&self, n: usize) -> Vec<Option<u32>> {
        let b = self.before.lock();
        (0..n)
            .map(|i| {
                let v = b.as_ref().ok().and_then(|b| b.get(i).copied()).unwrap_or(0);
                v.checked_sub(1)
            })
            .collect()
    }
}

/// The seed's `foo(i)`: sleep, then say so from the worker (its pid and `i`, as the seed
/// prints them), return `"Hello i"`. On the timeline, the worker (`ForkPoolWorker-N`) sleeps
/// for `task i`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    /// The task number.
    pub i: u32,
    /// How long to sleep, in the seed's seconds.
    pub seconds: f64,
    /// Narration.
    pub talk: Handoff,
}

impl Task for Hello {
    type Output = String;
    fn run(self) -> anyhow::Result<String> {
        let cx = crate::worker_cx(&self.talk);
        let g = gauge();
        if let Some(g) = g {
            g.enter(self.i);
        }
        let sleeping = cx.span(Activity::Sleep, format!("task {}: sleep", self.i));
        std::thread::sleep(cx.scaled(self.seconds));
        sleeping.end();
        cx.say(format!(
            "child: pid {}, task {} (slept, then printed, as the seed's foo)",
            std::process::id(),
            self.i
        ));
        if let Some(g) = g {
            g.leave();
        }
        Ok(format!("Hello {}", self.i))
    }
}

/// A number to square: trivial work, for `map` and the benchmarks.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Square(pub u64);

impl Task for Square {
    type Output = u64;
    fn run(self) -> anyhow::Result<u64> {
        Ok(self.0 * self.0)
    }
}

/// A task that behaves: returns its number; or panics; or kills its own worker process
/// (as the kernel's OOM killer would).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub enum Trouble {
    /// Return the number.
    Fine(u32),
    /// Panic.
    Panic(u32),
    /// SIGKILL the worker running it.
    KillWorker(u32),
    /// Sleep this many milliseconds, then return the number.
    Slow(u32, u64),
    /// Count as running in the [`gauge`], then wait (up to 10 s) until this many tasks run at
    /// once: with as many workers, that number is reached for certain.
    Meet(u32, u64),
    /// Wait (up to 10 s) until the [`gauge`] is released ([`Gauge::release`]), then return the
    /// number.
    Hold(u32),
    /// Wait (up to 10 s) until it is turn `turn` ([`Gauge::next_turn`]), then return the
    /// number `i`: handing the next turn only once the last result arrived makes the tasks
    /// finish one at a time, in the order of their turns.
    Turn {
        /// The task's number.
        i: u32,
        /// When it may finish: after `turn` calls of [`Gauge::next_turn`].
        turn: u64,
    },
    /// Count as running in the [`gauge`]; if its number is below `n`, wait (up to 10 s) as
    /// [`Trouble::Meet`] does; then sleep `ms` milliseconds.
    Wave {
        /// The task's number.
        i: u32,
        /// Tasks `0..n` meet.
        n: u64,
        /// How long it then sleeps.
        ms: u64,
    },
}

impl Task for Trouble {
    type Output = u32;
    fn run(self) -> anyhow::Result<u32> {
        match self {
            Trouble::Fine(i) => Ok(i),
            Trouble::Panic(i) => panic!("task {i} panicked on purpose"),
            Trouble::KillWorker(_) => {
                let _ = nix::sys::signal::kill(
                    nix::unistd::getpid(),
                    nix::sys::signal::Signal::SIGKILL,
                );
                unreachable!("SIGKILL cannot be caught")
            }
            Trouble::Slow(i, ms) => {
                std::thread::sleep(Duration::from_millis(ms));
                Ok(i)
            }
            Trouble::Meet(i, n) => {
                let g = gauge().context("no shared memory for the gauge")?;
                g.enter(i);
                meet(g, n);
                g.leave();
                Ok(i)
            }
            Trouble::Hold(i) => {
                let g = gauge().context("no shared memory for the gauge")?;
                until(TASK_PATIENCE, || g.released.load(Ordering::SeqCst));
                Ok(i)
            }
            Trouble::Turn { i, turn } => {
                let g = gauge().context("no shared memory for the gauge")?;
                until(TASK_PATIENCE, || g.turn.load(Ordering::SeqCst) >= turn);
                Ok(i)
            }
            Trouble::Wave { i, n, ms } => {
                let g = gauge().context("no shared memory for the gauge")?;
                g.enter(i);
                if u64::from(i) < n {
                    meet(g, n);
                }
                std::thread::sleep(Duration::from_millis(ms));
                g.leave();
                Ok(i)
            }
        }
    }
}

/// How long a task waits for what the lesson arranges (a release, its turn, the others).
const TASK_PATIENCE: Duration = Duration::from_secs(10);

/// Look every 200 us until `done` (another process's doing, seen through shared memory, or a
/// pool's state), at most `limit`: a lesson whose other side failed goes on, and its own checks
/// then say what went wrong.
pub(crate) fn until(limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !done() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Wait (up to 10 s) until `n` tasks have run at once.
fn meet(g: &Gauge, n: u64) {
    until(TASK_PATIENCE, || g.most() >= n);
}

/// A fetched page: the seed's `{'url': ..., 'text': ...}`, keeping the size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// What was fetched.
    pub url: String,
    /// The body's length in bytes.
    pub size: usize,
}

/// The seed's `get_page(url)`: an HTTP/1.0 GET over a plain TCP connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fetch {
    /// `http://127.0.0.1:PORT/path`
    pub url: String,
    /// Narration.
    pub talk: Handoff,
}

/// `http://host:port/path` -> ("host:port", "/path").
fn split_url(url: &str) -> anyhow::Result<(&str, &str)> {
    let rest = url.strip_prefix("http://").context("only http:// URLs")?;
    Ok(match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    })
}

/// GET `url` (HTTP/1.0 over a plain TCP connection): the status and the body's size.
fn http_get(url: &str) -> anyhow::Result<(String, usize)> {
    let (host, path) = split_url(url)?;
    let mut s = TcpStream::connect(host).with_context(|| format!("connecting to {host}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    // One write: the server answers after the blank line, and a request split over several
    // writes must not leave bytes it never reads (closing would then reset).
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())?;
    let mut reply = Vec::new();
    s.read_to_end(&mut reply)?;
    let split = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers")?;
    let head = String::from_utf8_lossy(&reply[..split]);
    let status = head.split_whitespace().nth(1).unwrap_or("?").to_owned();
    Ok((status, reply.len() - split - 4))
}

impl Task for Fetch {
    type Output = Page;
    fn run(self) -> anyhow::Result<Page> {
        let cx = crate::worker_cx(&self.talk);
        cx.say(format!("<pid {}> get {}", std::process::id(), self.url));
        let _get = cx.span(Activity::Work, format!("get {}", self.url));
        let (status, size) = http_get(&self.url)?;
        if status != "200" {
            bail!("HTTP {status} for {}", self.url);
        }
        Ok(Page {
            url: self.url,
            size,
        })
    }
}

/// The seed's `get_page` as written: a page whose status is not 200 gives `None` (Python's
/// function falls off its end), not an error.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FetchAsSeed {
    /// `http://127.0.0.1:PORT/path`
    pub url: String,
    /// Narration.
    pub talk: Handoff,
}

impl Task for FetchAsSeed {
    type Output = Option<Page>;
    fn run(self) -> anyhow::Result<Option<Page>> {
        let cx = crate::worker_cx(&self.talk);
        cx.say(format!("<pid {}> get {}", std::process::id(), self.url));
        let _get = cx.span(Activity::Work, format!("get {}", self.url));
        let (status, size) = http_get(&self.url)?;
        Ok((status == "200").then_some(Page {
            url: self.url,
            size,
        }))
    }
}
