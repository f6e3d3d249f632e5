//! Issue 15, item 9: a process killed while holding the lock of a shared `Value` or `Array` is
//! reported to the next process that takes that lock, however it takes it (`get`, `set`,
//! `lock`), and reported once: after that the lock works normally.
//!
//! The holder signals through a pipe that it holds the lock (and has half-updated the data),
//! then waits to be killed.

use std::time::Duration;

use ipc::{Array, Pipe, Value};
use lesson::within;
use processes::Process;

const LONG: Duration = Duration::from_secs(60);

static FORK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    FORK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Start `child`, wait for it to say (through `ready`) that it holds the lock, kill it.
fn kill_when_ready(mut child: Process, ready: ipc::Connection<(), u8>) {
    child.start().unwrap();
    assert_eq!(ready.recv_timeout(LONG).unwrap(), 1, "the holder is ready");
    child.kill().unwrap();
    assert_eq!(child.join().unwrap(), -9);
}

/// A holder's last act: tell the parent it holds the lock, then wait to be killed.
fn tell_and_wait(tell: &ipc::Connection<u8, ()>) -> anyhow::Result<()> {
    tell.send(&1)?;
    std::thread::sleep(Duration::from_secs(600));
    Ok(())
}

#[test]
fn value_get_reports_a_holder_that_died_then_works() {
    let _fork = serial();
    within(LONG, "value get", || {
        let v = Value::new([1u64, 1]).unwrap();
        let held = v.clone();
        let (ready, tell) = Pipe::oneway::<u8>().unwrap();
        let holder = Process::new(move || -> anyhow::Result<()> {
            let mut g = held.lock()?;
            g[0] = 2; // half of an update that was to make both 2
            tell_and_wait(&tell)
        });
        kill_when_ready(holder, ready);
        let err = v.get().expect_err("the death of the holder is reported");
        assert!(err.to_string().contains("died"), "{err}");
        // Reported once: the lock is usable again, and the value is as the holder left it.
        assert_eq!(v.get().unwrap(), [2, 1]);
        v.set([2, 2]).unwrap();
        assert_eq!(v.get().unwrap(), [2, 2]);
    });
}

#[test]
fn value_set_reports_a_holder_that_died_and_writes_nothing() {
    let _fork = serial();
    within(LONG, "value set", || {
        let v = Value::new(7i64).unwrap();
        let held = v.clone();
        let (ready, tell) = Pipe::oneway::<u8>().unwrap();
        let holder = Process::new(move || -> anyhow::Result<()> {
            let mut g = held.lock()?;
            *g = 8;
            tell_and_wait(&tell)
        });
        kill_when_ready(holder, ready);
        let err = v.set(9).expect_err("the death of the holder is reported");
        assert!(err.to_string().contains("died"), "{err}");
        assert_eq!(v.get().unwrap(), 8, "the refused set wrote nothing");
    });
}

#[test]
fn an_array_guard_says_its_holder_died() {
    let _fork = serial();
    within(LONG, "array", || {
        let a = Array::new(4, 0u32).unwrap();
        let held = a.clone();
        let (ready, tell) = Pipe::oneway::<u8>().unwrap();
        let holder = Process::new(move || -> anyhow::Result<()> {
            let mut g = held.lock()?;
            g[..2].copy_from_slice(&[5, 5]); // half of [5, 5, 5, 5]
            tell_and_wait(&tell)
        });
        kill_when_ready(holder, ready);
        let g = a.lock().unwrap();
        assert!(g.owner_died(), "the half-written array must be flagged");
        assert_eq!(&*g, &[5, 5, 0, 0]);
        drop(g);
        assert!(!a.lock().unwrap().owner_died(), "reported once");
    });
}
