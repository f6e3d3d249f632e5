//! Memory shared between a process and the children it forks: a process-shared, robust
//! [`Lock`], and [`Value`], [`Array`] and [`AtomicValue`] in the same kind of memory.
//!
//! Everything lives in an anonymous `MAP_SHARED` mapping made before `fork`: parent and children
//! see the same physical pages. Anonymous mappings have no name in `/dev/shm`, so nothing is
//! left behind when the processes end, even if they crash.

use std::cell::UnsafeCell;
use std::ffi::c_void;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::mem::{MaybeUninit, align_of, size_of};
use std::num::NonZeroUsize;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU32, AtomicU64, AtomicUsize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::libc;
use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous, munmap};

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

fn check(rc: libc::c_int, what: &str) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::new(
            io::Error::from_raw_os_error(rc).kind(),
            format!("{what}: {}", io::Error::from_raw_os_error(rc)),
        ))
    }
}

/// Make `*m` a process-shared, robust mutex.
///
/// SAFETY: `m` must point to writable memory for a `pthread_mutex_t` that no one is using.
unsafe fn init_mutex(m: *mut libc::pthread_mutex_t) -> io::Result<()> {
    let mut attr = MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
    // SAFETY: attr is initialised by pthread_mutexattr_init before any other use, and
    // destroyed after pthread_mutex_init has copied what it needs; `m` is valid (caller).
    unsafe {
        check(
            libc::pthread_mutexattr_init(attr.as_mut_ptr()),
            "pthread_mutexattr_init",
        )?;
        let attr = attr.as_mut_ptr();
        let result = check(
            libc::pthread_mutexattr_setpshared(attr, libc::PTHREAD_PROCESS_SHARED),
            "pthread_mutexattr_setpshared",
        )
        .and_then(|()| {
            check(
                libc::pthread_mutexattr_setrobust(attr, libc::PTHREAD_MUTEX_ROBUST),
                "pthread_mutexattr_setrobust",
            )
        })
        .and_then(|()| check(libc::pthread_mutex_init(m, attr), "pthread_mutex_init"));
        libc::pthread_mutexattr_destroy(attr);
        result
    }
}

/// Why a lock could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// A previous owner died holding it and the one who recovered it dropped the guard
    /// without marking it consistent; the lock is unusable (`ENOTRECOVERABLE`).
    NotRecoverable,
    /// Any other error from the system.
    Os(io::Error),
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::NotRecoverable => f.write_str("the lock is not recoverable"),
            LockError::Os(e) => write!(f, "lock error: {e}"),
        }
    }
}

impl std::error::Error for LockError {}

/// A lock shared by a process and its forked children. Replaces `multiprocessing.Lock`.
///
/// A pthread mutex with `PTHREAD_PROCESS_SHARED` (it may be used from several processes) and
/// `PTHREAD_MUTEX_ROBUST` (if its owner dies, the next `acquire` gets it, told so by
/// [`LockGuard::owner_died`]). Python's `multiprocessing.Lock` is a semaphore with no owner:
/// if a process dies holding it, it stays locked forever.
///
/// Clone it before forking; every clone is the same lock.
///
/// ```
/// let lock = ipc::Lock::new()?;
/// {
///     let guard = lock.acquire()?;
///     assert!(!guard.owner_died());
///     assert!(lock.try_acquire()?.is_none());   // held
/// }
/// assert!(lock.try_acquire()?.is_some());       // released when the guard dropped
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Lock {
    map: Arc<Mapping>,
    offset: usize,
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ipc::Lock")
    }
}

/// A held [`Lock`]; dropping it releases the lock (in this process, on this thread).
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
    owner_died: bool,
    // Unlocking must happen on the thread that locked.
    _not_send: PhantomData<*const ()>,
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("owner_died", &self.owner_died)
            .finish()
    }
}

impl LockGuard<'_> {
    /// `true` if the previous owner died holding the lock: whatever it protects may be half
    /// updated. The lock itself has been made consistent again and works normally.
    pub fn owner_died(&self) -> bool {
        self.owner_died
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: this guard exists only while this thread holds the mutex.
        unsafe { libc::pthread_mutex_unlock(self.lock.raw()) };
    }
}

fn deadline(timeout: Duration) -> libc::timespec {
    let at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        + timeout;
    libc::timespec {
        tv_sec: at.as_secs() as libc::time_t,
        tv_nsec: at.subsec_nanos() as libc::c_long,
    }
}

