//! CPython 3.11's `_TestLock.test_rlock`, `_TestSemaphore`, `_TestCondition` and `_TestEvent`
//! (`Lib/test/_test_multiprocessing.py`), ported to `ipc::RLock`, `ipc::Semaphore`,
//! `ipc::BoundedSemaphore`, `ipc::Condition` and `ipc::Event`, with the other parties in
//! forked processes (and threads, where Python mixes them; `_TestBarrier` is in
//! `cpython_barrier.rs`). Each test is named after its original. Python's timed assertions keep their lower
//! bound only; its "nothing happened yet" sleeps stay (they can only make a test pass less
//! often, never hide a failure), and every "it happened" is waited for with a deadline.

use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use ipc::{AtomicValue, BoundedSemaphore, Condition, Event, RLock, Semaphore, SyncError};
use lesson::within;
use processes::Process;

const LONG: Duration = Duration::from_secs(60);
const DELTA: Duration = Duration::from_millis(100);
const TIMEOUT1: Duration = Duration::from_millis(100);
const TIMEOUT2: Duration = Duration::from_millis(200);

static FORK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    FORK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Python's bare `sem.acquire()`: taken for good, within `LONG`.
fn take(sem: &Semaphore) {
    sem.acquire_timeout(LONG)
        .unwrap()
        .expect("timed out taking a permit")
        .forget()
        .unwrap();
}

