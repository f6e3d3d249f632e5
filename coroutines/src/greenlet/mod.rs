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
//! # Ownership: who owns a greenlet, and when it may be freed
//!
//! A greenlet is an `Inner` (its state) in an `Rc`, holding its coroutine (its stack and the
//! function's frames). These rules say when each may go; the code follows them, and
//! `tests/model.rs` checks random sequences of operations against them.
//!
//! 1. **Owners.** The handles made by [`Greenlet::new`] and their clones own the greenlet; they
//!    are counted in `owners`. Handles from [`getcurrent`] and [`Greenlet::parent`], a child's
//!    parent link, and the hub's own references keep the `Inner` allocated but do not own the
//!    greenlet: they do not keep it from being killed.
//! 2. **The chain.** The greenlets whose code is executing now form a chain: the one the hub
//!    resumed, and on top of it each greenlet being unwound from a destructor, innermost last.
//!    `CURRENT` is the innermost; each unwound one remembers the one below it (`under`). A
//!    greenlet on the chain owns itself: when its last owner goes, nothing is freed; it is
//!    killed once it leaves the chain (the hub checks `owners` whenever a greenlet suspends).
//! 3. **Killing.** A greenlet whose owners are gone and which is off the chain is killed at once:
//!    - unstarted: its function is dropped without running;
//!    - suspended: `GreenletExit` ([`GreenletErrorKind::Exit`]) is raised at its suspension
//!      point, with the greenlet that dropped it as its parent for the duration (so what it
//!      returns, and what it switches to its parent, comes back to the killer); if it is still
//!      alive afterwards (it switched elsewhere instead of ending), or if the killer cannot switch
//!      (rule 6), its stack is unwound in place: corosensei drops the coroutine, the
//!      destructors run, and a switch from one of them fails;
//!    - finished: nothing is left; the coroutine and its stack went when it ended.
//! 4. **The coroutine** is touched only by the hub, through an `UnsafeCell`, and only while its
//!    greenlet is off the chain, or by the hub that is resuming it. The hub runs only when no
//!    greenlet executes (`CURRENT` is null), so it never resumes one that is on the chain, and a
//!    guard resets `CURRENT` on every exit from a resume, normal or unwinding.
//! 5. **The `Inner`** is freed when its last `Rc` goes. Every `Rc` holder that can run code
//!    (the hub resuming it, a kill, an unwind) holds one for as long as that code runs, so a
//!    greenlet's own frames never outlive its `Inner`.
//! 6. **Suspending.** A greenlet suspends only from the top of the chain, and only if it is not
//!    being unwound, no panic is unwinding on the thread, and no hub task runs on top of it.
//!    Otherwise its `switch` returns [`GreenletErrorKind::CannotSwitch`]. The panic count is
//!    the thread's, not the stack's: a greenlet suspended in the middle of a panic would leave
//!    the thread "panicking" for all other code, and unwinding it later would start a second
//!    unwind from a destructor, which aborts the process.
//! 7. **Parents form no cycle**: [`Greenlet::set_parent`] refuses one, and the killer is made
//!    the parent only when that makes none. So every walk up the parents ends.
//! 8. **No panic leaves a greenlet's function.** It is caught once, at the top, and goes to
//!    the parent as [`GreenletErrorKind::Panicked`]. While the greenlet's stack is being
//!    unwound (rule 3), a panic caught there is reported on stderr and the coroutine ends
//!    normally, which corosensei accepts.
//!
//! # Behaviour, as greenlet's
//!
//! - A greenlet's return value goes to its *parent* (by default, whoever created it), as if the
//!   parent's last `switch` had returned it. Switching to a dead greenlet goes to its parent.
//! - [`Greenlet::throw`] makes the target's pending `switch` return `Err`, as greenlet raises
//!   the exception at the target's suspension point; [`Greenlet::throw_exit`] raises
//!   `GreenletExit`, which a greenlet ending with it hands its parent as the value
//!   [`GreenletExit`].
//! - A panic inside a greenlet reaches its parent as an error of kind
//!   [`GreenletErrorKind::Panicked`].
//! - Dropping the last owning handle of a suspended greenlet kills it (rule 3): its pending
//!   `switch` returns `GreenletExit`, and `?` takes it out of the function, running its
//!   destructors, as greenlet raises `GreenletExit` into a collected greenlet.
//! - A stack overflow in a greenlet prints "greenlet has overflowed its stack" and aborts,
//!   as std does for a thread.
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
//! error crossing over, panics caught) and came to about 1.6 ns before the ownership rules
//! above, 1.8 to 1.9 ns with them, and 1.5 ns since the last two items below (1.75 ns just
//! before them, same machine and hour; `cargo bench -p coroutines -- switch`, on a loaded
//! machine; Python's greenlet: 140 to 200 ns). The rules cost a switch one load and test (is a panic
//! unwinding?) and nothing else on the common path: the chain is walked only when a last owner
//! goes, and the guard that resets `CURRENT` writes what the resume wrote anyway. Each of these
//! was measured on the way from a first version at 67 ns:
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
//!   (always empty) old content, and the hub borrows the target's `Rc` instead of cloning it;
//! - a switch to itself is tested only when there is a target (a switch to the root, the
//!   common case, pays nothing for it), and the switch borrows its handle's `Option<Rc>` as it
//!   is instead of making an `Option<&Rc>` of it (a conditional move per switch).
//!
//! Timings differ by processor (issue 22: 2.13x raw corosensei on an AMD EPYC, 2.77x on an
//! Intel Xeon, in the same bench); instructions do not. callgrind counts 47.0 instructions per
//! switch, against 13.5 for corosensei's own resume + suspend (`examples/switch_count.rs`
//! gives the command); the last two items above took it from 57.5. What is left beyond
//! corosensei's: on the greenlet's side, finding itself (`CURRENT`), its yielder, the panic
//! test, the target, the mail written and read back, the value dropped; on the root's side,
//! the same look at `CURRENT`, the target's coroutine, `CURRENT` set and reset around the
//! resume, the mail and `next` taken, and the owners tested (rule 3).

