//! What the fault, soak and CPython tests share: a task type that can block, fail, refuse to
//! be encoded or stall while being decoded; a probe in shared memory the workers report to;
//! safe ways to kill a worker; checks for leftover children; and re-running this test binary
//! as a child process with a limit lowered.
//!
//! The probe lives in shared anonymous memory made before the first pool, so every worker
//! (forked from this process, replacements included) writes to the same pages. The workers
//! close every inherited descriptor, so no pipe could do this job.

#![allow(dead_code)]

pub mod calc;
pub mod fixed;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use ipc::{Array, AtomicValue};
use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, waitpid};
use pool::Task;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_bytes::ByteBuf;

/// Every test that forks holds this (as nix's tests hold their FORK_MTX): the probe is
/// shared, and "no child is left" means no child of any test.
pub static FORK: Mutex<()> = Mutex::new(());

pub fn serial() -> MutexGuard<'static, ()> {
    FORK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The deadline of any one test.
pub const LONG: Duration = Duration::from_secs(120);

/// Task indexes the probe counts.
pub const MAX_TASKS: usize = 1 << 16;

/// Shared memory the workers report to.
pub struct Probe {
    /// How many times each task (by index) started running.
    pub starts: Array<u32>,
    /// The pid of the worker whose task waits at the gate (0: none yet).
    pub ready: AtomicValue<AtomicI64>,
    /// Open: the waiting tasks go on.
    pub gate: AtomicValue<AtomicBool>,
    /// Armed: the next [`StallOnDecode`] decoded waits at the gate (and disarms it).
    pub decode_armed: AtomicValue<AtomicBool>,
}

static PROBE: OnceLock<Probe> = OnceLock::new();

/// The probe, made on first use (before the first pool of the test binary).
pub fn probe() -> &'static Probe {
    PROBE.get_or_init(|| Probe {
        starts: Array::new(MAX_TASKS, 0).expect("shared memory"),
        ready: AtomicValue::new(AtomicI64::new(0)).expect("shared memory"),
        gate: AtomicValue::new(AtomicBool::new(false)).expect("shared memory"),
        decode_armed: AtomicValue::new(AtomicBool::new(false)).expect("shared memory"),
    })
}

impl Probe {
    /// Zero every count, close the gate, disarm.
    pub fn reset(&self) {
        self.starts.lock().expect("probe lock").fill(0);
        self.ready.store(0, Ordering::SeqCst);
        self.gate.store(false, Ordering::SeqCst);
        self.decode_armed.store(false, Ordering::SeqCst);
    }

    /// The start count of each task `0..n`.
    pub fn starts(&self, n: usize) -> Vec<u32> {
        self.starts.lock().expect("probe lock")[..n].to_vec()
    }

    fn started(&self, i: u32) {
        if let Ok(mut s) = self.starts.lock() {
            s[i as usize] += 1;
        }
    }

    /// Wait (polling, with a deadline) until a task waits at the gate; its worker's pid.
    pub fn wait_ready(&self) -> i32 {
        let deadline = Instant::now() + LONG;
        loop {
            let pid = self.ready.load(Ordering::SeqCst);
            if pid != 0 {
                return pid as i32;
            }
            assert!(Instant::now() < deadline, "no task reached the gate");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Say "ready" from this worker and wait until the gate opens (at most a minute, so a
    /// failed test leaves no worker behind for long).
    pub fn hold(&self) {
        self.ready
            .store(i64::from(std::process::id()), Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.gate.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

fn refuse<S: Serializer>(_: &(), _: S) -> Result<S::Ok, S::Error> {
    Err(serde::ser::Error::custom(
        "this value refuses to be encoded",
    ))
}

/// Decodes to nothing; when the probe is armed, the first one decoded (in a worker) says
/// ready and waits at the gate first: a worker caught between two tasks.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StallOnDecode;

impl<'de> Deserialize<'de> for StallOnDecode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d)?;
        if probe().decode_armed.swap(false, Ordering::SeqCst) {
            probe().hold();
        }
        Ok(StallOnDecode)
    }
}

/// Decoding it (in a worker) panics.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PanicOnDecode;

impl<'de> Deserialize<'de> for PanicOnDecode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d)?;
        panic!("this task cannot be decoded");
    }
}

/// Decoding it (in a worker) SIGKILLs the worker: a task that crashes whatever decodes it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct KillOnDecode;

impl<'de> Deserialize<'de> for KillOnDecode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d)?;
        let _ = nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGKILL);
        unreachable!("SIGKILL cannot be caught")
    }
}

/// The tests' task. Every variant but the encoding ones counts its start in the probe.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Work {
    /// `i * i`.
    Square(u32),
    /// Sleep this many microseconds, then `i * i`.
    Nap(u32, u64),
    /// Say ready, wait at the gate, then `i * i`.
    Block(u32),
    /// The worker's pid.
    Pid(u32),
    /// Fail with a message of this many bytes.
    Fail(u32, usize),
    /// Return a value that cannot be encoded.
    BadResult(u32),
    /// Return this many bytes.
    BigResult(u32, usize),
    /// Cannot be encoded in the parent.
    Unsendable(u32, #[serde(serialize_with = "refuse")] ()),
    /// Carries this many bytes.
    Huge(u32, ByteBuf),
    /// Stalls while being decoded (see [`StallOnDecode`]), then `i * i`.
    Stall(u32, StallOnDecode),
    /// Panic.
    Panic(u32),
    /// Its decoding panics.
    BadDecode(u32, PanicOnDecode),
    /// Its decoding kills the worker.
    DeadlyDecode(u32, KillOnDecode),
}

