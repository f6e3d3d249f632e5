//! Running a test's body in a child process: this test binary run again for that one test,
//! with [`ROLE`] naming it. A crash (SIGSEGV, SIGABRT) or a hang in the body then fails that
//! test, with the child's output, instead of killing the whole suite.

#![allow(dead_code)] // each test binary uses part of it

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};
use std::time::Duration;

/// The environment variable that tells a run of the test binary it is the child for a test.
pub const ROLE: &str = "COROUTINES_TEST_CHILD";

/// Whether this process is the child running test `name`.
pub fn is_child(name: &str) -> bool {
    std::env::var(ROLE).is_ok_and(|v| v == name)
}

/// Raises every child's deadline to this many seconds (`memcheck.sh` sets it: under valgrind
/// a child runs some thirty times slower).
pub const DEADLINE: &str = "COROUTINES_TEST_CHILD_DEADLINE";

/// Run test `name` of this binary in a child process (stdin closed), for at most `limit` (or
/// [`DEADLINE`] seconds, if longer); a child still running then is killed and this panics with
/// what it printed.
pub fn run_child(name: &str, limit: Duration) -> Output {
    let limit = std::env::var(DEADLINE)
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(limit, |secs| limit.max(Duration::from_secs(secs)));
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = Command::new(exe);
    cmd.args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, name);
    match lesson::output_within(&mut cmd, limit) {
        Ok(out) => out,
        Err(e) => panic!("the child for {name}: {e:#}"),
    }
}

/// The child's output, for a failure message.
pub fn describe(out: &Output) -> String {
    let how = match (out.status.code(), out.status.signal()) {
        (Some(code), _) => format!("exited with {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        _ => format!("{}", out.status),
    };
    format!(
        "the child {how}\n--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// In the child for test `name`: run `body` (`None`). In the parent: run the test in a child
/// and check that it passed; its output, for further checks.
pub fn isolated(name: &str, body: impl FnOnce()) -> Option<Output> {
    if is_child(name) {
        body();
        return None;
    }
    let out = run_child(name, Duration::from_secs(60));
    assert!(out.status.success(), "{}", describe(&out));
    Some(out)
}

/// The child's stderr, as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
