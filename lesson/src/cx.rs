//! The lesson context: narration, records and the time scale.

use std::fmt::Display;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};

/// One narration line, as kept for `--timeline` and for tests.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Time since the lesson started.
    pub at: Duration,
    /// Who printed it: the thread's name, or `pid N` in a child process (see [`speaker`]).
    pub speaker: String,
    /// What was said.
    pub text: String,
}

/// What a lesson gets: the clock, the scale, and the narration.
///
/// Cheap to clone (an `Arc`), `Send` and `Sync`: hand a clone to every thread that narrates.
#[derive(Clone, Debug)]
pub struct Cx {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    start: Instant,
    scale: f64,
    count: Option<usize>,
    echo: bool,
    root_pid: u32,
    exe: Option<PathBuf>,
    records: Mutex<Vec<Record>>,
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

impl Cx {
    /// A context that prints each narration line to stdout as it is said.
    pub fn new(scale: f64) -> Cx {
        Cx::build(scale, true)
    }

    /// A context for a process started afresh by a lesson (a spawned child, which inherits
    /// no `Cx`): its lines show `pid N` as speaker and are timed from `parent_start` (the
    /// parent's [`Cx::started_at`]), so they fall on the parent's timeline; `echo` is the
    /// parent's [`Cx::echoes`]. Nothing is recorded: records live in the parent.
    pub fn child(scale: f64, parent_start: SystemTime, echo: bool) -> Cx {
        let since = SystemTime::now()
            .duration_since(parent_start)
            .unwrap_or_default();
        let now = Instant::now();
        Cx {
            inner: Arc::new(Inner {
                start: now.checked_sub(since).unwrap_or(now),
                scale,
                count: None,
                echo,
                // No process has pid 0: every line is a child's line.
                root_pid: 0,
                exe: None,
                records: Mutex::new(Vec::new()),
            }),
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
            }),
        }
    }

    /// The same context, able to start helper processes of the chapter binary at `exe`
    /// (see [`Cx::helper`]). The chapter binary sets this to itself; tests set it to
    /// `env!("CARGO_BIN_EXE_<chapter>")`.
    pub fn with_exe(self, exe: impl Into<PathBuf>) -> Cx {
        let inner = Inner {
            start: self.inner.start,
            scale: self.inner.scale,
            count: self.inner.count,
            echo: self.inner.echo,
            root_pid: self.inner.root_pid,
            exe: Some(exe.into()),
            records: Mutex::new(self.records()),
        };
        Cx {
            inner: Arc::new(inner),
        }
    }

    /// The same context with the size `--count N` asked for (see [`Cx::count_or`]).
    pub fn with_count(self, count: Option<usize>) -> Cx {
        let inner = Inner {
            start: self.inner.start,
            scale: self.inner.scale,
            count,
            echo: self.inner.echo,
            root_pid: self.inner.root_pid,
            exe: self.inner.exe.clone(),
            records: Mutex::new(self.records()),
        };
        Cx {
            inner: Arc::new(inner),
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
    pub fn sleep(&self, seed_seconds: f64) {
        std::thread::sleep(self.scaled(seed_seconds));
    }

    /// Time since this lesson started.
    pub fn elapsed(&self) -> Duration {
        self.inner.start.elapsed()
    }

    /// Say one line of narration: printed (unless quiet) with the elapsed time and the speaker,
    /// and recorded. Replaces the seed's `print(..., time.ctime())`.
    pub fn say(&self, text: impl Display) {
        let text = text.to_string();
        let speaker = speaker(self.inner.root_pid);
        if std::process::id() != self.inner.root_pid {
            // In a forked child: print only. The records stay in the parent's memory anyway,
            // and their mutex may have been held by another parent thread at the fork, which
            // would block this process forever.
            if self.inner.echo {
                let at = self.inner.start.elapsed();
                let mut out = std::io::stdout().lock();
                for line in text.lines() {
                    let _ = writeln!(out, "{:>8.3}s  {:<10} {}", at.as_secs_f64(), speaker, line);
                }
                let _ = out.flush();
            }
            return;
        }
        let mut records = self.lock();
        let at = self.inner.start.elapsed();
        if self.inner.echo {
            // Printed under the records lock, so the printed order is the recorded order.
            // A closed stdout (`| head`) must not kill the lesson: ignore write errors.
            let mut out = std::io::stdout().lock();
            for line in text.lines() {
                let _ = writeln!(out, "{:>8.3}s  {:<10} {}", at.as_secs_f64(), speaker, line);
            }
            let _ = out.flush();
        }
        records.push(Record { at, speaker, text });
    }

    /// An explanation for the reader: printed (unless quiet) indented and without a time stamp,
    /// not recorded. Use [`Cx::say`] for anything that happened.
    pub fn explain(&self, text: impl Display) {
        if self.inner.echo {
            let _guard = self.lock();
            let mut out = std::io::stdout().lock();
            for line in text.to_string().lines() {
                let _ = writeln!(out, "           | {line}");
            }
            let _ = out.flush();
        }
    }

    /// A copy of everything said so far, in the order it was said.
    pub fn records(&self) -> Vec<Record> {
        self.lock().clone()
    }

    /// The index of the first record whose text contains `needle` (and, if given, whose speaker
    /// is `speaker`). Tests use it to assert orderings.
    pub fn position(&self, speaker: Option<&str>, needle: &str) -> Option<usize> {
        self.lock()
            .iter()
            .position(|r| r.text.contains(needle) && speaker.is_none_or(|s| r.speaker == s))
    }

    /// A command that runs helper `name` of this chapter's binary in a child process, with the
    /// same time scale. Fails if this context does not know the chapter binary.
    pub fn helper(&self, name: &str) -> anyhow::Result<Command> {
        let Some(exe) = &self.inner.exe else {
            bail!("this context cannot start helper {name:?}: it was not given the chapter binary")
        };
        std::fs::metadata(exe).with_context(|| format!("chapter binary {}", exe.display()))?;
        let mut cmd = Command::new(exe);
        cmd.arg("--helper")
            .arg(name)
            .arg("--scale")
            .arg(self.inner.scale.to_string());
        Ok(cmd)
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Record>> {
        // A lesson thread that panicked while saying something leaves whole records behind
        // (the push is the last step), so the poison carries no broken state.
        self.inner.records.lock().unwrap_or_else(|e| e.into_inner())
    }
}
