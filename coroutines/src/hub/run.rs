//! The scheduler: the hub's state, resuming a task (with the guard that restores the hub's
//! state on every way out), and the loop that runs ready tasks and waits in epoll for sockets
//! and timers. The rules it follows are in the parent module's doc.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::Instant;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};
use std::time::Duration;

use super::net::FdWaiters;
use crate::greenlet::{Pinned, current_key};
use crate::overflow::StackMark;
use crate::selectors::{EpollSelector, Events, Selector};

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Wake {
    Ready,
    TimedOut,
    /// The task was killed: its wait raises [`TaskExit`](super::TaskExit) (state rule 6).
    Killed,
}

/// What a task waits for.
#[derive(Debug, Clone, Copy)]
pub(super) enum Wait {
    Readable(RawFd),
    Writable(RawFd),
    Until(Instant),
    /// Run again after the tasks ready now.
    Yield,
    /// Until any task finishes (a `joinall` inside a task re-checks, and waits again).
    Finish,
    /// Until [`unpark`] names it (a queue's or a pool's waiter).
    Parked,
}

/// A task's suspension: what it waits for, and the deadline of the `timeout` around it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Request {
    pub(super) wait: Wait,
    pub(super) deadline: Option<Instant>,
}

pub(super) type TaskCo = Coroutine<Wake, Request, (), DefaultStack>;

/// A task, in the hub's table from `spawn` until it finishes.
pub(super) struct Slot {
    /// Its coroutine; `None` while it runs (the hub's `resume` holds it then).
    pub(super) co: Option<TaskCo>,
    /// Set by the task when it starts; valid while the coroutine is alive.
    pub(super) yielder: *const Yielder<Wake, Request>,
    /// Bumped at every wait, so a timer or event for an older wait is ignored.
    pub(super) generation: u64,
    /// The fd it waits on, if any, and whether for writing.
    pub(super) fd: Option<(RawFd, bool)>,
    /// The innermost `timeout(...)` deadline around its current code.
    pub(super) deadline: Option<super::Deadline>,
    /// Which greenlet's code ran when it was last resumed (`greenlet::current_key`): its waits
    /// suspend it only from there.
    pub(super) greenlet: usize,
    /// Its stack's guard page, for the overflow message.
    pub(super) guard: usize,
    /// It waits in `Wait::Parked`: [`unpark`] may wake it.
    pub(super) parked: bool,
    /// A kill was asked for while it ran: its next wait raises `TaskExit` (state rule 6).
    pub(super) kill: bool,
}

/// A timer: when, a sequence number (ties), which task, for which wait, and how it wakes it.
type Timer = Reverse<(Instant, u64, u64, u64, Wake)>;

pub(super) struct Hub {
    /// The sockets waited on, each registered once (edge-triggered, read and write) with who
    /// waits on it: the `selectors` module's epoll selector (see `net.rs` for why).
    pub(super) sel: EpollSelector<FdWaiters>,
    /// What the last wait found (kept to reuse its allocation).
    found: Vec<(RawFd, Events)>,
    pub(super) tasks: HashMap<u64, Slot>,
    /// Tasks to resume, with the generation of the wait they were woken from: an entry whose
    /// task has moved on since (killed, or woken otherwise) is skipped.
    ready: VecDeque<(u64, u64, Wake)>,
    timers: BinaryHeap<Timer>,
    seq: u64,
    pub(super) next: u64,
    /// The innermost task running now.
    pub(super) current: Option<u64>,
    /// How many tasks wait on sockets.
    io_waiting: usize,
    /// Tasks waiting for any task to finish, with the generation of their wait.
    finish_waiters: Vec<(u64, u64)>,
    /// The `timeout` deadlines of code that is not a task's own (the root, or a greenlet),
    /// by `greenlet::current_key`.
    pub(super) outside: HashMap<usize, super::Deadline>,
    /// Told when a task runs, waits and ends (see `hub::set_tracer`).
    pub(super) tracer: Option<Rc<dyn Fn(super::Trace)>>,
}

thread_local! {
    pub(super) static HUB: RefCell<Option<Hub>> = const { RefCell::new(None) };
}

