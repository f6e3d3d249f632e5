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

use std::fmt::Display;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

/// One narration line or one span of activity, as kept for `--timeline` and for tests.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Time since the lesson started (a span's start).
    pub at: Duration,
    /// Who: the thread's name, `pid N` in a child process (see [`speaker`]), or the name given
    /// with [`Cx::as_speaker`] (a greenlet, a hub task, a named child process).
    pub speaker: String,
    /// What was said, or what the span was.
    pub text: String,
    /// A line said, or a span of activity.
    pub kind: Kind,
    /// The CPU that ran the speaker when the line was said (or the span began), if known.
    pub cpu: Option<u32>,
    /// The process that recorded it.
    pub pid: u32,
}

impl Record {
    /// A line said by `speaker` at `at` (process and CPU unknown): for tests and examples.
    pub fn said(at: Duration, speaker: impl Into<String>, text: impl Into<String>) -> Record {
        Record {
            at,
            speaker: speaker.into(),
            text: text.into(),
            kind: Kind::Said,
            cpu: None,
            pid: 0,
        }
    }

    /// A span of `activity` from `at` to `until`: for tests and examples.
    pub fn span(
        at: Duration,
        until: Duration,
        speaker: impl Into<String>,
        activity: Activity,
        text: impl Into<String>,
    ) -> Record {
        Record {
            kind: Kind::Span { until, activity },
            ..Record::said(at, speaker, text)
        }
    }

    /// When the record ends: a span's end, or the moment a line was said.
    pub fn end(&self) -> Duration {
        match self.kind {
            Kind::Said => self.at,
            Kind::Span { until, .. } => until,
        }
    }
}

/// What a [`Record`] is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// A narration line ([`Cx::say`]).
    Said,
    /// An activity over time ([`Cx::span`]), ending at `until`.
    Span {
        /// When it ended (time since the lesson started).
        until: Duration,
        /// What kind of activity.
        activity: Activity,
    },
}

/// What a speaker was doing during a span: the timeline draws work and waiting differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// Computing (on a CPU).
    Work,
    /// Holding something others may want: a lock, a permit of a semaphore.
    Hold,
    /// Sleeping (`time.sleep`): off the CPU, holding nothing it did not hold before.
    Sleep,
    /// Blocked waiting for something: a lock, a queue, an event, a child, a reply.
    Wait,
}

impl Activity {
    /// Every activity, in legend order.
    pub const ALL: [Activity; 4] = [
        Activity::Work,
        Activity::Hold,
        Activity::Sleep,
        Activity::Wait,
    ];

    /// The character the text timeline fills a span with.
    pub fn glyph(self) -> char {
        match self {
            Activity::Work => '=',
            Activity::Hold => '#',
            Activity::Sleep => '~',
            Activity::Wait => '.',
        }
    }

    /// Its name in the legend.
    pub fn name(self) -> &'static str {
        match self {
            Activity::Work => "working",
            Activity::Hold => "holding",
            Activity::Sleep => "sleeping",
            Activity::Wait => "waiting",
        }
    }

    fn code(self) -> char {
        match self {
            Activity::Work => 'W',
            Activity::Hold => 'H',
            Activity::Sleep => 'S',
            Activity::Wait => 'B',
        }
    }

    fn from_code(c: &str) -> Option<Activity> {
        Activity::ALL.into_iter().find(|a| c.starts_with(a.code()))
    }
}

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

/// The file other processes append their records to (see the module docs).
#[derive(Debug)]
struct Sink {
    file: File,
    /// Where a process started afresh finds it: `/proc/<root pid>/fd/<n>`.
    path: Option<PathBuf>,
}

