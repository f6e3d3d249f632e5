//! Issue 20's fault tests for the process-shared synchronisation objects: a holder or a waiter
//! SIGKILLed at a chosen moment. The next acquirer is told, nobody hangs (every wait has a
//! deadline), and nothing is left in `/dev/shm` (the objects live in anonymous shared memory).
//!
//! A child says it is in place (holding, or waiting) through a pipe, a semaphore or the
//! object's own state, and is killed only then.

use std::time::{Duration, Instant};

use ipc::{Barrier, Condition, Event, Pipe, RLock, Semaphore, SyncError};
use lesson::within;
use processes::Process;

const LONG: Duration = Duration::from_secs(60);

static FORK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    FORK.lock().unwrap_or_else(|e| e.into_inner())
}

fn shm_entries() -> usize {
    std::fs::read_dir("/dev/shm").map_or(0, |d| d.count())
}

/// Start `child`, wait until it says (through `ready`) it is in place, SIGKILL and reap it.
fn kill_when_ready(mut child: Process, ready: &ipc::Connection<(), u8>) {
    child.start().unwrap();
    assert_eq!(
        ready.recv_timeout(LONG).unwrap(),
        1,
        "the child is in place"
    );
    child.kill().unwrap();
    assert_eq!(child.join().unwrap(), -9);
}

/// A child's last act: say it is in place, then wait to be killed.
fn tell_and_wait(tell: &ipc::Connection<u8, ()>) -> anyhow::Result<()> {
    tell.send(&1)?;
    std::thread::sleep(Duration::from_secs(600));
    Ok(())
}

#[test]
fn a_semaphore_permit_held_by_a_killed_process_comes_back_and_the_acquirer_is_told() {
    let _fork = serial();
    let before = shm_entries();
    within(LONG, "semaphore holder killed", || {
        let sem = Semaphore::new(1).unwrap();
        let s = sem.clone();
        let (ready, tell) = Pipe::oneway::<u8>().unwrap();
        let holder = Process::new(move || -> anyhow::Result<()> {
            let _permit = s.acquire()?;
            tell_and_wait(&tell)
        });
        kill_when_ready(holder, &ready);
        assert_eq!(
            sem.get_value(),
            0,
            "nothing gives the permit back by itself"
        );
        let p = sem
            .acquire_timeout(LONG)
            .unwrap()
            .expect("the dead holder's permit came back");
        assert_eq!(p.reclaimed(), 1);
        assert!(p.owner_died());
        drop(p);
        // Told once; afterwards an ordinary permit.
        let again = sem.acquire_timeout(LONG).unwrap().unwrap();
        assert!(!again.owner_died());
        assert_eq!(sem.get_value(), 0);
    });
    assert_eq!(shm_entries(), before, "something was left in /dev/shm");
}

/// A permit taken for good (`forget`, Python's bare `acquire`) was not held but consumed: a
/// semaphore counting signals must not grow a phantom one when the consumer dies.
#[test]
fn a_permit_taken_for_good_is_not_given_back_when_its_taker_dies() {
    let _fork = serial();
    within(LONG, "forgotten permit", || {
        let sem = Semaphore::new(1).unwrap();
        let s = sem.clone();
        let (ready, tell) = Pipe::oneway::<u8>().unwrap();
        let taker = Process::new(move || -> anyhow::Result<()> {
            s.acquire()?.forget()?;
            tell_and_wait(&tell)
        });
        kill_when_ready(taker, &ready);
        // Several looks for dead holders pass; none finds a permit to give back.
        let none = sem.acquire_timeout(ipc::synchronize::PROBE * 5).unwrap();
        assert!(none.is_none(), "a consumed permit came back");
    });
}

#[test]
fn many_waiters_share_the_permits_of_a_killed_holder_exactly() {
    let _fork = serial();
    within(LONG, "two permits, three waiters", || {
        let sem = Semaphore::new(2).unwrap();
        let s = sem.clone();
        let (ready, tell) = Pipe::oneway::<u8>().unwrap();
        let holder = Process::new(move || -> anyhow::Result<()> {
            let a = s.acquire()?;
            let b = s.acquire()?;
            tell.send(&1)?;
            std::thread::sleep(Duration::from_secs(600));
            drop((a, b));
            Ok(())
        });
        kill_when_ready(holder, &ready);
        let a = sem.acquire_timeout(LONG).unwrap().unwrap();
        let b = sem.acquire_timeout(LONG).unwrap().unwrap();
        assert_eq!(
            a.reclaimed() + b.reclaimed(),
            2,
            "both permits came back, once"
        );
        assert!(
            sem.try_acquire().unwrap().is_none(),
            "no third permit appeared"
        );
    });
}

#[test]
fn an_rlock_held_three_levels_deep_by_a_killed_process_is_taken_over() {
    let _fork = serial();
    within(LONG, "rlock holder killed", || {
        let r = RLock::new().unwrap();
        let held = r.clone();
        let (ready, tell) = Pipe::oneway::<u8>().unwrap();
        let holder = Process::new(move || -> anyhow::Result<()> {
            let _a = held.acquire()?;
            let _b = held.acquire()?;
            let _c = held.acquire()?;
            tell_and_wait(&tell)
        });
        kill_when_ready(holder, &ready);
        let g = r.acquire_timeout(LONG).unwrap().expect("taken over");
        assert!(g.owner_died());
        assert_eq!(r.count(), 1, "the dead owner's levels are not ours");
        drop(g);
        assert!(!r.is_owned());
        assert!(!r.acquire().unwrap().owner_died(), "told once");
    });
}

