//! The proxies ([`DictProxy`], [`ListProxy`], [`ValueProxy`]) and the connection they share.

use std::cell::RefCell;
use std::fmt;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use nix::libc;

use super::{Data, Request, Response};
use crate::frame::{self, DEFAULT_MAX_FRAME, FrameError};

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
pub(super) struct Client {
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
    /// A client of the server listening at `path`, not connected yet.
    pub(super) fn new(path: PathBuf, timeout: Duration) -> Client {
        Client {
            path: Arc::new(path),
            timeout,
            conn: RefCell::new(None),
        }
    }

    /// The server's socket.
    pub(super) fn path(&self) -> &PathBuf {
        &self.path
    }

    pub(super) fn call(&self, req: &Request) -> Result<Response, ManagerError> {
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
    pub(super) client: Client,
    pub(super) id: u32,
}

/// A list owned by the manager. Replaces the proxy `manager.list()` returns.
#[derive(Clone)]
pub struct ListProxy {
    pub(super) client: Client,
    pub(super) id: u32,
}

/// An integer owned by the manager. Replaces `manager.Value('i', 0)`; `add` is one request,
/// so it is atomic (Python's `v.value += 1` is two, and races).
#[derive(Clone)]
pub struct ValueProxy {
    pub(super) client: Client,
    pub(super) id: u32,
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
