//! Parking: where threads wait, and the rule that makes waking them cheap.

use std::sync::atomic::AtomicU64;
#[cfg(not(loom))]
use std::time::Duration;
use std::time::Instant;

use super::CachePadded;
use crate::shim::{AtomicUsize, Condvar, Mutex, Ordering, fence, lock};

/// Threads that wait for one condition (not empty, not full, all done).
///
/// # Sleeping without losing a wake-up
///
/// A waiter that must sleep counts itself in `sleepers`, then issues a SeqCst fence, then tries
/// once more before it sleeps. A thread that changes the condition does its change, then a
/// SeqCst fence, then reads `sleepers`, and takes the lock to notify only if it is not zero
/// ([`wake`](Parker::wake)). Between two SeqCst fences one comes first: either the waiter's
/// last try sees the change, or the changer sees the waiter and wakes it. So the common case
/// (nobody asleep) costs a fence and a load, not a lock and a system call, and no wake-up is
/// lost.
///
/// A change made while holding some mutex `m` needs no fence
/// ([`wake_synced`](Parker::wake_synced)) if every waiter here takes `m` after counting itself
/// and before its last try (`before_last_try` of [`wait_for`](Parker::wait_for), or a try
/// that itself takes `m`): of the changer's hold of `m` and the waiter's, one comes first. If
/// the changer's, its change happens before the waiter's last try, which sees it; if the
/// waiter's, its count happens before the changer's read of `sleepers`, which sees it. (The
/// queue's puts, `task_done` and `shutdown` change under `books`; a put costs a fence less.) (The waiter counts itself
/// while holding `lock` and keeps it until it sleeps, so a notify sent under `lock` cannot
/// miss it.) Under `lock` the changer reads `sleepers` again and notifies only if a waiter is
/// still counted and not every counted waiter already has a wake-up on its way (`lock` counts
/// the wake-ups sent and not yet taken; a waiter takes one each time it returns from
/// `cv.wait`, and tries again). A waiter that found the change on its last try has left by
/// then, and one already notified will try again once it runs: waking nobody new would cost a
/// system call for nothing.
///
/// # Waiting before sleeping: only while the other side runs (adaptive)
///
/// A sleep costs the sleeper a system call and a context switch, and the thread that wakes it
/// another system call; the woken thread then runs only after the wake-up's latency (a few
/// microseconds, ~30 us when its CPU has gone idle), and meanwhile the other side may have to
/// wait for it in turn. Not sleeping pays when the hand-off comes soon, and what the waiter
/// should do meanwhile depends on where the other side is. So before sleeping a waiter looks
/// at three things (none of them part of the protocol above: they only decide when to try
/// again, and every try is the same as the first):
///
/// - **Where the other side was last seen.** Each waiter notes its CPU (`sched_getcpu`, a few
///   ns) in its parker. If the other side's last waiter was on this CPU, the other side cannot
///   run while this thread spins: the waiter yields at once (one system call). The two share
///   a CPU as `taskset -c 0` makes them, and as a loaded machine's scheduler often places
///   them. If that yield did not bring the hand-off, the note is stale: it is forgotten.
/// - **Whether the other side is asleep** in this queue, or woken and not yet out (`other`
///   has sleepers). Then it hands nothing over before it runs again, which takes a wake-up's
///   latency, learnt by the sleepers themselves (`wake_ns`: from the notify to their return).
///   The waiter spins about that long (twice the average, at most [`MAX_WAKE_SPIN`]) before
///   sleeping: were it to sleep, the two sides could keep waking each other in turn, two
///   sleeps and two wake-ups per few items (issue 22's `Queue(3)` regression).
/// - **How long a hand-off takes here** while both sides run on two CPUs (`spin_ns`, learnt
///   from the waits that spinning ended: an eighth of the way towards twice that wait, kept
///   between [`MIN_SPIN`] and [`MAX_SPIN`]; a spin that did not end its wait moves it an
///   eighth of the way towards [`MIN_SPIN`]). The waiter spins that long, then yields once
///   (in case the other side shares this CPU unseen), then sleeps.
///
/// Spinning looks at the queue every [`LOOK_EVERY`], not sooner: each look at an empty (or
/// full) queue pulls the cache lines the other side writes next, so looking much more often
/// than a hand-off between two CPUs can complete slows the other side down, and makes the
/// waiter catch up with it (and wait) more often. The spin is counted in PAUSE instructions
/// of the length measured once per process ([`cpu::pause_ps`]: it differs about sixfold
/// between processors), so no clock is read while spinning (a clock read costs about what a
/// hand-off does, and on some hypervisors it is a system call).
///
/// Parks, wake-ups, waits ended by spinning and waits ended by a yield are counted
/// ([`WaitStats`](super::WaitStats)), so that a bench shows which of these happened, per
/// item, on whatever machine it runs.
pub(super) struct Parker {
    sleepers: AtomicUsize,
    /// Guards the sleeping, and counts the wake-ups sent and not yet taken: a notified
    /// sleeper that has not yet returned from `cv.wait`.
    lock: Mutex<Pending>,
    cv: Condvar,
    /// What the waiters learn and count, written on their slow paths: kept off the cache line
    /// of `sleepers`, which every put and get reads, so that a spinning waiter does not take
    /// that line away from the other side at each wait.
    learnt: CachePadded<Learnt>,
}

