//! CPython 3.11's `_TestSharedMemory` (`Lib/test/_test_multiprocessing.py`), ported to
//! `ipc::SharedMemory`; each test named after its original. Then this crate's promise beyond
//! Python's: nothing left in `/dev/shm` when a creator exits or is killed, whatever it holds.
//!
//! Creators that must really exit or be killed are the chapter binary started with spawn
//! (entries `shm-create-then-exit`, `shm-create-then-wait`).

use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use ipc::{SharedMemory, ShmError, Value};
use lesson::within;
use processes::Process;

const LONG: Duration = Duration::from_secs(60);

static FORK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    FORK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Python's `_new_shm_name`: a prefix and this process's pid, so parallel runs do not clash.
fn new_name(prefix: &str) -> String {
    format!("{prefix}{}", std::process::id())
}

#[test]
fn test_shared_memory_basics() {
    let name = new_name("test01_tsmb");
    let sms = SharedMemory::create_named(&name, 512).unwrap();
    assert_eq!(sms.name(), name);
    assert!(sms.size() >= 512);
    assert!(sms.buf().unwrap().len() >= sms.size());
    let shown = format!("{sms:?}");
    assert!(shown.contains(&name) && shown.contains("512"), "{shown}");
    sms.buf().unwrap()[0].store(42, SeqCst);
    assert_eq!(sms.buf().unwrap()[0].load(SeqCst), 42);
    let also = SharedMemory::attach(&name).unwrap();
    assert_eq!(also.buf().unwrap()[0].load(SeqCst), 42);
    also.close();
    // Python's size 0 / negative size is a ValueError; a usize cannot be negative.
    assert!(matches!(SharedMemory::create(0), Err(ShmError::Io(_))));
    // Unlinking twice: the second is FileNotFoundError.
    let dbl = new_name("test01_dblunlink");
    let uno = SharedMemory::create_named(&dbl, 5000).unwrap();
    assert!(uno.size() >= 5000);
    let duo = SharedMemory::attach(&dbl).unwrap();
    duo.unlink().unwrap();
    duo.close();
    assert!(matches!(uno.unlink(), Err(ShmError::NotFound(_))));
    uno.close();
    // A name in use cannot be created again.
    assert!(matches!(
        SharedMemory::create_named(&name, 512),
        Err(ShmError::Exists(_))
    ));
    // Attaching a name that does not exist.
    assert!(matches!(
        SharedMemory::attach("test01_notthere"),
        Err(ShmError::NotFound(_))
    ));
    sms.unlink().unwrap();
    sms.close();
}

/// Python's mocks `_make_filename` to hand out a name in use; here: fresh names never clash
/// with blocks already there, however many there are.
#[test]
fn test_shared_memory_recreate() {
    let a = SharedMemory::create(1).unwrap();
    let b = SharedMemory::create(1).unwrap();
    assert_ne!(a.name(), b.name());
    a.unlink().unwrap();
    b.unlink().unwrap();
}

#[test]
fn test_invalid_shared_memory_cration() {
    assert!(matches!(SharedMemory::create(0), Err(ShmError::Io(_))));
    for bad in ["", "a/b", "nul\0", &"x".repeat(201)] {
        assert!(
            matches!(
                SharedMemory::create_named(bad, 1),
                Err(ShmError::BadName(_))
            ),
            "{bad:?}"
        );
    }
}

/// No pickling here: the name is what crosses to another process, and attaching by it after
/// the block was closed and unlinked is Python's `FileNotFoundError`.
#[test]
fn test_shared_memory_pickle_unpickle_dead_object() {
    let sms = SharedMemory::create(512).unwrap();
    sms.write(0, b"pickle").unwrap();
    let name = sms.name().to_owned();
    sms.unlink().unwrap();
    sms.close();
    assert!(matches!(
        SharedMemory::attach(&name),
        Err(ShmError::NotFound(_))
    ));
}

#[test]
fn test_shared_memory_across_processes() {
    let _fork = serial();
    within(LONG, "across processes", || {
        let sms = SharedMemory::create(512).unwrap();
        let name = sms.name().to_owned();
        let mut p = Process::new(move || -> anyhow::Result<()> {
            let local = SharedMemory::attach(&name)?;
            local.write(0, b"howdy")?;
            local.close();
            Ok(())
        });
        p.start().unwrap();
        assert_eq!(p.join().unwrap(), 0);
        let mut got = [0u8; 5];
        sms.read(0, &mut got).unwrap();
        assert_eq!(&got, b"howdy");
        sms.unlink().unwrap();
    });
}