impl Lock {
    /// A new, free lock in its own shared page.
    pub fn new() -> io::Result<Lock> {
        let map = Arc::new(Mapping::new(size_of::<libc::pthread_mutex_t>())?);
        // SAFETY: the mapping is fresh, big enough and aligned (page-aligned).
        unsafe { init_mutex(map.at(0))? };
        Ok(Lock { map, offset: 0 })
    }

    /// A lock whose mutex sits at `offset` of `map` (already initialised).
    fn inside(map: Arc<Mapping>, offset: usize) -> Lock {
        Lock { map, offset }
    }

    fn raw(&self) -> *mut libc::pthread_mutex_t {
        self.map.at(self.offset)
    }

    fn guard(&self, rc: libc::c_int) -> Result<Option<LockGuard<'_>>, LockError> {
        let owner_died = match rc {
            0 => false,
            libc::EOWNERDEAD => {
                // SAFETY: we hold the mutex (EOWNERDEAD hands it to us); marking it consistent
                // is what lets the next owners use it normally.
                unsafe { libc::pthread_mutex_consistent(self.raw()) };
                true
            }
            libc::EBUSY | libc::ETIMEDOUT => return Ok(None),
            libc::ENOTRECOVERABLE => return Err(LockError::NotRecoverable),
            e => return Err(LockError::Os(io::Error::from_raw_os_error(e))),
        };
        Ok(Some(LockGuard {
            lock: self,
            owner_died,
            _not_send: PhantomData,
        }))
    }

    /// Take the lock, waiting as long as it takes. Replaces `lock.acquire()` / `with lock:`.
    pub fn acquire(&self) -> Result<LockGuard<'_>, LockError> {
        // SAFETY: raw() points at an initialised process-shared mutex in our mapping.
        let rc = unsafe { libc::pthread_mutex_lock(self.raw()) };
        self.guard(rc)?
            .ok_or_else(|| LockError::Os(io::Error::other("lock returned busy")))
    }

    /// Take the lock if it is free now. Replaces `lock.acquire(block=False)`.
    pub fn try_acquire(&self) -> Result<Option<LockGuard<'_>>, LockError> {
        // SAFETY: as in `acquire`.
        let rc = unsafe { libc::pthread_mutex_trylock(self.raw()) };
        self.guard(rc)
    }

    /// Take the lock, waiting at most `timeout`. Replaces `lock.acquire(timeout=...)`.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<Option<LockGuard<'_>>, LockError> {
        let at = deadline(timeout);
        // SAFETY: as in `acquire`; `at` is a valid timespec on our stack.
        let rc = unsafe { libc::pthread_mutex_timedlock(self.raw(), &at) };
        self.guard(rc)
    }
}

/// Plain data that may live in shared memory: no pointers, no references, no drop glue,
/// valid for any bit pattern that a value of the type can hold.
///
/// # Safety
/// Implement only for types whose values are meaningful in any process that maps the memory
/// (no heap pointers, handles or references) and that are `Copy`.
pub unsafe trait Plain: Copy + Send + 'static {}

macro_rules! plain {
    ($($t:ty),*) => { $(
        // SAFETY: a primitive number or bool: no pointers, Copy.
        unsafe impl Plain for $t {}
    )* };
}
plain!(
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64, bool, char
);
// SAFETY: an array of plain values is plain.
unsafe impl<T: Plain, const N: usize> Plain for [T; N] {}

#[repr(C)]
struct Slot<T> {
    mutex: libc::pthread_mutex_t,
    value: UnsafeCell<T>,
}

/// A `T` in shared memory with its own process-shared lock. Replaces `multiprocessing.Value`
/// (whose `value += 1` is *not* atomic even with its lock: you must hold `get_lock()`; here
/// the only way to change it is through the guard or `set`).
///
/// ```
/// let v = ipc::Value::new(41u64)?;
/// *v.lock()? += 1;
/// assert_eq!(v.get()?, 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Value<T: Plain> {
    lock: Lock,
    _t: PhantomData<T>,
}

impl<T: Plain> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ipc::Value")
    }
}

/// Access to a [`Value`] while holding its lock.
pub struct ValueGuard<'a, T: Plain> {
    guard: LockGuard<'a>,
    value: *mut T,
}

impl<T: Plain> ValueGuard<'_, T> {
    /// Whether the previous holder died holding the lock (the value may be half updated).
    pub fn owner_died(&self) -> bool {
        self.guard.owner_died()
    }
}

