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
use std::io::{self, Read, Write};
use std::net::{SocketAddr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, SockaddrIn, sockopt};

use crate::greenlet::DEFAULT_STACK;

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

/// A socket registered in the hub's epoll, and who waits on it.
///
/// A socket is registered once, edge-triggered, at its first wait, and stays registered until
/// it is dropped ([`release_fd`]): a wait then costs no `epoll_ctl` at all, where registering
/// and removing it at every wait cost two system calls per wait. Edge-triggered is right here
/// because a task only waits after its `read`, `write` or `accept` said `WouldBlock`: anything
/// that arrives after that is a new edge.
struct FdWaiters {
    /// The task waiting to read (or accept), with the generation of its wait.
    reader: Option<(u64, u64)>,
    /// The task waiting to write (or for a connect to finish).
    writer: Option<(u64, u64)>,
    /// `false` once a read found the socket drained, until its next event: then a read can
    /// wait straight away instead of asking the kernel first to be told `WouldBlock`
    /// ([`TcpStream::read`]). Edge-triggered epoll reports every arrival of new data, so no
    /// data that comes after the draining read goes unnoticed.
    readable: bool,
    /// The peer closed (or the socket failed): a read returns at once from now on (0, or
    /// the error), and no further event will say so. `readable` then stays `true`.
    closed: bool,
}

impl Default for FdWaiters {
    fn default() -> FdWaiters {
        FdWaiters {
            reader: None,
            writer: None,
            readable: true,
            closed: false,
        }
    }
}

/// Whether a read on `fd` may find something: `false` only when the hub knows the last read
/// drained it and no event came since. A socket the hub does not know: `true`.
fn may_read(fd: RawFd) -> bool {
    with_hub(|h| h.fds.get(&fd).is_none_or(|w| w.readable)).unwrap_or(true)
}

/// Note that a read drained `fd` (it returned less than it asked for).
fn drained(fd: RawFd) {
    let _ = with_hub(|h| {
        if let Some(w) = h.fds.get_mut(&fd)
            && !w.closed
        {
            w.readable = false;
        }
    });
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

/// Forget a socket that is about to be closed: out of the hub's epoll and its table (a later
/// socket may get the same number). Called by the sockets' `drop`; harmless if the socket
/// never waited, or if the hub is gone (at thread exit).
fn release_fd(fd: RawFd) {
    let _ = HUB.try_with(|h| {
        if let Ok(mut h) = h.try_borrow_mut()
            && let Some(hub) = h.as_mut()
            && hub.fds.remove(&fd).is_some()
        {
            // SAFETY: called while the socket owning `fd` is still open.
            let bfd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            let _ = hub.epoll.delete(bfd);
        }
    });
}

/// A TCP connection whose reads and writes wait cooperatively. Replaces gevent's patched
/// `socket.socket` (and what `requests` does over it).
#[derive(Debug)]
pub struct TcpStream {
    inner: std::net::TcpStream,
}

impl TcpStream {
    /// Connect without blocking the hub: a non-blocking `connect`, then a wait for the socket
    /// to become writable, then its error status.
    pub fn connect(addr: SocketAddrV4) -> io::Result<TcpStream> {
        let fd: OwnedFd = socket::socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(io::Error::from)?;
        // From here on its drop releases the fd from the hub, however connect ends.
        let stream = TcpStream {
            inner: std::net::TcpStream::from(fd),
        };
        match socket::connect(stream.inner.as_raw_fd(), &SockaddrIn::from(addr)) {
            Ok(()) => {}
            Err(Errno::EINPROGRESS) => {
                wait_io(stream.inner.as_raw_fd(), true)?;
                let err = socket::getsockopt(&stream.inner, sockopt::SocketError)
                    .map_err(io::Error::from)?;
                if err != 0 {
                    return Err(io::Error::from_raw_os_error(err));
                }
            }
            Err(e) => return Err(e.into()),
        }
        Ok(stream)
    }

    fn from_std(inner: std::net::TcpStream) -> io::Result<TcpStream> {
        inner.set_nonblocking(true)?;
        Ok(TcpStream { inner })
    }

    /// Read some bytes, waiting cooperatively for them; 0 at end-of-file.
    ///
    /// A read that returns less than it asked for has emptied the socket's receive queue, so
    /// the next read waits for the socket's next event at once, without first asking the
    /// kernel only to hear `WouldBlock`: one system call less per message in an echo loop.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let fd = self.inner.as_raw_fd();
        if !buf.is_empty() && !may_read(fd) {
            wait_io(fd, false)?;
        }
        loop {
            match self.inner.read(buf) {
                Ok(n) if n > 0 && n < buf.len() => {
                    drained(fd);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    wait_io(fd, false)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    /// Read until end-of-file.
    pub fn read_to_end(&mut self, out: &mut Vec<u8>) -> io::Result<usize> {
        let mut buf = [0u8; 16 * 1024];
        let start = out.len();
        loop {
            match self.read(&mut buf)? {
                0 => return Ok(out.len() - start),
                n => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// Write all of `buf`, waiting cooperatively for room.
    pub fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.inner.write(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    wait_io(self.inner.as_raw_fd(), true)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The underlying std stream (non-blocking).
    pub fn get_ref(&self) -> &std::net::TcpStream {
        &self.inner
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        release_fd(self.inner.as_raw_fd());
    }
}

impl AsFd for TcpStream {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

/// A listening socket whose `accept` waits cooperatively. Replaces gevent's `StreamServer`
/// building block.
#[derive(Debug)]
pub struct TcpListener {
    inner: std::net::TcpListener,
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        release_fd(self.inner.as_raw_fd());
    }
}

impl TcpListener {
    /// Bind (use port 0 for any free port).
    pub fn bind(addr: &str) -> io::Result<TcpListener> {
        let inner = std::net::TcpListener::bind(addr)?;
        inner.set_nonblocking(true)?;
        Ok(TcpListener { inner })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Accept a connection, waiting cooperatively for one.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        loop {
            match self.inner.accept() {
                Ok((s, a)) => return Ok((TcpStream::from_std(s)?, a)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    wait_io(self.inner.as_raw_fd(), false)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}
