//! Lesson `api` (Process 类, 进程模块的其他方法): is_alive, join with a timeout, terminate and
//! kill with Python's exit codes, a failing child, name and pid, threads a child leaves
//! behind, and daemon children.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use lesson::{Activity, Cx};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::as_me;
use crate::Process;

fn sleeper(cx: &Cx, seconds: f64) -> Process {
    let cx = cx.clone();
    Process::new(move || as_me(&cx).sleep(seconds))
}

/// The fields of `/proc/PID/stat` after the command name (state, parent pid, ...), or `None`
/// if there is no such process.
pub fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: the fields follow the last ")".
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// Whether a process with this pid exists (and is not a zombie).
pub fn exists(pid: i32) -> bool {
    stat_fields(pid).is_some_and(|f| f.first().is_some_and(|state| state != "Z"))
}

/// A daemon child that sleeps a (scaled) minute and would then say it is done.
fn sleepy_daemon(cx: &Cx) -> Process {
    let c = cx.clone();
    Process::new(move || {
        let c = as_me(&c);
        c.sleep(60.0);
        c.say("daemon done (should never be printed)");
    })
    .named("daemon")
    .daemon(true)
}

/// Helper `daemon-parent`: start a daemon and a non-daemon child, say their pids, return.
pub fn daemon_parent(cx: &Cx) -> anyhow::Result<()> {
    let cx = &cx.as_speaker("helper daemon-parent");
    let mut daemon = sleepy_daemon(cx);
    let c = cx.clone();
    let mut worker = Process::new(move || {
        let c = as_me(&c);
        c.sleep(1.0);
        c.say("worker done");
    })
    .named("worker");
    daemon.start()?;
    worker.start()?;
    cx.say(format!(
        "daemon pid {} worker pid {}",
        daemon.pid().unwrap_or_default(),
        worker.pid().unwrap_or_default()
    ));
    cx.say("main returns with both still running");
    Ok(())
}

/// Helper `daemon-parent-killed`: start a daemon child, say its pid, wait to be killed.
pub fn daemon_parent_killed(cx: &Cx) -> anyhow::Result<()> {
    let cx = &cx.as_speaker("helper daemon-parent-killed");
    let mut daemon = sleepy_daemon(cx);
    daemon.start()?;
    cx.say(format!("daemon pid {}", daemon.pid().unwrap_or_default()));
    std::thread::sleep(cx.scaled(120.0) + Duration::from_secs(30));
    Ok(())
}

fn pid_after(line: &str, key: &str) -> Option<i32> {
    line.split_whitespace()
        .skip_while(|w| *w != key)
        .nth(2)
        .and_then(|w| w.parse().ok())
}

/// A child whose body starts a thread that never ends, then returns. `Some(exitcode)` if the
/// child ended within `limit`: it does, because a fork child `_exit`s when its body returns and
/// does not wait for its threads (Python's child joins its non-daemon threads first, so it
/// would wait forever).
pub fn child_leaves_its_thread(limit: Duration) -> anyhow::Result<Option<i32>> {
    let mut p = Process::new(|| -> anyhow::Result<()> {
        std::thread::Builder::new()
            .name("forever".into())
            .spawn(|| {
                loop {
                    std::thread::park();
                }
            })
            .context("starting a thread in the child")?;
        Ok(())
    })
    .named("leaves-its-thread");
    p.start()?;
    if p.join_timeout(limit)? {
        return Ok(p.exitcode());
    }
    p.kill()?;
    p.join()?;
    Ok(None)
}

/// A child whose body starts a thread that finishes after a (scaled) second, and joins it
/// before returning, as a Python child does for its non-daemon threads. Whether the thread
/// ran to its end (it writes one byte to a pipe last).
pub fn child_joins_its_thread(cx: &Cx) -> anyhow::Result<bool> {
    let (reader, writer) = std::io::pipe().context("making a pipe")?;
    let c = cx.clone();
    let mut p = Process::new(move || -> anyhow::Result<()> {
        let mut writer = writer;
        let c = c.as_speaker(format!("{}/worker", crate::current_process().name));
        let thread = std::thread::Builder::new()
            .name("worker".into())
            .spawn(move || {
                c.sleep(1.0);
                c.say("the child's thread: done");
                writer.write_all(b"!")
            })
            .context("starting a thread in the child")?;
        thread
            .join()
            .map_err(|_| anyhow::anyhow!("the child's thread panicked"))?
            .context("the child's thread writing to the pipe")
    })
    .named("joins-its-thread");
    p.start()?;
    let code = {
        let _waiting = cx.span(Activity::Wait, "join joins-its-thread");
        p.join()?
    };
    ensure!(
        code == 0,
        "the child that joins its thread exited with {code}"
    );
    byte_arrived(reader)
}

