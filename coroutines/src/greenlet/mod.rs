//! [`Greenlet`]: greenlet's `switch()` on corosensei.
//!
//! # Why a hub
//!
//! greenlet is *symmetric*: any greenlet may switch straight to any other. corosensei is
//! *asymmetric* by design: a coroutine can only suspend back to whoever resumed it. So here a
//! `switch` from inside a greenlet suspends to a small loop on the root stack (the "hub" of this
//! module; the thread's own stack), saying which greenlet to run next, and the loop resumes
//! that one. A greenlet-to-greenlet switch therefore costs two context switches (suspend, then
//! resume) instead of one. A switch between the root and a greenlet (the common case, and the
//! bench's) is one: the root *is* the hub.
//!
//! # Behaviour, as greenlet's
//!
//! - A greenlet's return value goes to its *parent* (by default, whoever created it), as if the
//!   parent's last `switch` had returned it. Switching to a dead greenlet goes to its parent.
//! - [`Greenlet::throw`] makes the target's pending `switch` return `Err`, as greenlet raises
//!   the exception at the target's suspension point.
//! - A panic inside a greenlet reaches its parent as an error of kind
//!   [`GreenletErrorKind::Panicked`].
//! - Dropping the last handle of a suspended greenlet unwinds its stack, so its destructors run
//!   (greenlet raises `GreenletExit` into it for the same purpose).
//! - A `Greenlet` cannot leave its thread: it is not `Send`. greenlet finds out at run time
//!   ("cannot switch to a different thread"); here it does not compile:
//!
//! ```compile_fail
//! let g = coroutines::Greenlet::new(|v| Ok(v)).unwrap();
//! std::thread::spawn(move || {
//!     let _ = g.switch(coroutines::val(()));
//! });
//! ```
//!
//! Its twin compiles: a greenlet made *on* the other thread is fine (stable rustdoc does not
//! check a `compile_fail` test's error code, so this shows what the one above lacks).
//!
//! ```
//! std::thread::spawn(|| {
//!     let g = coroutines::Greenlet::new(|v| Ok(v)).unwrap();
//!     let _ = g.switch(coroutines::val(()));
//! })
//! .join()
//! .unwrap();
//! ```
//!
//! # What a switch costs, and why
//!
//! corosensei's own resume + suspend takes about 1 ns per switch here. `Greenlet::switch` adds
//! what greenlet's semantics need (who is current, parents, dead greenlets, a value or an
//! error crossing over, panics caught) and comes to about 2.3 ns (`cargo xtask bench
//! coroutines`; Python's greenlet: about 200 ns). Each of these was measured on the way from a
//! first version at 67 ns:
//! - a greenlet's state lives in its handle (`Rc` of `Cell`s): no table to look it up in;
//! - a switch is inlined into the greenlet's own code, so the CPU predicts corosensei's return
//!   into the hub (a switch that suspends inside a function of its own returns through that
//!   frame after each resume, and costs 8 ns more);
//! - nothing crosses corosensei's resume and suspend themselves (corosensei carries a value
//!   larger than a register slowly): the value waits in a `Cell` of the greenlet;
//! - that value is one word ([`Val`]) and so is the error ([`GreenletError`]): a switch's
//!   `Result` is two words. With `Box<dyn Any>` (two words) and an unboxed error, the
//!   compiler wrote a value's halves separately just before a switch and read them back as one
//!   16-byte piece just after; the CPU cannot forward pending writes to such a read, and the
//!   stall was about half of a 5 ns switch;
//! - a panic is caught once, around the greenlet's function, not around every resume;
//! - a switch tests and writes as little as it can: whether a greenlet runs follows from
//!   `CURRENT` (no state written per switch), one null test covers "cannot suspend" (an
//!   unwinding greenlet's yielder is nulled), the mail is written without dropping its
//!   (always empty) old content, and the hub borrows the target's `Rc` instead of cloning it.

use std::cell::{Cell, RefCell, UnsafeCell};
use std::fmt;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, Yielder};

use crate::val::Val;

mod error;
mod switch;