use std::cell::{Cell, RefCell, UnsafeCell};
use std::fmt;
use std::marker::PhantomData;
use std::rc::Rc;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, Yielder};

use crate::overflow;
use crate::val::Val;

mod error;
mod kill;
mod switch;

pub use error::{GreenletError, GreenletErrorKind, GreenletExit};
pub(crate) use error::{drop_payload, is_message, panic_text, report};
pub(crate) use kill::{Pinned, current_guard, current_key};
use kill::{in_use, kill};
use switch::{body, switch_to};

/// The default stack of a greenlet: 256 KiB of address space (memory is only used as the
/// stack grows into it), plus a guard page. Deep recursion needs [`Greenlet::with_stack_size`];
/// running past the end prints "greenlet has overflowed its stack" and aborts the process.
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
    /// The coroutine; `None` once it has finished or been killed. Touched as the module doc's
    /// rule 4 says: by the hub resuming it (in place: moving a coroutine in and out of a `Cell`
    /// on every switch cost more than the switch), or by anyone while it is off the chain.
    co: UnsafeCell<Option<Co>>,
    /// `None`: the thread's root greenlet.
    parent: RefCell<Option<Rc<Inner>>>,
    /// Finished, or killed (being unwound, or its function dropped unstarted).
    dead: Cell<bool>,
    /// It has begun to run its function (set once, by the coroutine).
    started: Cell<bool>,
    /// Set by the coroutine when it starts; valid while it is alive. Null while it cannot
    /// suspend: being unwound, or a hub task running on top of it (rule 6).
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
    /// Owning handles (made by `new`, and their clones) still alive (rule 1).
    owners: Cell<usize>,
    /// A kill has begun (rule 3): a suspension during it does not start another.
    killing: Cell<bool>,
    /// While it is being unwound: the greenlet below it on the chain (null: none), rule 2.
    under: Cell<*const Inner>,
    /// The first address of its stack's guard page, for the overflow message.
    guard: usize,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Rule 5: an `Inner` whose coroutine is still there has an owner, or is on the chain,
        // and both hold an `Rc`. Were it ever not so, leaking the stack is safe; unwinding it
        // from whatever code dropped the last `Rc` might not be. (No panic here: this can run
        // during an unwind.)
        if let Some(co) = self.co.get_mut().take() {
            report("bug: a greenlet's state was freed before its coroutine; its stack leaks");
            std::mem::forget(co);
        }
    }
}

