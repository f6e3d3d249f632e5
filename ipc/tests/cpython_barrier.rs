//! CPython 3.11's `_TestBarrier` (`Lib/test/_test_multiprocessing.py`, adapted there from
//! `lock_tests.py`), ported to `ipc::Barrier` with the other parties in forked processes
//! (Python's `Bunch`); each test is named after its original.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use ipc::{AtomicValue, Barrier, SyncError};
use lesson::within;
use processes::Process;

const LONG: Duration = Duration::from_secs(60);
const TIMEOUT1: Duration = Duration::from_millis(100);

static FORK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    FORK.lock().unwrap_or_else(|e| e.into_inner())
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

// _TestBarrier

const N: usize = 5;

/// Python's `run_threads` (a `Bunch`): `f` in N-1 forked processes and here; all must succeed.
fn run_parties(f: impl Fn() -> anyhow::Result<()> + Clone + Send + 'static) {
    let procs: Vec<Process> = (0..N - 1)
        .map(|_| {
            let f = f.clone();
            start(Process::new(f))
        })
        .collect();
    let here = f();
    joined(procs);
    here.unwrap();
}

fn counter() -> AtomicValue<AtomicUsize> {
    AtomicValue::new(AtomicUsize::new(0)).unwrap()
}

fn barrier() -> Barrier {
    Barrier::new(N).unwrap().with_timeout(LONG)
}

fn multipass(passes: usize) {
    let b = barrier();
    let (r0, r1) = (counter(), counter());
    let (bb, c0, c1) = (b.clone(), r0.clone(), r1.clone());
    run_parties(move || {
        anyhow::ensure!(bb.parties() == N);
        for i in 0..passes {
            c0.fetch_add(1, SeqCst);
            anyhow::ensure!(c1.load(SeqCst) == i * N, "out of lockstep");
            bb.wait()?;
            c1.fetch_add(1, SeqCst);
            anyhow::ensure!(c0.load(SeqCst) == (i + 1) * N, "out of lockstep");
            bb.wait()?;
        }
        anyhow::ensure!(bb.n_waiting() == 0 && !bb.broken());
        Ok(())
    });
    assert_eq!(r0.load(SeqCst), passes * N);
}

#[test]
fn test_barrier() {
    let _fork = serial();
    within(LONG, "test_barrier", || multipass(1));
}

#[test]
fn test_barrier_10() {
    let _fork = serial();
    within(LONG, "test_barrier_10", || multipass(10));
}

#[test]
fn test_wait_return() {
    let _fork = serial();
    within(LONG, "test_wait_return", || {
        let b = barrier();
        let q: ipc::Queue<usize> = ipc::Queue::new().unwrap();
        let (bb, qq) = (b.clone(), q.clone());
        run_parties(move || {
            qq.put(&bb.wait()?)?;
            Ok(())
        });
        let mut got: Vec<usize> = (0..N).map(|_| q.get_timeout(LONG).unwrap()).collect();
        got.sort();
        assert_eq!(got, (0..N).collect::<Vec<_>>(), "each arrival index once");
    });
}

#[test]
fn test_action() {
    let _fork = serial();
    within(LONG, "test_action", || {
        let results = counter();
        let r = results.clone();
        let b = Barrier::new(N)
            .unwrap()
            .with_action(move || {
                r.fetch_add(1, SeqCst);
            })
            .with_timeout(LONG);
        let (bb, rr) = (b.clone(), results.clone());
        run_parties(move || {
            bb.wait()?;
            anyhow::ensure!(
                rr.load(SeqCst) == 1,
                "the action ran {} times",
                rr.load(SeqCst)
            );
            Ok(())
        });
        assert_eq!(results.load(SeqCst), 1);
    });
}

#[test]
fn test_abort() {
    let _fork = serial();
    within(LONG, "test_abort", || {
        let b = barrier();
        let (r1, r2) = (counter(), counter());
        let (bb, c1, c2) = (b.clone(), r1.clone(), r2.clone());
        run_parties(move || {
            let outcome = bb.wait().and_then(|i| {
                if i == N / 2 {
                    return Ok(true);
                }
                bb.wait().map(|_| false)
            });
            match outcome {
                Ok(true) => bb.abort()?,
                Ok(false) => {
                    c1.fetch_add(1, SeqCst);
                }
                Err(SyncError::BrokenBarrier) => {
                    c2.fetch_add(1, SeqCst);
                }
                Err(e) => return Err(e.into()),
            }
            Ok(())
        });
        assert_eq!(r1.load(SeqCst), 0);
        assert_eq!(r2.load(SeqCst), N - 1);
        assert!(b.broken());
    });
}

