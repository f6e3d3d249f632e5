//! The objects added to the manager for issue 20: [`NamespaceProxy`] (Python's `Namespace`),
//! [`QueueProxy`] (a `Queue` the manager serves), [`ObjectProxy`] (an object of a registered
//! type), and [`Proxy`], which lets any proxy be published under a name and looked up from a
//! process that connected by address.

use std::fmt;
use std::time::{Duration, Instant};

use super::Data;
use super::protocol::{Request, Response};
use super::proxy::{Client, DictProxy, ListProxy, ManagerError, ValueProxy, shallow};
use super::server::MAX_WAIT;

/// What a proxy is made of: only this crate makes one (a looked-up name's object).
#[derive(Clone)]
pub struct Parts {
    pub(super) client: Client,
    pub(super) id: u32,
    pub(super) kind: String,
}

impl fmt::Debug for Parts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parts")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .finish()
    }
}

/// A proxy of a manager's object: what can be published under a name and looked up
/// ([`Manager::publish`](super::Manager::publish), [`Manager::lookup`](super::Manager::lookup)).
pub trait Proxy: Sized {
    /// The kind of object the server calls it (`"dict"`, `"queue"` ...; an [`ObjectProxy`]
    /// takes any registered type).
    const KIND: &'static str;

    /// Its object's number on the server.
    fn object_id(&self) -> u32;

    /// The proxy of a looked-up object, if it is of this kind (else the parts back).
    ///
    /// # Errors
    /// The parts, when the object is of another kind.
    fn from_parts(parts: Parts) -> Result<Self, Parts>;
}

macro_rules! proxy_kind {
    ($($t:ident => $kind:literal),*) => { $(
        impl Proxy for $t {
            const KIND: &'static str = $kind;
            fn object_id(&self) -> u32 {
                self.id
            }
            fn from_parts(parts: Parts) -> Result<Self, Parts> {
                if parts.kind != $kind {
                    return Err(parts);
                }
                Ok($t { client: parts.client, id: parts.id })
            }
        }
    )* };
}
proxy_kind!(DictProxy => "dict", ListProxy => "list", ValueProxy => "value",
    NamespaceProxy => "namespace", QueueProxy => "queue");

impl Proxy for ObjectProxy {
    const KIND: &'static str = "registered object";
    fn object_id(&self) -> u32 {
        self.id
    }
    fn from_parts(parts: Parts) -> Result<Self, Parts> {
        if ["dict", "list", "value", "namespace", "queue"].contains(&parts.kind.as_str()) {
            return Err(parts);
        }
        Ok(ObjectProxy {
            client: parts.client,
            id: parts.id,
            kind: parts.kind,
        })
    }
}

/// Attributes on the manager, read and set from any process. Replaces `manager.Namespace()`
/// (`ns.x = 1` is `set("x", 1)`, `ns.x` is `get("x")`, `del ns.x` is `remove("x")`).
#[derive(Clone)]
pub struct NamespaceProxy {
    pub(super) client: Client,
    pub(super) id: u32,
}

/// A FIFO queue the manager serves, reached by any process that can reach the manager (one
/// started with spawn, or connected by address). Replaces `manager.Queue(maxsize)`.
///
/// A `get` that waits is answered by the server within [`MAX_WAIT`] (empty or not) and asked
/// again while its time lasts, so a server that dies is noticed within the proxy's time-out.
/// Where both processes descend from one, [`crate::Queue`] (shared memory) is far faster.
#[derive(Clone)]
pub struct QueueProxy {
    pub(super) client: Client,
    pub(super) id: u32,
}

/// An object of a type registered with
/// [`ManagerBuilder::register`](super::ManagerBuilder::register). Replaces the proxy Python
/// makes for a registered `typeid`.
#[derive(Clone)]
pub struct ObjectProxy {
    pub(super) client: Client,
    pub(super) id: u32,
    pub(super) kind: String,
}

impl fmt::Debug for NamespaceProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NamespaceProxy")
            .field("id", &self.id)
            .finish()
    }
}

impl fmt::Debug for QueueProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueProxy").field("id", &self.id).finish()
    }
}

impl fmt::Debug for ObjectProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectProxy")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .finish()
    }
}

fn protocol<T>(_: Response) -> Result<T, ManagerError> {
    Err(ManagerError::Protocol)
}

impl NamespaceProxy {
    /// `ns.attr = value`.
    ///
    /// # Errors
    /// [`ManagerError::TooDeep`] (not sent); a failed call.
    pub fn set(&self, attr: &str, value: impl Into<Data>) -> Result<(), ManagerError> {
        let value = value.into();
        shallow([&value])?;
        match self
            .client
            .call(&Request::NsSet(self.id, attr.to_owned(), value))?
        {
            Response::Done => Ok(()),
            r => protocol(r),
        }
    }

    /// `ns.attr`.
    ///
    /// # Errors
    /// [`ManagerError::NoSuchAttribute`] (Python's `AttributeError`); a failed call.
    pub fn get(&self, attr: &str) -> Result<Data, ManagerError> {
        match self
            .client
            .call(&Request::NsGet(self.id, attr.to_owned()))?
        {
            Response::Got(Some(v)) => Ok(v),
            r => protocol(r),
        }
    }

