//! Lesson `why-queues` (队列的引入): two threads each look at the last item of a shared list,
//! pause, and remove it. Every step is locked, yet it fails: the two steps are not one.

use std::sync::{Barrier, Mutex, MutexGuard, TryLockError};

use anyhow::{Context, bail, ensure};
use lesson::{Activity, Cx, SpanGuard};

use crate::Queue;

/// The seed's list.
pub const ITEMS: [i32; 5] = [1, 2, 3, 4, 5];

/// What one thread of the racy version did: the items it removed, and the error it stopped
/// on, if any.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Items this thread removed.
    pub removed: Vec<i32>,
    /// Why it stopped early (Python's `ValueError: list.remove(x): x not in list`).
    pub error: Option<String>,
}

/// The list's lock, drawn on the timeline: a wait while the other thread has it, then a hold
/// until the returned guard drops.
fn held<'a>(cx: &Cx, list: &'a Mutex<Vec<i32>>, what: &str) -> Held<'a> {
    let guard = match list.try_lock() {
        Ok(guard) => guard,
        Err(TryLockError::Poisoned(e)) => e.into_inner(),
        Err(TryLockError::WouldBlock) => {
            let _waiting = cx.span(Activity::Wait, "waiting for the list's lock");
            list.lock().unwrap_or_else(|e| e.into_inner())
        }
    };
    Held {
        _span: cx.span(Activity::Hold, what),
        guard,
    }
}

/// A guard of the list, and its span; the span is declared first, so it ends before the lock
/// is released.
struct Held<'a> {
    _span: SpanGuard,
    guard: MutexGuard<'a, Vec<i32>>,
}

impl std::ops::Deref for Held<'_> {
    type Target = Vec<i32>;
    fn deref(&self) -> &Vec<i32> {
        &self.guard
    }
}

impl std::ops::DerefMut for Held<'_> {
    fn deref_mut(&mut self) -> &mut Vec<i32> {
        &mut self.guard
    }
}

/// Look at the last item (one lock), pause, remove it (another lock). In the first round,
/// each thread also waits after its pause until the other has looked (`both_looked`): the
/// seed counts on its 1 s pause for that, which a loaded machine need not give.
fn look_then_remove(cx: &Cx, list: &Mutex<Vec<i32>>, both_looked: &Barrier) -> Outcome {
    let mut out = Outcome::default();
    let mut first_round = true;
    loop {
        let last = {
            let l = held(cx, list, "holding the list's lock: look");
            match l.last() {
                Some(&x) => x,
                None => break,
            }
        };
        cx.say(format!("the last item is {last}"));
        cx.sleep(1.0);
        if std::mem::take(&mut first_round) {
            let _waiting = cx.span(Activity::Wait, "until the other thread has looked too");
            both_looked.wait();
        }
        let mut l = held(cx, list, "holding the list's lock: remove");
        match l.iter().position(|&x| x == last) {
            Some(i) => {
                l.remove(i);
                out.removed.push(last);
            }
            None => {
                let e = format!("remove({last}): {last} is not in the list any more");
                cx.say(format!("error: {e}"));
                out.error = Some(e);
                break;
            }
        }
    }
    out
}

/// Run `f` on two threads named Thread-1 and Thread-2, started together; their results.
fn two_threads<T: Send>(f: impl Fn() -> T + Sync) -> anyhow::Result<Vec<T>> {
    std::thread::scope(|s| {
        let threads = ["Thread-1", "Thread-2"].map(|name| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn_scoped(s, &f)
        });
        threads
            .into_iter()
            .map(|t| {
                t.context("spawning")?
                    .join()
                    .map_err(|_| anyhow::anyhow!("a thread panicked"))
            })
            .collect()
    })
}

/// The racy version: two threads on the seed's list, both looking before either removes.
pub fn racy(cx: &Cx) -> anyhow::Result<Vec<Outcome>> {
    let list = Mutex::new(ITEMS.to_vec());
    let both_looked = Barrier::new(2);
    two_threads(|| look_then_remove(cx, &list, &both_looked))
}

/// The fix with a lock: one locked `pop` looks and removes in one step.
pub fn one_pop(cx: &Cx) -> anyhow::Result<Vec<Vec<i32>>> {
    let list = Mutex::new(ITEMS.to_vec());
    two_threads(|| {
        let mut mine = Vec::new();
        loop {
            // Not `while let Some(x) = list.lock().pop()`: a temporary in a `while let`
            // condition lives until the end of the loop's body, so the lock would be held
            // through the pause below. A `let` statement drops it at its end.
            let next = held(cx, &list, "holding the list's lock: pop").pop();
            let Some(x) = next else { break };
            cx.say(format!("popped {x}"));
            mine.push(x);
            cx.sleep(1.0);
        }
        mine
    })
}

/// The fix with a queue: `get` takes an item in one step; `try_get` ends on empty.
pub fn with_queue(cx: &Cx) -> anyhow::Result<Vec<Vec<i32>>> {
    let q = Queue::new(0);
    for x in ITEMS {
        q.put(x).map_err(|e| anyhow::anyhow!("put: {e}"))?;
    }
    two_threads(|| {
        let mut mine = Vec::new();
        // try_get answers in one step: an item, or Empty (ShutDown) to stop on.
        while let Ok(x) = q.try_get() {
            cx.say(format!("got {x}"));
            mine.push(x);
            cx.sleep(1.0);
        }
        mine
    })
}

fn each_once(taken: &[Vec<i32>]) -> bool {
    let mut all: Vec<i32> = taken.concat();
    all.sort();
    all == ITEMS
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    cx.explain(
        "Two threads, one list [1, 2, 3, 4, 5]. Each looks at the last item (locked), pauses,\n\
         then removes that item (locked again). The seed's 1 s pause lets both look before\n\
         either removes; here, in the first round, each also waits until the other has looked,\n\
         so that happens on a loaded machine too:",
    );
    let outcomes = racy(cx)?;
    let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
    cx.say(format!(
        "{failed} thread(s) stopped on an error; the two removed {:?} and {:?}",
        outcomes[0].removed, outcomes[1].removed
    ));
    if failed == 0 {
        bail!("the race did not show: both threads looked at different items");
    }
    cx.explain(
        "Each call was thread-safe; the pair was not. A lock makes one operation atomic, not\n\
         the gap between two. In Python the same program dies with ValueError in one thread.",
    );
    let popped = one_pop(cx)?;
    cx.say(format!(
        "one locked pop(): {:?} and {:?}, every item exactly once",
        popped[0], popped[1]
    ));
    ensure!(
        each_once(&popped),
        "pop lost or repeated an item: {popped:?}"
    );
    let got = with_queue(cx)?;
    cx.say(format!(
        "a Queue: {:?} and {:?}, every item exactly once",
        got[0], got[1]
    ));
    ensure!(
        each_once(&got),
        "the queue lost or repeated an item: {got:?}"
    );
    Ok(())
}