use error::panic_text;
pub use error::{GreenletError, GreenletErrorKind};
use switch::switch_to;

/// The default stack of a greenlet: 256 KiB of address space (memory is only used as the
/// stack grows into it), plus a guard page. Deep recursion needs [`Greenlet::with_stack_size`];
/// running past the end is a segmentation fault on the guard page, not a panic.
pub const DEFAULT_STACK: usize = 256 * 1024;

/// What crosses a switch: a value, or an error raised at the receiver's suspension point.
type Msg = Result<Val, GreenletError>;

/// The coroutine passes nothing through corosensei's resume and suspend: a value larger than a
/// register costs corosensei several nanoseconds to carry across (measured: 1.1 ns per switch
/// for `()`, 9 ns for 32 bytes). The values go through the greenlet's `mail` and `next`.
type Co = Coroutine<(), (), Result<Val, GreenletError>, DefaultStack>;

/// One greenlet's state. Everything a switch touches is here, in `Cell`s: a switch does no
/// lookup in a table and takes no lock (a greenlet never leaves its thread).
struct Inner {
    /// The coroutine; `None` once it is finished or unwound. Only the hub touches it while
    /// the greenlet runs (it resumes it in place: moving a coroutine in and out of a `Cell`
    /// on every switch cost more than the switch); anyone else only when it is not running.
    co: UnsafeCell<Option<Co>>,
    /// `None`: the thread's root greenlet.
    parent: RefCell<Option<Rc<Inner>>>,
    /// Finished, or being unwound. Whether it runs is not kept here (that would be two more
    /// writes per switch): it runs exactly when it is `CURRENT` and not dead ([`running`]).
    dead: Cell<bool>,
    /// Set by the coroutine when it starts; valid while it is alive.
    yielder: Cell<*const Yielder<(), ()>>,
    /// The value crossing a switch, into it (set by the hub before resuming it) or out of it
    /// (set before it suspends). `None`: an error crosses instead, in `thrown`. One word
    /// (see [`Val`]): data written just before a context switch and read just after is slow
    /// to read when the compiler splits it differently on the two sides.
    mail: Cell<Option<Val>>,
    /// The error crossing a switch, when `mail` is `None`.
    thrown: RefCell<Option<GreenletError>>,
    /// Where it asked the hub to go when it last suspended (`None`: the root).
    next: Cell<Option<Rc<Inner>>>,
    /// Owning handles (made by `new`, and their clones) still alive.
    owners: Cell<usize>,
}

thread_local! {
    /// The greenlet running on this thread; null for the root.
    static CURRENT: Cell<*const Inner> = const { Cell::new(std::ptr::null()) };
}

/// A greenlet: a function with its own stack that runs when switched to and gives control
/// away by switching. Replaces `greenlet.greenlet(run, parent)`.
///
/// ```
/// use coroutines::{Greenlet, val};
///
/// let g = Greenlet::new(|v| {
///     let n = v.downcast::<i32>().unwrap();
///     Ok(val(n * 2))                      // returned to the parent: main here
/// })?;
/// let out = g.switch(val(21))?;          // start it with 21
/// assert_eq!(out.downcast::<i32>().unwrap(), 42);
/// assert!(g.dead());
/// # Ok::<(), coroutines::GreenletError>(())
/// ```
///
/// # Dropping
///
/// Handles made by [`Greenlet::new`] (and their clones) own the greenlet; handles from
/// [`getcurrent`] and [`Greenlet::parent`] only name it. When the last owning handle goes:
/// - an unstarted greenlet's function is dropped without running;
/// - a suspended one's stack is unwound at once, so its destructors run (a switch from one of
///   them returns an error);
/// - a running one is unwound when it next switches away;
/// - a finished one has nothing left to do.
pub struct Greenlet {
    /// `None`: the thread's root greenlet.
    inner: Option<Rc<Inner>>,
    /// Made by `new` (or cloned from such a handle): the last owner dropped unwinds the
    /// greenlet. Handles from `getcurrent` and `parent` only name it.
    owner: bool,
    // Not Send: a greenlet's stack belongs to its thread (`Rc` already says so; this keeps
    // it said if the fields change).
    _not_send: PhantomData<*const ()>,
}

