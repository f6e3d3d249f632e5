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

use super::Data;
use super::protocol::{Refusal, Request, Response};
use crate::frame::{self, DEFAULT_MAX_FRAME, FrameError};

/// Why a proxy call failed.
#[derive(Debug)]
pub enum ManagerError {
    /// The connection failed: the server is gone, refused us, or did not answer in time (or
    /// the request was over the frame limit: [`FrameError::TooLarge`], nothing sent).
    Connection(FrameError),
    /// The server refused the request (an unknown object, data nested too deep, a malformed
    /// request); the message says which.
    Server(String),
    /// The server answered something this proxy did not ask for.
    Protocol,
    /// [`ValueProxy::add`] would leave the 64-bit range: the value is unchanged. (Python's
    /// `int` would grow; the value here is a C-style 64-bit integer, as in
    /// `multiprocessing.Value('q')`, which wraps silently instead.)
    Overflow {
        /// The value before.
        value: i64,
        /// What was to be added.
        delta: i64,
    },
    /// The reply would be larger than a frame may be (say `items()` of a list of 9 strings of
    /// 2 MiB): nothing changed, and the object can still be read in parts
    /// ([`ListProxy::len`], [`ListProxy::get`], [`ListProxy::slice`]).
    ReplyTooLarge {
        /// The reply's size.
        size: u64,
        /// The frame limit.
        max: u64,
    },
    /// A list index out of range (Python's `IndexError`).
    IndexOutOfRange {
        /// The index asked for.
        index: i64,
        /// The list's length.
        len: u64,
    },
    /// The data nests deeper than [`Data::MAX_DEPTH`]: not sent.
    TooDeep {
        /// How deep it nests.
        depth: usize,
        /// The limit.
        limit: usize,
    },
    /// A [`NamespaceProxy`](super::NamespaceProxy) has no such attribute (Python's `AttributeError`).
    NoSuchAttribute(String),
    /// A [`QueueProxy`](super::QueueProxy) had no item in time (Python's `queue.Empty`).
    Empty,
    /// A [`QueueProxy`](super::QueueProxy) had no room in time (Python's `queue.Full`).
    Full,
    /// Nothing is published under that name ([`Manager::lookup`](super::Manager::lookup)).
    NoSuchName(String),
    /// What is published under that name is another kind of object.
    WrongKind {
        /// The name.
        name: String,
        /// What it is.
        found: String,
        /// What was asked for.
        wanted: String,
    },
}

impl fmt::Display for ManagerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManagerError::Connection(e) => write!(f, "manager unreachable: {e}"),
            ManagerError::Server(e) => write!(f, "manager error: {e}"),
            ManagerError::Protocol => f.write_str("manager sent an unexpected reply"),
            ManagerError::Overflow { value, delta } => write!(
                f,
                "manager error: integer overflow: {value} + {delta} does not fit in 64 bits \
                 (the value is unchanged)"
            ),
            ManagerError::ReplyTooLarge { size, max } => write!(
                f,
                "manager error: reply too large: {size} bytes, over the frame limit of {max} \
                 (nothing was changed; read it in parts)"
            ),
            ManagerError::IndexOutOfRange { index, len } => write!(
                f,
                "manager error: list index {index} out of range for a list of {len}"
            ),
            ManagerError::TooDeep { depth, limit } => write!(
                f,
                "data nested {depth} lists deep, over the manager's limit of {limit} (not sent)"
            ),
            ManagerError::NoSuchAttribute(a) => {
                write!(f, "the namespace has no attribute {a:?}")
            }
            ManagerError::Empty => f.write_str("the manager's queue is empty"),
            ManagerError::Full => f.write_str("the manager's queue is full"),
            ManagerError::NoSuchName(n) => write!(f, "nothing is published as {n:?}"),
            ManagerError::WrongKind {
                name,
                found,
                wanted,
            } => write!(f, "{name:?} is a {found}, not a {wanted}"),
        }
    }
}

impl std::error::Error for ManagerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ManagerError::Connection(e) => Some(e),
            _ => None,
        }
    }
}

impl From<FrameError> for ManagerError {
    fn from(e: FrameError) -> Self {
        ManagerError::Connection(e)
    }
}

impl From<Refusal> for ManagerError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Overflow { value, delta } => ManagerError::Overflow { value, delta },
            Refusal::ReplyTooLarge { size, max } => ManagerError::ReplyTooLarge { size, max },
            Refusal::IndexOutOfRange { index, len } => ManagerError::IndexOutOfRange { index, len },
            Refusal::NoSuchAttribute(a) => ManagerError::NoSuchAttribute(a),
            Refusal::Empty => ManagerError::Empty,
            Refusal::Full => ManagerError::Full,
            Refusal::NoSuchName(n) => ManagerError::NoSuchName(n),
            other => ManagerError::Server(other.to_string()),
        }
    }
}

