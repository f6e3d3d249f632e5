//! The lesson context: narration, records, spans of activity and the time scale.
//!
//! # Where the records live
//!
//! The context made for a lesson (the *root*, [`Cx::new`] or [`Cx::quiet`]) keeps what its
//! process says in memory. It also opens one anonymous in-memory file (`memfd`), the *sink*:
//! every other process of the lesson appends its records there, one line per record in a single
//! `write` on a descriptor opened with `O_APPEND`, so lines of different processes never
//! interleave. A forked child inherits the sink's descriptor with the context; a process started
//! afresh (spawn, a helper) opens it again by `/proc/<root pid>/fd/<n>`, the path its
//! [`Handoff`] carries. [`Cx::records`] merges the two in time order, so the timeline and the
//! tests see every process. The sink vanishes with the last descriptor: nothing is left on disk,
//! even when a process is killed.

mod handoff;
mod record;
mod sink;

use std::fmt::Display;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

pub use handoff::{HANDOFF_ENV, Handoff};
pub use record::{Activity, Kind, Record};
use sink::Sink;

/// What a lesson gets: the clock, the scale, the narration and the records.
///
/// Cheap to clone (an `Arc`), `Send` and `Sync`: hand a clone to every thread that narrates.
#[derive(Clone, Debug)]
pub struct Cx {
    inner: Arc<Inner>,
    /// Who speaks through this handle, when it is not the thread (see [`Cx::as_speaker`]).
    name: Option<Arc<str>>,
}

#[derive(Debug)]
struct Inner {
    start: Instant,
    scale: f64,
    count: Option<usize>,
    echo: bool,
    /// The process whose records are kept in `records`; every other process writes to `sink`.
    root_pid: u32,
    exe: Option<PathBuf>,
    records: Mutex<Vec<Record>>,
    sink: Option<Arc<Sink>>,
}

/// The CPU running this thread now.
fn current_cpu() -> Option<u32> {
    nix::sched::sched_getcpu()
        .ok()
        .and_then(|c| u32::try_from(c).ok())
}

/// Who is speaking: the current thread's name (std names the main thread `main`; an unnamed
/// thread shows its `ThreadId`), or `pid N` when called in a process other than `root_pid`.
pub fn speaker(root_pid: u32) -> String {
    let pid = std::process::id();
    if pid != root_pid {
        return format!("pid {pid}");
    }
    let me = std::thread::current();
    match me.name() {
        Some(name) => name.to_owned(),
        None => format!("{:?}", me.id()),
    }
}

/// A span in progress: it is recorded, from its start to now, when this guard is dropped (or
/// [`SpanGuard::end`] is called). Made by [`Cx::span`].
#[derive(Debug)]
#[must_use = "a span ends when this guard is dropped"]
pub struct SpanGuard {
    cx: Cx,
    at: Duration,
    cpu: Option<u32>,
    activity: Activity,
    text: String,
}

impl SpanGuard {
    /// End the span now.
    pub fn end(self) {}
}

impl Drop for SpanGuard {
    fn drop(&mut self) {
        let until = self.cx.inner.start.elapsed();
        let r = Record {
            at: self.at,
            speaker: self.cx.who(),
            text: std::mem::take(&mut self.text),
            kind: Kind::Span {
                until,
                activity: self.activity,
            },
            cpu: self.cpu,
            pid: std::process::id(),
        };
        self.cx.keep(r);
    }
}

impl Cx {
    /// A context that prints each narration line to stdout as it is said.
    pub fn new(scale: f64) -> Cx {
        Cx::build(scale, true)
    }

    /// A context for a process started afresh by a lesson (a spawned child, which inherits
    /// no `Cx`): its lines show `pid N` as speaker and are timed from `parent_start` (the
    /// parent's [`Cx::started_at`]), so they fall on the parent's timeline; `echo` is the
    /// parent's [`Cx::echoes`]. Its records do not reach the parent: prefer [`Handoff::cx`].
    pub fn child(scale: f64, parent_start: SystemTime, echo: bool) -> Cx {
        Handoff {
            scale,
            start_unix_nanos: parent_start
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            echo,
            sink: None,
            speaker: None,
        }
        .cx()
    }

    /// What a process started afresh needs to narrate on this lesson's timeline (see
    /// [`Handoff::cx`]).
    pub fn handoff(&self) -> Handoff {
        Handoff {
            scale: self.inner.scale,
            start_unix_nanos: self
                .started_at()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            echo: self.inner.echo,
            sink: self
                .inner
                .sink
                .as_ref()
                .and_then(|s| s.path.as_ref())
                .map(|p| p.display().to_string()),
            speaker: None,
        }
    }