impl<T: Plain> Deref for ValueGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: we hold the value's lock, so no one else accesses it.
        unsafe { &*self.value }
    }
}

impl<T: Plain> DerefMut for ValueGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: we hold the value's lock, so no one else accesses it.
        unsafe { &mut *self.value }
    }
}

impl<T: Plain> Value<T> {
    /// A shared value, initially `init`.
    pub fn new(init: T) -> io::Result<Value<T>> {
        let map = Arc::new(Mapping::new(size_of::<Slot<T>>())?);
        let slot: *mut Slot<T> = map.at(0);
        // SAFETY: the mapping is fresh, page-aligned (enough for Slot<T>) and large enough;
        // nobody else can see it yet.
        unsafe {
            init_mutex(&raw mut (*slot).mutex)?;
            (*slot).value.get().write(init);
        }
        Ok(Value {
            lock: Lock::inside(map, 0),
            _t: PhantomData,
        })
    }

    /// Hold the lock and get at the value. Replaces `with v.get_lock(): v.value ...`.
    pub fn lock(&self) -> Result<ValueGuard<'_, T>, LockError> {
        let guard = self.lock.acquire()?;
        let slot: *mut Slot<T> = self.lock.map.at(0);
        // SAFETY: the slot is in our mapping; taking the field's address reads nothing.
        let value = unsafe { (*slot).value.get() };
        Ok(ValueGuard { guard, value })
    }

    /// Read it (under the lock). Replaces `v.value`.
    pub fn get(&self) -> Result<T, LockError> {
        Ok(*self.lock()?)
    }

    /// Replace it (under the lock). Replaces `v.value = x`.
    pub fn set(&self, value: T) -> Result<(), LockError> {
        *self.lock()? = value;
        Ok(())
    }
}

/// A fixed-length array of `T` in shared memory with one process-shared lock. Replaces
/// `multiprocessing.Array`.
pub struct Array<T: Plain> {
    lock: Lock,
    data: usize,
    len: usize,
    _t: PhantomData<T>,
}

impl<T: Plain> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ipc::Array")
            .field("len", &self.len)
            .finish()
    }
}

/// Access to an [`Array`]'s elements while holding its lock.
pub struct ArrayGuard<'a, T: Plain> {
    _guard: LockGuard<'a>,
    data: *mut T,
    len: usize,
}

impl<T: Plain> Deref for ArrayGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `len` elements live at `data` in our mapping, and we hold the lock.
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }
}

impl<T: Plain> DerefMut for ArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and the lock makes this the only access.
        unsafe { std::slice::from_raw_parts_mut(self.data, self.len) }
    }
}

impl<T: Plain> Array<T> {
    /// `len` copies of `init` in shared memory.
    pub fn new(len: usize, init: T) -> io::Result<Array<T>> {
        let mutex = size_of::<libc::pthread_mutex_t>();
        let data = mutex.next_multiple_of(align_of::<T>());
        let map = Arc::new(Mapping::new(data + len * size_of::<T>())?);
        // SAFETY: fresh mapping, page-aligned, large enough for the mutex and `len` elements
        // at `data` (aligned for T); nobody else can see it yet.
        unsafe {
            init_mutex(map.at(0))?;
            let first: *mut T = map.at(data);
            for i in 0..len {
                first.add(i).write(init);
            }
        }
        Ok(Array {
            lock: Lock::inside(map, 0),
            data,
            len,
            _t: PhantomData,
        })
    }

    /// How many elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Hold the lock and get at the elements.
    pub fn lock(&self) -> Result<ArrayGuard<'_, T>, LockError> {
        let guard = self.lock.acquire()?;
        Ok(ArrayGuard {
            _guard: guard,
            data: self.lock.map.at(self.data),
            len: self.len,
        })
    }
}

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
    /// Place `init` in shared memory.
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

// Clones share the memory (hand one to each child before forking); they never copy `T`.
impl<T: Plain> Clone for Value<T> {
    fn clone(&self) -> Self {
        Value {
            lock: self.lock.clone(),
            _t: PhantomData,
        }
    }
}

impl<T: Plain> Clone for Array<T> {
    fn clone(&self) -> Self {
        Array {
            lock: self.lock.clone(),
            data: self.data,
            len: self.len,
            _t: PhantomData,
        }
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