/// Run `f` on this thread's hub, making it at first use. An error if the hub cannot be made,
/// is being used already (no code runs inside `f` that could come back here), or is gone
/// (at thread exit, while its tasks are dropped).
pub(super) fn with_hub<R>(f: impl FnOnce(&mut Hub) -> R) -> io::Result<R> {
    HUB.try_with(|h| {
        let mut h = h
            .try_borrow_mut()
            .map_err(|_| io::Error::other("the hub is busy"))?;
        if h.is_none() {
            *h = Some(Hub {
                sel: EpollSelector::edge_triggered()?,
                found: Vec::new(),
                tasks: HashMap::new(),
                ready: VecDeque::new(),
                timers: BinaryHeap::new(),
                seq: 0,
                next: 1,
                current: None,
                io_waiting: 0,
                finish_waiters: Vec::new(),
                outside: HashMap::new(),
                tracer: None,
            });
        }
        match h.as_mut() {
            Some(hub) => Ok(f(hub)),
            None => Err(io::Error::other("no hub")),
        }
    })
    .map_err(|_| io::Error::other("the hub is gone (the thread is exiting)"))?
}

/// Add a new task, ready to run.
pub(super) fn add(id: u64, co: TaskCo, guard: usize) -> io::Result<()> {
    with_hub(|h| {
        h.tasks.insert(
            id,
            Slot {
                co: Some(co),
                yielder: std::ptr::null(),
                generation: 0,
                fd: None,
                deadline: None,
                greenlet: 0,
                guard,
                parked: false,
                kill: false,
            },
        );
        h.ready.push_back((id, 0, Wake::Ready));
    })
}

/// The hub's state while a task runs: it is `current`, the greenlet it runs on top of cannot
/// suspend, and its stack is the one the overflow handler checks. All three are put back, on
/// every way out of the resume, normal or unwinding, when this is dropped.
struct Running {
    before: Option<u64>,
    _pinned: Pinned,
    _stack: StackMark,
}

