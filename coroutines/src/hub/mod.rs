//! `hub`: a single-threaded cooperative scheduler in gevent's style. Tasks (coroutines on
//! corosensei) run until they would block; then they suspend, telling the hub what they wait
//! for (a socket ready, a deadline), and the hub runs another. The hub waits in `epoll` for
//! sockets and keeps a heap of timers for sleeps and time-outs.
//!
//! gevent makes the *standard* socket and sleep functions cooperative by monkey-patching them.
//! Rust cannot patch std, so the cooperative calls are explicit: [`sleep`], [`TcpStream`],
//! [`TcpListener`]. A blocking std call inside a task (`std::thread::sleep`, a blocking read)
//! freezes every task of the hub until it returns.
//!
//! ```
//! use std::time::Duration;
//! use coroutines::hub;
//!
//! let a = hub::spawn(|| { hub::sleep(Duration::from_millis(20)); "a" })?;
//! let b = hub::spawn(|| { hub::sleep(Duration::from_millis(10)); "b" })?;
//! hub::joinall(&[&a, &b]);                   // runs the hub until both are done
//! assert_eq!((a.take(), b.take()), (Some("a"), Some("b")));
//! # Ok::<(), std::io::Error>(())
//! ```

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

use crate::greenlet::DEFAULT_STACK;

mod net;

use net::FdWaiters;
pub use net::{TcpListener, TcpStream};

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    Ready,
    TimedOut,
}

/// What a task waits for.
enum Wait {
    Readable(RawFd, Option<Instant>),
    Writable(RawFd, Option<Instant>),
    Until(Instant),
    Yield,
}

type Task = Coroutine<Wake, Wait, (), DefaultStack>;

struct Slot {
    co: Option<Task>,
    yielder: *const Yielder<Wake, Wait>,
    /// Bumped at every wait, so a timer or event for an older wait is ignored.
    generation: u64,
    /// The fd it waits on, if any, and whether for writing.
    fd: Option<(RawFd, bool)>,
    /// The innermost `timeout(...)` deadline around its current code.
    deadline: Option<Instant>,
    done: Rc<Cell<bool>>,
}

struct Hub {
    epoll: Epoll,
    tasks: HashMap<u64, Slot>,
    fds: HashMap<RawFd, FdWaiters>,
    ready: VecDeque<(u64, Wake)>,
    timers: BinaryHeap<Reverse<(Instant, u64, u64, u64)>>,
    seq: u64,
    next: u64,
    current: Option<u64>,
    /// How many tasks wait on sockets.
    io_waiting: usize,
}

thread_local! {
    static HUB: RefCell<Option<Hub>> = const { RefCell::new(None) };
}

fn with_hub<R>(f: impl FnOnce(&mut Hub) -> R) -> io::Result<R> {
    HUB.with(|h| {
        let mut h = h.borrow_mut();
        if h.is_none() {
            *h = Some(Hub {
                epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(io::Error::from)?,
                tasks: HashMap::new(),
                fds: HashMap::new(),
                ready: VecDeque::new(),
                timers: BinaryHeap::new(),
                seq: 0,
                next: 1,
                current: None,
                io_waiting: 0,
            });
        }
        match h.as_mut() {
            Some(hub) => Ok(f(hub)),
            None => Err(io::Error::other("no hub")),
        }
    })
}

/// A spawned task: its result, once it has finished. Replaces a `gevent.Greenlet`.
pub struct Spawned<T> {
    result: Rc<RefCell<Option<T>>>,
    done: Rc<Cell<bool>>,
}

impl<T> fmt::Debug for Spawned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawned")
            .field("done", &self.done.get())
            .finish()
    }
}

impl<T> Spawned<T> {
    /// Whether it has finished. Replaces `g.ready()` / `g.dead`.
    pub fn done(&self) -> bool {
        self.done.get()
    }

    /// Its return value, once (`None` before it finished). Replaces `g.value`.
    pub fn take(&self) -> Option<T> {
        self.result.borrow_mut().take()
    }
}

