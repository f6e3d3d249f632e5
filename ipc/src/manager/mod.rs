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
//!
//! # Faults
//!
//! No request can take the server down or hold up another client: arithmetic is checked
//! ([`ManagerError::Overflow`]), a reply over the frame limit is refused
//! ([`ManagerError::ReplyTooLarge`]), a malformed or too deeply nested request gets an error
//! reply, a slow client only delays itself, and at the descriptor limit the server waits for a
//! descriptor instead of spinning. The server removes its socket directory on its way out,
//! including when its owner is SIGKILLed. How, in `server.rs`.
//!
//! Split along its seams: [`Data`] (`data.rs`), the wire protocol (`protocol.rs`), the objects
//! and the answer to each request (`objects.rs`), the proxies and their connection
//! (`proxy.rs`), the server's loop (`server.rs`), and the [`Manager`] handle that starts and
//! stops it (here).

use std::fmt;
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use nix::sys::signal::SigmaskHow;
use nix::unistd::{geteuid, getpid};
use processes::Process;

mod data;
mod objects;
mod protocol;
mod proxy;
mod registry;
mod served;
mod server;

pub use data::Data;
pub use proxy::{DictProxy, ListProxy, ManagerError, ValueProxy};
pub use registry::{Factory, Managed};
pub use served::{NamespaceProxy, ObjectProxy, Parts, Proxy, QueueProxy};
pub use server::MAX_WAIT;

use protocol::{Request, Response};
use proxy::{Client, shallow};
use registry::Registry;
use server::{Setup, serve};

/// How long a stopping server gets to remove its socket and leave after SIGTERM, before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// How long a proxy call waits for the server before it fails.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The manager: a server process and the private directory of its socket. Replaces
/// `multiprocessing.Manager()`; dropping it (Python's `with Manager() as m:` block ending)
/// stops the server and removes the socket and its directory.
pub struct Manager {
    dir: PathBuf,
    client: Client,
    server: Option<Process>,
    /// Whether this handle started the server (and stops it, and removes its socket, when
    /// dropped); `false` for one that connected by address.
    owner: bool,
}

/// A manager with types of the user's registered: Python's `BaseManager` subclass whose
/// `register(typeid, callable)` was called before `start()`. Made by [`Manager::builder`].
#[derive(Debug, Default)]
pub struct ManagerBuilder {
    registry: Registry,
    timeout: Option<Duration>,
}

impl ManagerBuilder {
    /// Let clients make objects of type `name` with `factory` (on the server). Replaces
    /// `MyManager.register(name, callable)`; see [`Managed`].
    pub fn register<F>(mut self, name: &str, factory: F) -> ManagerBuilder
    where
        F: Fn(Vec<Data>) -> Result<Box<dyn Managed>, String> + Send + Sync + 'static,
    {
        self.registry
            .add(name.to_owned(), std::sync::Arc::new(factory));
        self
    }

    /// How long a proxy call waits for the server (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> ManagerBuilder {
        self.timeout = Some(timeout);
        self
    }

    /// Start the server. Replaces `m = MyManager(); m.start()`.
    ///
    /// # Errors
    /// As [`Manager::start`].
    pub fn start(self) -> anyhow::Result<Manager> {
        Manager::launch(self.timeout.unwrap_or(DEFAULT_TIMEOUT), self.registry)
    }
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("socket", self.client.path())
            .field("server_pid", &self.server_pid())
            .finish()
    }
}

impl Manager {
    /// Start the server (a forked child) and return once it listens.
    ///
    /// The server lives until this handle is dropped (or [`Manager::shutdown`]), or until the
    /// process that started it exits, however it exits.
    ///
    /// # Errors
    /// If the socket directory cannot be made, the socket bound, or the server forked.
    pub fn start() -> anyhow::Result<Manager> {
        Manager::start_with_timeout(DEFAULT_TIMEOUT)
    }

    /// [`Manager::start`], with proxies that fail after `timeout` without an answer.
    ///
    /// # Errors
    /// As [`Manager::start`].
    pub fn start_with_timeout(timeout: Duration) -> anyhow::Result<Manager> {
        Manager::launch(timeout, Registry::default())
    }

    /// A manager to which types of the user's can be registered before it starts.
    pub fn builder() -> ManagerBuilder {
        ManagerBuilder::default()
    }

