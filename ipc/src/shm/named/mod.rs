//! [`SharedMemory`]: Python's `multiprocessing.shared_memory.SharedMemory`: a block of memory
//! with a name in `/dev/shm` (`shm_open`), which any process of the same user can attach by
//! that name, including one started afresh (spawn), which inherits nothing.
//!
//! # Python's rules, and what is added
//!
//! - **create** makes a new block (a fresh name unless one is given; a given name that exists
//!   is [`ShmError::Exists`]); **attach** opens an existing one by name
//!   ([`ShmError::NotFound`]);
//! - **close** (or dropping the handle) unmaps it in this process only: the name and the
//!   memory stay for the others;
//! - **unlink** removes the name: processes that have it mapped keep using it, new attaches
//!   fail, and the memory is freed when the last one closes. Call it once, when every process
//!   has attached (Python: "should be called once and only once across all processes");
//! - like Python's resource tracker, a block whose creator exits without unlinking it is
//!   unlinked when the creator exits (an `atexit` handler);
//! - a creator that is **killed** runs no handler. So every block starts with a header naming
//!   its creator (pid and start time), and the first block a process creates sweeps
//!   `/dev/shm`: a block of ours (the header's magic) whose creator is dead is unlinked. A
//!   crashed program leaves its blocks only until the next program of this crate creates one.
//!
//! # Layout, and the typed blocks
//!
//! A block is a [`HEADER`]-byte header, then the user's bytes. The header says what the block
//! holds: raw bytes ([`SharedMemory::buf`]), or a [`Value`](crate::Value) or an
//! [`Array`](crate::Array) with its lock ([`Value::create_shared`](crate::Value::create_shared),
//! [`Value::attach_shared`](crate::Value::attach_shared)), tagged with its element type, so a
//! process attaching it as anything else is refused. A typed block's bytes are not handed out
//! raw: writing arbitrary bytes over a process-shared mutex could corrupt the memory of the
//! process holding it (glibc links a held robust mutex into its owner's list through the
//! mutex itself). The header makes these blocks unreadable to Python's `SharedMemory` at the
//! same offsets; they are for this crate's processes.
//!
//! # Unsafe code: its rules
//!
//! - A block is mapped whole, its length taken from the file (`fstat`) when attached; nothing
//!   is read before checking that the file holds at least the header, and the user's part is
//!   reached only within the size the header gives, checked against the file's length.
//! - The header is all atomics; the creator writes it while no other process can know the
//!   name's block is ready (`ready` is written last, with release ordering, and read first).
//! - Raw bytes are handed out as `AtomicU8`s, never as `&mut [u8]`: other processes write them
//!   at any time. Typed blocks hand out no bytes at all (see above).
//! - A mapping is unmapped when the last handle of this process goes (an `Arc`); a `Value` made
//!   from a block keeps the mapping alive on its own, so closing the block leaves it valid.
//!
//! Checked by `tests/cpython_shared_memory.rs` (attaching a typed block as bytes or as another
//! type is refused; a foreign or unready block is refused; creators killed and exiting).

use std::fmt;
use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicI32, AtomicU8, AtomicU32, AtomicU64, AtomicUsize};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::mman::{shm_open, shm_unlink};
use nix::sys::stat::{Mode, fstat};

mod sweep;

use super::Mapping;
use crate::procid;
use sweep::{AT_EXIT, CREATED, sweep_stale, unlink_created};

/// Bytes before the user's: the header (see the module docs).
pub const HEADER: usize = 64;

/// "ipc-shm1": marks a block made by this crate.
pub(super) const MAGIC: u64 = u64::from_le_bytes(*b"ipc-shm1");

/// What a block holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Raw bytes ([`SharedMemory::buf`]).
    Bytes,
    /// A typed object (a `Value`, an `Array`), tagged with its type.
    Typed(u64),
}

impl Kind {
    fn code(self) -> (u32, u64) {
        match self {
            Kind::Bytes => (1, 0),
            Kind::Typed(tag) => (2, tag),
        }
    }
}

#[repr(C)]
struct Header {
    magic: AtomicU64,
    creator_pid: AtomicI32,
    kind: AtomicU32,
    creator_start: AtomicU64,
    tag: AtomicU64,
    size: AtomicU64,
    /// 1 once the creator has set the block up: written last (Release), read first (Acquire).
    ready: AtomicU32,
}

