//! `hub`: a single-threaded cooperative scheduler in gevent's style. Tasks (coroutines on
//! corosensei) run until they would block; then they suspend, telling the hub what they wait
//! for (a socket ready, a deadline, another task's end), and the hub runs another. The hub
//! waits in `epoll` for sockets and keeps a heap of timers for sleeps and time-outs.
//!
//! gevent makes the *standard* socket and sleep functions cooperative by monkey-patching them.
//! Rust cannot patch std, so the cooperative calls are explicit: [`sleep`], [`yield_now`],
//! [`joinall`], [`TcpStream`], [`TcpListener`], [`Queue`], [`Pool`]. A blocking std call inside
//! a task (`std::thread::sleep`, a blocking read) freezes every task of the hub until it
//! returns.
//!
//! ```
//! use std::time::Duration;
//! use coroutines::hub;
//!
//! let a = hub::spawn(|| { hub::sleep(Duration::from_millis(20)).unwrap(); "a" })?;
//! let b = hub::spawn(|| { hub::sleep(Duration::from_millis(10)).unwrap(); "b" })?;
//! hub::joinall(&[&a, &b])?;                  // runs the hub until both are done
//! assert_eq!((a.take(), b.take()), (Some("a"), Some("b")));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Waits, time-outs and panics, as gevent's
//!
//! - Every cooperative wait ([`sleep`], [`yield_now`], [`joinall`], a socket's read, write,
//!   accept or connect) returns an `io::Result`: inside [`timeout`] it fails with
//!   `ErrorKind::TimedOut` once the deadline passes (gevent raises `Timeout` at whatever the
//!   greenlet waits on). `?` then takes the code out of the block.
//! - Outside any task (the root, as gevent's main greenlet), a wait runs the hub until it is
//!   satisfied: [`sleep`] runs the tasks meanwhile, [`yield_now`] runs the tasks ready now.
//! - A task's panic stays on its [`Spawned`] ([`Spawned::exception`],
//!   [`Spawned::successful`]); [`joinall`] returns anyway, and [`joinall_raise_error`]
//!   re-raises the panic of the task that failed first (gevent's `raise_error=True`).
//! - [`Spawned::kill`] raises [`TaskExit`] (gevent's `GreenletExit`) where the task waits; it
//!   unwinds the task's stack to its top, and the task ends killed (state rule 6).
//!
//! # State rules (who owns a task, what the hub's state is during a resume)
//!
//! 1. A task's coroutine is owned by its slot in the hub's table, except while it runs: then
//!    the resume holds it (taken out of the slot, so a nested attempt to resume it finds
//!    nothing). A finished task leaves the table; its value or panic is on its [`Spawned`].
//! 2. While a task runs, the hub's state says so: `current` names it, the greenlet it runs on
//!    top of (if any) cannot suspend (its stack holds the task's resume), and the overflow
//!    handler knows its stack. A guard made before the resume puts all three back on every way
//!    out, normal or unwinding; nothing after the resume call is needed for that.
//! 3. A task suspends only from its own code: when the greenlet running is the one it was
//!    resumed on. Code of a greenlet started inside the task waits as code outside any task
//!    does (it runs the hub in place); suspending the task from there would carry the
//!    greenlet's frames into the task's suspension.
//! 4. No panic leaves a task: it is caught at the task's top and kept on its [`Spawned`]. The
//!    hub's table is never borrowed while user code runs.
//! 5. When the thread exits, the hub goes with its thread-local: the tasks still suspended are
//!    dropped, which unwinds their stacks; hub calls made by their destructors then fail with
//!    an error ("the hub is gone") instead of touching a hub being dropped.
//! 6. **Killing** a task is done by the task itself, on its own stack: a suspended task has
//!    its wait cancelled (a new generation makes its timers and wake-ups stale) and is resumed
//!    at once with `Killed`, and its wait raises [`TaskExit`] with `resume_unwind`; a task
//!    that is running (the kill comes from its own code, or from code it runs) gets a flag,
//!    and its next wait raises it. An unstarted task is resumed the same way and drops its
//!    function unrun. So a task's coroutine is never dropped or unwound from outside while the
//!    hub lives (rule 1 holds), and the unwinding is an ordinary one, caught at the task's top
//!    like a panic (rule 4). A kill resumes the task nested inside the killer's code, as a
//!    wait outside a task resumes tasks: rule 2's guard restores the hub's state after it.
//! 7. **No wait while a panic unwinds** (or a killed task is unwound): it fails with an error.
//!    The panic count is the thread's, not the stack's; a task suspended half way through its
//!    unwind would leave every other task running "panicking" (a greenlet's rule 6 for the
//!    same reason). Hub calls that do not wait (spawn, a queue's `put_nowait`, a socket's
//!    release) still work from destructors.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::greenlet::current_key;

