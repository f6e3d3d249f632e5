//! [`Pool`]: gevent's `gevent.pool.Pool`, a group of hub tasks of at most `size` at once:
//! [`spawn`](Pool::spawn) waits (cooperatively) for a free slot, and [`map`](Pool::map) and
//! [`imap_unordered`](Pool::imap_unordered) run a function over many items with at most `size`
//! running. Its use: bound the concurrency of a crawler (at most 10 connections to one site),
//! where a bare `spawn` per item would open them all at once.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::Duration;

use super::queue::Queue;
use super::task::{Spawned, TaskError, TaskExit, TaskState};
use super::wait::{Missed, Waiters, wait_for};
use super::{Ctx, after, spawn, where_am_i};

struct Inner {
    /// `None`: no limit.
    size: Option<usize>,
    /// The tasks in the pool now; each leaves when it ends (or is dropped unrun).
    members: RefCell<Vec<Rc<TaskState>>>,
    /// Waiting for a free slot.
    slots: Waiters,
    /// Waiting for the pool to empty.
    joiners: Waiters,
}

/// A pool of hub tasks, at most `size` running at once. Replaces `gevent.pool.Pool(size)`.
/// Cloning gives another handle on the same pool.
///
/// ```
/// use coroutines::hub::{self, Pool};
/// use std::time::Duration;
///
/// let pool = Pool::new(2);
/// let squares = pool.map(
///     |x: u64| {
///         hub::sleep(Duration::from_millis(1)).unwrap();
///         x * x
///     },
///     1..=5,
/// );
/// assert_eq!(squares.unwrap(), [1, 4, 9, 16, 25]);
/// ```
#[derive(Clone)]
pub struct Pool {
    inner: Rc<Inner>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("size", &self.inner.size)
            .field("running", &self.len())
            .finish()
    }
}

/// A task's place in the pool, given back when it is dropped: when the task's function ends
/// (returns, panics or is killed), or with the function, if the task is killed before it runs.
struct Place {
    pool: Rc<Inner>,
    id: Rc<Cell<u64>>,
}

impl Drop for Place {
    fn drop(&mut self) {
        let id = self.id.get();
        let empty = {
            let mut members = self.pool.members.borrow_mut();
            members.retain(|m| m.id != id);
            members.is_empty()
        };
        self.pool.slots.wake_one();
        if empty {
            self.pool.joiners.wake_all();
        }
    }
}

impl Pool {
    /// A pool of at most `size` tasks at once (0: none ever runs; a `spawn` waits for ever).
    pub fn new(size: usize) -> Pool {
        Pool::with(Some(size))
    }

    /// A pool with no limit. Replaces `Pool()` / `Pool(None)`.
    pub fn unbounded() -> Pool {
        Pool::with(None)
    }

    fn with(size: Option<usize>) -> Pool {
        Pool {
            inner: Rc::new(Inner {
                size,
                members: RefCell::new(Vec::new()),
                slots: Waiters::default(),
                joiners: Waiters::default(),
            }),
        }
    }

    /// Its size (`None`: no limit). Replaces `pool.size`.
    pub fn size(&self) -> Option<usize> {
        self.inner.size
    }

    /// How many of its tasks are running (or waiting to run). Replaces `len(pool)`.
    pub fn len(&self) -> usize {
        self.inner.members.borrow().len()
    }

    /// Whether it has no task. Replaces `not pool`.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many more tasks it takes now (`usize::MAX` with no limit). Replaces
    /// `pool.free_count()`.
    pub fn free_count(&self) -> usize {
        self.inner
            .size
            .map_or(usize::MAX, |n| n.saturating_sub(self.len()))
    }

    /// Whether a `spawn` would wait. Replaces `pool.full()`.
    pub fn full(&self) -> bool {
        self.free_count() == 0
    }

