//! Reading what a checked test left: its panics, its process group's leftovers, its output's
//! tail; and collecting a child's pipes on threads of their own (used by `check`).

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;

/// One `thread 'NAME' (ID) panicked at FILE:LINE:COL:` report and its message.
#[derive(Debug)]
pub(super) struct Panic {
    pub(super) thread: String,
    pub(super) location: String,
    pub(super) message: String,
}

/// The panics reported on a test's stderr, in order.
pub(super) fn panics(stderr: &str) -> Vec<Panic> {
    let mut out: Vec<Panic> = Vec::new();
    let mut current: Option<Panic> = None;
    for line in stderr.lines() {
        let header = line
            .strip_prefix("thread '")
            .and_then(|rest| rest.split_once('\''))
            .and_then(|(thread, rest)| {
                let at = rest.find("panicked at ")?;
                let location = rest[at + "panicked at ".len()..].trim_end_matches(':');
                Some((thread.to_owned(), location.to_owned()))
            });
        if let Some((thread, location)) = header {
            out.extend(current.take());
            current = Some(Panic {
                thread,
                location,
                message: String::new(),
            });
            continue;
        }
        if line.starts_with("note: run with `RUST_BACKTRACE") {
            out.extend(current.take());
            continue;
        }
        if let Some(p) = current.as_mut() {
            if !p.message.is_empty() {
                p.message.push('\n');
            }
            p.message.push_str(line);
        }
    }
    out.extend(current);
    out
}

/// The processes still in process group `group` (zombies aside: init reaps those), as
/// `pid N (name)`. Waits up to a second for processes on their way out to go.
pub(super) fn leftovers(group: i32) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let found = group_members(group);
        if found.is_empty() || Instant::now() >= deadline {
            return found;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

pub(super) fn group_members(group: i32) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = &stat[open + 1..close];
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // After the name: state, ppid, pgrp.
        let pgrp: Option<i32> = fields.get(2).and_then(|f| f.parse().ok());
        if pgrp == Some(group) && fields.first() != Some(&"Z") {
            out.push(format!("process {pid} ({name})"));
        }
    }
    out
}

pub(super) fn wait_until(
    child: &mut Child,
    deadline: Instant,
) -> anyhow::Result<Option<ExitStatus>> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait().context("waiting for a test")? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

pub(super) fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    }
}

/// The last `n` lines of `text`.
pub(super) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// What a test printed last, without libtest's own lines.
pub(super) fn printed_tail(stdout: &str, stderr: &str) -> String {
    let libtest = |l: &str| {
        l.starts_with("running ")
            || l.starts_with("test result:")
            || l.starts_with("note: run with")
            || (l.starts_with("test ") && l.trim_end().ends_with("..."))
    };
    let keep = |l: &&str| !l.trim().is_empty() && !libtest(l);
    let out: Vec<&str> = stdout.lines().filter(keep).collect();
    let err: Vec<&str> = stderr.lines().filter(keep).collect();
    let mut text = out[out.len().saturating_sub(8)..].join("\n");
    if !err.is_empty() {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&err[err.len().saturating_sub(8)..].join("\n"));
    }
    text
}

/// How much of a test's output is kept (its end): enough for any panic message.
const KEEP: usize = 256 * 1024;

/// A pipe read to its end on a thread of its own, into a buffer that can be taken at any time
/// (a process that escaped the kill may keep the pipe open: then we take what came).
pub(super) struct Collected {
    buf: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

pub(super) fn collect(pipe: Option<impl Read + Send + 'static>) -> Collected {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let (tx, done) = mpsc::channel();
    let sink = Arc::clone(&buf);
    thread::spawn(move || {
        if let Some(mut pipe) = pipe {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                let mut buf = sink.lock().unwrap_or_else(|e| e.into_inner());
                buf.extend_from_slice(&chunk[..n]);
                // A test that prints without end keeps only its last words.
                if buf.len() > 2 * KEEP {
                    let cut = buf.len() - KEEP;
                    buf.drain(..cut);
                }
            }
        }
        let _ = tx.send(());
    });
    Collected { buf, done }
}

impl Collected {
    pub(super) fn finish(self, limit: Duration) -> String {
        let _ = self.done.recv_timeout(limit);
        let bytes = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_are_split_by_thread() {
        let stderr = "Process Process-2 (pid 7): an empty word\n\
            thread 'consumer' (12) panicked at queues/c.rs:3:9:\n\
            called `Result::unwrap()` on an `Err` value: ShutDown\n\
            thread 'tests::adds' (11) panicked at threads/j.rs:55:9:\n\
            assertion `left == right` failed\n  left: 1\n right: 2\n\
            note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        let p = panics(stderr);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].thread, "consumer");
        assert_eq!(p[1].thread, "tests::adds");
        assert_eq!(p[1].location, "threads/j.rs:55:9");
        assert_eq!(
            p[1].message,
            "assertion `left == right` failed\n  left: 1\n right: 2"
        );
    }

    #[test]
    fn the_tail_skips_libtest_lines() {
        let t = printed_tail(
            "running 1 test\ntest x ... \na\nb\n",
            "note: run with x\nerr\n",
        );
        assert_eq!(t, "a\nb\nerr");
    }
}
