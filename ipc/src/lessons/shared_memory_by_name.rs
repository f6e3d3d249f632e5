//! Lesson `shared-memory-by-name` (beyond the seed: `multiprocessing.shared_memory`): a block
//! of shared memory and a locked counter, each with a name in `/dev/shm`, attached by those
//! names from a child started with spawn (which inherits nothing from the parent); then
//! Python's rules: close, unlink, and what a killed creator leaves.

use anyhow::{Context, ensure};
use lesson::{Activity, Cx, Handoff};
use processes::Process;
use serde::{Deserialize, Serialize};

use crate::{SharedMemory, ShmError, Value};

/// Increments the spawned child makes.
pub const INCREMENTS: u64 = 1000;

/// What the spawned child is told: the two names, and how to narrate.
#[derive(Debug, Serialize, Deserialize)]
pub struct AttachArg {
    /// The raw block.
    pub block: String,
    /// The block holding the counter.
    pub counter: String,
    /// The parent's lesson context.
    pub handoff: Handoff,
}

/// The spawn entry `shm-attach`: attach both blocks by name, read the parent's greeting,
/// write one back, count to [`INCREMENTS`] under the counter's lock.
pub fn attach_and_write(arg: &[u8]) -> anyhow::Result<()> {
    let arg: AttachArg = processes::decode(arg)?;
    let cx = arg.handoff.cx();
    let shm = SharedMemory::attach(&arg.block)?;
    let mut greeting = [0u8; 15];
    shm.read(0, &mut greeting)?;
    cx.say(format!(
        "child: attached {:?} by name; it says {:?}",
        arg.block,
        String::from_utf8_lossy(&greeting)
    ));
    shm.write(32, b"child was here")?;
    shm.close();
    let counter_block = SharedMemory::attach(&arg.counter)?;
    let counter = Value::<u64>::attach_shared(&counter_block)?;
    {
        let _working = cx.span(Activity::Work, "1000 increments under the lock");
        for _ in 0..INCREMENTS {
            *counter.lock()? += 1;
        }
    }
    cx.say(format!(
        "child: counted to {INCREMENTS} in {:?}",
        arg.counter
    ));
    Ok(())
}

/// The parent's side: create both blocks, spawn the child, see what it did, unlink. What the
/// parent read back, the counter, and the error of attaching after the unlink.
pub fn across_spawn(cx: &Cx) -> anyhow::Result<(String, u64, ShmError)> {
    processes::register(super::ENTRIES);
    let shm = SharedMemory::create(64)?;
    shm.write(0, b"parent was here")?;
    let (counter, counter_block) = Value::<u64>::create_shared(0)?;
    cx.say(format!(
        "parent: created {:?} ({} bytes) and {:?} (a Value<u64> with its lock)",
        shm.name(),
        shm.size(),
        counter_block.name()
    ));
    let arg = AttachArg {
        block: shm.name().to_owned(),
        counter: counter_block.name().to_owned(),
        handoff: cx.handoff().named("Process-1"),
    };
    let mut p = Process::spawn_entry("shm-attach", &arg)?.named("Process-1");
    if let Some(exe) = cx.exe() {
        p = p.exe(exe);
    }
    p.start().context("spawning the child")?;
    let code = {
        let _waiting = cx.span(Activity::Wait, "join(): the spawned child");
        ensure!(
            p.join_timeout(cx.long_wait())?,
            "the spawned child never ended"
        );
        p.join()?
    };
    ensure!(code == 0, "the spawned child failed (exitcode {code})");
    let mut back = [0u8; 14];
    shm.read(32, &mut back)?;
    let back = String::from_utf8_lossy(&back).into_owned();
    let count = counter.get()?;
    cx.say(format!(
        "parent: the child wrote {back:?}; the counter is {count}"
    ));
    shm.unlink()?;
    counter_block.unlink()?;
    let gone = SharedMemory::attach(shm.name()).expect_err("unlinked");
    cx.say(format!(
        "parent: unlinked both; attaching {:?} again -> {gone}",
        shm.name()
    ));
    // This process keeps its mappings until the handles go: unlink removed only the names.
    shm.write(0, b"still mapped")?;
    Ok((back, count, gone))
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    cx.explain(
        "A forked child inherits anonymous shared memory; a child started with spawn inherits\n\
         nothing, so it needs a name: SharedMemory(create=True, size=64) puts a block in\n\
         /dev/shm, SharedMemory(name) attaches it in any process of the same user.",
    );
    let (back, count, gone) = across_spawn(cx)?;
    ensure!(back == "child was here", "the child's bytes: {back:?}");
    ensure!(count == INCREMENTS, "the counter: {count}");
    ensure!(
        matches!(gone, ShmError::NotFound(_)),
        "after unlink: {gone}"
    );
    cx.explain(
        "Python's rules: close() unmaps it in one process, unlink() removes the name (once,\n\
         when every process has attached), the memory goes with the last mapping. A block\n\
         left behind by a creator that exits is unlinked at its exit (Python's resource\n\
         tracker does the same); one killed first is found dead by the next process that\n\
         creates a block (its header names its creator), and unlinked then.",
    );
    Ok(())
}

/// The spawn entry `shm-create-then-exit`: create a block under the name given, and return
/// (a normal exit, which runs the `atexit` handler that unlinks it). For tests.
pub fn create_then_exit(arg: &[u8]) -> anyhow::Result<()> {
    let name: String = processes::decode(arg)?;
    let shm = SharedMemory::create_named(&name, 16)?;
    shm.close();
    Ok(())
}

/// The spawn entry `shm-create-then-wait`: create a block under the name given, and wait to
/// be killed. For tests.
pub fn create_then_wait(arg: &[u8]) -> anyhow::Result<()> {
    let name: String = processes::decode(arg)?;
    let _shm = SharedMemory::create_named(&name, 16)?;
    std::thread::sleep(std::time::Duration::from_secs(600));
    Ok(())
}
