//! Lesson `start-methods` (beyond the seed, behind its "on Windows pass it as an argument"):
//! fork copies the parent, so a child sees what the parent made at run time; spawn starts the
//! program afresh, so a child sees only what it is passed; forkserver forks the child from a
//! server that was itself started afresh (fork + exec), so it inherits as little as spawn.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::OnceLock;

use std::time::Instant;

use anyhow::{Context, bail, ensure};
use lesson::{Activity, Cx, Handoff};

use super::cx_of;
use crate::{Entry, Process, StartMethod, current_process, decode};

/// "spawn" or "forkserver": how this child was started, for its lines.
fn method() -> &'static str {
    match current_process().start_method {
        Some(StartMethod::Forkserver) => "forkserver",
        Some(StartMethod::Fork) => "fork",
        _ => "spawn",
    }
}

/// Made by the parent at run time (not at compile time), to see who inherits it.
pub static MADE_BY_PARENT: OnceLock<String> = OnceLock::new();

/// Spawn entry `show-inherited`: report whether `MADE_BY_PARENT` is there (it must not be).
pub fn show_inherited(arg: &[u8]) -> anyhow::Result<()> {
    let cx = cx_of(decode::<Handoff>(arg)?);
    match MADE_BY_PARENT.get() {
        None => {
            cx.say(format!(
                "{} child: MADE_BY_PARENT is empty here, a fresh process",
                method()
            ));
            Ok(())
        }
        Some(v) => bail!("a {} child saw the parent's value {v:?}", method()),
    }
}

/// Spawn entry `greet`: print the name it was passed.
pub fn greet(arg: &[u8]) -> anyhow::Result<()> {
    let (name, handoff): (String, Handoff) = decode(arg)?;
    cx_of(handoff).say(format!(
        "{} child: hello {name} (passed as an argument)",
        method()
    ));
    Ok(())
}

/// Spawn entry `exit-with`: exit with the code it was passed (tests use it to see that the
/// argument arrived).
pub fn exit_with(arg: &[u8]) -> anyhow::Result<()> {
    let code: i32 = decode(arg)?;
    std::process::exit(code)
}

/// Spawn entry `sleep-ms`: sleep the number of milliseconds it was passed, then exit 0 (tests
/// use it for a child that is still running).
///
/// # Errors
/// If the argument is not a `u64`.
pub fn sleep_ms(arg: &[u8]) -> anyhow::Result<()> {
    let ms: u64 = decode(arg)?;
    std::thread::sleep(std::time::Duration::from_millis(ms));
    Ok(())
}

/// Spawn entry `parent-of`: exit 0 if [`parent_process`](crate::parent_process) is the
/// process whose pid it was passed, alive, else fail saying what it found (a test checks a
/// forkserver child's parent this way).
///
/// # Errors
/// If the argument is not an `i32`, or the parent is another process or has ended.
pub fn parent_of(arg: &[u8]) -> anyhow::Result<()> {
    let expected: i32 = decode(arg)?;
    let parent = crate::parent_process().context("no parent_process()")?;
    ensure!(
        parent.pid() == expected && parent.is_alive(),
        "parent_process() is pid {} (alive: {}), not {expected}",
        parent.pid(),
        parent.is_alive()
    );
    Ok(())
}

/// How many descriptors this process has open (not counting the one used to count them).
pub fn open_fds() -> anyhow::Result<usize> {
    let dir = std::fs::read_dir("/proc/self/fd").context("listing /proc/self/fd")?;
    Ok(dir.count().saturating_sub(1))
}

/// Spawn entry `count-fds`: say how many descriptors are open here and exit with that number
/// (its exit code is how the parent learns it; it is always 3 or more, so never mistaken for
/// an error's 1).
pub fn count_fds(arg: &[u8]) -> anyhow::Result<()> {
    let handoff: Handoff = decode(arg)?;
    let n = open_fds()?;
    cx_of(handoff).say(format!("{} child: {n} descriptors open", method()));
    std::process::exit(n.min(255) as i32)
}

