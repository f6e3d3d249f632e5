//! Parking: where threads wait, and the rule that makes waking them cheap.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use crate::shim::{AtomicUsize, Condvar, Mutex, Ordering, fence, lock};

/// Threads that wait for one condition (not empty, not full, all done).
///
/// # Sleeping without losing a wake-up
///
/// A waiter that must sleep counts itself in `sleepers`, then issues a SeqCst fence, then tries
/// once more before it sleeps. A thread that changes the condition does its change, then a
/// SeqCst fence, then reads `sleepers`, and takes the lock to notify only if it is not zero.
/// Between two SeqCst fences one comes first: either the waiter's last try sees the change, or
/// the changer sees the waiter and wakes it. So the common case (nobody asleep) costs a fence
/// and a load, not a lock and a system call, and no wake-up is lost. (The waiter counts itself
/// while holding `lock` and keeps it until it sleeps, so a notify sent under `lock` cannot
/// miss it.) Under `lock` the changer reads `sleepers` again and notifies only if a waiter is
/// still counted and not every counted waiter already has a wake-up on its way (`lock` counts
/// the wake-ups sent and not yet taken; a waiter takes one each time it returns from
/// `cv.wait`, and tries again). A waiter that found the change on its last try has left by
/// then, and one already notified will try again once it runs: waking nobody new would cost a
/// system call for nothing.
///
/// # Spinning only when it pays (adaptive)
///
/// Before sleeping, a waiter may spin: try, pause, try again. That pays only when the other
/// side is running on another CPU and the hand-off comes sooner than a sleep and a wake-up
/// would take (a few microseconds of system calls, and up to ~30 us when the sleeper's CPU
/// has gone idle). The old rule spun a fixed number of PAUSE instructions (crossbeam's
/// `Backoff`) and then yielded up to four times: a count tuned on one processor, while PAUSE
/// takes ~140 cycles on recent Intel cores and ~10-65 on AMD's, and every yield is a system
/// call. So:
///
/// - the spin is bounded in *time* (`spin_ns`), not in PAUSE instructions, so it is as long
///   on every processor;
/// - `spin_ns` learns how long a hand-off takes here: a wait that ended while spinning
///   moves it an eighth of the way towards twice that wait (kept between [`MIN_SPIN`] and
///   [`MAX_SPIN`]); a wait that spinning did not end moves it an eighth of the way towards
///   [`MIN_SPIN`];
/// - no spin at all while a thread of the other side is asleep or being woken in this queue
///   (`other` has sleepers): it cannot hand anything over before it runs again;
/// - after the spin, up to [`YIELDS`] yields, then sleep. On a core shared with the other
///   side (as a scheduler may place the two), a yield lets it run for one system call, and
///   the spin before it was of no use: such waits keep moving the spin down to
///   [`MIN_SPIN`]. Learning only from waits that spinning itself ended keeps the budget
///   from feeding on its own length.
///
/// Parks, wake-ups and waits ended by spinning are counted ([`WaitStats`](super::WaitStats)),
/// so that a bench shows which of these happened, per item, on whatever machine it runs.
#[derive(Default)]
pub(super) struct Parker {
    sleepers: AtomicUsize,
    /// Guards the sleeping, and counts the wake-ups sent and not yet taken: a notified
    /// sleeper that has not yet returned from `cv.wait`.
    lock: Mutex<usize>,
    cv: Condvar,
    /// How long a waiter spins before it yields and sleeps, in ns (see above). Read and
    /// written relaxed: a heuristic, not part of the protocol.
    spin_ns: AtomicU64,
    /// What the waits cost, for [`WaitStats`](super::WaitStats): counted on the slow paths
    /// only (std's atomics also under loom: statistics, not part of the protocol).
    stats: Stats,
}

/// The shortest spin (also the spin after waits that spinning did not end).
pub(super) const MIN_SPIN: Duration = Duration::from_nanos(500);
/// The longest spin: about what a sleep and a wake-up cost in system calls and context
/// switches; a hand-off slower than this is cheaper to sleep through.
pub(super) const MAX_SPIN: Duration = Duration::from_micros(20);
/// Where `spin_ns` starts: about what crossbeam's `Backoff` spun on the machine the old
/// rule was tuned on.
const FIRST_SPIN: Duration = Duration::from_micros(4);
/// Yields after the spin, before sleeping.
const YIELDS: u32 = 4;

/// Counters of [`Parker`]'s slow paths.
#[derive(Default)]
pub(super) struct Stats {
    /// Sleeps on the condition variable (each wait call, a re-sleep after a spurious or
    /// stolen wake-up included).
    pub(super) parks: AtomicU64,
    /// Notifications sent to sleepers (`notify_one` or `notify_all` calls).
    pub(super) wakeups: AtomicU64,
    /// Waits that ended while spinning, before any sleep.
    pub(super) spun: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// How a wait that did not succeed at once went, for the spin budget.
#[cfg(not(loom))]
enum Spin {
    /// Ended while spinning, after this long.
    Ended(Duration),
    /// Spinning did not end it.
    Failed,
}

impl Parker {
    pub(super) fn new() -> Parker {
        Parker {
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(0),
            cv: Condvar::new(),
            spin_ns: AtomicU64::new(FIRST_SPIN.as_nanos() as u64),
            stats: Stats::default(),
        }
    }

