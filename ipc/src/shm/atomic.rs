//! [`AtomicValue`]: a lock-free atomic in shared memory.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::mem::size_of;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU32, AtomicU64, AtomicUsize};

use super::Mapping;

/// Atomics that work across processes: lock-free atomic instructions act on the memory
/// itself, wherever it is mapped.
///
/// # Safety
/// Implement only for lock-free atomic types with no pointers inside.
pub unsafe trait ShmAtomic: Send + Sync + 'static {}

macro_rules! shm_atomic {
    ($($t:ty),*) => { $(
        // SAFETY: a lock-free atomic integer on this platform; no pointers.
        unsafe impl ShmAtomic for $t {}
    )* };
}
shm_atomic!(
    AtomicBool,
    AtomicI32,
    AtomicU32,
    AtomicI64,
    AtomicU64,
    AtomicUsize
);

/// An atomic in shared memory: `fetch_add` and friends, across processes, with no lock.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// let n = ipc::AtomicValue::new(AtomicU64::new(0))?;
/// n.fetch_add(2, Ordering::SeqCst);
/// assert_eq!(n.load(Ordering::SeqCst), 2);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct AtomicValue<A: ShmAtomic> {
    map: Arc<Mapping>,
    _a: PhantomData<A>,
}

impl<A: ShmAtomic> fmt::Debug for AtomicValue<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ipc::AtomicValue")
    }
}

impl<A: ShmAtomic> AtomicValue<A> {
    /// Place `init` in shared memory. Replaces `RawValue` for integers and booleans.
    ///
    /// # Errors
    /// If the shared memory cannot be mapped.
    pub fn new(init: A) -> io::Result<AtomicValue<A>> {
        let map = Arc::new(Mapping::new(size_of::<A>())?);
        // SAFETY: fresh, page-aligned mapping large enough for A; nobody else sees it yet.
        unsafe { map.at::<A>(0).write(init) };
        Ok(AtomicValue {
            map,
            _a: PhantomData,
        })
    }
}

impl<A: ShmAtomic> Deref for AtomicValue<A> {
    type Target = A;
    fn deref(&self) -> &A {
        // SAFETY: an initialised A lives at offset 0 for as long as the mapping; atomics are
        // designed for shared access.
        unsafe { &*self.map.at::<A>(0) }
    }
}

impl<A: ShmAtomic> Clone for AtomicValue<A> {
    fn clone(&self) -> Self {
        AtomicValue {
            map: self.map.clone(),
            _a: PhantomData,
        }
    }
}