/// [`Parker`]'s heuristics and counters. Relaxed atomics: hints and statistics, not part of
/// the protocol.
struct Learnt {
    /// How long a waiter spins before it yields and sleeps, in ns (see [`Parker`]).
    #[cfg(not(loom))]
    spin_ns: AtomicU64,
    /// How long a sleeper here takes to run again once notified, in ns (learnt by the woken
    /// sleepers): how long the other side spins while one of them is on its way.
    #[cfg(not(loom))]
    wake_ns: AtomicU64,
    /// The CPU a thread waiting here was last seen on ([`cpu::UNKNOWN`] if none): a waiter of
    /// the other side that finds it equal to its own yields instead of spinning.
    #[cfg(not(loom))]
    cpu: std::sync::atomic::AtomicUsize,
    /// What the waits cost, for [`WaitStats`](super::WaitStats): counted on the slow paths
    /// only (std's atomics also under loom: statistics, not part of the protocol).
    stats: Stats,
}

/// What `Parker::lock` guards besides the sleeping.
#[derive(Default)]
struct Pending {
    /// Wake-ups sent and not yet taken: a notified sleeper that has not yet returned from
    /// `cv.wait`.
    count: usize,
    /// When the last wake-up was sent (for `wake_ns`).
    #[cfg(not(loom))]
    sent: Option<Instant>,
}

