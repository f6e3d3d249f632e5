//! [`Manager`]: Python's `multiprocessing.Manager()`: a server process that owns shared
//! objects, and proxies that reach them from any process over a Unix socket.
//!
//! # Who may connect
//!
//! Python guards its manager with an `authkey` (an HMAC challenge). Here the socket lives in a
//! fresh directory with mode 0700 (only our user can reach it), and the server also asks the
//! kernel who is on the other end (`SO_PEERCRED`) and drops any connection whose uid is not its
//! own. No secret to pass around; a process of another user cannot connect even if the
//! directory's mode is loosened.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{getsockopt, sockopt};
use nix::unistd::{Uid, geteuid};
use processes::Process;
use serde::{Deserialize, Serialize};

use crate::frame::{self, DEFAULT_MAX_FRAME, FrameError};

/// How long a proxy call waits for the server before it fails.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A value a managed object can hold: what Python's manager would pickle, limited to data.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Data {
    /// An integer.
    Int(i64),
    /// A string.
    Str(String),
    /// A list of data.
    List(Vec<Data>),
}

impl fmt::Display for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Data::Int(i) => write!(f, "{i}"),
            Data::Str(s) => write!(f, "{s:?}"),
            Data::List(items) => {
                f.write_str("[")?;
                for (i, d) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{d}")?;
                }
                f.write_str("]")
            }
        }
    }
}

impl From<i64> for Data {
    fn from(v: i64) -> Data {
        Data::Int(v)
    }
}
impl From<i32> for Data {
    fn from(v: i32) -> Data {
        Data::Int(v.into())
    }
}
impl From<usize> for Data {
    fn from(v: usize) -> Data {
        Data::Int(v as i64)
    }
}
impl From<&str> for Data {
    fn from(v: &str) -> Data {
        Data::Str(v.to_owned())
    }
}
impl From<String> for Data {
    fn from(v: String) -> Data {
        Data::Str(v)
    }
}

#[derive(Debug, Serialize, Deserialize)]
enum Request {
    NewDict,
    NewList(Vec<Data>),
    NewValue(i64),
    DictSet(u32, Data, Data),
    DictGet(u32, Data),
    DictItems(u32),
    ListAppend(u32, Data),
    ListItems(u32),
    ValueAdd(u32, i64),
    ValueGet(u32),
}

#[derive(Debug, Serialize, Deserialize)]
enum Response {
    Created(u32),
    Done,
    Got(Option<Data>),
    Items(Vec<(Data, Data)>),
    List(Vec<Data>),
    Int(i64),
    Error(String),
}

enum Object {
    Dict(BTreeMap<Data, Data>),
    List(Vec<Data>),
    Value(i64),
}

/// Why a proxy call failed.
#[derive(Debug)]
pub enum ManagerError {
    /// The connection failed: the server is gone, refused us, or did not answer in time.
    Connection(FrameError),
    /// The server answered with an error (an unknown object, a wrong kind).
    Server(String),
    /// The server answered something this proxy did not ask for.
    Protocol,
}

impl fmt::Display for ManagerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManagerError::Connection(e) => write!(f, "manager unreachable: {e}"),
            ManagerError::Server(e) => write!(f, "manager error: {e}"),
            ManagerError::Protocol => f.write_str("manager sent an unexpected reply"),
        }
    }
}

impl std::error::Error for ManagerError {}

impl From<FrameError> for ManagerError {
    fn from(e: FrameError) -> Self {
        ManagerError::Connection(e)
    }
}

/// A connection to the server, opened lazily in each process that uses it (a socket shared
/// across fork would interleave the parent's and the child's requests).
struct Client {
    path: Arc<PathBuf>,
    timeout: Duration,
    conn: RefCell<Option<(u32, UnixStream)>>,
}

impl Clone for Client {
    fn clone(&self) -> Self {
        Client {
            path: self.path.clone(),
            timeout: self.timeout,
            conn: RefCell::new(None),
        }
    }
}

