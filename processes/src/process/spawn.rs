//! The spawn start method: a table of named [`Entry`] functions this binary offers, the
//! child's side ([`spawn_main`]: run the named entry with the argument read from stdin) and the
//! parent's ([`spawn_child`]: run this binary again with [`SPAWN_FLAG`] and send the argument).
//! The spawned child gets stdin (the argument's pipe), stdout and stderr, and no other
//! descriptor of the parent, close-on-exec or not, as with Python's spawn.

use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::libc;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::{Pid, getpid, getppid};
use serde::de::DeserializeOwned;

use super::StartMethod;
use super::registry::Me;

/// The argument that tells a binary it was started as a spawned child (see [`spawn_main`]):
/// the lesson crate's one flag for re-running a chapter binary as a child
/// ([`lesson::HELPER_FLAG`]), so a chapter's helpers and its spawn entries share one mechanism.
pub const SPAWN_FLAG: &str = lesson::HELPER_FLAG;

static ENTRIES: OnceLock<&'static [Entry]> = OnceLock::new();

/// A function a spawned child can run, registered under a name (Python's spawn finds the
/// target by importing the main module; a Rust binary cannot import itself, so it keeps a
/// table).
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// The name the parent asks for.
    pub name: &'static str,
    /// The body; its argument is the bytes the parent serialized (see [`decode`]).
    pub run: fn(&[u8]) -> anyhow::Result<()>,
}

/// Decode a spawn argument made by [`Process::spawn_entry`](super::Process::spawn_entry).
///
/// # Errors
///
/// If the bytes are not a `T` (the entry was asked for with another argument type).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> anyhow::Result<T> {
    postcard::from_bytes(bytes).context("decoding the spawned child's argument")
}

/// Register the entries this binary offers to spawned children. Call it (or [`spawn_main`])
/// once, early; the parent checks names against it before starting anything.
pub fn register(entries: &'static [Entry]) {
    let _ = ENTRIES.set(entries);
}

fn registered() -> &'static [Entry] {
    ENTRIES.get().copied().unwrap_or(&[])
}

/// The first line of a binary's `main` when it offers spawn entries: registers `entries`, and,
/// if this process was started as a spawned child (`SPAWN_FLAG NAME`), runs that entry with
/// the argument read from stdin and exits (0, or 1 with the error on stderr); started as a fork
/// server (`SPAWN_FLAG processes-forkserver`), it serves until its parent ends. Otherwise it
/// returns and `main` goes on.
pub fn spawn_main(entries: &'static [Entry]) {
    register(entries);
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() != Some(SPAWN_FLAG) {
        return;
    }
    let name = args.next().unwrap_or_default();
    if name == super::forkserver::FORKSERVER_ENTRY {
        super::forkserver::serve(entries);
    }
    // Not an entry: the chapter's helper of that name, if any, is `lesson::main`'s to run (and
    // an unknown name its to refuse, with exit status 2).
    if !entries.iter().any(|e| e.name == name) {
        return;
    }
    let mut input = Vec::new();
    let code = match io::stdin()
        .read_to_end(&mut input)
        .context("reading the argument from the parent")
        .and_then(|_| split_header(&input))
    {
        Err(e) => {
            eprintln!("spawned child {name} (pid {}): {e:#}", std::process::id());
            1
        }
        Ok((header, arg)) => {
            let process = header.name.clone();
            super::registry::lock().become_child(Me {
                name: header.name,
                daemon: header.daemon,
                method: StartMethod::Spawn,
                parent_pid: header.parent_pid,
                parent_name: header.parent_name,
                parent_pidfd: None,
            });
            run_entry(entries, &name, arg, &process)
        }
    };
    let _ = io::stdout().flush();
    std::process::exit(code);
}

/// What a spawned child learns of itself before its argument (Python's spawn sends the same
/// facts with the pickled process object).
#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    name: String,
    daemon: bool,
    parent_pid: i32,
    parent_name: String,
}

fn split_header(input: &[u8]) -> anyhow::Result<(Header, &[u8])> {
    let (len, rest) = input
        .split_first_chunk::<4>()
        .context("the argument is shorter than its header")?;
    let len = u32::from_le_bytes(*len) as usize;
    anyhow::ensure!(rest.len() >= len, "the argument's header is cut short");
    let (header, arg) = rest.split_at(len);
    Ok((
        postcard::from_bytes(header).context("decoding the header")?,
        arg,
    ))
}