/// Whether one byte is waiting in the pipe. Asked without blocking: the writer has exited,
/// so what it wrote is there now, but another child forked meanwhile (by another thread of
/// this program) may hold a copy of the write end and delay end-of-file.
fn byte_arrived(mut reader: std::io::PipeReader) -> anyhow::Result<bool> {
    let mut fds = [PollFd::new(reader.as_fd(), PollFlags::POLLIN)];
    if poll(&mut fds, PollTimeout::ZERO).context("poll on the pipe")? == 0 {
        return Ok(false);
    }
    let mut byte = [0u8; 1];
    Ok(reader.read(&mut byte).context("reading the pipe")? == 1)
}

/// How a daemon ends when its parent was killed before the daemon armed its death signal.
pub const EXITED_ON_RECHECK: &str =
    "exited at once (its getppid re-check found the parent gone before the signal was armed)";

/// Run `daemon-parent`; the daemon's and the worker's pids, and the helper's output.
pub fn daemon_when_parent_returns(cx: &Cx) -> anyhow::Result<(i32, i32, String)> {
    let out = lesson::output_within(
        &mut cx.helper("daemon-parent")?,
        cx.scaled(120.0) + Duration::from_secs(30),
    )?;
    ensure!(out.status.success(), "the helper failed: {}", out.status);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.contains("daemon pid"))
        .context("the helper did not say its children's pids")?;
    let daemon = pid_after(line, "daemon").context("no daemon pid")?;
    let worker = pid_after(line, "worker").context("no worker pid")?;
    Ok((daemon, worker, text))
}

