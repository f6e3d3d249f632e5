//! Lesson `deadlock` (死锁(递归锁)): two locks taken in opposite orders by five threads. The
//! seed's program hangs forever; here the deadlock is detected and printed, then fixed twice.
//!
//! The seed's five threads print about 55 doLockA/doLockB lines, which bury the point. The
//! narration says them in full only until the point is made (up to the first deadlock; the first
//! thread's run in each fix) and counts the rest; `--timeline` still draws every hold and every
//! wait of every thread.

use std::sync::{Mutex, MutexGuard};

use anyhow::{Context, ensure};
use lesson::{Activity, Cx};

use super::{Held, pause_holding};
use crate::{Deadlock, LockGraph, RLock, RLockGuard, TrackedGuard, TrackedMutex};

/// Which doLockA/doLockB lines a part says in full; the others are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Show {
    /// Every line until the first deadlock is reported (the deadlock reports always).
    UntilFirstDeadlock,
    /// The lines of the first thread to say one.
    FirstThread,
}

/// What one part of the lesson did.
#[derive(Debug, Default, Clone)]
pub struct Part {
    /// The deadlocks found, in the order they were reported.
    pub deadlocks: Vec<Deadlock>,
    /// doLockA/doLockB lines said.
    pub shown: usize,
    /// doLockA/doLockB lines counted but not said.
    pub hidden: usize,
    /// Who began an action, in the order they took its first lock: (thread, 'A' or 'B').
    pub turns: Vec<(String, char)>,
    /// Threads that ran both actions to the end.
    pub finished: usize,
    /// The thread whose lines a [`Show::FirstThread`] part says.
    first: Option<String>,
}

/// The narration of one part: says or counts each line (see [`Show`]), and keeps the deadlocks
/// and the turns.
struct Narration<'a> {
    cx: &'a Cx,
    show: Show,
    part: Mutex<Part>,
}

fn me() -> String {
    std::thread::current().name().unwrap_or("?").to_owned()
}

impl<'a> Narration<'a> {
    fn new(cx: &'a Cx, show: Show) -> Self {
        Narration {
            cx,
            show,
            part: Mutex::new(Part::default()),
        }
    }

    fn part(&self) -> MutexGuard<'_, Part> {
        self.part.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A doLockA/doLockB line: said, or counted. Said under the part's lock, so the counts and
    /// the lines agree.
    fn line(&self, text: impl std::fmt::Display) {
        let me = me();
        let mut part = self.part();
        let show = match self.show {
            Show::UntilFirstDeadlock => part.deadlocks.is_empty(),
            Show::FirstThread => *part.first.get_or_insert_with(|| me.clone()) == me,
        };
        if show {
            self.cx.say(text);
            part.shown += 1;
        } else {
            part.hidden += 1;
        }
    }

    /// This thread has taken the first lock of `action`.
    fn turn(&self, action: char) {
        self.part().turns.push((me(), action));
    }

    fn deadlock(&self, deadlock: Deadlock) {
        let mut part = self.part();
        self.cx
            .say(format!("{deadlock} -> I give up and release my locks"));
        part.deadlocks.push(deadlock);
    }

    fn finished(&self) {
        self.part().finished += 1;
    }

    fn into_part(self) -> Part {
        self.part.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

/// Take `lock` for `action`, drawn on the timeline: a wait while another thread has it, then a
/// hold until the returned guard drops. A deadlock is reported here, before this returns: the
/// caller still holds its other locks then, so no thread of the cycle can take one of them and
/// say a line before the report (reported after the caller's guards dropped, the thread it
/// released could say "doLockA" first: seen once in CI).
fn take<'l>(
    n: &Narration,
    lock: &'l TrackedMutex<()>,
    action: &str,
) -> Result<Held<TrackedGuard<'l, ()>>, Deadlock> {
    let guard = match lock.try_lock() {
        Some(guard) => guard,
        None => {
            let waiting = n.cx.span(
                Activity::Wait,
                format!("{action}: waiting for {}", lock.name()),
            );
            let taken = lock.lock();
            // The wait ends here; a deadlock is reported after it, still inside the holds.
            drop(waiting);
            taken.inspect_err(|deadlock| n.deadlock(deadlock.clone()))?
        }
    };
    Ok(Held::new(
        n.cx,
        guard,
        format!("{action}: holding {}", lock.name()),
    ))
}

/// The seed's `actionA`: A, pause 3 s, then B.
fn action_a(n: &Narration, a: &TrackedMutex<()>, b: &TrackedMutex<()>) -> Result<(), Deadlock> {
    let _a = take(n, a, "actionA")?;
    n.turn('A');
    n.line("doLockA");
    pause_holding(n.cx, 3.0);
    let _b = take(n, b, "actionA")?;
    n.line("doLockB");
    Ok(())
}