/// The chapter binary's spawn entries.
pub static ENTRIES: &[Entry] = &[
    Entry {
        name: "show-inherited",
        run: show_inherited,
    },
    Entry {
        name: "greet",
        run: greet,
    },
    Entry {
        name: "exit-with",
        run: exit_with,
    },
    Entry {
        name: "count-fds",
        run: count_fds,
    },
    Entry {
        name: "sleep-ms",
        run: sleep_ms,
    },
    Entry {
        name: "parent-of",
        run: parent_of,
    },
    Entry {
        name: "introduce",
        run: super::introspection::introduce_entry,
    },
];

fn spawned(cx: &Cx, entry: &str, arg: &impl serde::Serialize) -> anyhow::Result<Process> {
    let p = Process::spawn_entry(entry, arg)?.named("spawn-child");
    Ok(match cx.exe() {
        Some(exe) => p.exe(exe),
        None => p,
    })
}

fn forkserved(cx: &Cx, entry: &str, arg: &impl serde::Serialize) -> anyhow::Result<Process> {
    let p = Process::forkserver_entry(entry, arg)?.named("forkserver-child");
    Ok(match cx.exe() {
        Some(exe) => p.exe(exe),
        None => p,
    })
}

/// The parent pid of process `pid`, from `/proc/<pid>/stat` (the field after the state, which
/// follows the `)` closing the command name).
pub fn parent_pid_of(pid: i32) -> anyhow::Result<i32> {
    super::api::stat_fields(pid)
        .with_context(|| format!("reading /proc/{pid}/stat"))?
        .get(1)
        .and_then(|ppid| ppid.parse().ok())
        .with_context(|| format!("no parent pid in /proc/{pid}/stat"))
}