/// Run `daemon-parent-killed`, SIGKILL it once its daemon child runs, and wait for that child
/// to die of its parent's death. We become a subreaper first, so the orphan is handed to us
/// and we reap it: nothing is left behind. Returns the daemon's pid and how it ended.
pub fn daemon_when_parent_is_killed(cx: &Cx) -> anyhow::Result<(i32, String)> {
    nix::sys::prctl::set_child_subreaper(true).context("becoming a subreaper")?;
    let mut helper = cx.helper("daemon-parent-killed")?;
    let mut child = helper
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the helper")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(pid) = pid_after(&line, "daemon") {
                let _ = tx.send(pid);
                break;
            }
        }
    });
    let daemon = rx.recv_timeout(Duration::from_secs(30));
    let _ = child.kill(); // SIGKILL: no destructor of the helper runs
    let _ = child.wait();
    let daemon = daemon.context("the helper never said its daemon's pid")?;
    let pid = Pid::from_raw(daemon);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Signaled(_, signal, _)) => {
                return Ok((daemon, format!("killed by {signal} (PR_SET_PDEATHSIG)")));
            }
            // The parent died before the child had armed PR_SET_PDEATHSIG: its getppid
            // re-check right after arming saw that and it left at once.
            Ok(WaitStatus::Exited(_, 1)) => {
                return Ok((daemon, EXITED_ON_RECHECK.to_owned()));
            }
            Ok(WaitStatus::Exited(_, code)) => return Ok((daemon, format!("exited with {code}"))),
            Ok(_) => {}
            // Not (or no longer) our child: the orphan went elsewhere; watch /proc instead.
            Err(Errno::ECHILD) if !exists(daemon) => return Ok((daemon, "gone".into())),
            Err(Errno::ECHILD) => {}
            Err(e) => return Err(e).context("waiting for the orphaned daemon"),
        }
        if Instant::now() >= deadline {
            let _ = kill(pid, Signal::SIGKILL);
            bail!("the daemon {daemon} outlived its killed parent by 30 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The Python side of a SIGKILLed parent: a `multiprocessing` parent (fork) starts a daemon
/// child that sleeps, prints its pid and SIGKILLs itself. Whether that child was still running
/// after its parent had died (it is then killed and reaped here). `Ok(None)` without python3.
///
/// # Errors
/// If this process cannot become a subreaper, python3 cannot be started or does not end, or
/// it never says its child's pid.
pub fn python_daemon_after_sigkill(cx: &Cx) -> anyhow::Result<Option<bool>> {
    const SCRIPT: &str = "import multiprocessing as mp, os, signal, sys, time\n\
        if __name__ == '__main__':\n    \
            p = mp.get_context('fork').Process(target=time.sleep, args=(60,), daemon=True)\n    \
            p.start()\n    \
            print(p.pid, flush=True)\n    \
            os.kill(os.getpid(), signal.SIGKILL)\n";
    // The orphan is handed to us, so that we can reap it after killing it.
    nix::sys::prctl::set_child_subreaper(true).context("becoming a subreaper")?;
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = match std::process::Command::new(&python)
        .args(["-c", SCRIPT])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).context("starting python3"),
    };
    let stdout = child.stdout.take().context("no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line.trim().parse::<i32>().ok());
    });
    let daemon = rx.recv_timeout(cx.long_wait()).ok().flatten();
    // The parent kills itself; reap it (or kill it, if it never got that far).
    if lesson::wait_within(&mut child, cx.long_wait())?.is_none() {
        bail!("the Python parent did not end");
    }
    let daemon = daemon.context("the Python parent never said its daemon's pid")?;
    let alive = exists(daemon);
    let pid = Pid::from_raw(daemon);
    let _ = kill(pid, Signal::SIGKILL);
    // Ours to reap as the subreaper it was handed to; elsewhere (ECHILD) init reaps it.
    while let Err(Errno::EINTR) = waitpid(pid, None) {}
    Ok(Some(alive))
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    let mut p = sleeper(cx, 2.0).named("sleeper");
    let alive = p.is_alive();
    cx.say(format!(
        "before start: name {}, is_alive() {alive}",
        p.name()
    ));
    p.start()?;
    cx.say(format!(
        "after start: pid {}, is_alive() {}",
        p.pid().unwrap_or_default(),
        p.is_alive()
    ));
    let done = {
        let _waiting = cx.span(Activity::Wait, "join_timeout(0.5 s)");
        p.join_timeout(cx.scaled(0.5))?
    };
    cx.say(format!(
        "join_timeout(0.5 s) -> {done}; is_alive() {} (it sleeps 2 s)",
        p.is_alive()
    ));
    ensure!(!done, "a 2 s sleeper ended within 0.5 s");
    let code = {
        let _waiting = cx.span(Activity::Wait, "join sleeper");
        p.join()?
    };
    cx.say(format!(
        "join() -> exitcode {code}; is_alive() {}",
        p.is_alive()
    ));
    ensure!(code == 0, "the sleeper failed");

    let mut t = sleeper(cx, 60.0).named("to-terminate");
    t.start()?;
    t.terminate()?;
    let code = t.join()?;
    cx.say(format!(
        "terminate() then join() -> exitcode {code} (minus SIGTERM)"
    ));
    ensure!(code == -15, "terminate gave {code}");
    let mut k = sleeper(cx, 60.0).named("to-kill");
    k.start()?;
    k.kill()?;
    let code = k.join()?;
    cx.say(format!(
        "kill() then join() -> exitcode {code} (minus SIGKILL)"
    ));
    ensure!(code == -9, "kill gave {code}");

    let mut bad = Process::new(|| -> () { panic!("something broke in the child") }).named("doomed");
    bad.start()?;
    let code = bad.join()?;
    cx.say(format!(
        "a child that panics -> exitcode {code}; its message is on stderr"
    ));
    ensure!(code == 1, "a panicking child gave {code}");
    let mut err =
        Process::new(|| Err::<(), _>(anyhow::anyhow!("no such file: data.txt"))).named("failing");
    err.start()?;
    let code = err.join()?;
    cx.say(format!("a child that returns an error -> exitcode {code}"));
    ensure!(code == 1, "a failing child gave {code}");

    cx.explain(
        "threads a child starts: Python's child joins its non-daemon threads before it exits;\n\
         a Process child leaves with _exit when its body returns, and its threads die with it",
    );
    let code = child_leaves_its_thread(cx.long_wait())?;
    cx.say(format!(
        "a child that starts a never-ending thread and returns -> exitcode {}: the child did not \
         wait for its thread (Python's would wait forever)",
        code.map_or("none (still running)".to_owned(), |c| c.to_string())
    ));
    ensure!(code == Some(0), "the child waited for its thread");
    let finished = child_joins_its_thread(cx)?;
    cx.say(format!(
        "a child that joins its thread (1 s of work) before returning: the thread finished? \
         {finished}"
    ));
    ensure!(finished, "a joined thread did not finish");

    cx.explain(
        "daemon=True: a helper process starts a daemon child and a normal one, then returns",
    );
    let (daemon, worker, text) = daemon_when_parent_returns(cx)?;
    for line in text.lines() {
        cx.explain(format!("helper> {line}"));
    }
    let worker_done = text.contains("worker done");
    let daemon_done = text.contains("daemon done");
    cx.say(format!(
        "the normal child was joined (finished: {worker_done}); the daemon {daemon} was terminated (finished: {daemon_done}); alive now: {}",
        exists(daemon) || exists(worker)
    ));
    ensure!(worker_done && !daemon_done, "daemon semantics");
    ensure!(
        !exists(daemon) && !exists(worker),
        "a child outlived its parent"
    );

    cx.explain(
        "and when the parent is SIGKILLed (no destructor, no atexit handler runs): here, by this\n\
         crate's choice, the kernel kills its daemon children too (PR_SET_PDEATHSIG, armed in\n\
         each daemon child). That is NOT Python's behaviour: Python terminates daemon children\n\
         from an atexit handler, which a SIGKILLed parent never runs, so they live on.",
    );
    let (daemon, how) = daemon_when_parent_is_killed(cx)?;
    cx.say(format!(
        "rust (this crate's choice): parent SIGKILLed; its daemon child {daemon}: {how}"
    ));
    ensure!(!exists(daemon), "the daemon outlived its killed parent");
    match python_daemon_after_sigkill(cx)? {
        None => cx.say("python3 not found: Python's side not shown"),
        Some(alive) => {
            cx.say(format!(
                "python3 (multiprocessing, daemon=True): parent SIGKILLed; its daemon child still \
                 running afterwards: {}",
                if alive { "yes" } else { "no" }
            ));
            ensure!(
                alive,
                "Python's daemon child died with its SIGKILLed parent"
            );
        }
    }
    Ok(())
}
