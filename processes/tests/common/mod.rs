//! Plumbing shared by the CPython ports: length-prefixed postcard frames over a pipe, read with
//! a deadline, the chapter binary's spawn entries, and tests that run in a fresh copy of their
//! test binary (a "role").
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use processes::Process;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Deadline for anything that should take milliseconds: a bug fails instead of hanging.
pub const LONG: Duration = Duration::from_secs(30);
pub const BIN: &str = env!("CARGO_BIN_EXE_processes");

pub fn pipe() -> (std::io::PipeReader, std::io::PipeWriter) {
    std::io::pipe().expect("pipe")
}

/// Send one value as a frame (what the originals do with `q.put` or `conn.send`).
pub fn send<T: Serialize>(w: &mut std::io::PipeWriter, value: &T) -> std::io::Result<()> {
    let bytes = postcard::to_allocvec(value).map_err(std::io::Error::other)?;
    let mut frame = (bytes.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&bytes);
    w.write_all(&frame)
}

/// Wait until `r` is readable or `deadline` passes.
pub fn readable_by(r: &impl AsFd, deadline: Instant) -> bool {
    let left = deadline.saturating_duration_since(Instant::now());
    let mut fds = [PollFd::new(r.as_fd(), PollFlags::POLLIN)];
    let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
    poll(&mut fds, timeout).expect("poll") == 1
}

pub fn read_exact_by(r: &mut std::io::PipeReader, buf: &mut [u8], deadline: Instant) {
    let mut got = 0;
    while got < buf.len() {
        assert!(readable_by(r, deadline), "nothing arrived within {LONG:?}");
        let n = r.read(&mut buf[got..]).expect("read");
        assert!(n > 0, "the pipe closed after {got} of {} bytes", buf.len());
        got += n;
    }
}

/// Receive one frame (the originals' `q.get()`), within [`LONG`].
pub fn recv<T: DeserializeOwned>(r: &mut std::io::PipeReader) -> T {
    let deadline = Instant::now() + LONG;
    let mut len = [0u8; 4];
    read_exact_by(r, &mut len, deadline);
    let mut bytes = vec![0u8; u32::from_le_bytes(len) as usize];
    read_exact_by(r, &mut bytes, deadline);
    postcard::from_bytes(&bytes).expect("a frame")
}

/// Whatever is in the pipe now, without waiting for end-of-file (a child forked meanwhile by
/// another test may hold a copy of the write end for a moment).
pub fn drain_now(r: &mut std::io::PipeReader) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while readable_by(r, Instant::now()) {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn raw(fd: &impl AsRawFd) -> RawFd {
    fd.as_raw_fd()
}

/// Whether descriptor `fd` is open in the calling process.
pub fn fd_open(fd: RawFd) -> bool {
    Path::new(&format!("/proc/self/fd/{fd}")).exists()
}

pub fn spawned(entry: &str, arg: &impl Serialize) -> Process {
    processes::register(processes::ENTRIES);
    Process::spawn_entry(entry, arg).unwrap().exe(BIN)
}

/// A forkserver process running the chapter binary's entry `entry` on the shared server.
pub fn forkserved(entry: &str, arg: &impl Serialize) -> Process {
    processes::register(processes::ENTRIES);
    Process::forkserver_entry(entry, arg).unwrap().exe(BIN)
}

/// The argument of the chapter binary's `count-fds` entry: quiet narration, kept nowhere.
pub fn quiet() -> lesson::Handoff {
    lesson::Handoff {
        scale: 0.0,
        start_unix_nanos: 0,
        echo: false,
        sink: None,
        speaker: None,
    }
}

pub const ROLE: &str = "PROCESSES_CPYTHON_ROLE";

pub fn is_role(test: &str) -> bool {
    std::env::var(ROLE).is_ok_and(|r| r == test)
}

/// Run test `test` alone in a fresh process with the role set; its stdout.
pub fn run_role(test: &str) -> String {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE, test);
    let out = lesson::output_within(&mut cmd, LONG * 4).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{test} failed in its own process: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