mod net;
mod pool;
mod queue;
mod run;
mod task;
mod wait;

pub use net::{TcpListener, TcpStream};
pub use pool::{ImapUnordered, Pool};
pub use queue::{PutError, Queue, QueueError};
use run::{Request, Wait, Wake, with_hub};
pub use task::{Joinable, Spawned, TaskError, TaskExit, spawn, spawn_later, spawn_with_stack};

/// What the hub tells a tracer ([`set_tracer`]), by task number ([`Spawned::id`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trace {
    /// The hub hands the thread to the task: it runs from here until it waits or ends.
    Runs(u64),
    /// The task gave the thread back, waiting for this.
    Waits(u64, Waiting),
    /// The task ended (returned, panicked or was killed).
    Ends(u64),
}

/// What a task waits for, as [`Trace::Waits`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// A socket to read from (or accept on).
    Read,
    /// A socket to write to (or a connect to finish).
    Write,
    /// A time ([`sleep`]).
    Sleep,
    /// Its next turn ([`yield_now`]).
    Turn,
    /// Another task to end ([`joinall`]).
    Task,
    /// A queue or a pool ([`Queue`], [`Pool`]).
    Parked,
}

impl From<Wait> for Waiting {
    fn from(w: Wait) -> Waiting {
        match w {
            Wait::Readable(_) => Waiting::Read,
            Wait::Writable(_) => Waiting::Write,
            Wait::Until(_) => Waiting::Sleep,
            Wait::Yield => Waiting::Turn,
            Wait::Finish => Waiting::Task,
            Wait::Parked => Waiting::Parked,
        }
    }
}

/// Tell `tracer` each hand-over of this thread's hub: a task starts running, gives the thread
/// back to wait, or ends (`None`: stop). The `gevent` lesson draws its timeline with it. A
/// tracer must not wait on the hub; it costs the hub nothing when none is set.
///
/// # Errors
/// If the thread's hub cannot be made (epoll) or is gone (at thread exit).
pub fn set_tracer(tracer: Option<Rc<dyn Fn(Trace)>>) -> io::Result<()> {
    with_hub(|h| h.tracer = tracer)
}

/// The deadline of the innermost `timeout` block around some code, and the flag its block
/// reads afterwards: set when a wait was cut short by this deadline.
#[derive(Clone)]
pub(super) struct Deadline {
    at: Instant,
    fired: Rc<Cell<bool>>,
}

/// Whose waits these are: a task's own code (they suspend it), or code outside any task's own
/// (the root, or a greenlet), keyed by `greenlet::current_key` (state rule 3).
#[derive(Clone, Copy)]
enum Ctx {
    Task(u64),
    Outside(usize),
}

fn context() -> Ctx {
    where_am_i().map_or(Ctx::Outside(current_key()), |w| w.ctx)
}

/// The current context, its deadline, and (in a task's own code) the task's yielder, in one
/// look at the hub: a wait needs all three. An error if there is no hub.
struct Here {
    ctx: Ctx,
    deadline: Option<Deadline>,
    yielder: *const corosensei::Yielder<Wake, Request>,
    /// A kill was asked for while the task ran: its next wait raises it (once).
    kill: bool,
}

fn where_am_i() -> io::Result<Here> {
    let key = current_key();
    with_hub(|h| {
        let own = h
            .current
            .and_then(|id| h.tasks.get(&id).map(|s| (id, s)))
            .filter(|(_, s)| s.greenlet == key);
        match own {
            Some((id, s)) => Here {
                ctx: Ctx::Task(id),
                deadline: s.deadline.clone(),
                yielder: s.yielder,
                kill: s.kill,
            },
            None => Here {
                ctx: Ctx::Outside(key),
                deadline: h.outside.get(&key).cloned(),
                yielder: std::ptr::null(),
                kill: false,
            },
        }
    })
}

fn set_deadline(ctx: Ctx, deadline: Option<Deadline>) {
    let _ = with_hub(|h| match ctx {
        Ctx::Task(id) => {
            if let Some(s) = h.tasks.get_mut(&id) {
                s.deadline = deadline;
            }
        }
        Ctx::Outside(key) => {
            match deadline {
                Some(d) => h.outside.insert(key, d),
                None => h.outside.remove(&key),
            };
        }
    });
}

/// The time-out of [`timeout`] passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timed out")
    }
}

impl std::error::Error for Elapsed {}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, Elapsed)
}

