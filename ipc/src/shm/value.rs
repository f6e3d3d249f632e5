//! [`Value`] and [`Array`]: plain data in shared memory behind a process-shared [`Lock`].

use std::cell::UnsafeCell;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use nix::libc;

use super::Mapping;
use super::lock::{Lock, LockError, LockGuard, init_mutex};
use super::named::{HEADER, Kind, SharedMemory, ShmError, type_tag};

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
    /// The mapping the value is in (the lock's own, unless made [`Value::with_lock`]).
    data: Arc<Mapping>,
    offset: usize,
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
    /// A shared value, initially `init`. Replaces `Value(typecode, init)`.
    ///
    /// # Errors
    /// If the shared memory or its lock cannot be made.
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
            lock: Lock::inside(Arc::clone(&map), 0),
            data: map,
            offset: std::mem::offset_of!(Slot<T>, value),
            _t: PhantomData,
        })
    }

    /// A value in a new named block of shared memory (with its lock), which a process started
    /// afresh can attach by the block's name ([`Value::attach_shared`]). The block follows
    /// [`SharedMemory`]'s rules: unlink it once every process has attached.
    ///
    /// # Errors
    /// If the block cannot be made or the mutex initialised.
    pub fn create_shared(init: T) -> Result<(Value<T>, SharedMemory), ShmError> {
        let kind = Kind::Typed(type_tag::<T>("Value"));
        let shm = SharedMemory::fresh(size_of::<Slot<T>>(), kind)?;
        let map = Arc::clone(shm.mapping());
        let slot: *mut Slot<T> = map.at(HEADER);
        // SAFETY: the block is fresh and not marked ready, so no process uses it yet; the slot
        // is at HEADER (aligned for it: 64 bytes into a page-aligned mapping), within it.
        unsafe {
            init_mutex(&raw mut (*slot).mutex)?;
            (*slot).value.get().write(init);
        }
        shm.set_ready();
        Ok((Value::in_block(map), shm))
    }

    /// The value in a block made by [`Value::create_shared`] (in any process), attached with
    /// [`SharedMemory::attach`].
    ///
    /// # Errors
    /// [`ShmError::WrongKind`] unless the block holds a `Value` of this very `T`.
    pub fn attach_shared(shm: &SharedMemory) -> Result<Value<T>, ShmError> {
        if shm.kind() != Kind::Typed(type_tag::<T>("Value")) || shm.size() < size_of::<Slot<T>>() {
            return Err(shm.wrong(&format!("a Value<{}>", std::any::type_name::<T>())));
        }
        Ok(Value::in_block(Arc::clone(shm.mapping())))
    }

    fn in_block(map: Arc<Mapping>) -> Value<T> {
        Value {
            lock: Lock::inside(Arc::clone(&map), HEADER),
            data: map,
            offset: HEADER + std::mem::offset_of!(Slot<T>, value),
            _t: PhantomData,
        }
    }

    /// A shared value guarded by an existing `lock` (which may guard other values too).
    /// Replaces `Value(typecode, init, lock=lock)`; [`Value::get_lock`] then returns it.
    ///
    /// # Errors
    /// If the shared memory cannot be mapped.
    pub fn with_lock(init: T, lock: Lock) -> io::Result<Value<T>> {
        let data = Arc::new(Mapping::new(size_of::<T>())?);
        // SAFETY: fresh, page-aligned (aligned for T), large enough; nobody else sees it yet.
        unsafe { data.at::<T>(0).write(init) };
        Ok(Value {
            lock,
            data,
            offset: 0,
            _t: PhantomData,
        })
    }

    /// The lock that guards it. Replaces `v.get_lock()`. To change the value while holding
    /// it (Python's `with v.get_lock(): v.value += 1`), pass the guard to [`Value::get_mut`];
    /// calling [`Value::lock`], `get` or `set` while this thread holds it would wait for
    /// itself.
    pub fn get_lock(&self) -> &Lock {
        &self.lock
    }

    fn ptr(&self) -> *mut T {
        self.data.at(self.offset)
    }

    /// The value, under a guard of its lock taken through [`Value::get_lock`] (which may
    /// guard several values).
    ///
    /// # Panics
    /// If `guard` holds another lock.
    pub fn get_mut<'g>(&'g self, guard: &'g mut LockGuard<'_>) -> &'g mut T {
        assert!(
            guard.holds(&self.lock),
            "Value::get_mut: the guard holds another lock"
        );
        // SAFETY: the guard proves this thread holds the value's lock, and borrowing it
        // mutably for 'g makes this the only access through it meanwhile.
        unsafe { &mut *self.ptr() }
    }

    /// Hold the lock and get at the value. Replaces `with v.get_lock(): v.value ...`.
    ///
    /// # Errors
    /// A failed lock ([`LockError`]); a dead previous holder is not an error here but
    /// [`ValueGuard::owner_died`].
    pub fn lock(&self) -> Result<ValueGuard<'_, T>, LockError> {
        let guard = self.lock.acquire()?;
        Ok(ValueGuard {
            guard,
            value: self.ptr(),
        })
    }

    /// Read it (under the lock). Replaces `v.value`.
    ///
    /// # Errors
    /// [`LockError::OwnerDied`] if the previous holder died holding the lock: the value may be
    /// half updated, and nothing is read (the next call reads it as it is; [`Value::lock`]
    /// shows it with [`ValueGuard::owner_died`] instead). Otherwise a failed lock.
    pub fn get(&self) -> Result<T, LockError> {
        let guard = self.lock()?;
        if guard.owner_died() {
            return Err(LockError::OwnerDied);
        }
        Ok(*guard)
    }

    /// Replace it (under the lock). Replaces `v.value = x`.
    ///
    /// # Errors
    /// [`LockError::OwnerDied`] if the previous holder died holding the lock: nothing is
    /// written, so the caller learns of the half-done update before replacing it (the next
    /// call writes). Otherwise a failed lock.
    pub fn set(&self, value: T) -> Result<(), LockError> {
        let mut guard = self.lock()?;
        if guard.owner_died() {
            return Err(LockError::OwnerDied);
        }
        *guard = value;
        Ok(())
    }
}