    /// A handle on a manager that another process started, reached at `address` (its
    /// [`Manager::address`], handed over by any means: an argument, a file). Replaces
    /// `m = MyManager(address=..., authkey=...); m.connect()`.
    ///
    /// Who may connect: Python checks an `authkey` (an HMAC challenge). Here the socket is in
    /// a directory only its user may enter (mode 0700), and the server drops any connection
    /// whose peer (`SO_PEERCRED`) is another user: a process of the same user may connect,
    /// no one else, and there is no key to pass around or leak.
    ///
    /// The handle does not own the server: dropping it leaves the server running.
    ///
    /// # Errors
    /// If nothing answers at `address` within the proxies' time-out.
    pub fn connect(address: impl AsRef<Path>) -> anyhow::Result<Manager> {
        let path = address.as_ref().to_path_buf();
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let m = Manager {
            dir,
            client: Client::new(path.clone(), DEFAULT_TIMEOUT),
            server: None,
            owner: false,
        };
        // One round trip, so a wrong address fails here rather than at first use.
        m.lookup_parts("")
            .or_else(|e| match e {
                ManagerError::NoSuchName(_) => Ok(Parts {
                    client: m.client.clone(),
                    id: 0,
                    kind: String::new(),
                }),
                e => Err(e),
            })
            .with_context(|| format!("connecting to the manager at {}", path.display()))?;
        Ok(m)
    }

    fn launch(timeout: Duration, registry: Registry) -> anyhow::Result<Manager> {
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
        let setup = Setup {
            uid: geteuid(),
            owner: getpid(),
            socket: path.clone(),
            dir: dir.clone(),
            listener,
            registry,
        };
        let keep = [setup.listener.as_raw_fd()];
        // Not a daemon: a daemon dies with the *thread* that started it, by a SIGKILL that
        // leaves its socket behind. The server watches its owner process instead (a pidfd),
        // and `stop` ends it.
        let mut server = Process::new(move || serve(setup))
            .named("manager-server")
            .keep_only_fds(&keep);
        // The server handles its stop signals (it removes the socket first). They are blocked
        // across the fork, so the child starts with them blocked: one sent at once waits for
        // the server's signalfd instead of killing it before it is ready.
        let old_mask = server::stop_signals().thread_swap_mask(SigmaskHow::SIG_BLOCK);
        let started = server.start();
        if let Ok(old) = old_mask {
            let _ = old.thread_set_mask();
        }
        if let Err(e) = started {
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_dir(&dir);
            return Err(e);
        }
        // The listener was created before the fork and moved into the server's closure, which
        // the parent has dropped: the socket is bound and listening, so connects succeed now.
        Ok(Manager {
            dir,
            client: Client::new(path, timeout),
            server: Some(server),
            owner: true,
        })
    }