/// Start `p`, join it, and say how long the start and join took (this once: one run, on this
/// machine, as loaded as it is now). Its exit code and the milliseconds.
fn timed(cx: &Cx, mut p: Process, what: &str) -> anyhow::Result<(i32, f64)> {
    let t = Instant::now();
    p.start()?;
    let code = {
        let _waiting = cx.span(Activity::Wait, format!("join {}", p.name()));
        p.join()?
    };
    let ms = t.elapsed().as_secs_f64() * 1e3;
    cx.say(format!(
        "{what}: started and joined in {ms:.1} ms (measured, this run), exit code {code}"
    ));
    Ok((code, ms))
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    crate::register(ENTRIES);
    let _ = MADE_BY_PARENT.set("a value the parent made at run time".to_owned());
    cx.say("the parent set MADE_BY_PARENT");

    cx.explain(
        "forkserver: the first forkserver start runs a server, this binary started afresh (fork +\n\
         exec, as Python starts its forkserver: a fresh interpreter, not a fork of this one);\n\
         the server forks each child. So the child inherits the server's clean state, not ours.",
    );
    let server = crate::ForkServer::shared(cx.exe())?;
    let server_pid = server.ensure_running()?;
    let server_parent = parent_pid_of(server_pid)?;
    let me = std::process::id();
    cx.say(format!(
        "the fork server runs as pid {server_pid}, its parent pid {server_parent}: a child of \
         this process (pid {me}), running {} afresh",
        server.exe().display()
    ));
    ensure!(
        i64::from(server_parent) == i64::from(me),
        "the fork server's parent is pid {server_parent}, not this process ({me})"
    );
    let c = cx.clone();
    let forked = Process::new(move || match MADE_BY_PARENT.get() {
        Some(v) => {
            super::as_me(&c).say(format!("fork child: MADE_BY_PARENT = {v:?} (inherited)"));
            Ok(())
        }
        None => Err(anyhow::anyhow!("the fork child did not inherit the value")),
    })
    .named("fork-child");
    let (fork_code, fork_ms) = timed(cx, forked, "fork")?;
    let (spawn_code, spawn_ms) = timed(cx, spawned(cx, "show-inherited", &cx.handoff())?, "spawn")?;
    let (server_code, server_ms) = timed(
        cx,
        forkserved(cx, "show-inherited", &cx.handoff())?,
        "forkserver",
    )?;
    let mut measured = [
        ("fork", fork_ms),
        ("spawn", spawn_ms),
        ("forkserver", server_ms),
    ];
    measured.sort_by(|a, b| a.1.total_cmp(&b.1));
    cx.say(format!(
        "this run, fastest first: {} (one start and join each: another run, or a loaded \
         machine, may rank them otherwise)",
        measured
            .iter()
            .map(|(what, ms)| format!("{what} {ms:.1} ms"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    cx.say(format!(
        "fork child inherited it (exit {fork_code}); spawn child did not (exit {spawn_code}); \
         forkserver child did not (exit {server_code})"
    ));
    ensure!(
        fork_code == 0 && spawn_code == 0 && server_code == 0,
        "inheritance was not as described"
    );

    cx.explain(
        "so with spawn and forkserver, pass what the child needs, as the seed says for Windows:",
    );
    let mut greeter = spawned(cx, "greet", &("luck", cx.handoff()))?;
    greeter.start()?;
    ensure!(greeter.join()? == 0, "the greeter failed");
    let mut greeter = forkserved(cx, "greet", &("luck", cx.handoff()))?;
    greeter.start()?;
    ensure!(greeter.join()? == 0, "the greeter failed");

    cx.explain(
        "descriptors: a fork child has every descriptor the parent had open; a spawn child gets\n\
         stdin, stdout and stderr, and nothing else (not even what lacks close-on-exec)",
    );
    let (r, w) = nix::unistd::pipe().context("making a pipe")?;
    let pipe = [r.as_raw_fd(), w.as_raw_fd()];
    let c = cx.clone();
    let mut forked = Process::new(move || -> anyhow::Result<()> {
        let c = super::as_me(&c);
        let open = pipe
            .iter()
            .filter(|fd| Path::new(&format!("/proc/self/fd/{fd}")).exists())
            .count();
        c.say(format!(
            "fork child: {} descriptors open, {open} of them the parent's pipe {pipe:?}",
            open_fds()?
        ));
        ensure!(open == 2, "the fork child lacks the parent's pipe");
        Ok(())
    })
    .named("fork-child");
    forked.start()?;
    ensure!(forked.join()? == 0, "the fork child did not see the pipe");
    let mut spawn = spawned(cx, "count-fds", &cx.handoff())?;
    spawn.start()?;
    let n = spawn.join()?;
    cx.say(format!(
        "the parent holds a pipe {pipe:?} without close-on-exec; the spawn child had {n} \
         descriptors open: only stdin, stdout and stderr"
    ));
    ensure!(
        (1..=3).contains(&n),
        "the spawn child inherited descriptors: {n} open"
    );
    let mut served = forkserved(cx, "count-fds", &cx.handoff())?;
    served.start()?;
    let n = served.join()?;
    cx.say(format!(
        "the forkserver child had {n} descriptors open: stdin (/dev/null), stdout and stderr \
         (ours, sent to the server with the request) and a pidfd of its parent (us)"
    ));
    ensure!(
        n == 4,
        "the forkserver child has {n} descriptors open, not 4"
    );
    drop((r, w));

    match spawned(cx, "no-such-entry", &())?.start() {
        Ok(()) => bail!("an unknown entry was started"),
        Err(e) => cx.say(format!("an unknown entry: start() -> Err: {e}")),
    }
    cx.explain(
        "what each inherits, and what each start costs in steps (the times above are one run's;\n\
         cargo bench -p processes measures them properly):\n\
         - fork: memory (every value), every descriptor, only the forking thread. One fork, no\n\
         \x20 exec; unsafe with threads running (a lock another thread held stays locked in the\n\
         \x20 child).\n\
         - spawn: nothing; the binary runs again with stdin, stdout, stderr: a fork and an exec\n\
         \x20 of the whole binary, for every child.\n\
         - forkserver: the server's clean state (it was fork + exec'd once, as Python starts it),\n\
         \x20 stdout, stderr, a pidfd of its parent: per child, a request to the server and its\n\
         \x20 reply around the server's fork, no exec.\n\
         Python 3.14 moved Linux's default from fork to forkserver for the fork row's danger.",
    );
    Ok(())
}