/// A fixed-length array of `T` in shared memory with one process-shared lock. Replaces
/// `multiprocessing.Array`.
pub struct Array<T: Plain> {
    lock: Lock,
    /// The mapping the elements are in (the lock's own, unless made [`Array::with_lock`]).
    map: Arc<Mapping>,
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
    guard: LockGuard<'a>,
    data: *mut T,
    len: usize,
}

impl<T: Plain> ArrayGuard<'_, T> {
    /// Whether the previous holder died holding the lock (the elements may be half updated).
    pub fn owner_died(&self) -> bool {
        self.guard.owner_died()
    }
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
    /// `len` copies of `init` in shared memory. Replaces `Array(typecode, size)` (whose
    /// elements are zero).
    ///
    /// # Errors
    /// If the shared memory or its lock cannot be made.
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
            lock: Lock::inside(Arc::clone(&map), 0),
            map,
            data,
            len,
            _t: PhantomData,
        })
    }

    /// `len` copies of `init` in a new named block of shared memory (with their lock), which a
    /// process started afresh can attach by the block's name ([`Array::attach_shared`]).
    ///
    /// # Errors
    /// If the block cannot be made or the mutex initialised.
    pub fn create_shared(len: usize, init: T) -> Result<(Array<T>, SharedMemory), ShmError> {
        let data = Array::<T>::data_offset();
        let kind = Kind::Typed(type_tag::<T>("Array"));
        let shm = SharedMemory::fresh(data + len * size_of::<T>(), kind)?;
        let map = Arc::clone(shm.mapping());
        // SAFETY: the block is fresh and not marked ready; the mutex is at HEADER and the
        // `len` elements at HEADER + data (aligned for T), all within it.
        unsafe {
            init_mutex(map.at(HEADER))?;
            let first: *mut T = map.at(HEADER + data);
            for i in 0..len {
                first.add(i).write(init);
            }
        }
        shm.set_ready();
        Ok((Array::in_block(map, len), shm))
    }

    /// The array in a block made by [`Array::create_shared`] (in any process), attached with
    /// [`SharedMemory::attach`].
    ///
    /// # Errors
    /// [`ShmError::WrongKind`] unless the block holds an `Array` of this very `T`.
    pub fn attach_shared(shm: &SharedMemory) -> Result<Array<T>, ShmError> {
        let data = Array::<T>::data_offset();
        if shm.kind() != Kind::Typed(type_tag::<T>("Array")) || shm.size() < data {
            return Err(shm.wrong(&format!("an Array<{}>", std::any::type_name::<T>())));
        }
        let len = (shm.size() - data) / size_of::<T>().max(1);
        Ok(Array::in_block(Arc::clone(shm.mapping()), len))
    }

    fn data_offset() -> usize {
        size_of::<libc::pthread_mutex_t>().next_multiple_of(align_of::<T>())
    }

    fn in_block(map: Arc<Mapping>, len: usize) -> Array<T> {
        Array {
            lock: Lock::inside(Arc::clone(&map), HEADER),
            map,
            data: HEADER + Array::<T>::data_offset(),
            len,
            _t: PhantomData,
        }
    }

    /// `len` copies of `init` guarded by an existing `lock`. Replaces
    /// `Array(typecode, size, lock=lock)`; [`Array::get_lock`] then returns it.
    ///
    /// # Errors
    /// If the shared memory cannot be mapped.
    pub fn with_lock(len: usize, init: T, lock: Lock) -> io::Result<Array<T>> {
        let map = Arc::new(Mapping::new(len * size_of::<T>())?);
        // SAFETY: fresh, page-aligned mapping with room for `len` elements; unseen yet.
        unsafe {
            let first: *mut T = map.at(0);
            for i in 0..len {
                first.add(i).write(init);
            }
        }
        Ok(Array {
            lock,
            map,
            data: 0,
            len,
            _t: PhantomData,
        })
    }

    /// The lock that guards it. Replaces `a.get_lock()`; see [`Value::get_lock`].
    pub fn get_lock(&self) -> &Lock {
        &self.lock
    }

    /// The elements, under a guard of its lock taken through [`Array::get_lock`].
    ///
    /// # Panics
    /// If `guard` holds another lock.
    pub fn get_mut<'g>(&'g self, guard: &'g mut LockGuard<'_>) -> &'g mut [T] {
        assert!(
            guard.holds(&self.lock),
            "Array::get_mut: the guard holds another lock"
        );
        // SAFETY: `len` elements at `data` in our mapping; the guard proves we hold the lock,
        // and borrowing it mutably makes this the only access through it meanwhile.
        unsafe { std::slice::from_raw_parts_mut(self.map.at(self.data), self.len) }
    }

    /// A copy of `items` in shared memory. Replaces `Array(typecode, sequence)`.
    ///
    /// # Errors
    /// As [`Array::new`].
    pub fn from_slice(items: &[T]) -> io::Result<Array<T>>
    where
        T: Default,
    {
        let a = Array::new(items.len(), T::default())?;
        a.lock()
            .map_err(|e| io::Error::other(e.to_string()))?
            .copy_from_slice(items);
        Ok(a)
    }

    /// How many elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Hold the lock and get at the elements. Replaces `with a.get_lock(): a[...]`.
    ///
    /// # Errors
    /// A failed lock ([`LockError`]); a dead previous holder is not an error here but
    /// [`ArrayGuard::owner_died`].
    pub fn lock(&self) -> Result<ArrayGuard<'_, T>, LockError> {
        let guard = self.lock.acquire()?;
        Ok(ArrayGuard {
            guard,
            data: self.map.at(self.data),
            len: self.len,
        })
    }
}

// Clones share the memory (hand one to each child before forking); they never copy `T`.
impl<T: Plain> Clone for Value<T> {
    fn clone(&self) -> Self {
        Value {
            lock: self.lock.clone(),
            data: Arc::clone(&self.data),
            offset: self.offset,
            _t: PhantomData,
        }
    }
}

impl<T: Plain> Clone for Array<T> {
    fn clone(&self) -> Self {
        Array {
            lock: self.lock.clone(),
            map: Arc::clone(&self.map),
            data: self.data,
            len: self.len,
            _t: PhantomData,
        }
    }
}