impl Clone for Greenlet {
    fn clone(&self) -> Greenlet {
        if self.owner
            && let Some(i) = &self.inner
        {
            i.owners.set(i.owners.get() + 1);
        }
        Greenlet {
            inner: self.inner.clone(),
            owner: self.owner,
            _not_send: PhantomData,
        }
    }
}

impl Drop for Greenlet {
    fn drop(&mut self) {
        let Some(i) = self.inner.as_ref().filter(|_| self.owner) else {
            return;
        };
        let left = i.owners.get() - 1;
        i.owners.set(left);
        if left == 0 && !running(i) {
            // SAFETY: not running, so the hub holds no reference into `co` (see `Inner::co`).
            if let Some(co) = unsafe { (*i.co.get()).take() } {
                unwind(i, co);
            }
        }
        // Running: the hub unwinds it when it next suspends (`owners` is 0 by then).
    }
}

/// Whether `i` is running: the hub is inside its resume (it is `CURRENT`), and it is not being
/// unwound.
fn running(i: &Rc<Inner>) -> bool {
    CURRENT.with(Cell::get) == Rc::as_ptr(i) && !i.dead.get()
}

/// Drop a suspended greenlet's coroutine: corosensei unwinds its stack, so its destructors
/// run (greenlet raises `GreenletExit` for the same purpose). Meanwhile it is the current
/// greenlet (as in greenlet), and dead: a switch from a destructor fails instead of
/// suspending a stack that is being unwound.
fn unwind(i: &Rc<Inner>, co: Co) {
    i.dead.set(true);
    i.yielder.set(std::ptr::null());
    let before = CURRENT.with(|c| c.replace(Rc::as_ptr(i)));
    drop(co);
    CURRENT.with(|c| c.set(before));
}

impl fmt::Debug for Greenlet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Greenlet")
            .field("root", &self.inner.is_none())
            .field("dead", &self.dead())
            .finish()
    }
}

