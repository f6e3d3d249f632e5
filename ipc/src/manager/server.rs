//! The server's side: a thread per connection, each reading its client's requests with
//! blocking calls and answering them, over one store of objects behind a mutex; the main thread
//! accepts connections and watches for the signal or the owner's exit that ends the server.
//!
//! # Why a thread per connection
//!
//! The server this replaced served everyone from one thread with blocking reads and writes: a
//! client that sent half a request, or asked for 4 MiB and did not read it, held every other
//! client up. Either non-blocking sockets with buffers per client in one `poll` loop, or a
//! thread per connection, fixes that: a client can only delay itself. Both were built and
//! measured with the Manager bench (`cargo bench -p ipc -- manager`, 5 client processes, against
//! a bare `poll` server doing the same exchange), alternating on the same loaded machine: the
//! `poll` loop reached 0.82-1.32x of that floor's throughput, a thread per connection
//! 1.39-1.67x. A connection's thread makes two system calls per request (`read`, `write`)
//! where the loop makes those plus its share of `poll`. So, threads; the mutex around the
//! objects is held only to answer one request (its reply is encoded after).
//!
//! # Limits
//!
//! - A request's memory grows with its bytes as they arrive, never with the length its prefix
//!   claims ([`FrameReader`]); a prefix over the frame limit is answered and the connection
//!   closed (the stream cannot be followed past it).
//! - A request that does not decode (malformed, or nested deeper than [`frame::MAX_DEPTH`]) is
//!   answered with an error and the connection goes on.
//! - A reply over the frame limit is replaced by a "reply too large" error.
//! - At the descriptor limit `accept` fails (`EMFILE`): the listener is left out of `poll` until
//!   a connection ends (freeing a descriptor), or for [`BACKOFF`], instead of spinning on it.
//!   The same if no thread can be started for a connection (which is then closed).
//!
//! # Leaving nothing behind
//!
//! The server removes its socket and directory on its way out, whatever the way: its owner
//! (the process that started the [`Manager`](super::Manager)) exiting or being killed (a pidfd
//! of the owner becomes readable; where there is no pidfd, the parent-death signal), SIGTERM,
//! SIGINT or SIGHUP (read from a signalfd), or a panic (the guard's `Drop` runs while
//! unwinding). Only SIGKILL of the server itself leaves them, and then the owner removes them
//! when it drops the `Manager`.

use std::io;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{SockFlag, accept4, getsockopt, sockopt};
use nix::unistd::{Pid, Uid, getppid};

use super::Data;
use super::objects::Objects;
use super::protocol::{Refusal, Request, Response};
use super::registry::Registry;
use crate::frame::{self, DEFAULT_MAX_FRAME, FrameError, FrameReader};

/// How long the server leaves the listener alone after `accept` found no free descriptor,
/// unless a client leaves first.
pub(super) const BACKOFF: Duration = Duration::from_millis(100);

/// A buffer larger than this is given back once the request or reply that needed it is done.
const KEEP: usize = 1 << 20;

/// What the server needs from the process that starts it.
pub(super) struct Setup {
    pub(super) listener: UnixListener,
    pub(super) uid: Uid,
    pub(super) owner: Pid,
    pub(super) socket: PathBuf,
    pub(super) dir: PathBuf,
    pub(super) registry: Registry,
}

/// The objects, and a condition variable for the requests that wait (a queue's `get` on an
/// empty queue, `put` on a full one), signalled whenever a queue changes.
pub(super) struct Store {
    objects: Mutex<Objects>,
    changed: Condvar,
}

/// The longest a queue request waits on the server before it answers "empty" or "full" (the
/// client asks again while its own time lasts; so a connection's thread never waits longer,
/// and a client whose server died finds out within its time-out).
pub const MAX_WAIT: Duration = Duration::from_secs(1);

impl Store {
    pub(super) fn new(objects: Objects) -> Store {
        Store {
            objects: Mutex::new(objects),
            changed: Condvar::new(),
        }
    }

    /// Put back an item whose `get` reply could not be sent (its client died): at the front,
    /// where it was.
    fn put_back(&self, id: u32, item: Data) {
        let mut objects = self.objects.lock().unwrap_or_else(|e| e.into_inner());
        objects.put_back(id, item);
        self.changed.notify_all();
    }