    /// The server's address: the path of its socket, for [`Manager::connect`] in a process
    /// that did not inherit this handle (one started with spawn, or another program of the
    /// same user). Python's `manager.address`.
    pub fn address(&self) -> &Path {
        self.client.path()
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
    ///
    /// # Errors
    /// A failed call ([`ManagerError`]).
    pub fn dict(&self) -> Result<DictProxy, ManagerError> {
        Ok(DictProxy {
            client: self.client.clone(),
            id: self.created(Request::NewDict)?,
        })
    }

    /// A new dict holding `items`. Replaces `manager.dict(mapping)` / `manager.dict(k=v)`.
    ///
    /// # Errors
    /// [`ManagerError::TooDeep`] for data nested too deep; a failed call.
    pub fn dict_from(
        &self,
        items: impl IntoIterator<Item = (Data, Data)>,
    ) -> Result<DictProxy, ManagerError> {
        let items: Vec<(Data, Data)> = items.into_iter().collect();
        shallow(items.iter().flat_map(|(k, v)| [k, v]))?;
        Ok(DictProxy {
            client: self.client.clone(),
            id: self.created(Request::NewDictFrom(items))?,
        })
    }

    /// A new list on the server. Replaces `manager.list(iterable)`.
    ///
    /// # Errors
    /// As [`Manager::dict_from`].
    pub fn list(&self, items: impl IntoIterator<Item = Data>) -> Result<ListProxy, ManagerError> {
        let items: Vec<Data> = items.into_iter().collect();
        shallow(&items)?;
        Ok(ListProxy {
            client: self.client.clone(),
            id: self.created(Request::NewList(items))?,
        })
    }

    /// A new integer on the server. Replaces `manager.Value('i', init)`.
    ///
    /// # Errors
    /// A failed call.
    pub fn value(&self, init: i64) -> Result<ValueProxy, ManagerError> {
        Ok(ValueProxy {
            client: self.client.clone(),
            id: self.created(Request::NewValue(init))?,
        })
    }

    /// A new namespace on the server. Replaces `manager.Namespace()`.
    ///
    /// # Errors
    /// A failed call.
    pub fn namespace(&self) -> Result<NamespaceProxy, ManagerError> {
        Ok(NamespaceProxy {
            client: self.client.clone(),
            id: self.created(Request::NewNamespace)?,
        })
    }

    /// A new queue served by the manager, of at most `maxsize` items (0: no limit). Replaces
    /// `manager.Queue(maxsize)`.
    ///
    /// # Errors
    /// A failed call.
    pub fn queue(&self, maxsize: usize) -> Result<QueueProxy, ManagerError> {
        Ok(QueueProxy {
            client: self.client.clone(),
            id: self.created(Request::NewQueue(maxsize as u64))?,
        })
    }

    /// A new object of the type registered as `kind`, made on the server from `args`.
    /// Replaces `manager.Kind(*args)` for a registered `typeid`.
    ///
    /// # Errors
    /// [`ManagerError::Server`] if no type is registered as `kind` or its factory fails;
    /// [`ManagerError::TooDeep`]; a failed call.
    pub fn create(
        &self,
        kind: &str,
        args: impl IntoIterator<Item = Data>,
    ) -> Result<ObjectProxy, ManagerError> {
        let args: Vec<Data> = args.into_iter().collect();
        shallow(&args)?;
        Ok(ObjectProxy {
            client: self.client.clone(),
            id: self.created(Request::NewObject(kind.to_owned(), args))?,
            kind: kind.to_owned(),
        })
    }

    /// Give `proxy`'s object a name that any process reaching the manager can look up
    /// ([`Manager::lookup`]): Python's remote pattern of a registered `get_queue` callable
    /// returning one shared object.
    ///
    /// # Errors
    /// [`ManagerError::Server`] if the name is taken; a failed call.
    pub fn publish(&self, name: &str, proxy: &impl Proxy) -> Result<(), ManagerError> {
        match self
            .client
            .call(&Request::Publish(name.to_owned(), proxy.object_id()))?
        {
            Response::Done => Ok(()),
            _ => Err(ManagerError::Protocol),
        }
    }

    /// The object published as `name`, as a proxy of type `P`.
    ///
    /// # Errors
    /// [`ManagerError::NoSuchName`]; [`ManagerError::WrongKind`] if it is another kind of
    /// object; a failed call.
    pub fn lookup<P: Proxy>(&self, name: &str) -> Result<P, ManagerError> {
        let parts = self.lookup_parts(name)?;
        P::from_parts(parts).map_err(|parts| ManagerError::WrongKind {
            name: name.to_owned(),
            found: parts.kind,
            wanted: P::KIND.to_owned(),
        })
    }

    fn lookup_parts(&self, name: &str) -> Result<Parts, ManagerError> {
        match self.client.call(&Request::Lookup(name.to_owned()))? {
            Response::Found(id, kind) => Ok(Parts {
                client: self.client.clone(),
                id,
                kind,
            }),
            _ => Err(ManagerError::Protocol),
        }
    }

    /// Stop the server and remove the socket and its directory (what dropping does). On a
    /// handle made by [`Manager::connect`], only the handle goes.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if !self.owner {
            return;
        }
        if let Some(mut server) = self.server.take() {
            // SIGTERM: the server removes its socket and leaves; SIGKILL if it does not.
            let _ = server.terminate();
            if !matches!(server.join_timeout(STOP_GRACE), Ok(true)) {
                let _ = server.kill();
                let _ = server.join();
            }
        }
        let _ = std::fs::remove_file(self.client.path());
        let _ = std::fs::remove_dir(&self.dir);
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        self.stop();
    }
}
