//! Deadlock detection: [`LockGraph`] hands out [`TrackedMutex`]es that record who holds each
//! lock and who waits for which. A thread that has waited a moment looks for a cycle in that
//! "wait-for" graph; if it closes one, it gets a [`Deadlock`] error naming the cycle instead of
//! blocking forever, and releases what it holds as its guards drop (the victim, as a database
//! would pick one).
//!
//! Why not parking_lot's `deadlock_detection` feature: it is destructive (the threads it reports
//! stay blocked forever, so the demo would need a child process to kill), it does not see timed
//! waits, and enabling it changes every parking_lot lock in the whole build. A graph of our own
//! costs a map update per lock and reports the cycle in the program's own lock names.

use std::collections::HashMap;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use crate::deadline;

/// How long a thread waits before it looks for a cycle, and between looks.
pub const DEFAULT_TICK: Duration = Duration::from_millis(10);

#[derive(Debug, Clone)]
struct Who {
    id: ThreadId,
    name: String,
}

fn me() -> Who {
    let t = thread::current();
    Who {
        id: t.id(),
        name: t
            .name()
            .map_or_else(|| format!("{:?}", t.id()), str::to_owned),
    }
}

#[derive(Debug, Default)]
struct Graph {
    names: Vec<String>,
    /// lock id -> its holder
    holder: HashMap<usize, Who>,
    /// thread -> the lock it waits for
    waiting: HashMap<ThreadId, (usize, Who)>,
}

impl Graph {
    /// Follow "waits for lock -> held by thread -> waits for lock ..." from `start`; a path
    /// that comes back to `start` is a deadlock.
    fn cycle_from(&self, start: ThreadId) -> Option<Vec<Edge>> {
        let mut path: Vec<(Who, usize)> = Vec::new();
        let mut cur = start;
        loop {
            let (lock, who) = self.waiting.get(&cur)?;
            path.push((who.clone(), *lock));
            let holder = self.holder.get(lock)?;
            if holder.id == start {
                break;
            }
            if path.iter().any(|(w, _)| w.id == holder.id) || path.len() > self.waiting.len() {
                return None; // a cycle that does not include `start`: its own members will see it
            }
            cur = holder.id;
        }
        let n = path.len();
        Some(
            (0..n)
                .map(|i| Edge {
                    thread: path[i].0.name.clone(),
                    holds: self.names[path[(i + n - 1) % n].1].clone(),
                    waits_for: self.names[path[i].1].clone(),
                })
                .collect(),
        )
    }
}

/// One thread of a deadlock cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// The thread's name.
    pub thread: String,
    /// The lock it holds that the previous thread of the cycle waits for.
    pub holds: String,
    /// The lock it waits for.
    pub waits_for: String,
}

/// A cycle of threads each waiting for a lock the next one holds: none of them could ever
/// go on. Returned by [`TrackedMutex::lock`] to the thread that closed the cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadlock {
    /// The cycle, starting with the thread that detected it.
    pub cycle: Vec<Edge>,
}