    /// Answer one request; a queue request that finds its queue empty (or full) waits for a
    /// change, at most the milliseconds it asks for (and [`MAX_WAIT`]), and gives up if its
    /// client has gone meanwhile (`client_gone`), so a dead client's `get` takes no item.
    pub(super) fn answer(&self, req: Request, client_gone: impl Fn() -> bool) -> Response {
        let wait = match &req {
            Request::QueuePut(_, _, ms) | Request::QueueGet(_, ms) => {
                Duration::from_millis(*ms).min(MAX_WAIT)
            }
            _ => Duration::ZERO,
        };
        let mut objects = self.objects.lock().unwrap_or_else(|e| e.into_inner());
        if !matches!(req, Request::QueuePut(..) | Request::QueueGet(..)) {
            return objects.handle(req);
        }
        let deadline = Instant::now() + wait;
        loop {
            let response = objects.handle(req.clone());
            let blocked = matches!(response, Response::Refused(Refusal::Empty | Refusal::Full));
            let left = deadline.saturating_duration_since(Instant::now());
            if blocked && !left.is_zero() {
                objects = self
                    .changed
                    .wait_timeout(objects, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
                if client_gone() {
                    return response;
                }
                continue;
            }
            if !blocked {
                self.changed.notify_all();
            }
            return response;
        }
    }
}

/// Removes the socket and its directory when dropped: on every way out of [`serve`].
struct Cleanup {
    socket: PathBuf,
    dir: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// A descriptor that becomes readable when process `pid` exits.
fn pidfd(pid: Pid) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open(2) takes a pid and flags, touches no memory of ours, and returns a new
    // descriptor (close-on-exec) or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just created this descriptor for us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Serve one connection until it ends: read a request, answer it, again.
fn connection(stream: UnixStream, store: &Store) {
    let mut reader = FrameReader::with_read_ahead(DEFAULT_MAX_FRAME, 4096);
    let mut out = Vec::new();
    loop {
        let (response, last) = match reader.read::<Request>(&stream) {
            Ok(req) => {
                let get = match req {
                    Request::QueueGet(id, _) => Some(id),
                    _ => None,
                };
                let response = store.answer(req, || peer_gone(&stream));
                out.clear();
                encode_reply(&response, &mut out);
                if frame::write_all(&stream, &out).is_err() {
                    // The client is gone: an item taken for it goes back to its queue.
                    if let (Some(id), Response::Got(Some(item))) = (get, response) {
                        store.put_back(id, item);
                    }
                    return;
                }
                reader.trim(KEEP);
                if out.capacity() > KEEP {
                    out = Vec::new();
                }
                continue;
            }
            Err(FrameError::Decode(e)) => {
                (Response::Refused(Refusal::Malformed(e.to_string())), false)
            }
            Err(FrameError::TooLarge { claimed, max }) => (
                Response::Refused(Refusal::RequestTooLarge {
                    claimed: claimed as u64,
                    max: max as u64,
                }),
                true,
            ),
            // End of file, a connection cut mid-request, or a socket error: it is over.
            Err(_) => return,
        };
        out.clear();
        encode_reply(&response, &mut out);
        if frame::write_all(&stream, &out).is_err() || last {
            return;
        }
        reader.trim(KEEP);
        if out.capacity() > KEEP {
            out = Vec::new();
        }
    }
}

/// Whether the client at the other end of `stream` has closed it (died): checked by a queue
/// request that waited, before it takes an item.
fn peer_gone(stream: &UnixStream) -> bool {
    // POLLHUP (both directions shut: the peer closed) is reported whatever is asked for.
    let mut fds = [PollFd::new(stream.as_fd(), PollFlags::empty())];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
        && fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR))
}

/// Encode a reply into `out`; one over the frame limit becomes an error.
fn encode_reply(response: &Response, out: &mut Vec<u8>) {
    match frame::encode_into(response, out, DEFAULT_MAX_FRAME) {
        Ok(()) => {}
        Err(FrameError::TooLarge { claimed, max }) => {
            let refused = Response::Refused(Refusal::ReplyTooLarge {
                size: claimed as u64,
                max: max as u64,
            });
            let _ = frame::encode_into(&refused, out, DEFAULT_MAX_FRAME);
        }
        Err(e) => {
            let _ = frame::encode_into(
                &Response::Error(format!("cannot encode the reply: {e}")),
                out,
                DEFAULT_MAX_FRAME,
            );
        }
    }
}

