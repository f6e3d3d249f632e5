//! Random operations from several processes against each synchronisation object's invariants:
//! the check of the futex and state-lock protocols (a lost wake-up shows as a missed deadline,
//! a broken count as a failed invariant). The seed is printed; `SYNC_SEED=N cargo test -p ipc
//! --test sync_model` repeats a run.

use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize};
use std::time::Duration;

use ipc::{Array, AtomicValue, Barrier, Condition, Event, RLock, Semaphore};
use lesson::testing::Rng;
use lesson::within;
use processes::Process;

const LONG: Duration = Duration::from_secs(120);
const PROCS: u64 = 4;

static FORK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    FORK.lock().unwrap_or_else(|e| e.into_inner())
}

fn seed() -> u64 {
    lesson::testing::seed("SYNC_SEED")
}

/// Process `k`'s random source, from the run's seed.
fn rng(seed: u64, k: u64) -> Rng {
    Rng::new(seed ^ (k + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// A short random pause: nothing, a yield, or spinning.
fn pause(rng: &mut Rng) {
    match rng.below(4) {
        0 => {}
        1 => std::thread::yield_now(),
        _ => {
            for _ in 0..rng.below(2000) {
                std::hint::spin_loop();
            }
        }
    }
}

/// `f(k, rng)` in `PROCS` forked processes; all must succeed.
fn in_processes(
    seed: u64,
    f: impl Fn(u64, &mut Rng) -> anyhow::Result<()> + Clone + Send + 'static,
) {
    let mut procs: Vec<Process> = (0..PROCS)
        .map(|k| {
            let f = f.clone();
            Process::new(move || f(k, &mut rng(seed, k)))
        })
        .collect();
    for p in &mut procs {
        p.start().unwrap();
    }
    for p in &mut procs {
        assert_eq!(p.join().unwrap(), 0, "a process failed (see its stderr)");
    }
}

/// At most `k` inside a `Semaphore(k)` at once, `k` reached, and all permits back at the end,
/// whatever mix of acquire, try_acquire, acquire_timeout, forget + release the processes do.
#[test]
fn semaphore_never_lets_more_than_k_in() {
    let _fork = serial();
    let seed = seed();
    within(LONG, "semaphore model", move || {
        const K: u32 = 2;
        let sem = Semaphore::new(K).unwrap();
        let inside = AtomicValue::new(AtomicI64::new(0)).unwrap();
        let most = AtomicValue::new(AtomicI64::new(0)).unwrap();
        let (s, i, m) = (sem.clone(), inside.clone(), most.clone());
        in_processes(seed, move |_, rng| {
            for _ in 0..300 {
                let permit = match rng.below(3) {
                    0 => Some(s.acquire()?),
                    1 => s.try_acquire()?,
                    _ => s.acquire_timeout(Duration::from_micros(rng.below(500) as u64))?,
                };
                let Some(permit) = permit else { continue };
                let now = i.fetch_add(1, SeqCst) + 1;
                m.fetch_max(now, SeqCst);
                anyhow::ensure!(now <= K.into(), "{now} inside a semaphore of {K}");
                pause(rng);
                i.fetch_sub(1, SeqCst);
                if rng.below(4) == 0 {
                    permit.forget()?;
                    pause(rng);
                    s.release()?;
                } else {
                    drop(permit);
                }
            }
            Ok(())
        });
        assert_eq!(sem.get_value(), K, "permits lost or made up");
        assert!(most.load(SeqCst) >= 1);
    });
}

/// Ping-pong through two events with random pauses and clears: every hand-off arrives (a lost
/// wake-up would stall a side until the deadline).
#[test]
fn event_hand_offs_are_never_lost() {
    let _fork = serial();
    let seed = seed();
    within(LONG, "event model", move || {
        const ROUNDS: u64 = 2000;
        let (ping, pong) = (Event::new().unwrap(), Event::new().unwrap());
        let seen = AtomicValue::new(AtomicU64::new(0)).unwrap();
        let (pi, po, sn) = (ping.clone(), pong.clone(), seen.clone());
        let mut child = Process::new(move || -> anyhow::Result<()> {
            let mut rng = rng(seed, 99);
            for _ in 0..ROUNDS {
                anyhow::ensure!(pi.wait_timeout(LONG), "a ping was lost");
                pi.clear();
                sn.fetch_add(1, SeqCst);
                pause(&mut rng);
                po.set();
            }
            Ok(())
        });
        child.start().unwrap();
        let mut rng = rng(seed, 100);
        for r in 0..ROUNDS {
            pause(&mut rng);
            ping.set();
            assert!(pong.wait_timeout(LONG), "a pong was lost at round {r}");
            pong.clear();
            assert_eq!(seen.load(SeqCst), r + 1);
        }
        assert_eq!(child.join().unwrap(), 0);
    });
}

/// Producers and consumers over one condition: every item produced is consumed exactly once,
/// with notify(1), notify_all and timed waits mixed at random.
#[test]
fn condition_hands_every_item_to_exactly_one_consumer() {
    let _fork = serial();
    let seed = seed();
    within(LONG, "condition model", move || {
        const PER: u64 = 200;
        let cond = Condition::new().unwrap();
        let items = AtomicValue::new(AtomicI64::new(0)).unwrap();
        let taken = AtomicValue::new(AtomicU64::new(0)).unwrap();
        let (c, it, tk) = (cond.clone(), items.clone(), taken.clone());
        // Processes 0 and 1 produce PER items each; 2 and 3 consume PER each.
        in_processes(seed, move |k, rng| {
            for _ in 0..PER {
                let mut g = c.acquire()?;
                if k < 2 {
                    it.fetch_add(1, SeqCst);
                    if rng.below(3) == 0 {
                        g.notify_all()?;
                    } else {
                        g.notify(1)?;
                    }
                } else {
                    loop {
                        let t = (rng.below(3) == 0)
                            .then(|| Duration::from_micros(rng.below(300) as u64));
                        if g.wait_for(|| it.load(SeqCst) > 0, t.or(Some(LONG)))? {
                            break;
                        }
                    }
                    let left = it.fetch_sub(1, SeqCst) - 1;
                    anyhow::ensure!(left >= 0, "an item taken twice");
                    tk.fetch_add(1, SeqCst);
                }
                drop(g);
                pause(rng);
            }
            Ok(())
        });
        assert_eq!(taken.load(SeqCst), 2 * PER);
        assert_eq!(items.load(SeqCst), 0);
    });
}

/// Many rounds of a barrier: in each, the arrival indices are exactly 0..PROCS.
#[test]
fn barrier_rounds_give_each_index_once() {
    let _fork = serial();
    let seed = seed();
    within(LONG, "barrier model", move || {
        const ROUNDS: usize = 100;
        let b = Barrier::new(PROCS as usize).unwrap().with_timeout(LONG);
        let indices = Array::new(ROUNDS * PROCS as usize, u8::MAX).unwrap();
        let (bb, ix) = (b.clone(), indices.clone());
        in_processes(seed, move |k, rng| {
            for r in 0..ROUNDS {
                pause(rng);
                let i = bb.wait()?;
                ix.lock()?[r * PROCS as usize + k as usize] = i as u8;
            }
            Ok(())
        });
        let all = indices.lock().unwrap();
        for r in 0..ROUNDS {
            let mut round: Vec<u8> = all[r * PROCS as usize..(r + 1) * PROCS as usize].to_vec();
            round.sort();
            assert_eq!(round, (0..PROCS as u8).collect::<Vec<_>>(), "round {r}");
        }
        assert!(!b.broken());
    });
}

/// Random nesting of an RLock across processes: one owner at a time, and every level given
/// back (another process can take it at the end).
#[test]
fn rlock_has_one_owner_at_a_time_at_any_depth() {
    let _fork = serial();
    let seed = seed();
    within(LONG, "rlock model", move || {
        let r = RLock::new().unwrap();
        let owner = AtomicValue::new(AtomicUsize::new(0)).unwrap();
        let (rr, ow) = (r.clone(), owner.clone());
        in_processes(seed, move |k, rng| {
            let me = k as usize + 1;
            for _ in 0..300 {
                let depth = 1 + rng.below(3);
                let mut guards = Vec::new();
                for level in 0..depth {
                    guards.push(rr.acquire()?);
                    if level == 0 {
                        let before = ow.swap(me, SeqCst);
                        anyhow::ensure!(before == 0, "two owners: {before} and {me}");
                    }
                    anyhow::ensure!(rr.count() as usize == level + 1);
                }
                pause(rng);
                ow.store(0, SeqCst);
                while guards.pop().is_some() {}
            }
            Ok(())
        });
        assert!(
            r.try_acquire().unwrap().is_some(),
            "a level was never given back"
        );
    });
}