/// Run entry `name` (of process `process`) with `arg`: 0, or 1 with its error or panic on
/// stderr. A spawned child and a forkserver child end this way.
pub(super) fn run_entry(entries: &[Entry], name: &str, arg: &[u8], process: &str) -> i32 {
    let Some(entry) = entries.iter().find(|e| e.name == name) else {
        eprintln!(
            "Process {process} (pid {}): no spawn entry named {name:?}",
            std::process::id()
        );
        return 1;
    };
    match std::panic::catch_unwind(|| (entry.run)(arg)) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            eprintln!(
                "spawned child {name} (Process {process}, pid {}): {e:#}",
                std::process::id()
            );
            1
        }
        Err(payload) => {
            eprintln!(
                "Process {process} (pid {}) panicked: {}",
                std::process::id(),
                lesson::panic_message(payload.as_ref())
            );
            1
        }
    }
}

/// Check that `entry` is registered here (the parent asks before starting anything).
pub(super) fn check_entry(name: &str, entry: &str) -> anyhow::Result<()> {
    let entries = registered();
    if entries.iter().any(|e| e.name == entry) {
        return Ok(());
    }
    let names: Vec<&str> = entries.iter().map(|e| e.name).collect();
    bail!(
        "process {name}: no spawn entry named {entry:?} (registered: {})",
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    );
}

/// Run this binary (or `exe`) again as a spawned child running `entry`, and send it `arg`.
pub(super) fn spawn_child(
    name: &str,
    daemon: bool,
    entry: &str,
    arg: &[u8],
    exe: Option<PathBuf>,
) -> anyhow::Result<Pid> {
    check_entry(name, entry)?;
    let exe = match exe {
        Some(exe) => exe,
        None => std::env::current_exe().context("finding this binary to spawn it")?,
    };
    let mut cmd = Command::new(&exe);
    cmd.arg(SPAWN_FLAG).arg(entry).stdin(Stdio::piped());
    let parent = getpid();
    // SAFETY: the hook runs in the child between fork and exec, where only async-signal-safe
    // calls are allowed: close_range, prctl and getppid are plain system calls, and it
    // allocates nothing (the error is built from an errno code). It marks descriptors
    // close-on-exec rather than closing them, so std's own pipe that reports a failed exec
    // (already close-on-exec) keeps working.
    unsafe {
        cmd.pre_exec(move || {
            // Python's spawn hands the child only the descriptors it needs; so do we: 0, 1
            // and 2 (stdin is the argument's pipe by now). Without this the child would keep
            // every descriptor the parent opened without close-on-exec, and a reader of such
            // a pipe would wait for this child before it saw end-of-file. On a kernel older
            // than 5.11 (no CLOSE_RANGE_CLOEXEC) the call fails and they are inherited.
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            if daemon {
                let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
                if getppid() != parent {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
            }
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            let why = e
                .raw_os_error()
                .map_or("", |code| super::fork::why(Errno::from_raw(code)));
            return Err(e)
                .with_context(|| format!("process {name}: starting {}{why}", exe.display()));
        }
    };
    let pid = Pid::from_raw(child.id() as i32);
    if let Some(mut stdin) = child.stdin.take() {
        let header = postcard::to_allocvec(&Header {
            name: name.to_owned(),
            daemon,
            parent_pid: parent.as_raw(),
            parent_name: super::registry::lock().my_name(),
        })
        .context("encoding the spawned child's header")?;
        let mut framed = (header.len() as u32).to_le_bytes().to_vec();
        framed.extend_from_slice(&header);
        framed.extend_from_slice(arg);
        // A child that died at once closes its end: that shows in its exit code, not here.
        match stdin.write_all(&framed) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
            Err(e) => {
                let _ = kill(pid, Signal::SIGKILL);
                let _ = waitpid(pid, None);
                return Err(e).context("sending the argument to the spawned child");
            }
        }
    }
    // From here the pid is ours to wait for; std's Child neither waits nor kills on drop.
    drop(child);
    Ok(pid)
}