    /// `hasattr(ns, attr)`.
    ///
    /// # Errors
    /// A failed call.
    pub fn has(&self, attr: &str) -> Result<bool, ManagerError> {
        match self.get(attr) {
            Ok(_) => Ok(true),
            Err(ManagerError::NoSuchAttribute(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `del ns.attr`; the value it had.
    ///
    /// # Errors
    /// [`ManagerError::NoSuchAttribute`]; a failed call.
    pub fn remove(&self, attr: &str) -> Result<Data, ManagerError> {
        match self
            .client
            .call(&Request::NsDel(self.id, attr.to_owned()))?
        {
            Response::Got(Some(v)) => Ok(v),
            r => protocol(r),
        }
    }

    /// Every attribute and its value, sorted by name (`vars(ns)`).
    ///
    /// # Errors
    /// A failed call.
    pub fn items(&self) -> Result<Vec<(String, Data)>, ManagerError> {
        match self.client.call(&Request::NsItems(self.id))? {
            Response::Names(v) => Ok(v),
            r => protocol(r),
        }
    }
}

impl QueueProxy {
    /// `q.put(item)`: waits for room as long as it takes (a bounded queue).
    ///
    /// # Errors
    /// [`ManagerError::TooDeep`] (not sent); a failed call.
    pub fn put(&self, item: impl Into<Data>) -> Result<(), ManagerError> {
        self.put_until(item.into(), None)
    }

    /// `q.put(item, timeout=t)`.
    ///
    /// # Errors
    /// [`ManagerError::Full`] if there was no room in time; as [`QueueProxy::put`].
    pub fn put_timeout(
        &self,
        item: impl Into<Data>,
        timeout: Duration,
    ) -> Result<(), ManagerError> {
        self.put_until(item.into(), Some(Instant::now().checked_add(timeout)))
    }

    /// `q.get()`: waits for an item as long as it takes.
    ///
    /// # Errors
    /// A failed call (the server gone, say).
    pub fn get(&self) -> Result<Data, ManagerError> {
        self.get_until(None)
    }

    /// `q.get(timeout=t)`.
    ///
    /// # Errors
    /// [`ManagerError::Empty`] if nothing came in time; as [`QueueProxy::get`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<Data, ManagerError> {
        self.get_until(Some(Instant::now().checked_add(timeout)))
    }

    /// `q.qsize()`.
    ///
    /// # Errors
    /// A failed call.
    pub fn qsize(&self) -> Result<usize, ManagerError> {
        match self.client.call(&Request::QueueSize(self.id))? {
            Response::Len(n) => Ok(n as usize),
            r => protocol(r),
        }
    }

    /// `q.full()`.
    ///
    /// # Errors
    /// A failed call.
    pub fn is_full(&self) -> Result<bool, ManagerError> {
        match self.client.call(&Request::QueueFull(self.id))? {
            Response::Bool(b) => Ok(b),
            r => protocol(r),
        }
    }

    /// `q.empty()`.
    ///
    /// # Errors
    /// A failed call.
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        Ok(self.qsize()? == 0)
    }

    /// How long the next request may wait on the server: what is left of the caller's time
    /// (`Some(None)`: a deadline too far to represent, as `None`), at most [`MAX_WAIT`].
    fn slice(deadline: Option<Option<Instant>>) -> u64 {
        let left = match deadline {
            Some(Some(d)) => d.saturating_duration_since(Instant::now()),
            _ => MAX_WAIT,
        };
        left.min(MAX_WAIT).as_millis() as u64
    }

    fn expired(deadline: Option<Option<Instant>>) -> bool {
        matches!(deadline, Some(Some(d)) if Instant::now() >= d)
    }

    fn put_until(&self, item: Data, deadline: Option<Option<Instant>>) -> Result<(), ManagerError> {
        shallow([&item])?;
        loop {
            let wait = QueueProxy::slice(deadline);
            match self
                .client
                .call(&Request::QueuePut(self.id, item.clone(), wait))
            {
                Ok(Response::Done) => return Ok(()),
                Err(ManagerError::Full) if !QueueProxy::expired(deadline) => {}
                Ok(r) => return protocol(r),
                Err(e) => return Err(e),
            }
        }
    }

    fn get_until(&self, deadline: Option<Option<Instant>>) -> Result<Data, ManagerError> {
        loop {
            let wait = QueueProxy::slice(deadline);
            match self.client.call(&Request::QueueGet(self.id, wait)) {
                Ok(Response::Got(Some(v))) => return Ok(v),
                Err(ManagerError::Empty) if !QueueProxy::expired(deadline) => {}
                Ok(r) => return protocol(r),
                Err(e) => return Err(e),
            }
        }
    }
}

impl ObjectProxy {
    /// The registered type's name.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// Call `method` with `args` on the server. Replaces calling a method of the proxy
    /// Python's manager returns for a registered type.
    ///
    /// # Errors
    /// [`ManagerError::Server`] with the method's error (or its panic's message: the server
    /// goes on); [`ManagerError::TooDeep`]; a failed call.
    pub fn call(
        &self,
        method: &str,
        args: impl IntoIterator<Item = Data>,
    ) -> Result<Data, ManagerError> {
        let args: Vec<Data> = args.into_iter().collect();
        shallow(&args)?;
        match self
            .client
            .call(&Request::Call(self.id, method.to_owned(), args))?
        {
            Response::Got(Some(v)) => Ok(v),
            r => protocol(r),
        }
    }
}