/// `now + d`, or a century from now for a longer `d` (an `Instant` cannot hold any sum).
fn after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// Wait for `w` in the current context, within the deadline of the `timeout` around it.
fn wait(w: Wait) -> io::Result<()> {
    // State rule 7: no wait while a panic unwinds (checked before the hub is looked at, so
    // that a pending kill is not taken here and lost).
    refuse_while_panicking()?;
    // No hub (gone at thread exit, or not to be made): no cooperative wait is possible.
    let here = where_am_i()?;
    let r = wait_within(&here, w, here.deadline.as_ref().map(|d| d.at));
    if let (Err(e), Some(d)) = (&r, here.deadline)
        && e.kind() == io::ErrorKind::TimedOut
    {
        d.fired.set(true);
    }
    r
}

/// State rule 7: a wait while a panic unwinds (or a killed task's stack is unwound) fails.
fn refuse_while_panicking() -> io::Result<()> {
    if std::thread::panicking() {
        return Err(io::Error::other(
            "cannot wait on the hub while a panic unwinds (or a killed task is unwound): \
             the panic belongs to the thread, so every other task would run inside it",
        ));
    }
    Ok(())
}

/// [`wait`], with the deadline `dl`: fails with `TimedOut` when that passes first.
fn wait_within(here: &Here, w: Wait, dl: Option<Instant>) -> io::Result<()> {
    if let (true, Ctx::Task(id)) = (here.kill, here.ctx) {
        // Killed while it ran (state rule 6): the exit is raised at this wait, once.
        let _ = with_hub(|h| h.tasks.get_mut(&id).map(|s| s.kill = false));
        std::panic::resume_unwind(Box::new(TaskExit));
    }
    if dl.is_some_and(|d| Instant::now() >= d) {
        return Err(timed_out());
    }
    match here.ctx {
        Ctx::Task(_) => {
            let yielder = here.yielder;
            if yielder.is_null() {
                return Err(io::Error::other("the task has no yielder"));
            }
            let request = Request {
                wait: w,
                deadline: dl,
            };
            // SAFETY: the task is running and this is its own code (state rule 3), so we are
            // on its stack inside the closure that recorded this yielder; corosensei keeps it
            // alive as long as the coroutine.
            match unsafe { &*yielder }.suspend(request) {
                Wake::Ready => Ok(()),
                Wake::TimedOut => Err(timed_out()),
                // State rule 6: raised here, caught at the task's top.
                Wake::Killed => std::panic::resume_unwind(Box::new(TaskExit)),
            }
        }
        Ctx::Outside(_) => wait_outside(w, dl),
    }
}

/// A wait outside any task's own code: run the hub here until it is satisfied.
fn wait_outside(w: Wait, dl: Option<Instant>) -> io::Result<()> {
    let passed = || dl.is_some_and(|d| Instant::now() >= d);
    match w {
        Wait::Until(t) => {
            let end = dl.map_or(t, |d| d.min(t));
            run::run_until(&|| false, Some(end));
            if dl.is_some_and(|d| d < t) && passed() {
                return Err(timed_out());
            }
            Ok(())
        }
        Wait::Yield => {
            run::run_ready_once();
            if passed() { Err(timed_out()) } else { Ok(()) }
        }
        // `joinall` and the queues wait outside a task with `run_until` themselves.
        Wait::Finish | Wait::Parked => Ok(()),
        Wait::Readable(fd) | Wait::Writable(fd) => {
            let flags = if matches!(w, Wait::Readable(_)) {
                nix::poll::PollFlags::POLLIN
            } else {
                nix::poll::PollFlags::POLLOUT
            };
            // SAFETY: the caller holds the socket whose fd this is for the whole call.
            let bfd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            let ms = dl.map_or(-1, |d| {
                d.saturating_duration_since(Instant::now())
                    .as_millis()
                    .min(i32::MAX as u128) as i32
            });
            let mut fds = [nix::poll::PollFd::new(bfd, flags)];
            match nix::poll::poll(
                &mut fds,
                nix::poll::PollTimeout::try_from(ms).unwrap_or(nix::poll::PollTimeout::NONE),
            ) {
                Ok(0) => Err(timed_out()),
                _ => Ok(()),
            }
        }
    }
}

/// Wait until `done()` holds.
fn wait_until(done: &dyn Fn() -> bool) -> io::Result<()> {
    refuse_while_panicking()?;
    let here = where_am_i()?;
    match here.ctx {
        Ctx::Task(_) => {
            while !done() {
                wait(Wait::Finish)?;
            }
            Ok(())
        }
        Ctx::Outside(_) => {
            let dl = here.deadline;
            run::run_until(done, dl.as_ref().map(|d| d.at));
            if done() {
                Ok(())
            } else if let Some(d) = dl.filter(|d| Instant::now() >= d.at) {
                d.fired.set(true);
                Err(timed_out())
            } else {
                Err(io::Error::new(
                    io::ErrorKind::Deadlock,
                    "joinall: no task can run any more, and the ones joined have not finished \
                     (they wait for each other, or for nothing)",
                ))
            }
        }
    }
}