/// Python's `assertReachesEventually`: `f()` becomes `want` within `LONG`.
fn eventually(want: u32, f: impl Fn() -> u32) {
    let deadline = Instant::now() + LONG;
    while f() != want {
        assert!(
            Instant::now() < deadline,
            "never reached {want} (at {})",
            f()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn start(mut p: Process) -> Process {
    p.start().unwrap();
    p
}

fn joined(mut procs: Vec<Process>) {
    for p in &mut procs {
        assert_eq!(p.join().unwrap(), 0, "a child failed");
    }
}

// _TestLock

#[test]
fn test_rlock() {
    let lock = RLock::new().unwrap();
    let a = lock.acquire().unwrap();
    let b = lock.acquire().unwrap();
    let c = lock.acquire().unwrap();
    assert_eq!(lock.count(), 3);
    drop(c);
    drop(b);
    drop(a);
    // A fourth release (Python's RuntimeError) cannot be written: no guard is left.
    assert!(!lock.is_owned());
    // And another process can take it now.
    let _fork = serial();
    let l = lock.clone();
    let mut p = start(Process::new(move || -> anyhow::Result<()> {
        let g = l.try_acquire()?;
        anyhow::ensure!(g.is_some(), "the released rlock is still held");
        Ok(())
    }));
    assert_eq!(p.join().unwrap(), 0);
}

// _TestSemaphore

fn semaphore_basics(sem: &Semaphore) {
    assert_eq!(sem.get_value(), 2);
    take(sem);
    assert_eq!(sem.get_value(), 1);
    take(sem);
    assert_eq!(sem.get_value(), 0);
    assert!(sem.try_acquire().unwrap().is_none());
    assert_eq!(sem.get_value(), 0);
    sem.release().unwrap();
    assert_eq!(sem.get_value(), 1);
    sem.release().unwrap();
    assert_eq!(sem.get_value(), 2);
}

#[test]
fn test_semaphore() {
    let sem = Semaphore::new(2).unwrap();
    semaphore_basics(&sem);
    sem.release().unwrap();
    assert_eq!(sem.get_value(), 3);
    sem.release().unwrap();
    assert_eq!(sem.get_value(), 4);
}

/// Python comments out its over-release check ("currently fails on OS/X"); it holds here.
#[test]
fn test_bounded_semaphore() {
    let sem = BoundedSemaphore::new(2).unwrap();
    semaphore_basics(&sem);
    assert!(matches!(
        sem.release(),
        Err(SyncError::OverRelease { bound: 2, n: 1 })
    ));
    assert_eq!(sem.get_value(), 2);
}

#[test]
fn test_timeout() {
    let sem = Semaphore::new(0).unwrap();
    assert!(sem.try_acquire().unwrap().is_none());
    for t in [TIMEOUT2, Duration::from_millis(300)] {
        let began = Instant::now();
        assert!(sem.acquire_timeout(t).unwrap().is_none());
        assert!(began.elapsed() >= t, "returned before its timeout");
    }
}

// _TestCondition

/// Python's `f`: take the lock, say it sleeps, wait (at most `timeout`), say it woke.
fn sleeper(cond: &Condition, sleeping: &Semaphore, woken: &Semaphore, timeout: Option<Duration>) {
    let mut g = cond.acquire().unwrap();
    sleeping.release().unwrap();
    match timeout {
        Some(t) => {
            g.wait_timeout(t).unwrap();
        }
        None => {
            g.wait().unwrap();
        }
    }
    woken.release().unwrap();
}

/// A sleeper in a forked process and one in a thread.
fn sleepers(
    cond: &Condition,
    sleeping: &Semaphore,
    woken: &Semaphore,
    timeout: Option<Duration>,
) -> (Process, std::thread::JoinHandle<()>) {
    let (c, s, w) = (cond.clone(), sleeping.clone(), woken.clone());
    let p = start(Process::new(move || sleeper(&c, &s, &w, timeout)));
    let (c, s, w) = (cond.clone(), sleeping.clone(), woken.clone());
    let t = std::thread::spawn(move || sleeper(&c, &s, &w, timeout));
    (p, t)
}

#[test]
fn test_notify() {
    let _fork = serial();
    within(LONG, "test_notify", || {
        let cond = Condition::new().unwrap();
        let (sleeping, woken) = (Semaphore::new(0).unwrap(), Semaphore::new(0).unwrap());
        let (p, t) = sleepers(&cond, &sleeping, &woken, None);
        take(&sleeping);
        take(&sleeping);
        std::thread::sleep(DELTA);
        assert_eq!(woken.get_value(), 0);
        cond.acquire().unwrap().notify(1).unwrap();
        eventually(1, || woken.get_value());
        std::thread::sleep(DELTA);
        assert_eq!(woken.get_value(), 1, "one notify woke two");
        cond.acquire().unwrap().notify(1).unwrap();
        eventually(2, || woken.get_value());
        t.join().unwrap();
        joined(vec![p]);
    });
}

#[test]
fn test_notify_all() {
    let _fork = serial();
    within(LONG, "test_notify_all", || {
        let cond = Condition::new().unwrap();
        let (sleeping, woken) = (Semaphore::new(0).unwrap(), Semaphore::new(0).unwrap());
        // Six that time out.
        let mut procs = Vec::new();
        let mut threads = Vec::new();
        for _ in 0..3 {
            let (p, t) = sleepers(&cond, &sleeping, &woken, Some(TIMEOUT1));
            procs.push(p);
            threads.push(t);
        }
        for _ in 0..6 {
            take(&sleeping);
        }
        for _ in 0..6 {
            take(&woken);
        }
        assert_eq!(woken.get_value(), 0);
        // Six that wait until notified.
        for _ in 0..3 {
            let (p, t) = sleepers(&cond, &sleeping, &woken, None);
            procs.push(p);
            threads.push(t);
        }
        for _ in 0..6 {
            take(&sleeping);
        }
        std::thread::sleep(DELTA);
        assert_eq!(woken.get_value(), 0);
        cond.acquire().unwrap().notify_all().unwrap();
        eventually(6, || woken.get_value());
        threads.into_iter().for_each(|t| t.join().unwrap());
        joined(procs);
    });
}

#[test]
fn test_notify_n() {
    let _fork = serial();
    within(LONG, "test_notify_n", || {
        let cond = Condition::new().unwrap();
        let (sleeping, woken) = (Semaphore::new(0).unwrap(), Semaphore::new(0).unwrap());
        let mut procs = Vec::new();
        let mut threads = Vec::new();
        for _ in 0..3 {
            let (p, t) = sleepers(&cond, &sleeping, &woken, None);
            procs.push(p);
            threads.push(t);
        }
        for _ in 0..6 {
            take(&sleeping);
        }
        std::thread::sleep(DELTA);
        assert_eq!(woken.get_value(), 0);
        cond.acquire().unwrap().notify(2).unwrap();
        eventually(2, || woken.get_value());
        std::thread::sleep(DELTA);
        assert_eq!(woken.get_value(), 2, "notify(2) woke more than two");
        cond.acquire().unwrap().notify(4).unwrap();
        eventually(6, || woken.get_value());
        cond.acquire().unwrap().notify(3).unwrap();
        assert_eq!(woken.get_value(), 6);
        threads.into_iter().for_each(|t| t.join().unwrap());
        joined(procs);
    });
}

#[test]
fn test_condition_timeout() {
    // Python's _TestCondition.test_timeout (renamed: _TestSemaphore has one too).
    let cond = Condition::new().unwrap();
    let mut g = cond.acquire().unwrap();
    let began = Instant::now();
    assert!(!g.wait_timeout(TIMEOUT1).unwrap());
    assert!(began.elapsed() >= TIMEOUT1);
}

#[test]
fn test_waitfor() {
    let _fork = serial();
    within(LONG, "test_waitfor", || {
        let cond = Condition::new().unwrap();
        let state = AtomicValue::new(std::sync::atomic::AtomicI64::new(-1)).unwrap();
        let (c, s) = (cond.clone(), state.clone());
        let mut p = start(Process::new(move || -> anyhow::Result<()> {
            let mut g = c.acquire()?;
            s.store(0, SeqCst);
            g.notify(1)?;
            let ok = g.wait_for(|| s.load(SeqCst) == 4, None)?;
            anyhow::ensure!(ok && s.load(SeqCst) == 4, "wait_for returned early");
            Ok(())
        }));
        {
            let mut g = cond.acquire().unwrap();
            assert!(g.wait_for(|| state.load(SeqCst) == 0, None).unwrap());
            assert_eq!(state.load(SeqCst), 0);
        }
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(10));
            let g = cond.acquire().unwrap();
            state.fetch_add(1, SeqCst);
            g.notify(1).unwrap();
        }
        assert_eq!(p.join().unwrap(), 0);
    });
}

#[test]
fn test_waitfor_timeout() {
    let _fork = serial();
    within(LONG, "test_waitfor_timeout", || {
        let cond = Condition::new().unwrap();
        let state = AtomicValue::new(std::sync::atomic::AtomicI64::new(0)).unwrap();
        let success = AtomicValue::new(std::sync::atomic::AtomicBool::new(false)).unwrap();
        let sem = Semaphore::new(0).unwrap();
        let (c, st, ok, s) = (cond.clone(), state.clone(), success.clone(), sem.clone());
        let mut p = start(Process::new(move || -> anyhow::Result<()> {
            s.release()?;
            let mut g = c.acquire()?;
            let expected = Duration::from_millis(100);
            let began = Instant::now();
            let result = g.wait_for(|| st.load(SeqCst) == 4, Some(expected))?;
            if !result && began.elapsed() >= expected {
                ok.store(true, SeqCst);
            }
            Ok(())
        }));
        take(&sem);
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(10));
            let g = cond.acquire().unwrap();
            state.fetch_add(1, SeqCst);
            g.notify(1).unwrap();
        }
        assert_eq!(p.join().unwrap(), 0);
        assert!(success.load(SeqCst));
    });
}