impl Client {
    fn call(&self, req: &Request) -> Result<Response, ManagerError> {
        let me = current_pid();
        let mut slot = self.conn.borrow_mut();
        if slot.as_ref().is_none_or(|(pid, _)| *pid != me) {
            let stream = UnixStream::connect(self.path.as_path())
                .map_err(|e| ManagerError::Connection(FrameError::Io(e)))?;
            stream
                .set_read_timeout(Some(self.timeout))
                .and_then(|()| stream.set_write_timeout(Some(self.timeout)))
                .map_err(|e| ManagerError::Connection(FrameError::Io(e)))?;
            // A connection inherited from the parent is forgotten, not closed: it is the
            // parent's (closing our copy would not hurt it, but nothing here needs it).
            if let Some((_, inherited)) = slot.take() {
                std::mem::forget(inherited);
            }
            *slot = Some((me, stream));
        }
        let outcome = (|| {
            let (_, stream) = slot.as_ref().ok_or(ManagerError::Protocol)?;
            let buf = frame::encode(req, DEFAULT_MAX_FRAME)?;
            frame::write_all(stream.as_fd(), &buf)?;
            // One request, one reply: the reply is all there is to read, usually in one `read`.
            Ok(frame::read_one_frame::<Response>(
                stream.as_fd(),
                DEFAULT_MAX_FRAME,
            )?)
        })();
        match outcome {
            Ok(Response::Error(e)) => Err(ManagerError::Server(e)),
            Ok(r) => Ok(r),
            Err(e) => {
                // The stream may hold half a reply: start afresh next time.
                *slot = None;
                Err(e)
            }
        }
    }
}

/// This process's id, without a `getpid` system call per proxy call: cached, and forgotten in
/// a child by a `pthread_atfork` handler (`fork` runs it; the child then asks again).
fn current_pid() -> u32 {
    static PID: AtomicU32 = AtomicU32::new(0);
    static HANDLER: Once = Once::new();
    extern "C" fn forget() {
        PID.store(0, Ordering::Relaxed);
    }
    HANDLER.call_once(|| {
        // SAFETY: registers a handler that only stores to an atomic, which is async-signal-
        // safe, as a handler running in a freshly forked child must be.
        unsafe { libc::pthread_atfork(None, None, Some(forget)) };
    });
    match PID.load(Ordering::Relaxed) {
        0 => {
            let pid = std::process::id();
            PID.store(pid, Ordering::Relaxed);
            pid
        }
        pid => pid,
    }
}

/// A dict owned by the manager. Replaces the proxy `manager.dict()` returns. Clone it into
/// each child; every call is a round trip to the server.
#[derive(Clone)]
pub struct DictProxy {
    client: Client,
    id: u32,
}

/// A list owned by the manager. Replaces the proxy `manager.list()` returns.
#[derive(Clone)]
pub struct ListProxy {
    client: Client,
    id: u32,
}

/// An integer owned by the manager. Replaces `manager.Value('i', 0)`; `add` is one request,
/// so it is atomic (Python's `v.value += 1` is two, and races).
#[derive(Clone)]
pub struct ValueProxy {
    client: Client,
    id: u32,
}

impl DictProxy {
    /// `d[key] = value`.
    pub fn set(&self, key: impl Into<Data>, value: impl Into<Data>) -> Result<(), ManagerError> {
        match self
            .client
            .call(&Request::DictSet(self.id, key.into(), value.into()))?
        {
            Response::Done => Ok(()),
            _ => Err(ManagerError::Protocol),
        }
    }

    /// `d.get(key)`.
    pub fn get(&self, key: impl Into<Data>) -> Result<Option<Data>, ManagerError> {
        match self.client.call(&Request::DictGet(self.id, key.into()))? {
            Response::Got(v) => Ok(v),
            _ => Err(ManagerError::Protocol),
        }
    }

    /// `d.items()`, sorted by key.
    pub fn items(&self) -> Result<Vec<(Data, Data)>, ManagerError> {
        match self.client.call(&Request::DictItems(self.id))? {
            Response::Items(v) => Ok(v),
            _ => Err(ManagerError::Protocol),
        }
    }
}

impl ListProxy {
    /// `l.append(value)`.
    pub fn append(&self, value: impl Into<Data>) -> Result<(), ManagerError> {
        match self
            .client
            .call(&Request::ListAppend(self.id, value.into()))?
        {
            Response::Done => Ok(()),
            _ => Err(ManagerError::Protocol),
        }
    }

    /// A copy of the list (`list(l)`).
    pub fn items(&self) -> Result<Vec<Data>, ManagerError> {
        match self.client.call(&Request::ListItems(self.id))? {
            Response::List(v) => Ok(v),
            _ => Err(ManagerError::Protocol),
        }
    }
}

