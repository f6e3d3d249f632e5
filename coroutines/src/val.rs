//! [`Val`]: the value a greenlet switch carries (greenlet passes any Python object).
//!
//! It is `Box<dyn Any>` in one machine word instead of two: a switch moves a value across the
//! hub and back, and a two-word value costs there. When the compiler writes its two halves
//! separately just before a switch and reads them back as one 16-byte piece just after, the
//! CPU cannot forward the pending writes to the read and stalls; measured, that was about half
//! of a switch. One word is written and read in one piece.
//!
//! How it fits in one word: the allocation holds a pointer to the type's description (a
//! `static`, one per type) ahead of the value. A value of a zero-sized type such as `()` needs
//! no allocation at all: the word then points at the description itself, marked in its low
//! bits (descriptions are aligned, so those bits are otherwise always 0): `01` for a type with
//! nothing to do when dropped (then dropping a `Val` costs one test), `11` for one with a
//! `Drop` of its own.

use std::any::{Any, TypeId};
use std::fmt;
use std::marker::PhantomData;
use std::mem::{self, ManuallyDrop};
use std::ptr::{self, NonNull};

/// What a [`Val`] knows about the type of the value it holds.
struct Kind {
    type_id: fn() -> TypeId,
    type_name: fn() -> &'static str,
    /// Drop the value and free its allocation (if it has one).
    release: unsafe fn(NonNull<u8>),
}

/// Low bits of a `Val` that stands for a zero-sized value (no allocation): it points at the
/// type's `Kind` (aligned to 8), with `MARK` set, and `MARK_DROP` all set if the type has a
/// `Drop` to run.
const MARK: usize = 0b01;
const MARK_DROP: usize = 0b11;

/// The description of `T`, as a `&'static` (a constant, so it is built at compile time).
struct KindOf<T>(PhantomData<T>);

impl<T: Any> KindOf<T> {
    const KIND: &'static Kind = &Kind {
        type_id: TypeId::of::<T>,
        type_name: std::any::type_name::<T>,
        release: release::<T>,
    };
}

/// The allocation of a value that has a size: its description first, then the value.
#[repr(C)]
struct Boxed<T> {
    kind: &'static Kind,
    value: T,
}

/// Drop the `T` a [`Val`] made from `ptr`.
///
/// # Safety
/// `ptr` is the word of a `Val` made from a `T`, which is not used again.
unsafe fn release<T>(ptr: NonNull<u8>) {
    if mem::size_of::<T>() == 0 {
        // SAFETY: a zero-sized value has no bytes: any aligned, non-null pointer points at
        // one, and the caller gives up the one the `Val` stood for.
        unsafe { ptr::drop_in_place(NonNull::<T>::dangling().as_ptr()) }
    } else {
        // SAFETY: for a sized `T`, `ptr` came from `Box::<Boxed<T>>::into_raw` in `Val::new`.
        drop(unsafe { Box::from_raw(ptr.as_ptr().cast::<Boxed<T>>()) });
    }
}

/// A value of any type, passed by [`Greenlet::switch`](crate::Greenlet::switch): one word.
/// Make one with [`val`] (or [`Val::new`]), take the value back out with [`Val::downcast`].
///
/// Like `Box<dyn Any>`, it is not `Send`: a switch never leaves its thread, so the value may
/// hold an `Rc`.
///
/// ```
/// use coroutines::val;
///
/// let v = val(42_i32);
/// assert!(v.is::<i32>());
/// assert_eq!(v.downcast_ref::<i32>(), Some(&42));
/// let v = v.downcast::<String>().unwrap_err(); // not a String: the Val comes back
/// assert_eq!(v.downcast::<i32>().unwrap(), 42);
/// assert_eq!(std::mem::size_of::<coroutines::Val>(), std::mem::size_of::<usize>());
/// ```
pub struct Val {
    /// A `Boxed<T>`, or (low bit set) a zero-sized type's `Kind`.
    ptr: NonNull<u8>,
    // Not Send, not Sync, as `Box<dyn Any>` (`NonNull` already says so).
    _not_send: PhantomData<*const ()>,
}