/// Without Python's last step (a SIGINT interrupting a second wait: no `KeyboardInterrupt`
/// here).
#[test]
fn test_wait_result() {
    let _fork = serial();
    within(LONG, "test_wait_result", || {
        let c = Condition::new().unwrap();
        let mut g = c.acquire().unwrap();
        assert!(!g.wait_timeout(Duration::ZERO).unwrap());
        assert!(!g.wait_timeout(TIMEOUT1).unwrap());
        let c2 = c.clone();
        let mut p = start(Process::new(move || -> anyhow::Result<()> {
            c2.acquire()?.notify(1)?;
            Ok(())
        }));
        assert!(g.wait_timeout(LONG).unwrap());
        drop(g);
        assert_eq!(p.join().unwrap(), 0);
    });
}

// _TestEvent

#[test]
fn test_event() {
    let _fork = serial();
    within(LONG, "test_event", || {
        let event = Event::new().unwrap();
        assert!(!event.is_set());
        assert!(!event.wait_timeout(Duration::ZERO));
        let began = Instant::now();
        assert!(!event.wait_timeout(TIMEOUT1));
        assert!(began.elapsed() >= TIMEOUT1);
        event.set();
        assert!(event.is_set());
        assert!(event.wait());
        assert!(event.wait_timeout(TIMEOUT1));
        event.clear();
        let e = event.clone();
        let mut p = start(Process::new(move || {
            std::thread::sleep(TIMEOUT2);
            e.set();
        }));
        assert!(event.wait());
        assert_eq!(p.join().unwrap(), 0);
    });
}

#[test]
fn test_repr() {
    let event = Event::new().unwrap();
    assert!(format!("{event:?}").contains("is_set: false"));
    event.set();
    assert!(format!("{event:?}").contains("is_set: true"));
    event.clear();
    assert!(format!("{event:?}").contains("is_set: false"));
}