impl ValueProxy {
    /// Add `delta` on the server, atomically; the new value.
    pub fn add(&self, delta: i64) -> Result<i64, ManagerError> {
        match self.client.call(&Request::ValueAdd(self.id, delta))? {
            Response::Int(v) => Ok(v),
            _ => Err(ManagerError::Protocol),
        }
    }

    /// The current value.
    pub fn get(&self) -> Result<i64, ManagerError> {
        match self.client.call(&Request::ValueGet(self.id))? {
            Response::Int(v) => Ok(v),
            _ => Err(ManagerError::Protocol),
        }
    }
}

/// The manager: a server process and the private directory of its socket. Replaces
/// `multiprocessing.Manager()`; dropping it (Python's `with Manager() as m:` block ending)
/// stops the server and removes the socket and its directory.
pub struct Manager {
    dir: PathBuf,
    client: Client,
    server: Option<Process>,
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("socket", self.client.path.as_ref())
            .field("server_pid", &self.server_pid())
            .finish()
    }
}

impl Manager {
    /// Start the server (a forked child) and return once it listens.
    pub fn start() -> anyhow::Result<Manager> {
        Manager::start_with_timeout(DEFAULT_TIMEOUT)
    }

    /// [`Manager::start`], with proxies that fail after `timeout` without an answer.
    pub fn start_with_timeout(timeout: Duration) -> anyhow::Result<Manager> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("ipc-manager-{}-{nanos:x}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("socket");
        let listener = match UnixListener::bind(&path) {
            Ok(l) => l,
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                return Err(e).with_context(|| format!("binding {}", path.display()));
            }
        };
        let uid = geteuid();
        let mut server = Process::new(move || serve(listener, uid))
            .named("manager-server")
            .daemon(true);
        if let Err(e) = server.start() {
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_dir(&dir);
            return Err(e);
        }
        // The listener was created before the fork and moved into the server's closure, which
        // the parent has dropped: the socket is bound and listening, so connects succeed now.
        Ok(Manager {
            dir,
            client: Client {
                path: Arc::new(path),
                timeout,
                conn: RefCell::new(None),
            },
            server: Some(server),
        })
    }

    /// The private directory holding the socket (mode 0700).
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// The server's pid.
    pub fn server_pid(&self) -> Option<i32> {
        self.server.as_ref().and_then(Process::pid)
    }

    fn created(&self, req: Request) -> Result<u32, ManagerError> {
        match self.client.call(&req)? {
            Response::Created(id) => Ok(id),
            _ => Err(ManagerError::Protocol),
        }
    }

    /// A new empty dict on the server. Replaces `manager.dict()`.
    pub fn dict(&self) -> Result<DictProxy, ManagerError> {
        Ok(DictProxy {
            client: self.client.clone(),
            id: self.created(Request::NewDict)?,
        })
    }

    /// A new list on the server. Replaces `manager.list(iterable)`.
    pub fn list(&self, items: impl IntoIterator<Item = Data>) -> Result<ListProxy, ManagerError> {
        Ok(ListProxy {
            client: self.client.clone(),
            id: self.created(Request::NewList(items.into_iter().collect()))?,
        })
    }

    /// A new integer on the server. Replaces `manager.Value('i', init)`.
    pub fn value(&self, init: i64) -> Result<ValueProxy, ManagerError> {
        Ok(ValueProxy {
            client: self.client.clone(),
            id: self.created(Request::NewValue(init))?,
        })
    }

    /// Stop the server and remove the socket and its directory (what dropping does).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        // A daemon Process is terminated and reaped when dropped.
        drop(self.server.take());
        let _ = std::fs::remove_file(self.client.path.as_path());
        let _ = std::fs::remove_dir(&self.dir);
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Move the listener to fd 3 and close every other descriptor above stderr: the server was
/// forked from a parent that may hold pipes and sockets, and keeping copies of them open would
/// stop their readers from ever seeing end-of-file.
fn keep_only(listener: UnixListener) -> UnixListener {
    let fd = listener.as_raw_fd();
    // SAFETY: dup2 and close_range are plain system calls on descriptors we own; after them
    // fd 3 is a copy of the listener and nothing above it is open. The old listener object is
    // forgotten (its descriptor is closed by close_range, unless it was 3 itself).
    unsafe {
        if fd != 3 {
            libc::dup2(fd, 3);
            std::mem::forget(listener);
        } else {
            std::mem::forget(listener);
        }
        libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32);
        UnixListener::from(OwnedFd::from_raw_fd(3))
    }
}