    /// Start `f` as a task of the pool, first waiting (cooperatively) for a free slot.
    /// Replaces `pool.spawn(f)`.
    ///
    /// # Errors
    /// As [`hub::spawn`](super::spawn), or if the wait for a slot failed (a `timeout` block
    /// around it passed, or no task will ever free one: `Deadlock`).
    pub fn spawn<T: 'static>(&self, f: impl FnOnce() -> T + 'static) -> io::Result<Spawned<T>> {
        wait_for(&|| self.free_count() > 0, &self.inner.slots, None).map_err(hub_error)?;
        let id = Rc::new(Cell::new(0));
        let place = Place {
            pool: self.inner.clone(),
            id: id.clone(),
        };
        let task = spawn(move || {
            let _place = place;
            f()
        })?;
        id.set(task.id());
        self.inner.members.borrow_mut().push(task.state());
        Ok(task)
    }

    /// Wait until a slot is free, or `timeout` passes; how many are free then. Replaces
    /// `pool.wait_available(timeout)`.
    ///
    /// # Errors
    /// If the wait failed otherwise (a `timeout` block around it, `Deadlock`).
    pub fn wait_available(&self, timeout: Option<Duration>) -> io::Result<usize> {
        match wait_for(
            &|| self.free_count() > 0,
            &self.inner.slots,
            timeout.map(after),
        ) {
            Ok(()) | Err(Missed::Deadline) => Ok(self.free_count()),
            Err(m) => Err(hub_error(m)),
        }
    }

    /// Wait until every task of the pool has ended. Replaces `pool.join()`.
    ///
    /// # Errors
    /// If the wait failed (a `timeout` block around it passed, or `Deadlock`).
    pub fn join(&self) -> io::Result<()> {
        self.join_until(None).map(drop)
    }

    /// [`join`](Pool::join), waiting at most `d`: whether the pool is empty. Replaces
    /// `pool.join(timeout=d)`.
    ///
    /// # Errors
    /// As [`join`](Pool::join).
    pub fn join_timeout(&self, d: Duration) -> io::Result<bool> {
        self.join_until(Some(d))
    }

    fn join_until(&self, d: Option<Duration>) -> io::Result<bool> {
        match wait_for(&|| self.is_empty(), &self.inner.joiners, d.map(after)) {
            Ok(()) => Ok(true),
            Err(Missed::Deadline) => Ok(false),
            Err(m) => Err(hub_error(m)),
        }
    }

    /// Kill every task of the pool ([`Spawned::kill`]). Replaces `pool.kill()`.
    ///
    /// # Errors
    /// If the thread's hub is gone.
    pub fn kill(&self) -> io::Result<()> {
        let members: Vec<Rc<TaskState>> = self.inner.members.borrow().clone();
        for m in members {
            m.kill()?;
        }
        Ok(())
    }

    /// Whether the code running now is one of the pool's tasks.
    fn runs_inside(&self) -> bool {
        match where_am_i().map(|h| h.ctx) {
            Ok(Ctx::Task(id)) => self.inner.members.borrow().iter().any(|m| m.id == id),
            _ => false,
        }
    }

    /// Run `f` in the pool and wait for its value. Replaces `pool.apply(f)`: called from one
    /// of the pool's own tasks, it runs `f` in place (as gevent does, so that a pool of one can
    /// apply from inside itself without waiting for its own slot).
    ///
    /// # Errors
    /// [`TaskError`]: `f` panicked, was killed, or the wait failed.
    pub fn apply<R: 'static>(&self, f: impl FnOnce() -> R + 'static) -> Result<R, TaskError> {
        if self.runs_inside() {
            return catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
                if p.is::<TaskExit>() {
                    std::panic::resume_unwind(p);
                }
                TaskError::Panicked(p)
            });
        }
        self.spawn(f).map_err(TaskError::Wait)?.get()
    }

    /// `f` over `items`, at most `size` at once; the values in the order of the items.
    /// Replaces `pool.map(f, items)`.
    ///
    /// # Errors
    /// The first item's failure, in the items' order ([`TaskError`]); the other items' tasks
    /// go on in the pool, as in gevent.
    pub fn map<I: 'static, R: 'static>(
        &self,
        f: impl Fn(I) -> R + 'static,
        items: impl IntoIterator<Item = I>,
    ) -> Result<Vec<R>, TaskError> {
        let f = Rc::new(f);
        let mut tasks = Vec::new();
        for item in items {
            let f = f.clone();
            tasks.push(self.spawn(move || f(item)).map_err(TaskError::Wait)?);
        }
        tasks.iter().map(Spawned::get).collect()
    }

    /// `f` over `items`, at most `size` at once; an iterator of the results in the order the
    /// tasks end. Replaces `pool.imap_unordered(f, items)`. Items are taken and started as the
    /// iterator is read (gevent starts them from a task of its own meanwhile).
    pub fn imap_unordered<I, R, It>(
        &self,
        f: impl Fn(I) -> R + 'static,
        items: It,
    ) -> ImapUnordered<It::IntoIter, R>
    where
        I: 'static,
        R: 'static,
        It: IntoIterator<Item = I>,
    {
        ImapUnordered {
            pool: self.clone(),
            f: Rc::new(f),
            items: Some(items.into_iter()),
            results: Queue::new(),
            in_flight: 0,
        }
    }
}