/// Something [`joinall`] can wait for.
pub trait Joinable {
    /// Whether it has finished.
    fn is_done(&self) -> bool;
}

impl<T> Joinable for Spawned<T> {
    fn is_done(&self) -> bool {
        self.done()
    }
}

/// Start `f` as a task of this thread's hub; it runs once the hub runs (inside [`joinall`] or
/// a wait of another task). Replaces `gevent.spawn(f, ...)`.
pub fn spawn<T: 'static>(f: impl FnOnce() -> T + 'static) -> io::Result<Spawned<T>> {
    spawn_with_stack(DEFAULT_STACK, f)
}

/// [`spawn`] with a stack of `size` bytes. Past the process's memory-map limit this is an
/// error (each stack is a mapping of its own), not a crash.
pub fn spawn_with_stack<T: 'static>(
    size: usize,
    f: impl FnOnce() -> T + 'static,
) -> io::Result<Spawned<T>> {
    let stack = DefaultStack::new(size)?;
    let result = Rc::new(RefCell::new(None));
    let done = Rc::new(Cell::new(false));
    let out = result.clone();
    let id = with_hub(|h| {
        let id = h.next;
        h.next += 1;
        id
    })?;
    let co = Coroutine::with_stack(stack, move |y: &Yielder<Wake, Wait>, _first: Wake| {
        let _ = with_hub(|h| {
            if let Some(s) = h.tasks.get_mut(&id) {
                s.yielder = y;
            }
        });
        *out.borrow_mut() = Some(f());
    });
    with_hub(|h| {
        h.tasks.insert(
            id,
            Slot {
                co: Some(co),
                yielder: std::ptr::null(),
                generation: 0,
                fd: None,
                deadline: None,
                done: done.clone(),
            },
        );
        h.ready.push_back((id, Wake::Ready));
    })?;
    Ok(Spawned { result, done })
}

/// Run the hub until every one of `tasks` has finished (or nothing can run any more).
/// Replaces `gevent.joinall([...])`. Inside a task it waits cooperatively.
pub fn joinall(tasks: &[&dyn Joinable]) {
    let all_done = || tasks.iter().all(|t| t.is_done());
    if current().is_some() {
        while !all_done() {
            let _ = wait(Wait::Yield);
        }
        return;
    }
    run_until(all_done);
}

fn current() -> Option<u64> {
    with_hub(|h| h.current).ok().flatten()
}

/// Suspend the current task until `w` is satisfied (or its deadline passes).
fn wait(w: Wait) -> Wake {
    let Some(id) = current() else {
        // Not in a task: run the hub until the condition holds.
        return wait_from_root(w);
    };
    let yielder = with_hub(|h| h.tasks.get(&id).map(|s| s.yielder))
        .ok()
        .flatten();
    match yielder.filter(|y| !y.is_null()) {
        // SAFETY: task `id` is running, so we are on its stack inside the closure that
        // recorded this yielder; corosensei keeps it alive as long as the coroutine.
        Some(y) => unsafe { &*y }.suspend(w),
        None => Wake::Ready,
    }
}

fn wait_from_root(w: Wait) -> Wake {
    match w {
        Wait::Until(t) => {
            run_until(|| Instant::now() >= t);
            // The hub may have run out of work early: sleep the rest for real.
            let now = Instant::now();
            if now < t {
                std::thread::sleep(t - now);
            }
            Wake::Ready
        }
        Wait::Yield => {
            run_until(|| true);
            Wake::Ready
        }
        // Blocking on one fd from the root: poll it directly.
        Wait::Readable(fd, deadline) | Wait::Writable(fd, deadline) => {
            let flags = if matches!(w, Wait::Readable(..)) {
                nix::poll::PollFlags::POLLIN
            } else {
                nix::poll::PollFlags::POLLOUT
            };
            // SAFETY: the caller holds the socket whose fd this is for the whole call.
            let bfd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            let ms = deadline.map_or(-1, |d| {
                d.saturating_duration_since(Instant::now())
                    .as_millis()
                    .min(i32::MAX as u128) as i32
            });
            let mut fds = [nix::poll::PollFd::new(bfd, flags)];
            match nix::poll::poll(
                &mut fds,
                nix::poll::PollTimeout::try_from(ms).unwrap_or(nix::poll::PollTimeout::NONE),
            ) {
                Ok(0) => Wake::TimedOut,
                _ => Wake::Ready,
            }
        }
    }
}