impl Val {
    /// Wrap `value`. Allocates once, as `Box::new` does; a zero-sized value (`()`) not at all.
    pub fn new<T: Any>(value: T) -> Val {
        let ptr = if mem::size_of::<T>() == 0 {
            // Nothing to store; `release` or `downcast` stands for it later.
            mem::forget(value);
            let mark = if mem::needs_drop::<T>() {
                MARK_DROP
            } else {
                MARK
            };
            NonNull::from(KindOf::<T>::KIND)
                .cast::<u8>()
                .map_addr(|a| a | mark)
        } else {
            let boxed = Box::new(Boxed {
                kind: KindOf::<T>::KIND,
                value,
            });
            NonNull::from(Box::leak(boxed)).cast::<u8>()
        };
        Val {
            ptr,
            _not_send: PhantomData,
        }
    }

    fn kind(&self) -> &'static Kind {
        if self.ptr.addr().get() & MARK == MARK {
            // SAFETY: marked: the word is a `&'static Kind` with its low bits set.
            unsafe {
                &*self
                    .ptr
                    .as_ptr()
                    .map_addr(|a| a & !MARK_DROP)
                    .cast::<Kind>()
            }
        } else {
            // SAFETY: unmarked: the word points at a live `Boxed<T>`, whose first field (it is
            // `repr(C)`) is the `&'static Kind`.
            unsafe { *self.ptr.as_ptr().cast::<&'static Kind>() }
        }
    }

    /// Whether it holds a `T`.
    pub fn is<T: Any>(&self) -> bool {
        (self.kind().type_id)() == TypeId::of::<T>()
    }

    /// The name of the type it holds (for messages; as `std::any::type_name`).
    pub fn type_name(&self) -> &'static str {
        (self.kind().type_name)()
    }

    /// The value, if it is a `T`; otherwise the `Val` itself, unchanged.
    pub fn downcast<T: Any>(self) -> Result<T, Val> {
        if !self.is::<T>() {
            return Err(self);
        }
        let this = ManuallyDrop::new(self);
        if mem::size_of::<T>() == 0 {
            // SAFETY: it is a `T`, zero-sized: reading one from an aligned pointer is valid,
            // and `this` is not dropped, so the value is moved out once.
            Ok(unsafe { ptr::read(NonNull::<T>::dangling().as_ptr()) })
        } else {
            // SAFETY: it is a `T` with a size, so the word came from a `Box<Boxed<T>>`; `this`
            // is not dropped, so the box is taken back once.
            let boxed = unsafe { Box::from_raw(this.ptr.as_ptr().cast::<Boxed<T>>()) };
            Ok(boxed.value)
        }
    }

    /// A reference to the value, if it is a `T`.
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        if !self.is::<T>() {
            return None;
        }
        if mem::size_of::<T>() == 0 {
            // SAFETY: as in `downcast`: any aligned pointer is a valid zero-sized `T`.
            Some(unsafe { &*NonNull::<T>::dangling().as_ptr() })
        } else {
            // SAFETY: a `T` with a size lives in the `Boxed<T>` this `Val` owns, for as long as
            // the borrow of `self`.
            Some(unsafe { &(*self.ptr.as_ptr().cast::<Boxed<T>>()).value })
        }
    }

    /// A mutable reference to the value, if it is a `T`.
    pub fn downcast_mut<T: Any>(&mut self) -> Option<&mut T> {
        if !self.is::<T>() {
            return None;
        }
        if mem::size_of::<T>() == 0 {
            // SAFETY: as in `downcast_ref`.
            Some(unsafe { &mut *NonNull::<T>::dangling().as_ptr() })
        } else {
            // SAFETY: as in `downcast_ref`, and `&mut self` makes the borrow unique.
            Some(unsafe { &mut (*self.ptr.as_ptr().cast::<Boxed<T>>()).value })
        }
    }
}