fn hub_error(m: Missed) -> io::Error {
    match m {
        Missed::Deadline => super::timed_out(),
        Missed::Hub(e) => e,
    }
}

/// Hands a task's result to its [`ImapUnordered`]; a task killed before it ran hands
/// [`TaskError::Killed`] when dropped, so the iterator never waits for a result that will not
/// come.
struct Sender<R> {
    results: Queue<Result<R, TaskError>>,
    sent: bool,
}

impl<R> Sender<R> {
    fn send(mut self, r: Result<R, TaskError>) {
        self.sent = true;
        let _ = self.results.put_nowait(r);
    }
}

impl<R> Drop for Sender<R> {
    fn drop(&mut self) {
        if !self.sent {
            let _ = self.results.put_nowait(Err(TaskError::Killed));
        }
    }
}

/// The iterator of [`Pool::imap_unordered`]: each item's `Ok(value)` or `Err(TaskError)`, in
/// the order the tasks end. A failed wait (a `timeout` block around `next`) gives
/// `Err(TaskError::Wait)`; the tasks go on, and a later `next` picks up their results.
pub struct ImapUnordered<It: Iterator, R> {
    pool: Pool,
    f: Rc<dyn Fn(It::Item) -> R>,
    items: Option<It>,
    results: Queue<Result<R, TaskError>>,
    in_flight: usize,
}

impl<It: Iterator, R> fmt::Debug for ImapUnordered<It, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapUnordered")
            .field("in_flight", &self.in_flight)
            .field("items_left", &self.items.is_some())
            .finish()
    }
}

impl<It, R> Iterator for ImapUnordered<It, R>
where
    It: Iterator,
    It::Item: 'static,
    R: 'static,
{
    type Item = Result<R, TaskError>;

    fn next(&mut self) -> Option<Result<R, TaskError>> {
        loop {
            if let Ok(r) = self.results.get_nowait() {
                self.in_flight -= 1;
                return Some(r);
            }
            // Start another item while the pool has room (or, with none of ours running, wait
            // for room: nothing else would give us a result).
            if self.items.is_some() && (self.in_flight == 0 || !self.pool.full()) {
                let Some(item) = self.items.as_mut().and_then(Iterator::next) else {
                    self.items = None;
                    continue;
                };
                let f = self.f.clone();
                let tx = Sender {
                    results: self.results.clone(),
                    sent: false,
                };
                let started = self.pool.spawn(move || {
                    match catch_unwind(AssertUnwindSafe(|| f(item))) {
                        Ok(v) => tx.send(Ok(v)),
                        Err(p) if p.is::<TaskExit>() => {
                            tx.send(Err(TaskError::Killed));
                            std::panic::resume_unwind(p);
                        }
                        Err(p) => tx.send(Err(TaskError::Panicked(p))),
                    };
                });
                match started {
                    Ok(_) => self.in_flight += 1,
                    Err(e) => return Some(Err(TaskError::Wait(e))),
                }
                continue;
            }
            if self.in_flight == 0 {
                return None;
            }
            return match self.results.get() {
                Ok(r) => {
                    self.in_flight -= 1;
                    Some(r)
                }
                Err(e) => Some(Err(TaskError::Wait(e.into()))),
            };
        }
    }
}