const _: () = assert!(size_of::<Header>() <= HEADER);
use std::mem::size_of;

/// Why a shared-memory block could not be made or used.
#[derive(Debug)]
pub enum ShmError {
    /// A block of that name exists already (Python's `FileExistsError`).
    Exists(String),
    /// No block of that name (Python's `FileNotFoundError`).
    NotFound(String),
    /// The name is not a valid one: empty, longer than 200 bytes, or holding `/` or NUL.
    BadName(String),
    /// The block is not what was asked for (not made by this crate, or another kind or type).
    WrongKind {
        /// Its name.
        name: String,
        /// What it holds.
        found: String,
        /// What was asked for.
        wanted: String,
    },
    /// Its creator has not finished setting it up (or died doing so).
    NotReady(String),
    /// Any other error of the system.
    Io(io::Error),
}

impl fmt::Display for ShmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShmError::Exists(n) => write!(f, "shared memory {n:?} exists already"),
            ShmError::NotFound(n) => write!(f, "no shared memory named {n:?}"),
            ShmError::BadName(n) => write!(f, "{n:?} is not a valid shared-memory name"),
            ShmError::WrongKind {
                name,
                found,
                wanted,
            } => write!(f, "shared memory {name:?} holds {found}, not {wanted}"),
            ShmError::NotReady(n) => write!(f, "shared memory {n:?} is not set up (yet)"),
            ShmError::Io(e) => write!(f, "shared memory: {e}"),
        }
    }
}

impl std::error::Error for ShmError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ShmError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for ShmError {
    fn from(e: io::Error) -> Self {
        ShmError::Io(e)
    }
}

/// A block of shared memory with a name. Replaces
/// `multiprocessing.shared_memory.SharedMemory`.
///
/// ```
/// use std::sync::atomic::Ordering::SeqCst;
///
/// let shm = ipc::SharedMemory::create(16)?;              // SharedMemory(create=True, size=16)
/// shm.buf()?[0].store(42, SeqCst);
/// let other = ipc::SharedMemory::attach(shm.name())?;    // SharedMemory(name)
/// assert_eq!(other.buf()?[0].load(SeqCst), 42);
/// other.close();
/// shm.unlink()?;
/// assert!(ipc::SharedMemory::attach(shm.name()).is_err());
/// # Ok::<(), ipc::ShmError>(())
/// ```
pub struct SharedMemory {
    name: String,
    map: Arc<Mapping>,
    size: usize,
    kind: Kind,
}

impl fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedMemory")
            .field("name", &self.name)
            .field("size", &self.size)
            .finish()
    }
}

static NEXT: AtomicUsize = AtomicUsize::new(1);

pub(super) fn path(name: &str) -> String {
    format!("/{name}")
}

/// Python refuses a block of no bytes (`ValueError`).
fn positive(size: usize) -> Result<(), ShmError> {
    if size == 0 {
        return Err(ShmError::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a shared-memory block needs a size greater than zero",
        )));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), ShmError> {
    if name.is_empty() || name.len() > 200 || name.contains(['/', '\0']) {
        return Err(ShmError::BadName(name.to_owned()));
    }
    Ok(())
}

impl SharedMemory {
    /// A new block of `size` bytes (zeroed) under a fresh name. Replaces
    /// `SharedMemory(create=True, size=size)`.
    ///
    /// # Errors
    /// [`ShmError::Io`] for a size of 0 (`InvalidInput`, Python's `ValueError`), or if
    /// `/dev/shm` refuses (no room, too many files).
    pub fn create(size: usize) -> Result<SharedMemory, ShmError> {
        positive(size)?;
        let shm = SharedMemory::fresh(size, Kind::Bytes)?;
        shm.set_ready();
        Ok(shm)
    }

    /// A new block under a fresh name (`ipc_<pid>_<start time>_<n>`), not yet marked ready.
    pub(crate) fn fresh(size: usize, kind: Kind) -> Result<SharedMemory, ShmError> {
        let me = procid::me();
        loop {
            let name = format!("ipc_{}_{}_{}", me.pid, me.start, NEXT.fetch_add(1, Relaxed));
            match SharedMemory::make(&name, size, kind) {
                Err(ShmError::Exists(_)) => continue,
                other => return other,
            }
        }
    }