/// Wait until every one of `tasks` has finished, returning or panicking; a task's panic stays
/// on its handle. Replaces `gevent.joinall([...])`. Outside a task it runs the hub; inside one
/// it waits cooperatively.
///
/// # Errors
/// `TimedOut` inside [`timeout`] once the deadline passes; `Deadlock` outside a task when no
/// task can run any more and some of `tasks` have not finished (gevent's `LoopExit`); another
/// error if the thread's hub cannot be made (epoll) or is gone (at thread exit).
pub fn joinall(tasks: &[&dyn Joinable]) -> io::Result<()> {
    wait_until(&|| tasks.iter().all(|t| t.is_done()))
}

/// [`joinall`], but a task's panic ends the wait: the panic of the task among `tasks` that
/// failed first is re-raised here. Replaces `gevent.joinall([...], raise_error=True)`.
///
/// # Errors
/// As [`joinall`].
///
/// # Panics
/// With the payload of the first failed task's panic (its message, if it was re-raised before).
pub fn joinall_raise_error(tasks: &[&dyn Joinable]) -> io::Result<()> {
    let failed = || tasks.iter().any(|t| t.failed_at().is_some());
    wait_until(&|| failed() || tasks.iter().all(|t| t.is_done()))?;
    let first = tasks
        .iter()
        .filter(|t| t.failed_at().is_some())
        .min_by_key(|t| t.failed_at());
    if let Some(payload) = first.and_then(|t| t.take_panic()) {
        std::panic::resume_unwind(payload);
    }
    Ok(())
}

/// Let the other tasks run, then continue. Replaces `gevent.sleep(0)`: the only way a
/// CPU-bound task lets others in. Outside a task it runs the tasks that are ready now.
///
/// # Errors
/// `TimedOut` inside [`timeout`] once the deadline has passed; another error if the thread's
/// hub cannot be made or is gone (at thread exit).
pub fn yield_now() -> io::Result<()> {
    wait(Wait::Yield)
}

/// Sleep without blocking the other tasks (outside a task: running them meanwhile). Replaces
/// `gevent.sleep(seconds)`.
///
/// # Errors
/// `TimedOut` inside [`timeout`] when its deadline comes first; another error if the thread's
/// hub cannot be made or is gone (at thread exit).
pub fn sleep(d: Duration) -> io::Result<()> {
    wait(Wait::Until(after(d)))
}

/// [`sleep`] until `deadline` (at once if it has passed).
///
/// # Errors
/// As [`sleep`].
pub fn sleep_until(deadline: Instant) -> io::Result<()> {
    wait(Wait::Until(deadline))
}

/// Run `f` with a deadline: every wait inside it (in this task, or outside any task, in this
/// greenlet) still waiting when the deadline passes fails with `TimedOut`, and `f`'s own error
/// handling takes it from there. Replaces `with gevent.Timeout(seconds):` (and
/// `gevent.with_timeout`). Like gevent's, it can only fire where the code waits: a CPU-bound
/// loop inside never times out.
///
/// # Errors
/// [`Elapsed`] if this block's deadline cut a wait inside `f` short (whatever `f` then
/// returned is dropped): gevent's `Timeout` raised out of the `with` block. A nested block
/// whose deadline is not the one that passed lets `f`'s result through, so the error reaches
/// the block it belongs to (the earliest deadline; the outer one on a tie).
pub fn timeout<T>(d: Duration, f: impl FnOnce() -> T) -> Result<T, Elapsed> {
    /// Puts the outer deadline back on every way out of `f`.
    struct Restore(Ctx, Option<Deadline>);
    impl Drop for Restore {
        fn drop(&mut self) {
            set_deadline(self.0, self.1.take());
        }
    }
    let (ctx, outer) = where_am_i().map_or((context(), None), |h| (h.ctx, h.deadline));
    let mine = Deadline {
        at: after(d),
        fired: Rc::new(Cell::new(false)),
    };
    let fired = mine.fired.clone();
    let inner = match &outer {
        Some(o) if o.at <= mine.at => o.clone(),
        _ => mine,
    };
    set_deadline(ctx, Some(inner));
    let restore = Restore(ctx, outer);
    let out = f();
    drop(restore);
    if fired.get() { Err(Elapsed) } else { Ok(out) }
}

/// Wait until `fd` is readable (or writable) in the current context: the sockets' waits.
fn wait_io(fd: RawFd, write: bool) -> io::Result<()> {
    wait(if write {
        Wait::Writable(fd)
    } else {
        Wait::Readable(fd)
    })
}