/// The shortest spin (also where spins that did not end their wait pull the budget).
#[cfg(not(loom))]
pub(super) const MIN_SPIN: Duration = Duration::from_nanos(500);
/// The longest spin while the other side runs: about what a sleep and a wake-up cost in
/// system calls and context switches; a hand-off slower than this is cheaper to sleep through.
#[cfg(not(loom))]
pub(super) const MAX_SPIN: Duration = Duration::from_micros(20);
/// Where `spin_ns` starts.
#[cfg(not(loom))]
const FIRST_SPIN: Duration = Duration::from_micros(4);
/// The longest spin while a thread of the other side is on its way back from a sleep: a
/// wake-up on a CPU that has gone idle takes ~30 us on the VMs seen so far; one slower than
/// this (the other side's CPU busy with other work) is left to sleep through.
#[cfg(not(loom))]
pub(super) const MAX_WAKE_SPIN: Duration = Duration::from_micros(50);
/// Where `wake_ns` starts: the idle-CPU wake-up above.
#[cfg(not(loom))]
const FIRST_WAKE: Duration = Duration::from_micros(30);
/// How often a spinning waiter looks at the queue (see [`Parker`]): about one hand-off of a
/// cache line between two CPUs, in a VM.
#[cfg(not(loom))]
pub(super) const LOOK_EVERY: Duration = Duration::from_nanos(250);

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
    /// Waits that ended right after a yield, before any sleep.
    pub(super) yielded: AtomicU64,
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
            lock: Mutex::new(Pending::default()),
            cv: Condvar::new(),
            learnt: CachePadded::new(Learnt {
                #[cfg(not(loom))]
                spin_ns: AtomicU64::new(FIRST_SPIN.as_nanos() as u64),
                #[cfg(not(loom))]
                wake_ns: AtomicU64::new(FIRST_WAKE.as_nanos() as u64),
                #[cfg(not(loom))]
                cpu: std::sync::atomic::AtomicUsize::new(cpu::UNKNOWN),
                stats: Stats::default(),
            }),
        }
    }

    /// Whether a thread is counted asleep here (asleep, going to sleep, or woken and not yet
    /// out): the side that waits here is not running.
    #[cfg(not(loom))]
    fn has_sleepers(&self) -> bool {
        self.sleepers.load(Ordering::Relaxed) > 0
    }

    /// Learn from one spin how long to spin next time (see the type's docs).
    #[cfg(not(loom))]
    fn learn(&self, how: Spin) {
        let spin_ns = &self.learnt.spin_ns;
        let old = spin_ns.load(std::sync::atomic::Ordering::Relaxed);
        let (min, max) = (MIN_SPIN.as_nanos() as u64, MAX_SPIN.as_nanos() as u64);
        let new = match how {
            Spin::Ended(t) => {
                let want = (2 * t.as_nanos() as u64).clamp(min, max);
                (old * 7 + want) / 8
            }
            Spin::Failed => (old * 7 + min) / 8,
        };
        spin_ns.store(new, std::sync::atomic::Ordering::Relaxed);
    }

    /// Learn how long a notified sleeper here took to run again (see the type's docs).
    #[cfg(not(loom))]
    fn learn_wake(&self, took: Duration) {
        let wake_ns = &self.learnt.wake_ns;
        let old = wake_ns.load(std::sync::atomic::Ordering::Relaxed);
        let took = (took.as_nanos() as u64).min(MAX_WAKE_SPIN.as_nanos() as u64);
        wake_ns.store((old * 7 + took) / 8, std::sync::atomic::Ordering::Relaxed);
    }

    /// Before sleeping (see the type's docs): yield at once if the other side was last seen
    /// on this CPU; spin through its wake-up if it is asleep or being woken; else spin for the
    /// learnt budget and yield once. `Some` if one of these tries succeeded.
    #[cfg(not(loom))]
    fn before_sleeping<R>(
        &self,
        deadline: Option<Instant>,
        other: Option<&Parker>,
        attempt: &mut impl FnMut() -> Option<R>,
    ) -> Option<R> {
        use std::sync::atomic::Ordering::Relaxed;
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        let here = cpu::current();
        if self.learnt.cpu.load(Relaxed) != here {
            self.learnt.cpu.store(here, Relaxed);
        }
        let mut yielded = false;
        if let Some(other) = other {
            if here != cpu::UNKNOWN && other.learnt.cpu.load(Relaxed) == here {
                // It cannot run while this thread spins on this CPU, only once it yields.
                yielded = true;
                if let Some(r) = self.yield_once(attempt) {
                    return Some(r);
                }
                // No hand-off: it is elsewhere now (or a third thread ran); forget the note.
                other.learnt.cpu.store(cpu::UNKNOWN, Relaxed);
            }
            if other.has_sleepers() {
                let wake = 2 * other.learnt.wake_ns.load(Relaxed);
                let budget =
                    wake.clamp(MIN_SPIN.as_nanos() as u64, MAX_WAKE_SPIN.as_nanos() as u64);
                return self
                    .spin_for(budget, deadline, attempt)
                    .ok()
                    .map(|(r, _)| r);
            }
        }
        let budget = self.learnt.spin_ns.load(Relaxed);
        match self.spin_for(budget, deadline, attempt) {
            Ok((r, took)) => {
                self.learn(Spin::Ended(took));
                return Some(r);
            }
            Err(()) => self.learn(Spin::Failed),
        }
        if !yielded {
            return self.yield_once(attempt);
        }
        None
    }

    /// One yield, then one try.
    #[cfg(not(loom))]
    fn yield_once<R>(&self, attempt: &mut impl FnMut() -> Option<R>) -> Option<R> {
        std::thread::yield_now();
        let r = attempt();
        if r.is_some() {
            bump(&self.learnt.stats.yielded);
        }
        r
    }

    /// Spin for about `budget_ns`, looking every [`LOOK_EVERY`], without reading the clock
    /// unless there is a deadline (see the type's docs). `Ok` with what the try returned and
    /// about how long it took to come.
    #[cfg(not(loom))]
    fn spin_for<R>(
        &self,
        budget_ns: u64,
        deadline: Option<Instant>,
        attempt: &mut impl FnMut() -> Option<R>,
    ) -> Result<(R, Duration), ()> {
        let pause_ps = cpu::pause_ps();
        let step = (LOOK_EVERY.as_nanos() as u64 * 1000 / pause_ps).max(1);
        let budget = budget_ns * 1000 / pause_ps;
        let mut spent = 0u64;
        while spent < budget {
            for _ in 0..step {
                std::hint::spin_loop();
            }
            spent += step;
            if let Some(r) = attempt() {
                bump(&self.learnt.stats.spun);
                return Ok((r, Duration::from_nanos(spent * pause_ps / 1000)));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
        }
        Err(())
    }

    /// Call `attempt` until it returns `Some`, sleeping between tries; `None` at the deadline.
    /// `other` is where the other side waits (a getter's other side is the putters), if any.
    /// `before_last_try` runs once a waiter has counted itself asleep, before its last try
    /// (see [`wake_synced`](Parker::wake_synced)).
    pub(super) fn wait_for<R>(
        &self,
        deadline: Option<Instant>,
        other: Option<&Parker>,
        before_last_try: impl FnOnce(),
        mut attempt: impl FnMut() -> Option<R>,
    ) -> Option<R> {
        if let Some(r) = attempt() {
            return Some(r);
        }
        #[cfg(not(loom))]
        if let Some(r) = self.before_sleeping(deadline, other, &mut attempt) {
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
        before_last_try();
        let outcome = loop {
            if let Some(r) = attempt() {
                break Some(r);
            }
            bump(&self.learnt.stats.parks);
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
            if guard.count > 0 {
                guard.count -= 1;
                #[cfg(not(loom))]
                if let Some(sent) = guard.sent {
                    self.learn_wake(sent.elapsed());
                }
            }
        };
        drop(asleep);
        drop(guard);
        outcome
    }

    /// Wake a sleeper (`all`: every sleeper) after a change to the condition, if one is
    /// counted asleep and has no wake-up on its way yet.
    pub(super) fn wake(&self, all: bool) {
        fence(Ordering::SeqCst);
        self.wake_synced(all);
    }

    /// [`wake`](Parker::wake) without the fence, for a change made under a mutex that every
    /// waiter here takes after counting itself and before its last try (see the type's docs).
    pub(super) fn wake_synced(&self, all: bool) {
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            let mut pending = lock(&self.lock);
            let pending = &mut *pending;
            // Under the lock, a counted waiter is in `cv.wait` (or woken and waiting for the
            // lock): one that found the change on its last try has left and counted itself
            // out. And a sleeper already notified will try again once it runs: while every
            // sleeper has a wake-up on its way, another notify would wake nobody new. Either
            // way a notify would be a system call for nothing (in a 1P1C queue, one for every
            // item put while the woken getter is still being scheduled).
            let sleepers = self.sleepers.load(Ordering::Relaxed);
            if sleepers == 0 || (!all && pending.count >= sleepers) {
                return;
            }
            bump(&self.learnt.stats.wakeups);
            #[cfg(not(loom))]
            {
                pending.sent = Some(Instant::now());
            }
            if all {
                pending.count = sleepers;
                self.cv.notify_all();
            } else {
                pending.count += 1;
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
    pub(super) fn stats(&self) -> super::WaitStats {
        let get = |c: &AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        let s = &self.learnt.stats;
        super::WaitStats {
            parks: get(&s.parks),
            wakeups: get(&s.wakeups),
            spun: get(&s.spun),
            yielded: get(&s.yielded),
        }
    }
}

/// Where this thread runs, and how long a PAUSE takes here.
#[cfg(not(loom))]
mod cpu {
    use std::sync::OnceLock;
    use std::time::Instant;

    /// No CPU known.
    pub(super) const UNKNOWN: usize = usize::MAX;

    /// The CPU running this thread now (a few ns: `sched_getcpu` reads it without a system
    /// call on Linux), or [`UNKNOWN`].
    pub(super) fn current() -> usize {
        nix::sched::sched_getcpu().unwrap_or(UNKNOWN)
    }

    /// How long one `spin_loop()` hint (x86's PAUSE) takes on this machine, in picoseconds:
    /// measured once per process, the shortest of a few rounds (a round in which this thread
    /// was preempted only comes out longer). It differs about sixfold between processors.
    pub(super) fn pause_ps() -> u64 {
        static PAUSE_PS: OnceLock<u64> = OnceLock::new();
        *PAUSE_PS.get_or_init(|| {
            const PAUSES: u64 = 256;
            (0..5)
                .map(|_| {
                    let t = Instant::now();
                    for _ in 0..PAUSES {
                        std::hint::spin_loop();
                    }
                    t.elapsed().as_nanos() as u64 * 1000 / PAUSES
                })
                .min()
                .unwrap_or(1000)
                .max(100)
        })
    }
}