/// Refuse, before sending, data a manager would refuse.
pub(super) fn shallow<'a>(data: impl IntoIterator<Item = &'a Data>) -> Result<(), ManagerError> {
    let depth = data.into_iter().map(Data::depth).max().unwrap_or(0);
    if depth > Data::MAX_DEPTH {
        return Err(ManagerError::TooDeep {
            depth,
            limit: Data::MAX_DEPTH,
        });
    }
    Ok(())
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
        let Some((_, stream)) = slot.as_ref() else {
            return Err(ManagerError::Protocol);
        };
        // One request, one reply: the reply is all there is to read, usually in one `read`.
        let outcome = frame::with_frame(req, DEFAULT_MAX_FRAME, |buf| {
            frame::write_all(stream.as_fd(), buf)
        })
        .and_then(|()| frame::read_one_frame::<Response>(stream.as_fd(), DEFAULT_MAX_FRAME));
        match outcome {
            Ok(Response::Refused(r)) => Err(r.into()),
            Ok(Response::Error(e)) => Err(ManagerError::Server(e)),
            Ok(r) => Ok(r),
            // Refused while encoding: nothing was sent, the connection is as it was.
            Err(e @ (FrameError::TooLarge { .. } | FrameError::Encode(_))) => {
                Err(ManagerError::Connection(e))
            }
            Err(e) => {
                // The stream may hold half a reply: start afresh next time.
                *slot = None;
                Err(ManagerError::Connection(e))
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
/// each child; every call is a round trip to the server. Keys are kept sorted (Python's dict
/// keeps insertion order).
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

macro_rules! debug_proxy {
    ($($t:ident),*) => { $(
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($t)).field("id", &self.id).finish()
            }
        }
    )* };
}
debug_proxy!(DictProxy, ListProxy, ValueProxy);

/// The reply a call expects, or [`ManagerError::Protocol`].
macro_rules! expect {
    ($call:expr, $pat:pat => $out:expr) => {
        match $call? {
            $pat => Ok($out),
            _ => Err(ManagerError::Protocol),
        }
    };
}

impl DictProxy {
    /// `d[key] = value`.
    ///
    /// # Errors
    /// [`ManagerError::TooDeep`] for data nested too deep (not sent); otherwise a failed call
    /// ([`ManagerError::Connection`], [`ManagerError::Server`]).
    pub fn set(&self, key: impl Into<Data>, value: impl Into<Data>) -> Result<(), ManagerError> {
        let (key, value) = (key.into(), value.into());
        shallow([&key, &value])?;
        expect!(self.client.call(&Request::DictSet(self.id, key, value)), Response::Done => ())
    }

    /// `d.get(key)`.
    ///
    /// # Errors
    /// A failed call.
    pub fn get(&self, key: impl Into<Data>) -> Result<Option<Data>, ManagerError> {
        let key = key.into();
        shallow([&key])?;
        expect!(self.client.call(&Request::DictGet(self.id, key)), Response::Got(v) => v)
    }

    /// Remove `key`; its value if it had one. Replaces `d.pop(key, None)` and `del d[key]`.
    ///
    /// # Errors
    /// A failed call.
    pub fn remove(&self, key: impl Into<Data>) -> Result<Option<Data>, ManagerError> {
        let key = key.into();
        shallow([&key])?;
        expect!(self.client.call(&Request::DictDel(self.id, key)), Response::Got(v) => v)
    }

    /// `len(d)`.
    ///
    /// # Errors
    /// A failed call.
    pub fn len(&self) -> Result<usize, ManagerError> {
        expect!(self.client.call(&Request::DictLen(self.id)), Response::Len(n) => n as usize)
    }

    /// `len(d) == 0`.
    ///
    /// # Errors
    /// A failed call.
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        Ok(self.len()? == 0)
    }

    /// `d.clear()`.
    ///
    /// # Errors
    /// A failed call.
    pub fn clear(&self) -> Result<(), ManagerError> {
        expect!(self.client.call(&Request::DictClear(self.id)), Response::Done => ())
    }

    /// `d.items()` (also `d.copy()`), sorted by key: a copy, taken in one request.
    ///
    /// # Errors
    /// [`ManagerError::ReplyTooLarge`] if the items are over the frame limit; a failed call.
    pub fn items(&self) -> Result<Vec<(Data, Data)>, ManagerError> {
        expect!(self.client.call(&Request::DictItems(self.id)), Response::Items(v) => v)
    }

    /// `d.keys()`, sorted: a copy (one request for the items).
    ///
    /// # Errors
    /// As [`DictProxy::items`].
    pub fn keys(&self) -> Result<Vec<Data>, ManagerError> {
        Ok(self.items()?.into_iter().map(|(k, _)| k).collect())
    }

    /// `d.values()`, in key order: a copy (one request for the items).
    ///
    /// # Errors
    /// As [`DictProxy::items`].
    pub fn values(&self) -> Result<Vec<Data>, ManagerError> {
        Ok(self.items()?.into_iter().map(|(_, v)| v).collect())
    }
}