#[test]
fn a_condition_waiter_killed_while_waiting_does_not_swallow_a_notify() {
    let _fork = serial();
    within(LONG, "condition waiter killed", || {
        let cond = Condition::new().unwrap();
        let sleeping = Semaphore::new(0).unwrap();
        let woken = Semaphore::new(0).unwrap();
        let waiter = |name: &'static str| {
            let (c, s, w) = (cond.clone(), sleeping.clone(), woken.clone());
            Process::new(move || -> anyhow::Result<()> {
                let mut g = c.acquire()?;
                s.release()?;
                g.wait()?;
                w.release()?;
                Ok(())
            })
            .named(name)
        };
        let take = |sem: &Semaphore| {
            sem.acquire_timeout(LONG)
                .unwrap()
                .unwrap()
                .forget()
                .unwrap()
        };
        // The first waiter (the oldest, whom notify would pick first) is killed in its wait.
        let mut doomed = waiter("doomed");
        doomed.start().unwrap();
        take(&sleeping);
        // Taking the lock proves it has let go of it inside wait().
        drop(cond.acquire().unwrap());
        doomed.kill().unwrap();
        assert_eq!(doomed.join().unwrap(), -9);
        let mut live = waiter("live");
        live.start().unwrap();
        take(&sleeping);
        drop(cond.acquire().unwrap());
        cond.acquire().unwrap().notify(1).unwrap();
        assert!(
            woken.acquire_timeout(LONG).unwrap().is_some(),
            "the live waiter was never woken"
        );
        assert_eq!(live.join().unwrap(), 0);
    });
}

#[test]
fn a_condition_lock_holder_killed_is_reported_to_the_next() {
    let _fork = serial();
    within(LONG, "condition lock holder killed", || {
        let cond = Condition::new().unwrap();
        let c = cond.clone();
        let (ready, tell) = Pipe::oneway::<u8>().unwrap();
        let holder = Process::new(move || -> anyhow::Result<()> {
            let _g = c.acquire()?;
            tell_and_wait(&tell)
        });
        kill_when_ready(holder, &ready);
        let mut g = cond.acquire_timeout(LONG).unwrap().expect("taken over");
        assert!(g.owner_died());
        assert!(!g.wait_timeout(Duration::from_millis(1)).unwrap());
    });
}

#[test]
fn a_barrier_party_killed_while_waiting_breaks_it_instead_of_hanging_the_rest() {
    let _fork = serial();
    within(LONG, "barrier party killed", || {
        let b = Barrier::new(3).unwrap();
        let party = |b: &Barrier| {
            let b = b.clone();
            Process::new(move || -> anyhow::Result<()> {
                match b.wait() {
                    Err(SyncError::BrokenBarrier) => Ok(()),
                    other => anyhow::bail!("expected a broken barrier, got {other:?}"),
                }
            })
        };
        let mut doomed = party(&b);
        let mut other = party(&b);
        doomed.start().unwrap();
        other.start().unwrap();
        let deadline = Instant::now() + LONG;
        while b.n_waiting() < 2 {
            assert!(Instant::now() < deadline, "the parties never arrived");
            std::thread::sleep(Duration::from_millis(1));
        }
        doomed.kill().unwrap();
        assert_eq!(doomed.join().unwrap(), -9);
        // The survivor finds the dead party (within a few looks) and the barrier breaks.
        assert_eq!(other.join().unwrap(), 0);
        assert!(b.broken());
        assert!(matches!(b.wait(), Err(SyncError::BrokenBarrier)));
        // Reset, and it works again for three live parties.
        b.reset().unwrap();
        let mut two: Vec<Process> = (0..2)
            .map(|_| {
                let b = b.clone();
                Process::new(move || b.wait_timeout(LONG).map(|_| ()))
            })
            .collect();
        for p in &mut two {
            p.start().unwrap();
        }
        b.wait_timeout(LONG).unwrap();
        for p in &mut two {
            assert_eq!(p.join().unwrap(), 0);
        }
    });
}

#[test]
fn an_event_waiter_killed_while_waiting_leaves_the_event_working() {
    let _fork = serial();
    within(LONG, "event waiter killed", || {
        let e = Event::new().unwrap();
        let waiting = Semaphore::new(0).unwrap();
        let (ee, w) = (e.clone(), waiting.clone());
        let mut doomed = Process::new(move || -> anyhow::Result<()> {
            w.release()?;
            ee.wait();
            Ok(())
        });
        doomed.start().unwrap();
        waiting
            .acquire_timeout(LONG)
            .unwrap()
            .unwrap()
            .forget()
            .unwrap();
        doomed.kill().unwrap();
        assert_eq!(doomed.join().unwrap(), -9);
        let ee = e.clone();
        let mut live = Process::new(move || -> anyhow::Result<()> {
            anyhow::ensure!(ee.wait_timeout(LONG), "the set was not seen");
            Ok(())
        });
        live.start().unwrap();
        e.set();
        assert_eq!(live.join().unwrap(), 0);
        assert!(e.wait_timeout(Duration::ZERO));
    });
}