/// A spawned chapter binary running `entry` with `name`.
fn spawned(entry: &str, name: &str) -> Process {
    processes::register(ipc::lessons::ENTRIES);
    Process::spawn_entry(entry, &name.to_owned())
        .unwrap()
        .exe(env!("CARGO_BIN_EXE_ipc"))
}

/// Python's child is terminated and its resource tracker unlinks the block; here the child is
/// SIGKILLed (no handler runs at all) and the next block this process creates sweeps it away.
#[test]
fn test_shared_memory_cleaned_after_process_termination() {
    let _fork = serial();
    within(LONG, "killed creator", || {
        let name = new_name("test_killed_creator");
        let mut p = spawned("shm-create-then-wait", &name);
        p.start().unwrap();
        let deadline = Instant::now() + LONG;
        while SharedMemory::attach(&name).is_err() {
            assert!(Instant::now() < deadline, "the child never created it");
            std::thread::sleep(Duration::from_millis(1));
        }
        p.kill().unwrap();
        assert_eq!(p.join().unwrap(), -9);
        // Nothing ran in the killed process: the block stays until a sweep (this test does
        // not look, as another test's create may sweep it first).
        let next = SharedMemory::create(1).unwrap();
        assert!(
            matches!(SharedMemory::attach(&name), Err(ShmError::NotFound(_))),
            "the dead creator's block was not swept"
        );
        next.unlink().unwrap();
    });
}

#[test]
fn a_block_whose_creator_exits_without_unlinking_is_unlinked_at_its_exit() {
    let _fork = serial();
    within(LONG, "exiting creator", || {
        let name = new_name("test_exiting_creator");
        let mut p = spawned("shm-create-then-exit", &name);
        p.start().unwrap();
        assert_eq!(p.join().unwrap(), 0);
        assert!(matches!(
            SharedMemory::attach(&name),
            Err(ShmError::NotFound(_))
        ));
    });
}

/// A typed block is refused as raw bytes and as another type: writing bytes over its mutex
/// could corrupt the memory of the process holding it.
#[test]
fn a_typed_block_is_reached_only_as_what_it_holds() {
    let (v, block) = Value::create_shared(5u64).unwrap();
    let attached = SharedMemory::attach(block.name()).unwrap();
    assert!(matches!(attached.buf(), Err(ShmError::WrongKind { .. })));
    assert!(matches!(
        Value::<u32>::attach_shared(&attached),
        Err(ShmError::WrongKind { .. })
    ));
    assert!(matches!(
        ipc::Array::<u64>::attach_shared(&attached),
        Err(ShmError::WrongKind { .. })
    ));
    let same = Value::<u64>::attach_shared(&attached).unwrap();
    same.set(6).unwrap();
    assert_eq!(v.get().unwrap(), 6);
    block.unlink().unwrap();
    // The name is gone; both handles keep working on their mapping.
    assert_eq!(same.get().unwrap(), 6);
}

#[test]
fn a_shared_array_is_attached_by_name_in_a_child() {
    let _fork = serial();
    within(LONG, "array by name", || {
        let (a, block) = ipc::Array::create_shared(4, 0u32).unwrap();
        let name = block.name().to_owned();
        let mut p = Process::new(move || -> anyhow::Result<()> {
            let b = SharedMemory::attach(&name)?;
            let arr = ipc::Array::<u32>::attach_shared(&b)?;
            arr.lock()?.copy_from_slice(&[1, 2, 3, 4]);
            Ok(())
        });
        p.start().unwrap();
        assert_eq!(p.join().unwrap(), 0);
        assert_eq!(&*a.lock().unwrap(), &[1, 2, 3, 4]);
        block.unlink().unwrap();
    });
}

/// A block this crate did not make (no header, or one too short to hold it) is refused, and
/// the sweep leaves it alone.
#[test]
fn a_foreign_block_is_refused_and_left_alone() {
    for (suffix, len) in [("long", 4096usize), ("short", 10)] {
        let name = new_name(&format!("test_foreign_{suffix}"));
        let path = std::path::Path::new("/dev/shm").join(&name);
        std::fs::write(&path, vec![0u8; len]).unwrap();
        assert!(
            matches!(SharedMemory::attach(&name), Err(ShmError::WrongKind { .. })),
            "{suffix}"
        );
        let next = SharedMemory::create(1).unwrap();
        next.unlink().unwrap();
        assert!(path.exists(), "the sweep removed a block that is not ours");
        std::fs::remove_file(&path).unwrap();
    }
}