/// The seed's `actionB`: B, pause 1 s, then A — the opposite order.
fn action_b(n: &Narration, a: &TrackedMutex<()>, b: &TrackedMutex<()>) -> Result<(), Deadlock> {
    let _b = take(n, b, "actionB")?;
    n.turn('B');
    n.line("doLockB");
    pause_holding(n.cx, 1.0);
    let _a = take(n, a, "actionB")?;
    n.line("doLockA");
    Ok(())
}

/// Run the seed's five threads (actionA, pause 0.5 s, then actionB; or actionA again when
/// `lock_order_fixed`). A thread that finds a deadlock reports it, then stops (its guards drop,
/// releasing what it held), so the others can finish. With the seed's order every line is said
/// until the first deadlock; with the fixed order only the first thread's lines are.
pub fn five_threads(cx: &Cx, lock_order_fixed: bool) -> anyhow::Result<Part> {
    let graph = LockGraph::new();
    let a = graph.mutex("lockA", ());
    let b = graph.mutex("lockB", ());
    let n = Narration::new(
        cx,
        if lock_order_fixed {
            Show::FirstThread
        } else {
            Show::UntilFirstDeadlock
        },
    );
    std::thread::scope(|s| -> anyhow::Result<()> {
        for i in 1..=5 {
            let (a, b, n) = (&a, &b, &n);
            std::thread::Builder::new()
                .name(format!("Thread-{i}"))
                .spawn_scoped(s, move || {
                    let outcome = action_a(n, a, b).and_then(|()| {
                        n.cx.sleep(0.5);
                        if lock_order_fixed {
                            action_a(n, a, b)
                        } else {
                            action_b(n, a, b)
                        }
                    });
                    // A deadlock was reported by `take`, while this thread still held its locks.
                    if outcome.is_ok() {
                        n.finished();
                    }
                })
                .context("spawning a thread")?;
        }
        Ok(())
    })?;
    Ok(n.into_part())
}

/// Take the RLock for `action` under the name `name`, drawn on the timeline: a wait while
/// another thread has it, then a hold (with its count) until the returned guard drops.
fn take_rlock<'l>(cx: &Cx, lock: &'l RLock, name: &str, action: &str) -> Held<RLockGuard<'l>> {
    let guard = match lock.try_acquire() {
        Some(guard) => guard,
        None => {
            let _waiting = cx.span(
                Activity::Wait,
                format!("{action}: waiting for the RLock ({name})"),
            );
            lock.acquire()
        }
    };
    Held::new(
        cx,
        guard,
        format!(
            "{action}: holding the RLock as {name} (count {})",
            lock.count()
        ),
    )
}

/// Fix (a), the one the seed's text describes: one reentrant lock used under both names.
pub fn one_rlock(cx: &Cx) -> anyhow::Result<Part> {
    let lock = RLock::new();
    let n = Narration::new(cx, Show::FirstThread);
    std::thread::scope(|s| -> anyhow::Result<()> {
        for i in 1..=5 {
            let (lock_a, lock_b, n) = (&lock, &lock, &n);
            std::thread::Builder::new()
                .name(format!("Thread-{i}"))
                .spawn_scoped(s, move || {
                    {
                        let _a = take_rlock(cx, lock_a, "lockA", "actionA");
                        n.turn('A');
                        n.line(format!("doLockA (count {})", lock_a.count()));
                        pause_holding(cx, 3.0);
                        let _b = take_rlock(cx, lock_b, "lockB", "actionA");
                        n.line(format!("doLockB (count {})", lock_b.count()));
                    }
                    cx.sleep(0.5);
                    {
                        let _b = take_rlock(cx, lock_b, "lockB", "actionB");
                        n.turn('B');
                        n.line(format!("doLockB (count {})", lock_b.count()));
                        pause_holding(cx, 1.0);
                        let _a = take_rlock(cx, lock_a, "lockA", "actionB");
                        n.line(format!("doLockA (count {})", lock_a.count()));
                    }
                    n.finished();
                })
                .context("spawning a thread")?;
        }
        Ok(())
    })?;
    Ok(n.into_part())
}