impl PartialEq for Greenlet {
    fn eq(&self, other: &Self) -> bool {
        match (&self.inner, &other.inner) {
            (None, None) => true,
            (Some(a), Some(b)) => Rc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// A handle naming `inner` without owning it.
fn view(inner: Option<Rc<Inner>>) -> Greenlet {
    Greenlet {
        inner,
        owner: false,
        _not_send: PhantomData,
    }
}

/// The running greenlet's state (`None` on the root).
fn current() -> Option<Rc<Inner>> {
    let p = CURRENT.with(Cell::get);
    if p.is_null() {
        return None;
    }
    // SAFETY: `CURRENT` is only non-null while the hub resumes that greenlet (or `unwind`
    // drops it), and meanwhile an `Rc` to it stays alive: the hub's own, or the one of the
    // handle whose `switch` runs the hub (borrowed for the whole switch), or `unwind`'s; `p`
    // came from `Rc::as_ptr`.
    unsafe {
        Rc::increment_strong_count(p);
        Some(Rc::from_raw(p))
    }
}

/// The greenlet running now: the thread's main (root) greenlet outside any other.
/// Replaces `greenlet.getcurrent()`.
pub fn getcurrent() -> Greenlet {
    view(current())
}

impl Greenlet {
    /// A new greenlet that will run `f` when first switched to, receiving that switch's value.
    /// Its parent is the greenlet creating it.
    ///
    /// # Errors
    /// [`GreenletErrorKind::NoStack`] if its stack cannot be mapped (past `vm.max_map_count`,
    /// or out of address space).
    pub fn new(
        f: impl FnOnce(Val) -> Result<Val, GreenletError> + 'static,
    ) -> Result<Greenlet, GreenletError> {
        Greenlet::with_stack_size(DEFAULT_STACK, f)
    }

    /// [`Greenlet::new`] with a stack of `size` bytes.
    ///
    /// # Errors
    /// As [`Greenlet::new`].
    pub fn with_stack_size(
        size: usize,
        f: impl FnOnce(Val) -> Result<Val, GreenletError> + 'static,
    ) -> Result<Greenlet, GreenletError> {
        let stack = DefaultStack::new(size)
            .map_err(|e| GreenletError::from(GreenletErrorKind::NoStack(e.to_string())))?;
        let co = Coroutine::with_stack(stack, move |y: &Yielder<(), ()>, ()| {
            let first = current().map(|me| {
                me.yielder.set(y);
                me.receive()
            });
            match first {
                // The panic is caught here, once per greenlet, not around every resume in the
                // hub (a `catch_unwind` there costs a call on every switch).
                Some(Ok(v)) => catch_unwind(AssertUnwindSafe(|| f(v))).unwrap_or_else(|payload| {
                    // Being unwound because its last owner dropped it (`unwind`): corosensei's
                    // own unwinding payload must go on to corosensei, which ends it.
                    if current().is_some_and(|me| me.dead.get()) {
                        std::panic::resume_unwind(payload);
                    }
                    Err(GreenletErrorKind::Panicked(panic_text(&*payload)).into())
                }),
                Some(Err(e)) => Err(e),
                None => Err(GreenletError::thrown("started without a value")),
            }
        });
        let inner = Rc::new(Inner {
            co: UnsafeCell::new(Some(co)),
            parent: RefCell::new(current()),
            dead: Cell::new(false),
            yielder: Cell::new(std::ptr::null()),
            mail: Cell::new(None),
            thrown: RefCell::new(None),
            next: Cell::new(None),
            owners: Cell::new(1),
        });
        Ok(Greenlet {
            inner: Some(inner),
            owner: true,
            _not_send: PhantomData,
        })
    }

    /// Whether it has finished (returned, raised or panicked), or all its owning handles are
    /// gone. Replaces `g.dead`.
    pub fn dead(&self) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|i| i.dead.get() || i.owners.get() == 0)
    }

    /// Whether it has started and not finished.
    pub fn started(&self) -> bool {
        // The coroutine records its yielder when it first runs.
        self.inner
            .as_ref()
            .is_some_and(|i| i.owners.get() > 0 && !i.dead.get() && !i.yielder.get().is_null())
    }

    /// Its parent (`None` for the root). Replaces `g.parent`.
    pub fn parent(&self) -> Option<Greenlet> {
        let i = self.inner.as_ref()?;
        Some(view(i.parent.borrow().clone()))
    }

    /// Make `parent` this greenlet's parent. Replaces `g.parent = p`.
    pub fn set_parent(&self, parent: &Greenlet) {
        if let Some(i) = &self.inner {
            *i.parent.borrow_mut() = parent.inner.clone();
        }
    }

    /// Run this greenlet, giving it `value`; returns what is later switched back to the
    /// caller (or a child's return value). Replaces `g.switch(value)`.
    ///
    /// # Errors
    /// - [`GreenletErrorKind::Thrown`]: raised here by [`Greenlet::throw`], or a greenlet that
    ///   finished with that error returned to this one (its parent);
    /// - [`GreenletErrorKind::Panicked`]: a child panicked (its parent gets the error);
    /// - a switch from a destructor of a greenlet being unwound fails (`Thrown`).
    ///
    /// # Panics
    /// Never for a panic inside the target: that is caught in the greenlet and becomes
    /// `Panicked`.
    ///
    /// Always inlined, with the suspension inside it: see `switch_to`.
    #[inline(always)]
    pub fn switch(&self, value: Val) -> Result<Val, GreenletError> {
        switch_to(self.inner.as_ref(), Ok(value))
    }

    /// Raise `error` in this greenlet where it is suspended (its pending `switch` returns it);
    /// an unstarted greenlet dies at once. Replaces `g.throw(...)`.
    ///
    /// # Errors
    /// As [`Greenlet::switch`]; an unstarted or dead greenlet passes `error` on to its parent.
    pub fn throw(&self, error: &str) -> Result<Val, GreenletError> {
        switch_to(self.inner.as_ref(), Err(GreenletError::thrown(error)))
    }
}