/// What a [`Work`] returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Out {
    N(u64),
    Pid(i32),
    Bytes(ByteBuf),
    Bad(#[serde(serialize_with = "refuse")] ()),
}

pub fn sq(i: u32) -> Out {
    Out::N(u64::from(i) * u64::from(i))
}

impl Work {
    pub fn index(&self) -> u32 {
        match self {
            Work::Square(i)
            | Work::Nap(i, _)
            | Work::Block(i)
            | Work::Pid(i)
            | Work::Fail(i, _)
            | Work::BadResult(i)
            | Work::BigResult(i, _)
            | Work::Unsendable(i, _)
            | Work::Huge(i, _)
            | Work::Stall(i, _)
            | Work::Panic(i)
            | Work::BadDecode(i, _)
            | Work::DeadlyDecode(i, _) => *i,
        }
    }
}

impl Task for Work {
    type Output = Out;
    fn run(self) -> anyhow::Result<Out> {
        probe().started(self.index());
        Ok(match self {
            Work::Square(i) | Work::Stall(i, _) => sq(i),
            Work::Nap(i, us) => {
                std::thread::sleep(Duration::from_micros(us));
                sq(i)
            }
            Work::Block(i) => {
                probe().hold();
                sq(i)
            }
            Work::Pid(_) => Out::Pid(std::process::id() as i32),
            Work::Fail(_, n) => anyhow::bail!("{}", "x".repeat(n)),
            Work::BadResult(_) => Out::Bad(()),
            Work::BigResult(_, n) => Out::Bytes(ByteBuf::from(vec![7u8; n])),
            Work::Unsendable(i, _)
            | Work::Huge(i, _)
            | Work::BadDecode(i, _)
            | Work::DeadlyDecode(i, _) => sq(i),
            Work::Panic(i) => panic!("task {i} panicked on purpose"),
        })
    }
}

/// SIGKILL a worker that is certainly our live, unreaped child (one blocked in a task, or
/// idle with the pool not told): its pid cannot have been reused.
pub fn kill_now(pid: i32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill a worker");
}

/// SIGKILL `pid` only if it is still a child of this process: through a pidfd, which keeps
/// naming the process it was opened on even if the pid is reused after, checked against
/// `/proc` after opening. `true` if a signal was sent.
pub fn kill_if_ours(pid: i32) -> bool {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; no memory
    // of ours is involved.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return false;
    }
    let fd = fd as i32;
    let ours = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PPid:").map(|v| v.trim().to_owned()))
        })
        .is_some_and(|ppid| ppid == std::process::id().to_string());
    let sent = ours && {
        // SAFETY: `fd` is the pidfd opened above; pidfd_send_signal reads no memory of ours
        // (a null siginfo).
        let rc = unsafe {
            nix::libc::syscall(
                nix::libc::SYS_pidfd_send_signal,
                fd,
                nix::libc::SIGKILL,
                std::ptr::null::<nix::libc::siginfo_t>(),
                0,
            )
        };
        rc == 0
    };
    // SAFETY: closing the descriptor we opened, once.
    unsafe { nix::libc::close(fd) };
    sent
}

/// Whether `pid` has exited (a zombie, or gone).
pub fn exited(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

/// Poll `cond` (every millisecond, up to [`LONG`]); panics naming `what` if it never holds.
pub fn eventually(what: &str, cond: impl FnMut() -> bool) {
    eventually_within(LONG, what, cond);
}

/// [`eventually`] with a deadline of `limit`.
pub fn eventually_within(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// No child of this process is left, running or zombie.
pub fn assert_no_children() {
    assert_eq!(
        waitpid(None, Some(WaitPidFlag::WNOHANG)),
        Err(Errno::ECHILD),
        "a child process was left behind"
    );
}

/// Whether this process was started by [`run_helper`] to run the helper `name`.
pub fn helper_is(name: &str) -> bool {
    std::env::var("POOL_TEST_HELPER").is_ok_and(|v| v == name)
}

/// Run the ignored test `name` of this test binary in a child process (with `setup` applied
/// before exec), at most `limit`; its output.
pub fn run_helper(
    name: &str,
    limit: Duration,
    setup: impl FnOnce(&mut std::process::Command),
) -> std::process::Output {
    let exe = std::env::current_exe().expect("this test binary");
    let mut cmd = std::process::Command::new(exe);
    cmd.args([
        name,
        "--exact",
        "--include-ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("POOL_TEST_HELPER", name);
    setup(&mut cmd);
    let out =
        lesson::output_within(&mut cmd, limit).unwrap_or_else(|e| panic!("helper {name}: {e:#}"));
    eprintln!(
        "--- helper {name}: {}\n--- stdout:\n{}--- stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