/// The turns as `1A 3A 4A ...`: each thread's number (its name without `Thread-`) and action.
pub fn turns(part: &Part) -> String {
    part.turns
        .iter()
        .map(|(who, action)| format!("{}{action}", who.trim_start_matches("Thread-")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The two threads of a two-lock deadlock: (the one in actionB, which had finished actionA and
/// holds lockB; the one in actionA, which holds lockA).
pub fn roles(deadlock: &Deadlock) -> Option<(&str, &str)> {
    let holding = |lock: &str| {
        deadlock
            .cycle
            .iter()
            .find(|e| e.holds == lock)
            .map(|e| e.thread.as_str())
    };
    Some((holding("lockB")?, holding("lockA")?))
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    cx.explain(
        "The seed: 5 threads; each runs actionA (lock A, pause 3 s, lock B), pauses 0.5 s, then\n\
         actionB (lock B, pause 1 s, lock A). One thread finishes actionA and takes B for actionB\n\
         while another has just taken A for its actionA and waits for B: each waits for the\n\
         other. In Python that hangs forever. Here each lock records its holder and waiters; a\n\
         thread that would wait forever sees the cycle and gives up. Which threads meet depends\n\
         on the scheduler; every line is shown up to the first deadlock, then only the reports.",
    );
    let part = five_threads(cx, false)?;
    cx.say(format!(
        "the seed's lock order: {} deadlock(s) detected; every thread ended ({} more \
         doLockA/doLockB lines after the first deadlock not shown)",
        part.deadlocks.len(),
        part.hidden
    ));
    let first = part
        .deadlocks
        .first()
        .context("the seed's lock order did not deadlock")?;
    let (in_b, in_a) = roles(first).with_context(|| format!("not a two-lock cycle: {first}"))?;
    cx.say(format!(
        "the first deadlock: {in_b} finished actionA and took lockB for actionB, then waited \
         for lockA; {in_a} had taken lockA for its actionA and waited for lockB"
    ));
    cx.explain(
        "(The seed's comment calls them 'the first thread' and 'the second thread': any two of\n\
         the five can be the pair, as the names above show.)",
    );

    cx.explain(
        "Fix (a) is the one the seed's text describes: put threading.RLock() in place of lockA\n\
         and lockB. The seed's code stops short of it: it creates r_lock = threading.RLock() and\n\
         never uses it, so lockA and lockB stay plain Locks and the program as printed deadlocks\n\
         as above. Done as described, one RLock under both names: the same thread may re-take\n\
         it (the count goes 1, 2), others wait until it is back to 0. It works only because it\n\
         is ONE lock under two names, so each action is exclusive; two separate RLocks taken in\n\
         opposite orders deadlock just as two Locks do (reentrancy is per lock: a thread holding\n\
         one waits for the other like anyone else). The first thread's lines are shown:",
    );
    let part = one_rlock(cx)?;
    cx.say(format!(
        "one RLock under both names: {} of 5 threads finished; the lock went, in turn, to {} \
         (thread and action); {} lines of the other threads not shown",
        part.finished,
        turns(&part),
        part.hidden
    ));
    ensure!(
        part.finished == 5,
        "only {} threads finished",
        part.finished
    );

    cx.explain(
        "Fix (b), the usual one: every thread takes the locks in one global order (A, then B).\n\
         No cycle can form, and the two locks still let unrelated work run in parallel. Again\n\
         the first thread's lines are shown:",
    );
    let part = five_threads(cx, true)?;
    cx.say(format!(
        "one lock order (A before B): {} deadlock(s); all {} threads finished; lockA went, in \
         turn, to {}; {} lines of the other threads not shown",
        part.deadlocks.len(),
        part.finished,
        turns(&part),
        part.hidden
    ));
    ensure!(
        part.deadlocks.is_empty() && part.finished == 5,
        "a deadlock with a single lock order: {:?}",
        part.deadlocks
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;
    use std::time::Duration;

    use super::*;

    /// A deadlock is in the narration before the thread that found it lets go of its locks.
    /// (CI once saw the released thread say "doLockA" before the report, when the report was
    /// made by the thread's closure after its guards had dropped; with `take` not reporting,
    /// this test fails every time: the finder sees 0 deadlocks reported.)
    #[test]
    fn a_deadlock_is_reported_before_its_finder_releases_its_locks() {
        // A deadline: were the detection broken, both threads would wait for ever.
        lesson::within(
            Duration::from_secs(60),
            "the two threads",
            finder_reports_first,
        );
    }

    fn finder_reports_first() {
        let cx = Cx::quiet(0.02);
        let graph = LockGraph::with_tick(Duration::from_millis(1));
        let (a, b) = (graph.mutex("lockA", ()), graph.mutex("lockB", ()));
        let n = Narration::new(&cx, Show::UntilFirstDeadlock);
        let both_hold = Barrier::new(2);
        // Each thread takes one lock, then the other's: a cycle. What the finder saw when its
        // second `take` failed: (deadlocks reported, whether it still held its first lock).
        let one = |first: &TrackedMutex<()>, second: &TrackedMutex<()>| {
            let _first = take(&n, first, "test").expect("the first lock is free");
            both_hold.wait();
            take(&n, second, "test")
                .err()
                .map(|_| (n.part().deadlocks.len(), first.locked()))
        };
        let seen: Vec<(usize, bool)> = std::thread::scope(|s| {
            let ab = s.spawn(|| one(&a, &b));
            let ba = s.spawn(|| one(&b, &a));
            [ab.join().unwrap(), ba.join().unwrap()]
        })
        .into_iter()
        .flatten()
        .collect();
        assert_eq!(
            seen,
            [(1, true)],
            "one finder, which had reported while holding"
        );
    }
}