/// Box a value for `switch` (greenlet's `g.switch(value)`).
#[inline]
pub fn val<T: Any>(t: T) -> Val {
    Val::new(t)
}

impl Drop for Val {
    #[inline]
    fn drop(&mut self) {
        // A zero-sized value with no `Drop` (a `()`): nothing to do.
        if self.ptr.addr().get() & MARK_DROP == MARK {
            return;
        }
        // SAFETY: `release` of the type the word was made from; `self` is not used again.
        unsafe { (self.kind().release)(self.ptr) }
    }
}

impl fmt::Debug for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Val({})", self.type_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    /// Counts its drops in a shared cell.
    struct Counted(Rc<Cell<u32>>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }

    /// Zero-sized, with a drop that counts (in a thread-local: it has no fields).
    struct Unit;
    thread_local!(static UNIT_DROPS: Cell<u32> = const { Cell::new(0) });
    impl Drop for Unit {
        fn drop(&mut self) {
            UNIT_DROPS.with(|d| d.set(d.get() + 1));
        }
    }

    #[test]
    fn one_word_and_a_niche() {
        assert_eq!(mem::size_of::<Val>(), mem::size_of::<usize>());
        assert_eq!(mem::size_of::<Option<Val>>(), mem::size_of::<usize>());
    }

    #[test]
    fn values_come_back_by_their_type_only() {
        let v = val(String::from("hello"));
        assert!(v.is::<String>() && !v.is::<&str>());
        assert_eq!(v.type_name(), "alloc::string::String");
        let v = v.downcast::<&str>().unwrap_err();
        assert_eq!(
            v.downcast_ref::<String>().map(String::as_str),
            Some("hello")
        );
        assert_eq!(v.downcast::<String>().unwrap(), "hello");
        let mut big = val([7u64; 64]);
        big.downcast_mut::<[u64; 64]>().unwrap()[3] = 9;
        assert_eq!(big.downcast::<[u64; 64]>().unwrap()[3], 9);
        assert!(matches!(val(()).downcast::<()>(), Ok(())));
        assert_eq!(format!("{:?}", val(1u8)), "Val(u8)");
    }

    #[test]
    fn a_value_is_dropped_once_whichever_way_it_leaves() {
        let drops = Rc::new(Cell::new(0));
        drop(val(Counted(drops.clone())));
        assert_eq!(drops.get(), 1, "dropped with the Val");
        let v = val(Counted(drops.clone())).downcast::<Counted>();
        assert_eq!(drops.get(), 1, "moved out, not dropped");
        drop(v);
        assert_eq!(drops.get(), 2);
        let v = val(Counted(drops.clone())).downcast::<i32>().unwrap_err();
        assert_eq!(drops.get(), 2, "a wrong guess gives it back whole");
        drop(v);
        assert_eq!(drops.get(), 3);
        assert_eq!(Rc::strong_count(&drops), 1);
    }

    #[test]
    fn zero_sized_values_are_not_allocated_but_still_dropped() {
        let before = UNIT_DROPS.with(Cell::get);
        let v = val(Unit);
        assert_eq!(
            v.ptr.addr().get() & MARK_DROP,
            MARK_DROP,
            "marked, no allocation"
        );
        assert_eq!(
            val(()).ptr.addr().get() & MARK_DROP,
            MARK,
            "nothing to drop"
        );
        assert!(v.downcast_ref::<Unit>().is_some());
        drop(v);
        assert_eq!(UNIT_DROPS.with(Cell::get), before + 1);
        let u = val(Unit).downcast::<Unit>().ok().unwrap();
        assert_eq!(UNIT_DROPS.with(Cell::get), before + 1, "moved out");
        drop(u);
        assert_eq!(UNIT_DROPS.with(Cell::get), before + 2);
    }
}