/// Let the other tasks run, then continue. Replaces `gevent.sleep(0)`: the only way a
/// CPU-bound task lets others in.
pub fn yield_now() {
    let _ = wait(Wait::Yield);
}

/// Sleep without blocking the other tasks. Replaces `gevent.sleep(seconds)`.
pub fn sleep(d: Duration) {
    let _ = wait(Wait::Until(Instant::now() + d));
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

/// Run `f` in the current task with a deadline: a socket wait inside it that would pass the
/// deadline fails with `TimedOut` (and `f`'s own error handling takes it from there).
/// Replaces `with gevent.Timeout(seconds):`. Like gevent's, it can only fire where the task
/// waits: a CPU-bound loop inside never times out.
pub fn timeout<T>(d: Duration, f: impl FnOnce() -> T) -> T {
    let id = current();
    let deadline = Instant::now() + d;
    let outer = id.and_then(|id| {
        with_hub(|h| {
            h.tasks.get_mut(&id).and_then(|s| {
                let outer = s.deadline;
                s.deadline = Some(outer.map_or(deadline, |o| o.min(deadline)));
                outer
            })
        })
        .ok()
        .flatten()
    });
    let r = f();
    if let Some(id) = id {
        let _ = with_hub(|h| {
            if let Some(s) = h.tasks.get_mut(&id) {
                s.deadline = outer;
            }
        });
    }
    r
}

fn task_deadline() -> Option<Instant> {
    let id = current()?;
    with_hub(|h| h.tasks.get(&id).and_then(|s| s.deadline))
        .ok()
        .flatten()
}

fn wait_io(fd: RawFd, write: bool) -> io::Result<()> {
    let deadline = task_deadline();
    let w = if write {
        Wait::Writable(fd, deadline)
    } else {
        Wait::Readable(fd, deadline)
    };
    match wait(w) {
        Wake::Ready => Ok(()),
        Wake::TimedOut => Err(timed_out()),
    }
}

/// The hub loop: run ready tasks; when none is ready, wait in epoll until a socket is ready or
/// the next timer is due. Returns when `stop()` holds, or when nothing could ever run again.
fn run_until(stop: impl Fn() -> bool) {
    let mut events = vec![EpollEvent::empty(); 64];
    loop {
        if stop() {
            return;
        }
        let next = with_hub(|h| h.ready.pop_front()).ok().flatten();
        if let Some((id, wake)) = next {
            resume(id, wake);
            continue;
        }
        // Nothing ready: how long may we sleep?
        let (due, waiting) = match with_hub(|h| {
            let due = h.timers.peek().map(|Reverse((t, ..))| *t);
            (due, h.io_waiting)
        }) {
            Ok(x) => x,
            Err(_) => return,
        };
        if due.is_none() && waiting == 0 {
            return; // nothing can wake anyone: done, or deadlocked
        }
        let timeout = match due {
            None => EpollTimeout::NONE,
            Some(t) => {
                let ms = t
                    .saturating_duration_since(Instant::now())
                    .as_micros()
                    .div_ceil(1000)
                    .min(i32::MAX as u128) as i32;
                EpollTimeout::try_from(ms).unwrap_or(EpollTimeout::NONE)
            }
        };
        let n = match with_hub(|h| h.epoll.wait(&mut events, timeout)) {
            Ok(Ok(n)) => n,
            Ok(Err(Errno::EINTR)) => 0,
            _ => return,
        };
        let _ = with_hub(|h| {
            let trouble = EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP | EpollFlags::EPOLLRDHUP;
            for ev in &events[..n] {
                let Some(w) = h.fds.get_mut(&(ev.data() as RawFd)) else {
                    continue;
                };
                let flags = ev.events();
                let mut woken = [None, None];
                if flags.intersects(trouble) {
                    w.closed = true;
                }
                if flags.intersects(EpollFlags::EPOLLIN | trouble) {
                    w.readable = true;
                    woken[0] = w.reader.take();
                }
                if flags.intersects(EpollFlags::EPOLLOUT | trouble) {
                    woken[1] = w.writer.take();
                }
                for (id, generation) in woken.into_iter().flatten() {
                    if let Some(s) = h.tasks.get_mut(&id)
                        && s.generation == generation
                    {
                        s.fd = None;
                        h.io_waiting -= 1;
                        s.generation += 1;
                        h.ready.push_back((id, Wake::Ready));
                    }
                }
            }
            let now = Instant::now();
            while let Some(Reverse((t, _, id, generation))) = h.timers.peek().copied() {
                if t > now {
                    break;
                }
                h.timers.pop();
                if let Some(s) = h.tasks.get_mut(&id)
                    && s.generation == generation
                {
                    let wake = if let Some((fd, write)) = s.fd.take() {
                        if let Some(w) = h.fds.get_mut(&fd) {
                            if write {
                                w.writer = None;
                            } else {
                                w.reader = None;
                            }
                        }
                        h.io_waiting -= 1;
                        Wake::TimedOut
                    } else {
                        Wake::Ready
                    };
                    s.generation += 1;
                    h.ready.push_back((id, wake));
                }
            }
        });
    }
}

fn resume(id: u64, wake: Wake) {
    let co = with_hub(|h| {
        h.current = Some(id);
        h.tasks.get_mut(&id).and_then(|s| s.co.take())
    })
    .ok()
    .flatten();
    let Some(mut co) = co else {
        let _ = with_hub(|h| h.current = None);
        return;
    };
    let outcome = co.resume(wake);
    let _ = with_hub(|h| {
        h.current = None;
        match outcome {
            CoroutineResult::Return(()) => {
                if let Some(s) = h.tasks.remove(&id) {
                    s.done.set(true);
                }
            }
            CoroutineResult::Yield(w) => {
                let Some(s) = h.tasks.get_mut(&id) else {
                    return;
                };
                s.generation += 1;
                let generation = s.generation;
                let timer = |h: &mut Hub, t: Instant| {
                    h.seq += 1;
                    h.timers.push(Reverse((t, h.seq, id, generation)));
                };
                match w {
                    Wait::Yield => h.ready.push_back((id, Wake::Ready)),
                    Wait::Until(t) => timer(h, t),
                    Wait::Readable(fd, deadline) | Wait::Writable(fd, deadline) => {
                        let write = matches!(w, Wait::Writable(..));
                        let registered = h.fds.contains_key(&fd) || {
                            let flags = EpollFlags::EPOLLIN
                                | EpollFlags::EPOLLOUT
                                | EpollFlags::EPOLLRDHUP
                                | EpollFlags::EPOLLET;
                            // SAFETY: the waiting task owns the socket; it stays registered
                            // until the socket's drop calls `release_fd`.
                            let bfd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
                            let added = h.epoll.add(bfd, EpollEvent::new(flags, fd as u64));
                            if added.is_ok() {
                                h.fds.insert(fd, FdWaiters::default());
                            }
                            added.is_ok()
                        };
                        match h.fds.get_mut(&fd) {
                            Some(waiters) if registered => {
                                let me = Some((id, generation));
                                if write {
                                    waiters.writer = me;
                                } else {
                                    waiters.reader = me;
                                }
                                s.fd = Some((fd, write));
                                h.io_waiting += 1;
                                if let Some(t) = deadline {
                                    timer(h, t);
                                }
                            }
                            // Not pollable (a regular file): it is always ready.
                            _ => h.ready.push_back((id, Wake::Ready)),
                        }
                    }
                }
            }
        }
    });
    let finished = with_hub(|h| !h.tasks.contains_key(&id)).unwrap_or(true);
    if finished {
        drop(co);
    } else {
        let _ = with_hub(|h| {
            if let Some(s) = h.tasks.get_mut(&id) {
                s.co = Some(co);
            }
        });
    }
}