thread_local! {
    /// The innermost greenlet on the chain (rule 2); null when none runs (the root).
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
/// [`getcurrent`] and [`Greenlet::parent`] only name it. When the last owning handle goes
/// (the module doc's rule 3):
/// - an unstarted greenlet's function is dropped without running;
/// - a suspended one gets `GreenletExit` at its suspension point, with the dropper as its
///   parent for the duration; if it does not end (it switches elsewhere), its stack is unwound
///   (its destructors run; a switch from one of them fails);
/// - a running one (or one being unwound) lives on and is killed when it next switches away;
/// - a finished one has nothing left to do.
///
/// Dropping one therefore runs code: the greenlet's, until it ends. An error it ends with
/// (other than `GreenletExit`) is reported on stderr, as greenlet reports one to its
/// "unraisable" hook, and the drop completes.
pub struct Greenlet {
    /// `None`: the thread's root greenlet.
    inner: Option<Rc<Inner>>,
    /// Made by `new` (or cloned from such a handle): the last owner dropped kills the
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
        // On the chain it owns itself (rule 2): the hub kills it when it suspends.
        if left == 0 && !in_use(i) {
            kill(i);
        }
    }
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
    // SAFETY: `CURRENT` is the innermost greenlet on the chain, and whoever put it there (the
    // hub resuming it, an unwind) holds an `Rc` to it for as long (rule 5); `p` came from
    // `Rc::as_ptr`.
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

/// Whether `parent` has `child` among its ancestors, or is `child`: making it `child`'s
/// parent would close a cycle (rule 7).
fn would_cycle(child: &Rc<Inner>, parent: Option<&Rc<Inner>>) -> bool {
    let mut p = parent.cloned();
    while let Some(x) = p {
        if Rc::ptr_eq(&x, child) {
            return true;
        }
        p = x.parent.borrow().clone();
    }
    false
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
        overflow::install();
        let guard = overflow::guard_page(&stack);
        let co = Coroutine::with_stack(stack, move |y: &Yielder<(), ()>, ()| body(y, f));
        let inner = Rc::new(Inner {
            co: UnsafeCell::new(Some(co)),
            parent: RefCell::new(current()),
            dead: Cell::new(false),
            started: Cell::new(false),
            yielder: Cell::new(std::ptr::null()),
            mail: Cell::new(None),
            thrown: RefCell::new(None),
            next: Cell::new(None),
            owners: Cell::new(1),
            killing: Cell::new(false),
            under: Cell::new(std::ptr::null()),
            guard,
        });
        Ok(Greenlet {
            inner: Some(inner),
            owner: true,
            _not_send: PhantomData,
        })
    }

    /// Whether it has finished (returned, raised or panicked) or been killed. A greenlet whose
    /// last owner went while it ran is not dead until it is killed, when it next switches
    /// away. Replaces `g.dead`.
    pub fn dead(&self) -> bool {
        self.inner.as_ref().is_some_and(|i| i.dead.get())
    }

    /// Whether it has started and not finished.
    pub fn started(&self) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|i| i.started.get() && !i.dead.get())
    }

    /// A handle that names this greenlet without owning it, as [`getcurrent`] and
    /// [`Greenlet::parent`] give: it can switch to it, but does not keep it from being killed
    /// when its owners go (the module doc's rule 1). Python's nearest is a `weakref` that can
    /// still switch; a greenlet that keeps a view of itself is not kept alive by it.
    pub fn view(&self) -> Greenlet {
        view(self.inner.clone())
    }

    /// Its parent (`None` for the root). Replaces `g.parent`.
    pub fn parent(&self) -> Option<Greenlet> {
        let i = self.inner.as_ref()?;
        Some(view(i.parent.borrow().clone()))
    }

    /// Make `parent` this greenlet's parent. Replaces `g.parent = p`.
    ///
    /// # Errors
    /// Nothing changes, and:
    /// - [`GreenletErrorKind::CyclicParent`] if `parent` is this greenlet or has it among its
    ///   ancestors (greenlet: `ValueError: cyclic parent chain`);
    /// - [`GreenletErrorKind::ParentOfRoot`] for the root greenlet, which has none.
    pub fn set_parent(&self, parent: &Greenlet) -> Result<(), GreenletError> {
        let Some(i) = &self.inner else {
            return Err(GreenletErrorKind::ParentOfRoot.into());
        };
        if would_cycle(i, parent.inner.as_ref()) {
            return Err(GreenletErrorKind::CyclicParent.into());
        }
        *i.parent.borrow_mut() = parent.inner.clone();
        Ok(())
    }

    /// Run this greenlet, giving it `value`; returns what is later switched back to the
    /// caller (or a child's return value). Replaces `g.switch(value)`.
    ///
    /// # Errors
    /// - [`GreenletErrorKind::Thrown`] or [`GreenletErrorKind::Exit`]: raised here by
    ///   [`Greenlet::throw`] or [`Greenlet::throw_exit`] (`Exit` also when this greenlet's
    ///   last owner is dropped while it waits here), or a child ended with that error;
    /// - [`GreenletErrorKind::Panicked`]: a child panicked (its parent gets the error);
    /// - [`GreenletErrorKind::CannotSwitch`]: this greenlet cannot suspend now (the module
    ///   doc's rule 6: it is being unwound, a panic is unwinding, or a hub task runs on top of
    ///   it); nothing was switched and `value` is dropped.
    ///
    /// # Panics
    /// Never for a panic inside the target: that is caught in the greenlet and becomes
    /// `Panicked`.
    ///
    /// Always inlined, with the suspension inside it: see `switch_to`.
    #[inline(always)]
    pub fn switch(&self, value: Val) -> Result<Val, GreenletError> {
        switch_to(&self.inner, Ok(value))
    }

    /// Raise `error` in this greenlet where it is suspended (its pending `switch` returns it);
    /// an unstarted greenlet dies at once. Replaces `g.throw(...)`.
    ///
    /// # Errors
    /// As [`Greenlet::switch`]; an unstarted or dead greenlet passes `error` on to its parent.
    pub fn throw(&self, error: &str) -> Result<Val, GreenletError> {
        switch_to(&self.inner, Err(GreenletError::thrown(error)))
    }

    /// Raise `GreenletExit` in this greenlet where it is suspended. Replaces `g.throw()` (and
    /// `g.throw(GreenletExit)`). A greenlet that ends with it, and a dead or unstarted one,
    /// hands its parent the value [`GreenletExit`].
    ///
    /// # Errors
    /// As [`Greenlet::switch`].
    pub fn throw_exit(&self) -> Result<Val, GreenletError> {
        switch_to(&self.inner, Err(GreenletError::exit()))
    }
}