impl fmt::Display for Deadlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadlock: ")?;
        for (i, e) in self.cycle.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(
                f,
                "{} holds {} and waits for {}",
                e.thread, e.holds, e.waits_for
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Deadlock {}

/// The shared record of which thread holds and waits for which of its locks.
/// Clone it freely: clones share the record.
#[derive(Clone, Debug)]
pub struct LockGraph {
    graph: Arc<Mutex<Graph>>,
    tick: Duration,
}

impl Default for LockGraph {
    fn default() -> Self {
        LockGraph::new()
    }
}

impl LockGraph {
    /// A graph whose threads look for cycles every [`DEFAULT_TICK`] while they wait.
    pub fn new() -> LockGraph {
        LockGraph::with_tick(DEFAULT_TICK)
    }

    /// A graph whose threads look for cycles every `tick` while they wait.
    pub fn with_tick(tick: Duration) -> LockGraph {
        LockGraph {
            graph: Arc::new(Mutex::new(Graph::default())),
            tick,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Graph> {
        // Every update is a single map insert or remove.
        self.graph.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new lock called `name`, recorded in this graph, protecting `value`.
    /// Replaces `threading.Lock()` where deadlocks should be caught.
    pub fn mutex<T>(&self, name: impl Into<String>, value: T) -> TrackedMutex<T> {
        let mut g = self.lock();
        g.names.push(name.into());
        TrackedMutex {
            id: g.names.len() - 1,
            graph: self.clone(),
            inner: parking_lot::Mutex::new(value),
        }
    }
}

/// A mutex that reports deadlocks instead of hanging (see the module docs): the lesson's
/// `threading.Lock()`.
///
/// | Python | here |
/// |---|---|
/// | `lock.acquire()` | [`lock`](TrackedMutex::lock) (a deadlock is an error, not a hang) |
/// | `lock.acquire(blocking=False)` | [`try_lock`](TrackedMutex::try_lock) |
/// | `lock.acquire(timeout=t)` | [`lock_timeout`](TrackedMutex::lock_timeout) |
/// | `lock.release()` | dropping the [`TrackedGuard`] |
/// | `lock.locked()` | [`locked`](TrackedMutex::locked) |
/// | `repr(lock)`: `<locked _thread.lock ...>` | `Debug`: `locked: true` and the holder's name |
pub struct TrackedMutex<T> {
    id: usize,
    graph: LockGraph,
    inner: parking_lot::Mutex<T>,
}

impl<T> fmt::Debug for TrackedMutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, holder) = {
            let g = self.graph.lock();
            (
                g.names[self.id].clone(),
                g.holder.get(&self.id).map(|w| w.name.clone()),
            )
        };
        f.debug_struct("TrackedMutex")
            .field("name", &name)
            .field("locked", &self.locked())
            .field("holder", &holder)
            .finish()
    }
}

impl<T> Drop for TrackedMutex<T> {
    fn drop(&mut self) {
        // A guard that was forgotten (`mem::forget`) leaves its holder recorded: forget it too.
        self.graph.lock().holder.remove(&self.id);
    }
}

impl<T> TrackedMutex<T> {
    /// The lock's name.
    pub fn name(&self) -> String {
        self.graph.lock().names[self.id].clone()
    }

    /// Whether some thread holds the lock (a snapshot). Replaces `lock.locked()`.
    pub fn locked(&self) -> bool {
        self.inner.is_locked()
    }

    /// Take the lock, or, if waiting for it would never end, return the cycle.
    /// Taking a lock this thread already holds is a cycle of one (a plain `Lock` is not
    /// reentrant: in Python that call hangs forever).
    ///
    /// # Errors
    ///
    /// [`Deadlock`] when this thread closes a cycle of threads each waiting for a lock the
    /// next one holds; this thread then holds nothing more than before the call.
    pub fn lock(&self) -> Result<TrackedGuard<'_, T>, Deadlock> {
        self.lock_until(None)
            .map(|g| g.unwrap_or_else(|| unreachable!("an untimed lock cannot time out")))
    }

    /// Take the lock only if it is free now; `None` if another thread (or this one) holds it.
    /// Replaces `lock.acquire(blocking=False)`. Never waits, so never a deadlock.
    pub fn try_lock(&self) -> Option<TrackedGuard<'_, T>> {
        self.inner.try_lock().map(|inner| self.hold(me(), inner))
    }

    /// Take the lock, waiting at most `timeout`: `Ok(None)` if it stayed held. Replaces
    /// `lock.acquire(timeout=t)`, which returns `False` then. A timeout too long to represent
    /// as a deadline (such as `Duration::MAX`) waits as long as it takes.
    ///
    /// # Errors
    ///
    /// [`Deadlock`], as [`lock`](TrackedMutex::lock), when the wait closes a cycle before the
    /// timeout: such a wait could only end by timing out, so it is reported as soon as it is
    /// seen (the waiter looks every tick, [`LockGraph::with_tick`]) instead of when the time
    /// runs out. A timeout shorter than a tick is a plain time-out. (In Python,
    /// `lock.acquire(timeout=1)` on a lock the caller holds returns `False` after a second.)
    pub fn lock_timeout(&self, timeout: Duration) -> Result<Option<TrackedGuard<'_, T>>, Deadlock> {
        self.lock_until(deadline::after(timeout))
    }

    fn lock_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Option<TrackedGuard<'_, T>>, Deadlock> {
        let who = me();
        let inner = match self.inner.try_lock() {
            Some(g) => g,
            None => loop {
                let patience = match deadline {
                    None => self.graph.tick,
                    Some(d) => self
                        .graph
                        .tick
                        .min(d.saturating_duration_since(Instant::now())),
                };
                if let Some(g) = self.inner.try_lock_for(patience) {
                    break g;
                }
                let mut graph = self.graph.lock();
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    graph.waiting.remove(&who.id);
                    return Ok(None);
                }
                graph.waiting.insert(who.id, (self.id, who.clone()));
                if let Some(cycle) = graph.cycle_from(who.id) {
                    graph.waiting.remove(&who.id);
                    return Err(Deadlock { cycle });
                }
            },
        };
        Ok(Some(self.hold(who, inner)))
    }

    /// Record `who` as the holder (and no longer a waiter) and hand out the guard.
    fn hold<'a>(&'a self, who: Who, inner: parking_lot::MutexGuard<'a, T>) -> TrackedGuard<'a, T> {
        let mut graph = self.graph.lock();
        graph.waiting.remove(&who.id);
        graph.holder.insert(self.id, who);
        drop(graph);
        TrackedGuard {
            lock: self,
            inner: Some(inner),
        }
    }
}

/// Access to a [`TrackedMutex`]'s value; dropping it releases the lock. Not `Send`: the
/// thread that locked is the one that unlocks (Python's `Lock` may be released by any thread;
/// here that does not compile):
///
/// ```compile_fail,E0277
/// let graph = sync::LockGraph::new();
/// let lock = graph.mutex("lock", ());
/// let guard = lock.lock().unwrap();
/// std::thread::scope(|s| {
///     s.spawn(move || drop(guard)); // another thread may not release it
/// });
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct TrackedGuard<'a, T> {
    lock: &'a TrackedMutex<T>,
    inner: Option<parking_lot::MutexGuard<'a, T>>,
}

impl<T: fmt::Debug> fmt::Debug for TrackedGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TrackedGuard").field(&**self).finish()
    }
}

impl<T> Deref for TrackedGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.inner.as_deref().unwrap_or_else(|| unreachable!())
    }
}

impl<T> DerefMut for TrackedGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.inner.as_deref_mut().unwrap_or_else(|| unreachable!())
    }
}

impl<T> Drop for TrackedGuard<'_, T> {
    fn drop(&mut self) {
        // Leave the graph first, then unlock: while the graph names a holder, that thread
        // really holds the lock, so a cycle found in the graph is a real one.
        self.lock.graph.lock().holder.remove(&self.lock.id);
        self.inner.take();
    }
}