/// The server loop: one thread, `poll` over the listener and every client.
fn serve(listener: UnixListener, uid: Uid) -> anyhow::Result<()> {
    let listener = keep_only(listener);
    let mut objects: Vec<Object> = Vec::new();
    let mut clients: Vec<UnixStream> = Vec::new();
    loop {
        let mut ready: Vec<bool> = Vec::new();
        let listener_ready;
        {
            let mut fds = vec![PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
            fds.extend(
                clients
                    .iter()
                    .map(|c| PollFd::new(c.as_fd(), PollFlags::POLLIN)),
            );
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e).context("poll"),
            }
            listener_ready = has_events(&fds[0]);
            ready.extend(fds[1..].iter().map(has_events));
        }
        let mut gone = Vec::new();
        for (i, is_ready) in ready.into_iter().enumerate() {
            if is_ready && !answer(&clients[i], &mut objects) {
                gone.push(i);
            }
        }
        for i in gone.into_iter().rev() {
            clients.swap_remove(i);
        }
        if listener_ready && let Ok((stream, _)) = listener.accept() {
            let peer = getsockopt(&stream, sockopt::PeerCredentials);
            if peer.is_ok_and(|c| c.uid() == uid.as_raw()) {
                // A client that stalls mid-request must not freeze the server.
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                clients.push(stream);
            }
            // Otherwise the stream is dropped: another user's process is disconnected.
        }
    }
}

fn has_events(f: &PollFd<'_>) -> bool {
    f.revents().is_some_and(|r| !r.is_empty())
}

/// Read one request from `client` and answer it; `false` if the client is gone.
fn answer(client: &UnixStream, objects: &mut Vec<Object>) -> bool {
    // Clients send one request and wait for its reply before the next: one frame in flight.
    let req: Request = match frame::read_one_frame(client.as_fd(), DEFAULT_MAX_FRAME) {
        Ok(r) => r,
        Err(_) => return false,
    };
    let resp = handle(req, objects);
    frame::write_frame(client.as_fd(), &resp, DEFAULT_MAX_FRAME).is_ok()
}

fn handle(req: Request, objects: &mut Vec<Object>) -> Response {
    let new = |objects: &mut Vec<Object>, o| {
        objects.push(o);
        Response::Created((objects.len() - 1) as u32)
    };
    let missing = |id: u32, kind: &str| Response::Error(format!("no {kind} with id {id}"));
    match req {
        Request::NewDict => new(objects, Object::Dict(BTreeMap::new())),
        Request::NewList(items) => new(objects, Object::List(items)),
        Request::NewValue(v) => new(objects, Object::Value(v)),
        Request::DictSet(id, k, v) => match objects.get_mut(id as usize) {
            Some(Object::Dict(d)) => {
                d.insert(k, v);
                Response::Done
            }
            _ => missing(id, "dict"),
        },
        Request::DictGet(id, k) => match objects.get(id as usize) {
            Some(Object::Dict(d)) => Response::Got(d.get(&k).cloned()),
            _ => missing(id, "dict"),
        },
        Request::DictItems(id) => match objects.get(id as usize) {
            Some(Object::Dict(d)) => {
                Response::Items(d.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            }
            _ => missing(id, "dict"),
        },
        Request::ListAppend(id, v) => match objects.get_mut(id as usize) {
            Some(Object::List(l)) => {
                l.push(v);
                Response::Done
            }
            _ => missing(id, "list"),
        },
        Request::ListItems(id) => match objects.get(id as usize) {
            Some(Object::List(l)) => Response::List(l.clone()),
            _ => missing(id, "list"),
        },
        Request::ValueAdd(id, delta) => match objects.get_mut(id as usize) {
            Some(Object::Value(v)) => {
                *v += delta;
                Response::Int(*v)
            }
            _ => missing(id, "value"),
        },
        Request::ValueGet(id) => match objects.get(id as usize) {
            Some(Object::Value(v)) => Response::Int(*v),
            _ => missing(id, "value"),
        },
    }
}