    /// Whether this context prints (false for [`Cx::quiet`]); hand it to [`Cx::child`].
    pub fn echoes(&self) -> bool {
        self.inner.echo
    }

    /// When this lesson started, as wall-clock time (to hand to [`Cx::child`]).
    pub fn started_at(&self) -> SystemTime {
        SystemTime::now() - self.inner.start.elapsed()
    }

    /// A context that only records (for tests): nothing is printed.
    pub fn quiet(scale: f64) -> Cx {
        Cx::build(scale, false)
    }

    fn build(scale: f64, echo: bool) -> Cx {
        Cx {
            inner: Arc::new(Inner {
                start: Instant::now(),
                scale,
                count: None,
                echo,
                root_pid: std::process::id(),
                exe: None,
                records: Mutex::new(Vec::new()),
                sink: Sink::create(),
            }),
            name: None,
        }
    }

    fn rebuilt(&self, exe: Option<PathBuf>, count: Option<usize>) -> Cx {
        let inner = Inner {
            start: self.inner.start,
            scale: self.inner.scale,
            count,
            echo: self.inner.echo,
            root_pid: self.inner.root_pid,
            exe,
            records: Mutex::new(self.lock().clone()),
            sink: self.inner.sink.clone(),
        };
        Cx {
            inner: Arc::new(inner),
            name: self.name.clone(),
        }
    }

    /// The same context, able to start helper processes of the chapter binary at `exe`
    /// (see [`Cx::helper`]). The chapter binary sets this to itself; tests set it to
    /// `env!("CARGO_BIN_EXE_<chapter>")`.
    pub fn with_exe(self, exe: impl Into<PathBuf>) -> Cx {
        self.rebuilt(Some(exe.into()), self.inner.count)
    }

    /// The same context with the size `--count N` asked for (see [`Cx::count_or`]).
    pub fn with_count(self, count: Option<usize>) -> Cx {
        self.rebuilt(self.inner.exe.clone(), count)
    }

    /// A handle on the same context through which `name` speaks, whatever thread or process
    /// uses it: a greenlet, a hub task, a named child process.
    pub fn as_speaker(&self, name: impl Into<String>) -> Cx {
        Cx {
            inner: Arc::clone(&self.inner),
            name: Some(Arc::from(name.into())),
        }
    }

    /// How many of something a lesson should make (threads, processes): `--count N` if it was
    /// given, else the lesson's `default` (chosen to keep the chapter fast).
    pub fn count_or(&self, default: usize) -> usize {
        self.inner.count.unwrap_or(default)
    }

    /// The chapter binary, if this context knows it (see [`Cx::with_exe`]).
    pub fn exe(&self) -> Option<&std::path::Path> {
        self.inner.exe.as_deref()
    }

    /// The time scale: 1.0 is the Python lesson's own durations.
    pub fn scale(&self) -> f64 {
        self.inner.scale
    }

    /// A duration from the Python lesson, scaled: `cx.scaled(3.0)` is what `time.sleep(3)` becomes.
    pub fn scaled(&self, seed_seconds: f64) -> Duration {
        Duration::from_secs_f64((seed_seconds * self.inner.scale).max(0.0))
    }

    /// The bound on a wait that should end far sooner (a reply, a join, an event the lesson
    /// itself sets): the seed's minute, scaled, plus 10 s of slack for a loaded machine. A
    /// lesson that reaches it has a bug, and says so instead of hanging.
    pub fn long_wait(&self) -> Duration {
        self.scaled(60.0) + Duration::from_secs(10)
    }

    /// Sleep as long as the Python lesson sleeps, scaled. Replaces `time.sleep(seconds)`.
    /// The timeline shows it as a sleeping span.
    pub fn sleep(&self, seed_seconds: f64) {
        let _span = self.span(Activity::Sleep, "sleep");
        std::thread::sleep(self.scaled(seed_seconds));
    }

    /// Time since this lesson started.
    pub fn elapsed(&self) -> Duration {
        self.inner.start.elapsed()
    }

    /// Mark what the speaker does from now until the returned guard is dropped: computing,
    /// holding a lock, waiting for one. The timeline draws it as a bar.
    pub fn span(&self, activity: Activity, text: impl Display) -> SpanGuard {
        SpanGuard {
            cx: self.clone(),
            at: self.inner.start.elapsed(),
            cpu: current_cpu(),
            activity,
            text: text.to_string(),
        }
    }

    fn who(&self) -> String {
        match &self.name {
            Some(n) => n.to_string(),
            None => speaker(self.inner.root_pid),
        }
    }

    fn in_root(&self) -> bool {
        std::process::id() == self.inner.root_pid
    }