/// Accept every pending connection of our own user, each with its own thread. `false` when
/// out of descriptors or threads: try again after a while.
fn accept_all(
    listener: &UnixListener,
    uid: Uid,
    objects: &Arc<Store>,
    ended: &Arc<OwnedFd>,
) -> bool {
    loop {
        let fd = match accept4(listener.as_fd(), SockFlag::SOCK_CLOEXEC) {
            Ok(fd) => fd,
            Err(Errno::EINTR | Errno::ECONNABORTED) => continue,
            Err(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM) => return false,
            Err(_) => return true, // EAGAIN: none left
        };
        let stream = UnixStream::from(fd);
        let peer = getsockopt(&stream, sockopt::PeerCredentials);
        if !peer.is_ok_and(|c| c.uid() == uid.as_raw()) {
            continue; // another user's process: disconnected
        }
        let (objects, ended) = (objects.clone(), ended.clone());
        let spawned = std::thread::Builder::new()
            .name("manager-conn".into())
            .stack_size(CONN_STACK)
            .spawn(move || {
                connection(stream, &objects);
                // Tell the acceptor a descriptor is free (if the pipe is full, it knows).
                let _ = nix::unistd::write(&*ended, &[1]);
            });
        if spawned.is_err() {
            return false; // the stream was dropped with the closure: that client sees the end
        }
    }
}

/// Each connection thread's stack: room for decoding a request nested to the decoder's limit
/// in an unoptimised build, with a wide margin (only the pages used are ever touched).
const CONN_STACK: usize = 1 << 20;

/// The signals that stop the server (after it removed its socket): SIGTERM, SIGINT, SIGHUP.
pub(super) fn stop_signals() -> SigSet {
    let mut stop = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        stop.add(s);
    }
    stop
}

fn has(f: &PollFd<'_>, flags: PollFlags) -> bool {
    f.revents().is_some_and(|r| r.intersects(flags))
}

/// The server's body (in the forked server process): serve until the owner goes, a signal
/// asks us to stop, or `poll` fails; then remove the socket and its directory.
pub(super) fn serve(setup: Setup) -> anyhow::Result<()> {
    let Setup {
        listener,
        uid,
        owner,
        socket,
        dir,
        registry,
    } = setup;
    let _cleanup = Cleanup { socket, dir };
    // Blocked in this thread before any other starts, so in all of them: the stop signals
    // only ever arrive through the signalfd.
    let stop = stop_signals();
    stop.thread_block().context("blocking the stop signals")?;
    let signals = SignalFd::with_flags(&stop, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .context("signalfd")?;
    let owner_exit = match pidfd(owner) {
        Ok(fd) => Some(fd),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(()), // already gone
        Err(_) => {
            // No pidfd here (a kernel before 5.3, a sandbox, valgrind): the kernel's parent-
            // death signal instead, as SIGTERM, which the signalfd reads. It follows the
            // thread that forked us rather than the process, the best there is without one.
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).context("PR_SET_PDEATHSIG")?;
            None
        }
    };
    if getppid() != owner {
        return Ok(()); // it went between our fork and the pidfd (or the parent-death signal)
    }
    listener
        .set_nonblocking(true)
        .context("a non-blocking listener")?;
    let (ended_r, ended_w) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).context("pipe")?;
    let ended_w = Arc::new(ended_w);
    let objects = Arc::new(Store::new(Objects::with_registry(registry)));
    let mut accept_from: Option<Instant> = None;
    loop {
        let accepting = accept_from.is_none_or(|t| Instant::now() >= t);
        let mut fds = [
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
            match &owner_exit {
                Some(fd) => PollFd::new(fd.as_fd(), PollFlags::POLLIN),
                // Nothing to watch: polled for nothing (the signalfd covers it).
                None => PollFd::new(signals.as_fd(), PollFlags::empty()),
            },
            PollFd::new(
                listener.as_fd(),
                if accepting {
                    PollFlags::POLLIN
                } else {
                    PollFlags::empty()
                },
            ),
            PollFd::new(ended_r.as_fd(), PollFlags::POLLIN),
        ];
        let timeout = match accept_from {
            Some(t) if !accepting => {
                let ms = t.saturating_duration_since(Instant::now()).as_millis() + 1;
                PollTimeout::try_from(ms.min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
            }
            _ => PollTimeout::NONE,
        };
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).context("poll"),
        }
        if has(&fds[0], PollFlags::POLLIN) || has(&fds[1], PollFlags::POLLIN) {
            return Ok(());
        }
        let listener_ready = has(&fds[2], PollFlags::POLLIN);
        if has(&fds[3], PollFlags::POLLIN) {
            // Connections ended: descriptors are free, try the listener again now.
            let mut drain = [0u8; 64];
            while matches!(nix::unistd::read(&ended_r, &mut drain), Ok(n) if n > 0) {}
            accept_from = None;
        }
        let accepting = accept_from.is_none_or(|t| Instant::now() >= t);
        if accepting && (listener_ready || accept_from.is_some()) {
            accept_from = if accept_all(&listener, uid, &objects, &ended_w) {
                None
            } else {
                Some(Instant::now() + BACKOFF)
            };
        }
    }
}