    /// A new block of `size` bytes under `name`. Replaces
    /// `SharedMemory(name, create=True, size=size)`.
    ///
    /// # Errors
    /// [`ShmError::Exists`] if the name is taken, [`ShmError::BadName`], [`ShmError::Io`]
    /// (as [`SharedMemory::create`]).
    pub fn create_named(name: &str, size: usize) -> Result<SharedMemory, ShmError> {
        check_name(name)?;
        positive(size)?;
        let shm = SharedMemory::make(name, size, Kind::Bytes)?;
        shm.set_ready();
        Ok(shm)
    }

    /// Make a block holding `kind`, `size` bytes after the header, not yet marked ready (the
    /// caller sets its part up, then calls [`SharedMemory::set_ready`]).
    pub(crate) fn make(name: &str, size: usize, kind: Kind) -> Result<SharedMemory, ShmError> {
        AT_EXIT.call_once(|| {
            // SAFETY: registers a plain extern "C" function with no arguments.
            unsafe { nix::libc::atexit(unlink_created) };
        });
        sweep_stale();
        let fd = match shm_open(
            path(name).as_str(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR,
            Mode::S_IRUSR | Mode::S_IWUSR,
        ) {
            Ok(fd) => fd,
            Err(Errno::EEXIST) => return Err(ShmError::Exists(name.to_owned())),
            Err(e) => return Err(ShmError::Io(e.into())),
        };
        let remove = |e: ShmError| {
            let _ = shm_unlink(path(name).as_str());
            e
        };
        let total = HEADER + size;
        nix::unistd::ftruncate(&fd, total as i64).map_err(|e| remove(ShmError::Io(e.into())))?;
        let map = Mapping::of_file(&fd, total).map_err(|e| remove(e.into()))?;
        let me = procid::me();
        // SAFETY: the header is at offset 0 of a fresh mapping of HEADER + size bytes.
        let h = unsafe { &*map.at::<Header>(0) };
        h.creator_pid.store(me.pid, Relaxed);
        h.creator_start.store(me.start, Relaxed);
        let (code, tag) = kind.code();
        h.kind.store(code, Relaxed);
        h.tag.store(tag, Relaxed);
        h.size.store(size as u64, Relaxed);
        h.magic.store(MAGIC, Release);
        if let Ok(mut list) = CREATED.lock() {
            list.push((me.pid, name.to_owned()));
        }
        Ok(SharedMemory {
            name: name.to_owned(),
            map: Arc::new(map),
            size,
            kind,
        })
    }

    /// Mark a block set up (the creator's last step).
    pub(crate) fn set_ready(&self) {
        self.header().ready.store(1, Release);
    }

    /// Attach the block called `name`. Replaces `SharedMemory(name)`.
    ///
    /// # Errors
    /// [`ShmError::NotFound`], [`ShmError::BadName`], [`ShmError::WrongKind`] if it was not
    /// made by this crate, [`ShmError::NotReady`] if its creator has not set it up,
    /// [`ShmError::Io`].
    pub fn attach(name: &str) -> Result<SharedMemory, ShmError> {
        check_name(name)?;
        let fd = match shm_open(path(name).as_str(), OFlag::O_RDWR, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Err(ShmError::NotFound(name.to_owned())),
            Err(e) => return Err(ShmError::Io(e.into())),
        };
        let len = fstat(fd.as_fd()).map_err(io::Error::from)?.st_size as usize;
        let foreign = || ShmError::WrongKind {
            name: name.to_owned(),
            found: "something not made by this crate".to_owned(),
            wanted: "a block of ipc::SharedMemory".to_owned(),
        };
        if len < HEADER {
            return Err(foreign());
        }
        let map = Mapping::of_file(&fd, len)?;
        // SAFETY: the file is at least HEADER bytes long, so the header is mapped.
        let h = unsafe { &*map.at::<Header>(0) };
        if h.magic.load(Acquire) != MAGIC {
            return Err(foreign());
        }
        if h.ready.load(Acquire) != 1 {
            return Err(ShmError::NotReady(name.to_owned()));
        }
        let size = h.size.load(Relaxed) as usize;
        let kind = match (h.kind.load(Relaxed), h.tag.load(Relaxed)) {
            (1, _) => Kind::Bytes,
            (2, tag) => Kind::Typed(tag),
            _ => return Err(foreign()),
        };
        if HEADER + size > len {
            return Err(foreign());
        }
        Ok(SharedMemory {
            name: name.to_owned(),
            map: Arc::new(map),
            size,
            kind,
        })
    }

    fn header(&self) -> &Header {
        // SAFETY: every SharedMemory maps at least HEADER bytes; the header is all atomics.
        unsafe { &*self.map.at::<Header>(0) }
    }

    /// Its name, to hand to the processes that will attach it. Python's `shm.name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its size in bytes (the user's part). Python's `shm.size`.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Its bytes, each an atomic (other processes write them while this one reads). Python's
    /// `shm.buf`.
    ///
    /// # Errors
    /// [`ShmError::WrongKind`] for a block holding a `Value` or an `Array` (reach those
    /// through their own handle).
    pub fn buf(&self) -> Result<&[AtomicU8], ShmError> {
        if self.kind != Kind::Bytes {
            return Err(self.wrong("raw bytes"));
        }
        // SAFETY: `size` bytes follow the header in the mapping, which lives as long as
        // `self`; AtomicU8 has the layout of u8 and makes every access race-free.
        Ok(unsafe { std::slice::from_raw_parts(self.map.at::<AtomicU8>(HEADER), self.size) })
    }

    /// Copy `data` in at `offset` (a convenience over [`SharedMemory::buf`]).
    ///
    /// # Errors
    /// As [`SharedMemory::buf`]; [`ShmError::Io`] (`InvalidInput`) past the end.
    pub fn write(&self, offset: usize, data: &[u8]) -> Result<(), ShmError> {
        let dest = self.range(offset, data.len())?;
        for (d, s) in dest.iter().zip(data) {
            d.store(*s, Relaxed);
        }
        std::sync::atomic::fence(Release);
        Ok(())
    }

    /// Copy `out.len()` bytes out from `offset`.
    ///
    /// # Errors
    /// As [`SharedMemory::write`].
    pub fn read(&self, offset: usize, out: &mut [u8]) -> Result<(), ShmError> {
        let src = self.range(offset, out.len())?;
        std::sync::atomic::fence(Acquire);
        for (o, s) in out.iter_mut().zip(src) {
            *o = s.load(Relaxed);
        }
        Ok(())
    }

    fn range(&self, offset: usize, len: usize) -> Result<&[AtomicU8], ShmError> {
        let buf = self.buf()?;
        offset
            .checked_add(len)
            .and_then(|end| buf.get(offset..end))
            .ok_or_else(|| {
                ShmError::Io(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{len} bytes at {offset} are past the end of a block of {}",
                        self.size
                    ),
                ))
            })
    }

    pub(crate) fn wrong(&self, wanted: &str) -> ShmError {
        ShmError::WrongKind {
            name: self.name.clone(),
            found: match self.kind {
                Kind::Bytes => "raw bytes".to_owned(),
                Kind::Typed(_) => "a typed object (a Value or an Array)".to_owned(),
            },
            wanted: wanted.to_owned(),
        }
    }

    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    pub(crate) fn mapping(&self) -> &Arc<Mapping> {
        &self.map
    }

    /// Unmap it in this process (the name stays). Replaces `shm.close()`; dropping does
    /// the same. What was reached through it (a `Value`) keeps its own mapping.
    pub fn close(self) {}

    /// Remove the name: attached processes keep their mapping, new attaches fail. Replaces
    /// `shm.unlink()`; call it once, in one process.
    ///
    /// # Errors
    /// [`ShmError::NotFound`] if the name is already gone.
    pub fn unlink(&self) -> Result<(), ShmError> {
        match shm_unlink(path(&self.name).as_str()) {
            Ok(()) => {
                if let Ok(mut list) = CREATED.lock() {
                    list.retain(|(_, n)| n != &self.name);
                }
                Ok(())
            }
            Err(Errno::ENOENT) => Err(ShmError::NotFound(self.name.clone())),
            Err(e) => Err(ShmError::Io(e.into())),
        }
    }
}

/// A tag for type `T`: its name, size and alignment, hashed (FNV-1a). The same binary gives
/// the same tag in every process, which is what attaching across a spawn needs.
pub(crate) fn type_tag<T>(what: &str) -> u64 {
    let text = format!(
        "{what}<{}>:{}:{}",
        std::any::type_name::<T>(),
        size_of::<T>(),
        std::mem::align_of::<T>()
    );
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