impl Running {
    /// `before` is what `current` was; the hub already names the task.
    fn enter(before: Option<u64>, guard: usize) -> Running {
        Running {
            before,
            _pinned: Pinned::current(),
            _stack: StackMark::task(guard),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let before = self.before;
        let _ = with_hub(|h| h.current = before);
    }
}

/// Run task `id` until it waits or finishes, if it still waits in the wait numbered
/// `generation` (`None`: whatever it waits for).
pub(super) fn resume(id: u64, generation: Option<u64>, wake: Wake) {
    let key = current_key();
    let taken = with_hub(|h| {
        let s = h.tasks.get_mut(&id)?;
        if generation.is_some_and(|g| g != s.generation) {
            return None; // woken for a wait it has left since
        }
        let co = s.co.take()?;
        s.greenlet = key;
        let guard = s.guard;
        let tracer = h.tracer.clone();
        Some((co, guard, h.current.replace(id), tracer))
    });
    // Not there (finished), or running already (a wait nested inside it reached here).
    let Ok(Some((mut co, guard, before, tracer))) = taken else {
        return;
    };
    if let Some(t) = &tracer {
        t(super::Trace::Runs(id));
    }
    let outcome = {
        // From here on the guard puts `current` back, however the resume ends.
        let _running = Running::enter(before, guard);
        // No panic comes out: the task catches its own. Were one to, `_running` would still
        // restore the hub's state, and `co`, finished by the panic, would be dropped here.
        co.resume(wake)
    };
    match outcome {
        CoroutineResult::Return(()) => {
            let _ = with_hub(|h| {
                h.tasks.remove(&id);
                for (waiter, generation) in std::mem::take(&mut h.finish_waiters) {
                    wake_up(h, waiter, generation, Wake::Ready);
                }
            });
            if let Some(t) = &tracer {
                t(super::Trace::Ends(id));
            }
        }
        CoroutineResult::Yield(request) => {
            let _ = with_hub(|h| {
                if let Some(s) = h.tasks.get_mut(&id) {
                    s.co = Some(co);
                    register(h, id, request);
                }
            });
            if let Some(t) = &tracer {
                t(super::Trace::Waits(id, request.wait.into()));
            }
        }
    }
}

/// Kill task `id` (state rule 6): if it is suspended, its wait is cancelled and it is resumed
/// at once with `Wake::Killed`, so its wait raises `TaskExit` (an unstarted task drops its
/// function instead); if it is running (this is called from code it runs, or from code on top
/// of it), its next wait raises it. Whether the task was suspended (and so has been resumed).
pub(super) fn kill(id: u64) -> io::Result<bool> {
    let suspended = with_hub(|h| {
        let Some(s) = h.tasks.get_mut(&id) else {
            return false; // finished
        };
        if s.co.is_none() {
            s.kill = true; // running: at its next wait
            return false;
        }
        s.kill = false;
        cancel_wait(h, id);
        true
    })?;
    if suspended {
        resume(id, None, Wake::Killed);
    }
    Ok(suspended)
}

/// Wake task `id` if it waits in `Wait::Parked`. Whether it did.
pub(super) fn unpark(id: u64) -> bool {
    with_hub(|h| {
        let Some(s) = h.tasks.get(&id) else {
            return false;
        };
        if !s.parked {
            return false;
        }
        let generation = s.generation;
        wake_up(h, id, generation, Wake::Ready);
        true
    })
    .unwrap_or(false)
}

/// Forget what task `id` waits for: its socket, its park; timers and `ready` entries of that
/// wait become stale (the generation moves on).
fn cancel_wait(h: &mut Hub, id: u64) {
    let Some(s) = h.tasks.get_mut(&id) else {
        return;
    };
    s.parked = false;
    s.generation += 1;
    if let Some((fd, write)) = s.fd.take() {
        if let Some(w) = h.sel.get_key_mut(fd).map(|k| &mut k.data) {
            if write {
                w.writer = None;
            } else {
                w.reader = None;
            }
        }
        h.io_waiting -= 1;
    }
}

/// Wake task `id` if it still waits in the wait numbered `generation`.
fn wake_up(h: &mut Hub, id: u64, generation: u64, wake: Wake) {
    let Some(s) = h.tasks.get(&id) else {
        return;
    };
    if s.generation != generation {
        return;
    }
    cancel_wait(h, id);
    h.ready.push_back((id, generation + 1, wake));
}

/// Note what suspended task `id` waits for.
fn register(h: &mut Hub, id: u64, request: Request) {
    let Some(s) = h.tasks.get_mut(&id) else {
        return;
    };
    s.generation += 1;
    let generation = s.generation;
    let timer = |h: &mut Hub, t: Instant, wake: Wake| {
        h.seq += 1;
        h.timers.push(Reverse((t, h.seq, id, generation, wake)));
    };
    let deadline = request.deadline;
    match request.wait {
        Wait::Yield => h.ready.push_back((id, generation, Wake::Ready)),
        Wait::Parked => {
            if let Some(s) = h.tasks.get_mut(&id) {
                s.parked = true;
            }
            if let Some(d) = deadline {
                timer(h, d, Wake::TimedOut);
            }
        }
        Wait::Until(t) => match deadline {
            Some(d) if d < t => timer(h, d, Wake::TimedOut),
            _ => timer(h, t, Wake::Ready),
        },
        Wait::Finish => {
            h.finish_waiters.push((id, generation));
            if let Some(d) = deadline {
                timer(h, d, Wake::TimedOut);
            }
        }
        Wait::Readable(fd) | Wait::Writable(fd) => {
            let write = matches!(request.wait, Wait::Writable(_));
            let registered = h.sel.get_map().contains_key(&fd) || {
                // SAFETY: the waiting task owns the socket; it stays registered until the
                // socket's drop calls `release_fd`.
                let bfd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
                let both = Events::READ | Events::WRITE;
                h.sel.register(bfd, both, FdWaiters::default()).is_ok()
            };
            match h.sel.get_key_mut(fd).map(|k| &mut k.data) {
                Some(waiters) if registered => {
                    let me = Some((id, generation));
                    if write {
                        waiters.writer = me;
                    } else {
                        waiters.reader = me;
                    }
                    if let Some(s) = h.tasks.get_mut(&id) {
                        s.fd = Some((fd, write));
                    }
                    h.io_waiting += 1;
                    if let Some(d) = deadline {
                        timer(h, d, Wake::TimedOut);
                    }
                }
                // Not pollable (a regular file): it is always ready.
                _ => h.ready.push_back((id, generation, Wake::Ready)),
            }
        }
    }
}

/// The hub loop: run ready tasks; when none is ready, wait in epoll until a socket is ready or
/// the next timer (or `until`) is due. Returns when `stop()` holds, when `until` has passed,
/// or when nothing could ever run again (no task ready, no timer, no socket waited on).
pub(super) fn run_until(stop: &dyn Fn() -> bool, until: Option<Instant>) {
    loop {
        // The tasks ready now run first, even when `until` has passed already: a wait lets
        // the ready tasks run, however short it is (as `gevent.sleep(d)` does). Only those
        // ready now: a task that yields again runs at the next turn, after `until` is checked,
        // so it cannot keep the wait from ending.
        let batch = with_hub(|h| h.ready.len()).unwrap_or(0);
        for _ in 0..batch {
            if stop() {
                return;
            }
            let Ok(Some((id, generation, wake))) = with_hub(|h| h.ready.pop_front()) else {
                break;
            };
            resume(id, Some(generation), wake);
        }
        if stop() || until.is_some_and(|u| Instant::now() >= u) {
            return;
        }
        if batch > 0 {
            // Some task is ready again (it yielded): look at the sockets and timers without
            // waiting before its next turn, so that a task that always yields starves no
            // other. When none is, the wait below looks at them anyway.
            if with_hub(|h| !h.ready.is_empty()).unwrap_or(false) && !poll(Some(Duration::ZERO)) {
                return;
            }
            continue;
        }
        // Nothing ready: how long may we sleep?
        let Ok((due, waiting)) = with_hub(|h| {
            let due = h.timers.peek().map(|Reverse((t, ..))| *t);
            (due, h.io_waiting)
        }) else {
            return;
        };
        let due = match (due, until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if due.is_none() && waiting == 0 {
            return; // nothing can wake anyone: done, or deadlocked
        }
        let timeout = due.map(|t| t.saturating_duration_since(Instant::now()));
        if !poll(timeout) {
            return;
        }
    }
}

/// Run the tasks that are ready now (after a look at the sockets and timers that take no
/// waiting), each once: what `gevent.sleep(0)` does from outside a task.
pub(super) fn run_ready_once() {
    poll(Some(Duration::ZERO));
    let n = with_hub(|h| h.ready.len()).unwrap_or(0);
    for _ in 0..n {
        let Ok(Some((id, generation, wake))) = with_hub(|h| h.ready.pop_front()) else {
            return;
        };
        resume(id, Some(generation), wake);
    }
}

/// Wait in epoll for at most `timeout` (`None`: until an event), then make ready the tasks
/// whose socket or timer is due. `false` if the hub cannot wait (it is gone, or epoll failed).
fn poll(timeout: Option<Duration>) -> bool {
    // The hub is borrowed for the wait: no task runs meanwhile, and nothing else can be using
    // it (a signal handler does not touch it).
    let Ok(Ok(mut found)) = with_hub(|h| {
        let mut found = std::mem::take(&mut h.found);
        h.sel.select_into(timeout, &mut found).map(|()| found)
    }) else {
        return false;
    };
    let done = with_hub(|h| {
        for &(fd, events) in &found {
            let Some(w) = h.sel.get_key_mut(fd).map(|k| &mut k.data) else {
                continue;
            };
            let mut woken = [None, None];
            if events.contains(Events::HUP) {
                w.closed = true;
            }
            if events.contains(Events::READ) {
                w.readable = true;
                woken[0] = w.reader.take();
            }
            if events.contains(Events::WRITE) {
                woken[1] = w.writer.take();
            }
            for (id, generation) in woken.into_iter().flatten() {
                wake_up(h, id, generation, Wake::Ready);
            }
        }
        let now = Instant::now();
        while let Some(Reverse((t, _, id, generation, wake))) = h.timers.peek().copied() {
            if t > now {
                break;
            }
            h.timers.pop();
            wake_up(h, id, generation, wake);
        }
        found.clear();
        h.found = found;
    });
    done.is_ok()
}