impl ListProxy {
    /// `l.append(value)`.
    ///
    /// # Errors
    /// [`ManagerError::TooDeep`] for data nested too deep (not sent); a failed call.
    pub fn append(&self, value: impl Into<Data>) -> Result<(), ManagerError> {
        let value = value.into();
        shallow([&value])?;
        expect!(self.client.call(&Request::ListAppend(self.id, value)), Response::Done => ())
    }

    /// `l.extend(items)`, in one request.
    ///
    /// # Errors
    /// As [`ListProxy::append`].
    pub fn extend(&self, items: impl IntoIterator<Item = Data>) -> Result<(), ManagerError> {
        let items: Vec<Data> = items.into_iter().collect();
        shallow(&items)?;
        expect!(self.client.call(&Request::ListExtend(self.id, items)), Response::Done => ())
    }

    /// `l[index]`; a negative index counts from the end.
    ///
    /// # Errors
    /// [`ManagerError::IndexOutOfRange`] (Python's `IndexError`); a failed call.
    pub fn get(&self, index: i64) -> Result<Data, ManagerError> {
        expect!(self.client.call(&Request::ListGet(self.id, index)), Response::Got(Some(v)) => v)
    }

    /// `l[index] = value`; a negative index counts from the end.
    ///
    /// # Errors
    /// As [`ListProxy::get`] and [`ListProxy::append`].
    pub fn set(&self, index: i64, value: impl Into<Data>) -> Result<(), ManagerError> {
        let value = value.into();
        shallow([&value])?;
        expect!(self.client.call(&Request::ListSet(self.id, index, value)), Response::Done => ())
    }

    /// `len(l)`.
    ///
    /// # Errors
    /// A failed call.
    pub fn len(&self) -> Result<usize, ManagerError> {
        expect!(self.client.call(&Request::ListLen(self.id)), Response::Len(n) => n as usize)
    }

    /// `len(l) == 0`.
    ///
    /// # Errors
    /// A failed call.
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        Ok(self.len()? == 0)
    }

    /// `l.pop()` (`None`: the last item) or `l.pop(index)`.
    ///
    /// # Errors
    /// [`ManagerError::IndexOutOfRange`] for an empty list or a bad index; a failed call.
    pub fn pop(&self, index: Option<i64>) -> Result<Data, ManagerError> {
        expect!(self.client.call(&Request::ListPop(self.id, index)), Response::Got(Some(v)) => v)
    }

    /// `l[start:end]`, with Python's rules (`None` for an open end, negative from the end,
    /// clamped to the list).
    ///
    /// # Errors
    /// As [`ListProxy::items`].
    pub fn slice(&self, start: Option<i64>, end: Option<i64>) -> Result<Vec<Data>, ManagerError> {
        expect!(
            self.client.call(&Request::ListSlice(self.id, start, end)),
            Response::List(v) => v
        )
    }

    /// A copy of the list (`l[:]`, `list(l)`), in one request.
    ///
    /// # Errors
    /// [`ManagerError::ReplyTooLarge`] if the list is over the frame limit (read it in parts
    /// with [`ListProxy::len`] and [`ListProxy::slice`]); a failed call.
    pub fn items(&self) -> Result<Vec<Data>, ManagerError> {
        expect!(self.client.call(&Request::ListItems(self.id)), Response::List(v) => v)
    }
}

impl ValueProxy {
    /// Add `delta` on the server, atomically; the new value.
    ///
    /// # Errors
    /// [`ManagerError::Overflow`] if the sum leaves the 64-bit range (the value is
    /// unchanged); a failed call.
    pub fn add(&self, delta: i64) -> Result<i64, ManagerError> {
        expect!(self.client.call(&Request::ValueAdd(self.id, delta)), Response::Int(v) => v)
    }

    /// The current value (`v.value`).
    ///
    /// # Errors
    /// A failed call.
    pub fn get(&self) -> Result<i64, ManagerError> {
        expect!(self.client.call(&Request::ValueGet(self.id)), Response::Int(v) => v)
    }

    /// Replace the value (`v.value = x`).
    ///
    /// # Errors
    /// A failed call.
    pub fn set(&self, value: i64) -> Result<(), ManagerError> {
        expect!(self.client.call(&Request::ValueSet(self.id, value)), Response::Done => ())
    }
}
