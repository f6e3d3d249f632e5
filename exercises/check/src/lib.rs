//! What every exercise's tests use: [`nothing_left`] runs a piece of the learner's program and
//! then checks that it left no thread and no child process behind.
//!
//! `cargo xtask exercise` runs each test alone in its own process (`--exact NAME
//! --test-threads=1`), so the threads and children counted here are the test's own. A failure
//! panics with a message that starts with [`LEFT_BEHIND`]; xtask reports it as "it leaves a
//! thread (or a child process) behind".
//!
//! Everything is read from `/proc` (Linux): this process's threads from `/proc/self/task`, its
//! children by scanning `/proc/*/stat` for a parent pid equal to ours. A zombie (a child that
//! has exited but was never waited for) is still a child, and is reported as one.
#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::fs;
use std::time::{Duration, Instant};

/// How every leftover report starts, so the runner can tell it from an ordinary failed assert.
pub const LEFT_BEHIND: &str = "left behind:";

/// How long threads that are on their way out get to disappear after the checked code
/// returns. A joined thread is gone within microseconds; a thread still blocked is there after
/// any wait, so this bound only has to be generous, never tight.
pub const THREAD_GRACE: Duration = Duration::from_secs(2);

/// A thread of this process, or a child process: its id, its name (`comm`, at most 15 bytes)
/// and its state letter from `/proc` (`R` running, `S` sleeping, `Z` zombie, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// The thread id or process id.
    pub id: i32,
    /// The kernel's name for it.
    pub name: String,
    /// Its state letter.
    pub state: char,
}

impl Task {
    /// The state in words.
    pub fn state_words(&self) -> &'static str {
        match self.state {
            'R' => "running",
            'S' => "sleeping: blocked waiting for something",
            'D' => "in an uninterruptible wait",
            'T' | 't' => "stopped",
            'Z' => "a zombie: it has exited but nobody waited for it",
            _ => "in an unusual state",
        }
    }
}

/// Split a `/proc/.../stat` line into the name and the fields after it (the name is in
/// parentheses and may itself contain spaces or parentheses, so cut at the last `)`).
fn parse_stat(stat: &str) -> Option<(String, Vec<&str>)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    let rest = stat.get(close + 1..)?.split_whitespace().collect();
    Some((name, rest))
}

/// This process's threads (the test's own thread and libtest's included).
pub fn threads() -> Vec<Task> {
    let Ok(dir) = fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(id) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        // A thread that ended between the listing and this read is simply not there.
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((name, rest)) = parse_stat(&stat) {
            let state = rest.first().and_then(|s| s.chars().next()).unwrap_or('?');
            out.push(Task { id, name, state });
        }
    }
    out.sort_by_key(|t| t.id);
    out
}

/// This process's child processes, zombies included, found by their parent pid.
pub fn children() -> Vec<Task> {
    let me = std::process::id() as i32;
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(id) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((name, rest)) = parse_stat(&stat) else {
            continue;
        };
        // After the name: state, ppid, pgrp, ...
        let ppid: Option<i32> = rest.get(1).and_then(|p| p.parse().ok());
        if ppid == Some(me) {
            let state = rest.first().and_then(|s| s.chars().next()).unwrap_or('?');
            out.push(Task { id, name, state });
        }
    }
    out.sort_by_key(|t| t.id);
    out
}

fn ids(tasks: &[Task]) -> BTreeSet<i32> {
    tasks.iter().map(|t| t.id).collect()
}

/// Run `f`, then check that it left nothing behind: every thread it started has ended, and
/// every child process it started has been waited for. Returns what `f` returned.
///
/// # Panics
/// If `f` panics (the panic goes on unchanged), or with a message starting with
/// [`LEFT_BEHIND`] naming each thread still alive after [`THREAD_GRACE`] and each child
/// process (running or zombie) that `f` started and did not reap.
pub fn nothing_left<T>(f: impl FnOnce() -> T) -> T {
    let threads_before = ids(&threads());
    let children_before = ids(&children());
    let value = f();

    let mut problems = Vec::new();
    for child in children() {
        if !children_before.contains(&child.id) {
            problems.push(format!(
                "child process {} ({}), {}: wait for every child you start (join / wait)",
                child.id,
                child.name,
                child.state_words()
            ));
        }
    }
    let deadline = Instant::now() + THREAD_GRACE;
    let extra = loop {
        let extra: Vec<Task> = threads()
            .into_iter()
            .filter(|t| !threads_before.contains(&t.id))
            .collect();
        if extra.is_empty() || Instant::now() >= deadline {
            break extra;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    for t in extra {
        problems.push(format!(
            "thread '{}' ({}), still there {} s after the code returned: \
             make it finish, then join it",
            t.name,
            t.state_words(),
            THREAD_GRACE.as_secs()
        ));
    }
    if !problems.is_empty() {
        panic!("{LEFT_BEHIND} {}", problems.join("; "));
    }
    value
}

// `nothing_left` itself is tested end to end by xtask's tests (`xtask/tests/exercises.rs`),
// each case alone in its own process, as the runner uses it: threads and children are
// process-wide, so parallel unit tests here would see each other's.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_names_may_hold_parentheses() {
        let (name, rest) = parse_stat("42 (a (b) c) S 1 42 42").unwrap();
        assert_eq!(name, "a (b) c");
        assert_eq!(rest, ["S", "1", "42", "42"]);
    }

    #[test]
    fn an_unreaped_child_is_reported_as_a_zombie() {
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("run true");
        let id = child.id() as i32;
        // Wait until it has exited without reaping it: its state becomes Z.
        let deadline = Instant::now() + Duration::from_secs(10);
        while children().iter().find(|c| c.id == id).map(|c| c.state) != Some('Z') {
            assert!(Instant::now() < deadline, "the child never exited");
            std::thread::sleep(Duration::from_millis(1));
        }
        child.wait().expect("reap");
        assert!(children().iter().all(|c| c.id != id));
    }
}
