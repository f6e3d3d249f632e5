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

/// Python's `multiprocessing.RawValue`: a value in shared memory with no lock. Here it is an
/// [`AtomicValue`] (an integer or a bool): without a lock, only an atomic can be shared by
/// processes without a data race.
pub type RawValue<A> = AtomicValue<A>;

/// An array of atomics in shared memory, with no lock. Replaces `multiprocessing.RawArray`
/// (whose elements are plain C values, racy to share without a lock; here each element is an
/// atomic).
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
///
/// let a = ipc::RawArray::<AtomicU32>::zeroed(4)?;        // RawArray('I', 4)
/// a[2].store(7, SeqCst);
/// assert_eq!(a.iter().map(|x| x.load(SeqCst)).sum::<u32>(), 7);
/// let b = ipc::RawArray::from_fn(3, |i| AtomicU32::new(i as u32))?;
/// assert_eq!(b[2].load(SeqCst), 2);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct RawArray<A: ShmAtomic> {
    map: Arc<Mapping>,
    len: usize,
    _a: PhantomData<A>,
}

impl<A: ShmAtomic> fmt::Debug for RawArray<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ipc::RawArray")
            .field("len", &self.len)
            .finish()
    }
}

impl<A: ShmAtomic> RawArray<A> {
    /// `len` elements, each `f(index)`. Replaces `RawArray(typecode, sequence)`.
    ///
    /// # Errors
    /// If the shared memory cannot be mapped.
    pub fn from_fn(len: usize, mut f: impl FnMut(usize) -> A) -> io::Result<RawArray<A>> {
        let map = Arc::new(Mapping::new(len * size_of::<A>())?);
        let first: *mut A = map.at(0);
        for i in 0..len {
            // SAFETY: fresh, page-aligned mapping with room for `len` elements; unseen yet.
            unsafe { first.add(i).write(f(i)) };
        }
        Ok(RawArray {
            map,
            len,
            _a: PhantomData,
        })
    }
}

impl<A: ShmAtomic + Default> RawArray<A> {
    /// `len` zero elements. Replaces `RawArray(typecode, size)`.
    ///
    /// # Errors
    /// If the shared memory cannot be mapped.
    pub fn zeroed(len: usize) -> io::Result<RawArray<A>> {
        RawArray::from_fn(len, |_| A::default())
    }
}

impl<A: ShmAtomic> Deref for RawArray<A> {
    type Target = [A];
    fn deref(&self) -> &[A] {
        // SAFETY: `len` initialised atomics at offset 0 for as long as the mapping lives;
        // atomics are made for shared access.
        unsafe { std::slice::from_raw_parts(self.map.at::<A>(0), self.len) }
    }
}

impl<A: ShmAtomic> Clone for RawArray<A> {
    fn clone(&self) -> Self {
        RawArray {
            map: Arc::clone(&self.map),
            len: self.len,
            _a: PhantomData,
        }
    }
}