    /// Keep a finished span: in memory in the root process, in the sink elsewhere.
    fn keep(&self, r: Record) {
        if self.in_root() {
            self.lock().push(r);
        } else if let Some(sink) = &self.inner.sink {
            sink.append(&r);
        }
    }

    fn print(&self, at: Duration, speaker: &str, text: &str) {
        // A closed stdout (`| head`) must not kill the lesson: ignore write errors.
        let mut out = std::io::stdout().lock();
        for line in text.lines() {
            let _ = writeln!(out, "{:>8.3}s  {:<10} {}", at.as_secs_f64(), speaker, line);
        }
        let _ = out.flush();
    }

    /// Say one line of narration: printed (unless quiet) with the elapsed time and the speaker,
    /// and recorded. Replaces the seed's `print(..., time.ctime())`.
    pub fn say(&self, text: impl Display) {
        let text = text.to_string();
        let speaker = self.who();
        let cpu = current_cpu();
        let pid = std::process::id();
        if !self.in_root() {
            // In another process (forked or started afresh): print, and append to the sink.
            // Never the records' mutex: another parent thread may have held it at the fork,
            // which would block this process forever.
            // Recorded before it is printed: a parent that reads this line on our stdout and
            // kills us at once still finds it in the records.
            let at = self.inner.start.elapsed();
            let record = Record {
                at,
                speaker,
                text,
                kind: Kind::Said,
                cpu,
                pid,
            };
            if let Some(sink) = &self.inner.sink {
                sink.append(&record);
            }
            if self.inner.echo {
                self.print(at, &record.speaker, &record.text);
            }
            return;
        }
        let mut records = self.lock();
        let at = self.inner.start.elapsed();
        if self.inner.echo {
            // Printed under the records lock, so the printed order is the recorded order.
            self.print(at, &speaker, &text);
        }
        records.push(Record {
            at,
            speaker,
            text,
            kind: Kind::Said,
            cpu,
            pid,
        });
    }

    /// An explanation for the reader: printed (unless quiet) indented and without a time stamp,
    /// not recorded. Use [`Cx::say`] for anything that happened.
    pub fn explain(&self, text: impl Display) {
        if self.inner.echo {
            let _guard = self.in_root().then(|| self.lock());
            let mut out = std::io::stdout().lock();
            for line in text.to_string().lines() {
                let _ = writeln!(out, "           | {line}");
            }
            let _ = out.flush();
        }
    }

    /// Every line said so far, by every process of the lesson, in the order said: this
    /// process's lines and its children's (from the sink), merged by time. Spans are left out
    /// (see [`Cx::timeline`]).
    pub fn records(&self) -> Vec<Record> {
        let mut all = self.timeline();
        all.retain(|r| r.kind == Kind::Said);
        all
    }

    /// Everything recorded so far, lines and spans, by every process of the lesson, ordered by
    /// when each began (a span is recorded when it ends, so this is not the order recorded).
    pub fn timeline(&self) -> Vec<Record> {
        let mut all = self.lock().clone();
        if self.in_root()
            && let Some(sink) = &self.inner.sink
        {
            all.extend(sink.read());
        }
        // Stable: records of one process keep their order when their times tie.
        all.sort_by_key(|r| r.at);
        all
    }

    /// The index in [`Cx::records`] of the first line whose text contains `needle` (and, if
    /// given, whose speaker is `speaker`). Tests use it to assert orderings.
    pub fn position(&self, speaker: Option<&str>, needle: &str) -> Option<usize> {
        self.records()
            .iter()
            .position(|r| r.text.contains(needle) && speaker.is_none_or(|s| r.speaker == s))
    }

    /// A command that runs helper `name` of this chapter's binary in a child process, with the
    /// same time scale; its lines join this lesson's records (through [`HANDOFF_ENV`]). Fails
    /// if this context does not know the chapter binary.
    pub fn helper(&self, name: &str) -> anyhow::Result<Command> {
        let Some(exe) = &self.inner.exe else {
            bail!("this context cannot start helper {name:?}: it was not given the chapter binary")
        };
        std::fs::metadata(exe).with_context(|| format!("chapter binary {}", exe.display()))?;
        let mut cmd = Command::new(exe);
        cmd.arg(crate::HELPER_FLAG)
            .arg(name)
            .arg("--scale")
            .arg(self.inner.scale.to_string())
            .env(HANDOFF_ENV, self.handoff().encode());
        Ok(cmd)
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Record>> {
        // A lesson thread that panicked while saying something leaves whole records behind
        // (the push is the last step), so the poison carries no broken state.
        self.inner.records.lock().unwrap_or_else(|e| e.into_inner())
    }
}
