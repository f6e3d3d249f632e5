//! Memory shared between a process and the children it forks: a process-shared, robust
//! [`Lock`], and [`Value`], [`Array`] and [`AtomicValue`] in the same kind of memory.
//!
//! Made with `new`, everything lives in an anonymous `MAP_SHARED` mapping made before `fork`:
//! parent and children see the same physical pages. Anonymous mappings have no name in
//! `/dev/shm`, so nothing is left behind when the processes end, even if they crash. For a
//! process started afresh (spawn), [`SharedMemory`] names a block in `/dev/shm` (see its
//! module for how nothing is left there either), and [`Value::create_shared`] /
//! [`Array::create_shared`] put a locked value in one.
//!
//! Split along its seams: the mapping itself (here), the robust [`Lock`] (`lock.rs`), the
//! locked [`Value`] and [`Array`] (`value.rs`) and the lock-free [`AtomicValue`] (`atomic.rs`).

use std::ffi::c_void;
use std::io;
use std::mem::size_of;
use std::num::NonZeroUsize;
use std::ptr::NonNull;

use nix::sys::mman::{MapFlags, ProtFlags, mmap, mmap_anonymous, munmap};
use std::os::fd::AsFd;

mod atomic;
mod lock;
mod named;
mod value;

pub use atomic::{AtomicValue, RawArray, RawValue, ShmAtomic};
pub(crate) use lock::init_mutex;
pub use lock::{Lock, LockError, LockGuard};
pub use named::{HEADER, SharedMemory, ShmError};
pub use value::{Array, ArrayGuard, Plain, Value, ValueGuard};

/// A shared anonymous mapping, unmapped when the last handle in this process goes.
pub(crate) struct Mapping {
    ptr: NonNull<c_void>,
    len: usize,
}

// SAFETY: the mapping is plain memory; every type placed in it is either synchronised through
// the process-shared mutex it carries or is an atomic, so handles may move between threads.
unsafe impl Send for Mapping {}
// SAFETY: as above: shared access goes through the mutex or atomics inside.
unsafe impl Sync for Mapping {}

impl Mapping {
    pub(crate) fn new(len: usize) -> io::Result<Mapping> {
        let size = NonZeroUsize::new(len.max(1)).unwrap_or(NonZeroUsize::MIN);
        // SAFETY: a fresh anonymous mapping aliases nothing; mmap zero-fills it.
        let ptr = unsafe {
            mmap_anonymous(
                None,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
        }
        .map_err(io::Error::from)?;
        Ok(Mapping { ptr, len })
    }

    /// A shared mapping of the first `len` bytes of the file `fd` (a `/dev/shm` object).
    pub(crate) fn of_file(fd: impl AsFd, len: usize) -> io::Result<Mapping> {
        let size = NonZeroUsize::new(len.max(1)).unwrap_or(NonZeroUsize::MIN);
        // SAFETY: a new mapping of a file we opened; it aliases no Rust object of ours (what
        // other processes write there is reached only through atomics and process-shared
        // mutexes, the rules of every type placed in it).
        let ptr = unsafe {
            mmap(
                None,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                fd,
                0,
            )
        }
        .map_err(io::Error::from)?;
        Ok(Mapping { ptr, len })
    }

    pub(crate) fn at<T>(&self, offset: usize) -> *mut T {
        debug_assert!(offset + size_of::<T>() <= self.len.max(1));
        // SAFETY: callers stay within the mapping (offsets computed from its layout).
        unsafe { self.ptr.as_ptr().cast::<u8>().add(offset).cast::<T>() }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: we mapped exactly this range and no reference into it outlives the last
        // handle (handles hold the Arc<Mapping>).
        let _ = unsafe { munmap(self.ptr, self.len.max(1)) };
    }
}
