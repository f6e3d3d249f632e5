//! Lesson `start-methods` (beyond the seed, behind its "on Windows pass it as an argument"):
//! fork copies the parent, so a child sees what the parent made at run time; spawn starts the
//! program afresh, so a child sees only what it is passed.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, bail, ensure};
use lesson::{Cx, Handoff};

use crate::{Entry, Process, decode};

/// Made by the parent at run time (not at compile time), to see who inherits it.
pub static MADE_BY_PARENT: OnceLock<String> = OnceLock::new();

/// Spawn entry `show-inherited`: report whether `MADE_BY_PARENT` is there (it must not be).
pub fn show_inherited(arg: &[u8]) -> anyhow::Result<()> {
    let cx = decode::<Handoff>(arg)?.cx();
    match MADE_BY_PARENT.get() {
        None => {
            cx.say("spawn child: MADE_BY_PARENT is empty here, a fresh process");
            Ok(())
        }
        Some(v) => bail!("a spawned child saw the parent's value {v:?}"),
    }
}

/// Spawn entry `greet`: print the name it was passed.
pub fn greet(arg: &[u8]) -> anyhow::Result<()> {
    let (name, handoff): (String, Handoff) = decode(arg)?;
    handoff
        .cx()
        .say(format!("spawn child: hello {name} (passed as an argument)"));
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
pub fn sleep_ms(arg: &[u8]) -> anyhow::Result<()> {
    let ms: u64 = decode(arg)?;
    std::thread::sleep(std::time::Duration::from_millis(ms));
    Ok(())
}

/// Spawn entry `parent-of`: exit 0 if [`parent_process`](crate::parent_process) is the
/// process whose pid it was passed, alive, else fail saying what it found (a test checks a
/// forkserver child's parent this way).
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
    handoff
        .cx()
        .say(format!("spawn child: {n} descriptors open"));
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
];

fn spawned(cx: &Cx, entry: &str, arg: &impl serde::Serialize) -> anyhow::Result<Process> {
    let p = Process::spawn_entry(entry, arg)?;
    Ok(match cx.exe() {
        Some(exe) => p.exe(exe),
        None => p,
    })
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    crate::register(ENTRIES);
    let _ = MADE_BY_PARENT.set("a value the parent made at run time".to_owned());
    cx.say("the parent set MADE_BY_PARENT");

    let c = cx.clone();
    let mut forked = Process::new(move || match MADE_BY_PARENT.get() {
        Some(v) => {
            c.say(format!("fork child: MADE_BY_PARENT = {v:?} (inherited)"));
            Ok(())
        }
        None => Err(anyhow::anyhow!("the fork child did not inherit the value")),
    });
    forked.start()?;
    let fork_code = forked.join()?;
    let mut spawn = spawned(cx, "show-inherited", &cx.handoff())?;
    spawn.start()?;
    let spawn_code = spawn.join()?;
    cx.say(format!(
        "fork child inherited it (exit {fork_code}); spawn child did not (exit {spawn_code})"
    ));
    ensure!(
        fork_code == 0 && spawn_code == 0,
        "inheritance was not as described"
    );

    cx.explain("so with spawn, pass what the child needs, as the seed says for Windows:");
    let mut greeter = spawned(cx, "greet", &("luck", cx.handoff()))?;
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
    });
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
    drop((r, w));

    match spawned(cx, "no-such-entry", &())?.start() {
        Ok(()) => bail!("an unknown entry was started"),
        Err(e) => cx.say(format!("an unknown entry: start() -> Err: {e}")),
    }
    cx.explain(
        "fork: fast, inherits everything, unsafe with threads running (a lock another thread\n\
         held stays locked in the child). spawn: runs the binary again, inherits nothing, safe\n\
         anywhere. forkserver: a server forked early (single-threaded) forks the children.\n\
         Python 3.14 moved Linux's default from fork to forkserver for this reason.",
    );
    Ok(())
}