#[test]
fn test_reset() {
    let _fork = serial();
    within(LONG, "test_reset", || {
        let b = barrier();
        let (r1, r2, r3) = (counter(), counter(), counter());
        let (bb, c1, c2, c3) = (b.clone(), r1.clone(), r2.clone(), r3.clone());
        run_parties(move || {
            let i = bb.wait()?;
            if i == N / 2 {
                let deadline = Instant::now() + LONG;
                while bb.n_waiting() < N - 1 {
                    anyhow::ensure!(Instant::now() < deadline, "the others never waited");
                    std::thread::sleep(Duration::from_millis(1));
                }
                bb.reset()?;
            } else {
                match bb.wait() {
                    Ok(_) => c1.fetch_add(1, SeqCst),
                    Err(SyncError::BrokenBarrier) => c2.fetch_add(1, SeqCst),
                    Err(e) => return Err(e.into()),
                };
            }
            bb.wait()?;
            c3.fetch_add(1, SeqCst);
            Ok(())
        });
        assert_eq!(r1.load(SeqCst), 0);
        assert_eq!(r2.load(SeqCst), N - 1);
        assert_eq!(r3.load(SeqCst), N);
    });
}

#[test]
fn test_abort_and_reset() {
    let _fork = serial();
    within(LONG, "test_abort_and_reset", || {
        let (b, b2) = (barrier(), barrier());
        let (r1, r2, r3) = (counter(), counter(), counter());
        let (bb, bb2, c1, c2, c3) = (b.clone(), b2.clone(), r1.clone(), r2.clone(), r3.clone());
        run_parties(move || {
            let outcome = bb.wait().and_then(|i| {
                if i == N / 2 {
                    return Ok(true);
                }
                bb.wait().map(|_| false)
            });
            match outcome {
                Ok(true) => bb.abort()?,
                Ok(false) => {
                    c1.fetch_add(1, SeqCst);
                }
                Err(SyncError::BrokenBarrier) => {
                    c2.fetch_add(1, SeqCst);
                }
                Err(e) => return Err(e.into()),
            }
            if bb2.wait()? == N / 2 {
                bb.reset()?;
            }
            bb2.wait()?;
            bb.wait()?;
            c3.fetch_add(1, SeqCst);
            Ok(())
        });
        assert_eq!(r1.load(SeqCst), 0);
        assert_eq!(r2.load(SeqCst), N - 1);
        assert_eq!(r3.load(SeqCst), N);
    });
}

/// Python's late party sleeps 1 s against the others' 0.5 s; here 0.3 s against 0.1 s.
#[test]
fn test_barrier_timeout() {
    // Python's _TestBarrier.test_timeout.
    let _fork = serial();
    within(LONG, "test_barrier_timeout", || {
        let b = barrier();
        let results = counter();
        let (bb, r) = (b.clone(), results.clone());
        run_parties(move || {
            if bb.wait()? == N / 2 {
                std::thread::sleep(Duration::from_millis(300));
            }
            if let Err(SyncError::BrokenBarrier) = bb.wait_timeout(TIMEOUT1) {
                r.fetch_add(1, SeqCst);
            }
            Ok(())
        });
        assert_eq!(results.load(SeqCst), N);
    });
}

#[test]
fn test_default_timeout() {
    let _fork = serial();
    within(LONG, "test_default_timeout", || {
        let b = Barrier::new(N).unwrap().with_timeout(TIMEOUT1);
        let results = counter();
        let (bb, r) = (b.clone(), results.clone());
        run_parties(move || {
            if bb.wait_timeout(LONG)? == N / 2 {
                std::thread::sleep(Duration::from_millis(300));
            }
            if let Err(SyncError::BrokenBarrier) = bb.wait() {
                r.fetch_add(1, SeqCst);
            }
            Ok(())
        });
        assert_eq!(results.load(SeqCst), N);
    });
}

#[test]
fn test_single_thread() {
    let b = Barrier::new(1).unwrap();
    b.wait().unwrap();
    b.wait().unwrap();
}

/// Python's 1000 passes; 200 here (the same check, a fifth of the time).
#[test]
fn test_thousand() {
    let _fork = serial();
    within(LONG, "test_thousand", || {
        const PASSES: u32 = 200;
        let b = barrier();
        let lock = ipc::Lock::new().unwrap();
        let (conn, child_conn) = ipc::Pipe::oneway::<u32>().unwrap();
        let child_conn = std::sync::Arc::new(child_conn);
        let procs: Vec<Process> = (0..N)
            .map(|_| {
                let (bb, l, c) = (b.clone(), lock.clone(), child_conn.clone());
                start(Process::new(move || -> anyhow::Result<()> {
                    for i in 0..PASSES {
                        bb.wait()?;
                        let _g = l.acquire()?;
                        c.send(&i)?;
                    }
                    Ok(())
                }))
            })
            .collect();
        for i in 0..PASSES {
            for _ in 0..N {
                assert_eq!(conn.recv_timeout(LONG).unwrap(), i);
            }
        }
        joined(procs);
    });
}