impl Sink {
    /// A new anonymous sink for records of the processes of a lesson started in this process.
    /// `None` where memfd is unavailable: the children's records are then not kept.
    fn create() -> Option<Arc<Sink>> {
        use std::os::fd::AsRawFd;
        let fd =
            nix::sys::memfd::memfd_create("lesson-records", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
                .ok()?;
        let file = File::from(fd);
        let path = PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            file.as_raw_fd()
        ));
        // Forked children share this open file description: O_APPEND makes each record's single
        // write land whole at the end, whoever writes.
        let flags = nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_APPEND;
        nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_SETFL(flags)).ok()?;
        Some(Arc::new(Sink {
            file,
            path: Some(path),
        }))
    }

    /// The sink of a root process, opened again by path from a process started afresh.
    fn open(path: &std::path::Path) -> Option<Arc<Sink>> {
        let file = std::fs::OpenOptions::new().append(true).open(path).ok()?;
        Some(Arc::new(Sink {
            file,
            path: Some(path.to_owned()),
        }))
    }

    fn append(&self, r: &Record) {
        let line = encode(r);
        // One write per record: with O_APPEND it lands whole. A full disk or a gone parent
        // loses the record, never the lesson.
        let _ = (&self.file).write_all(line.as_bytes());
    }

    fn read(&self) -> Vec<Record> {
        let mut bytes = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match self.file.read_at(&mut buf, bytes.len() as u64) {
                Ok(0) | Err(_) => break,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(decode)
            .collect()
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// One record as one line: at, pid, cpu, kind, until, speaker, text (tab-separated).
fn encode(r: &Record) -> String {
    let (kind, until) = match r.kind {
        Kind::Said => ("-".to_owned(), 0),
        Kind::Span { until, activity } => (activity.code().to_string(), until.as_nanos()),
    };
    let cpu = r.cpu.map_or("-".to_owned(), |c| c.to_string());
    format!(
        "{}\t{}\t{cpu}\t{kind}\t{until}\t{}\t{}\n",
        r.at.as_nanos(),
        r.pid,
        escape(&r.speaker),
        escape(&r.text)
    )
}

fn decode(line: &str) -> Option<Record> {
    let mut f = line.splitn(7, '\t');
    let nanos = |s: &str| s.parse::<u64>().ok().map(Duration::from_nanos);
    let at = nanos(f.next()?)?;
    let pid = f.next()?.parse().ok()?;
    let cpu = f.next()?.parse().ok();
    let kind = f.next()?;
    let until = nanos(f.next()?)?;
    let speaker = unescape(f.next()?);
    let text = unescape(f.next()?);
    let kind = match kind {
        "-" => Kind::Said,
        code => Kind::Span {
            until,
            activity: Activity::from_code(code)?,
        },
    };
    Some(Record {
        at,
        speaker,
        text,
        kind,
        cpu,
        pid,
    })
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

/// What a context hands to a process started afresh (spawn, a helper), so that its lines fall on
/// the parent's timeline and its records reach the parent's ([`Cx::handoff`], [`Handoff::cx`]).
/// Plain data: it travels as postcard bytes to a spawned child, or as text ([`Handoff::encode`])
/// in the environment of a helper.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Handoff {
    /// The time scale.
    pub scale: f64,
    /// When the parent's lesson started, in nanoseconds since the Unix epoch.
    pub start_unix_nanos: u64,
    /// Whether the child prints its lines.
    pub echo: bool,
    /// Where the parent's records sink is (`/proc/<pid>/fd/<n>`), if it has one.
    pub sink: Option<String>,
    /// The child's speaker name, if it has one (else `pid N`).
    pub speaker: Option<String>,
}

/// The environment variable a helper process finds its [`Handoff`] in.
pub const HANDOFF_ENV: &str = "LESSON_HANDOFF";

impl Handoff {
    /// The context the child narrates through: timed from the parent's start, appending its
    /// records to the parent's sink.
    pub fn cx(&self) -> Cx {
        let start = UNIX_EPOCH + Duration::from_nanos(self.start_unix_nanos);
        let since = SystemTime::now().duration_since(start).unwrap_or_default();
        let now = Instant::now();
        let sink = self
            .sink
            .as_deref()
            .and_then(|p| Sink::open(std::path::Path::new(p)));
        Cx {
            inner: Arc::new(Inner {
                start: now.checked_sub(since).unwrap_or(now),
                scale: self.scale,
                count: None,
                echo: self.echo,
                // No process has pid 0: every line of this context goes to the sink.
                root_pid: 0,
                exe: None,
                records: Mutex::new(Vec::new()),
                sink,
            }),
            name: self.speaker.as_deref().map(Arc::from),
        }
    }

    /// The same handoff, with the child named `speaker` on the timeline.
    pub fn named(mut self, speaker: impl Into<String>) -> Handoff {
        self.speaker = Some(speaker.into());
        self
    }

    /// As one line of text (for an environment variable).
    pub fn encode(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}",
            self.scale,
            self.start_unix_nanos,
            u8::from(self.echo),
            escape(self.sink.as_deref().unwrap_or("")),
            escape(self.speaker.as_deref().unwrap_or(""))
        )
    }

    /// Read [`Handoff::encode`]'s text back.
    ///
    /// # Errors
    /// If the text is not a handoff.
    pub fn decode(text: &str) -> anyhow::Result<Handoff> {
        let f: Vec<&str> = text.split('\t').collect();
        let [scale, start, echo, sink, speaker] = f.as_slice() else {
            bail!("a lesson handoff has 5 fields, got {text:?}")
        };
        let some = |s: &str| (!s.is_empty()).then(|| unescape(s));
        Ok(Handoff {
            scale: scale.parse().context("handoff scale")?,
            start_unix_nanos: start.parse().context("handoff start")?,
            echo: *echo == "1",
            sink: some(sink),
            speaker: some(speaker),
        })
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
            let at = self.inner.start.elapsed();
            if self.inner.echo {
                self.print(at, &speaker, &text);
            }
            if let Some(sink) = &self.inner.sink {
                sink.append(&Record {
                    at,
                    speaker,
                    text,
                    kind: Kind::Said,
                    cpu,
                    pid,
                });
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