    /// Whether a thread is counted asleep here (asleep, going to sleep, or woken and not yet
    /// out): the side that waits here is not running.
    pub(super) fn has_sleepers(&self) -> bool {
        self.sleepers.load(Ordering::Relaxed) > 0
    }

    /// Learn from one wait how long to spin next time (see the type's docs).
    #[cfg(not(loom))]
    fn learn(&self, how: Spin) {
        let old = self.spin_ns.load(std::sync::atomic::Ordering::Relaxed);
        let (min, max) = (MIN_SPIN.as_nanos() as u64, MAX_SPIN.as_nanos() as u64);
        let new = match how {
            Spin::Ended(t) => {
                let want = (2 * t.as_nanos() as u64).clamp(min, max);
                (old * 7 + want) / 8
            }
            Spin::Failed => (old * 7 + min) / 8,
        };
        self.spin_ns
            .store(new, std::sync::atomic::Ordering::Relaxed);
    }

    /// Spin (see the type's docs) until `attempt` succeeds, the spin budget is spent or the
    /// deadline has passed.
    #[cfg(not(loom))]
    fn spin<R>(
        &self,
        deadline: Option<Instant>,
        other: Option<&Parker>,
        attempt: &mut impl FnMut() -> Option<R>,
    ) -> Option<R> {
        let start = Instant::now();
        if deadline.is_some_and(|d| start >= d) {
            return None;
        }
        let budget = if other.is_some_and(Parker::has_sleepers) {
            Duration::ZERO
        } else {
            Duration::from_nanos(self.spin_ns.load(std::sync::atomic::Ordering::Relaxed))
        };
        let mut pauses = 1u32;
        while start.elapsed() < budget {
            for _ in 0..pauses {
                std::hint::spin_loop();
            }
            pauses = (pauses * 2).min(64);
            if let Some(r) = attempt() {
                self.learn(Spin::Ended(start.elapsed()));
                bump(&self.stats.spun);
                return Some(r);
            }
        }
        // Then a few yields, as crossbeam's `Backoff` does: on a core shared with the other
        // side, a yield is the cheapest way to let it run (one system call, against a sleep's
        // two and a wake-up's latency).
        // A wait ended here was not ended by spinning: whether the yield ran the other side
        // on this core or returned at once, the spin was too short or of no use.
        self.learn(Spin::Failed);
        for _ in 0..YIELDS {
            std::thread::yield_now();
            if let Some(r) = attempt() {
                bump(&self.stats.spun);
                return Some(r);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
        }
        None
    }

    /// Call `attempt` until it returns `Some`, sleeping between tries; `None` at the deadline.
    /// `other` is where the other side waits (a getter's other side is the putters), if any.
    pub(super) fn wait_for<R>(
        &self,
        deadline: Option<Instant>,
        other: Option<&Parker>,
        mut attempt: impl FnMut() -> Option<R>,
    ) -> Option<R> {
        if let Some(r) = attempt() {
            return Some(r);
        }
        #[cfg(not(loom))]
        if let Some(r) = self.spin(deadline, other, &mut attempt) {
            return Some(r);
        }
        #[cfg(loom)]
        let _ = other;
        let mut guard = lock(&self.lock);
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        // Counted out again however this ends, also if `attempt` panics (a store may), so a
        // panic cannot leave every later wake-up taking the lock for a sleeper that is gone.
        // Declared after `guard`, it is dropped first: the count drops with the lock held.
        let asleep = Asleep(&self.sleepers);
        fence(Ordering::SeqCst);
        let outcome = loop {
            if let Some(r) = attempt() {
                break Some(r);
            }
            bump(&self.stats.parks);
            guard = match deadline {
                None => self.cv.wait(guard).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break None;
                    }
                    match self.cv.wait_timeout(guard, deadline - now) {
                        Ok((g, _)) => g,
                        Err(e) => e.into_inner().0,
                    }
                }
            };
            // Woken (by a notify, a time-out or spuriously): one wake-up sent is taken, and
            // this thread tries again after every change made before it was sent.
            *guard = guard.saturating_sub(1);
        };
        drop(asleep);
        drop(guard);
        outcome
    }

    pub(super) fn wake(&self, all: bool) {
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            let mut pending = lock(&self.lock);
            // Under the lock, a counted waiter is in `cv.wait` (or woken and waiting for the
            // lock): one that found the change on its last try has left and counted itself
            // out. And a sleeper already notified will try again once it runs: while every
            // sleeper has a wake-up on its way, another notify would wake nobody new. Either
            // way a notify would be a system call for nothing (in a 1P1C queue, one for every
            // item put while the woken getter is still being scheduled).
            let sleepers = self.sleepers.load(Ordering::Relaxed);
            if sleepers == 0 || (!all && *pending >= sleepers) {
                return;
            }
            bump(&self.stats.wakeups);
            if all {
                *pending = sleepers;
                self.cv.notify_all();
            } else {
                *pending += 1;
                self.cv.notify_one();
            }
        }
    }
}

/// One sleeper counted in [`Parker::sleepers`]; dropping it counts it out.
struct Asleep<'a>(&'a AtomicUsize);

impl Drop for Asleep<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Parker {
    /// This parker's counters so far.
    pub(super) fn stats(&self) -> (u64, u64, u64) {
        let get = |c: &AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        (
            get(&self.stats.parks),
            get(&self.stats.wakeups),
            get(&self.stats.spun),
        )
    }
}
