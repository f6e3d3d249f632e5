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

use std::any::Any;
use std::cell::{Cell, RefCell, UnsafeCell};
use std::fmt;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};

use crate::val::Val;

/// The default stack of a greenlet: 256 KiB of address space (memory is only used as the
/// stack grows into it), plus a guard page. Deep recursion needs [`Greenlet::with_stack_size`];
/// running past the end is a segmentation fault on the guard page, not a panic.
pub const DEFAULT_STACK: usize = 256 * 1024;

/// Why a switch returned no value: see [`GreenletError::kind`].
///
/// One word (the details are boxed), as [`Val`] is, so that a switch's
/// `Result<Val, GreenletError>` is two words and crosses the hub in registers.
#[derive(Clone, PartialEq, Eq)]
pub struct GreenletError(Box<GreenletErrorKind>);

/// The kinds of [`GreenletError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GreenletErrorKind {
    /// Raised into this greenlet by [`Greenlet::throw`] (or its child finished with it).
    Thrown(String),
    /// A greenlet panicked; the message.
    Panicked(String),
    /// A stack could not be made (for example past the process's memory-map limit).
    NoStack(String),
}

impl GreenletError {
    /// An error raised at a suspension point, as [`Greenlet::throw`] does (greenlet raises an
    /// exception there).
    pub fn thrown(message: impl Into<String>) -> GreenletError {
        GreenletErrorKind::Thrown(message.into()).into()
    }

    /// What went wrong.
    pub fn kind(&self) -> &GreenletErrorKind {
        &self.0
    }
}

impl From<GreenletErrorKind> for GreenletError {
    fn from(kind: GreenletErrorKind) -> GreenletError {
        GreenletError(Box::new(kind))
    }
}

impl fmt::Debug for GreenletError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for GreenletError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind() {
            GreenletErrorKind::Thrown(m) => write!(f, "thrown: {m}"),
            GreenletErrorKind::Panicked(m) => write!(f, "a greenlet panicked: {m}"),
            GreenletErrorKind::NoStack(m) => write!(f, "cannot make a greenlet stack: {m}"),
        }
    }
}

impl std::error::Error for GreenletError {}

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
    pub fn new(
        f: impl FnOnce(Val) -> Result<Val, GreenletError> + 'static,
    ) -> Result<Greenlet, GreenletError> {
        Greenlet::with_stack_size(DEFAULT_STACK, f)
    }

    /// [`Greenlet::new`] with a stack of `size` bytes.
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
    /// Always inlined, with the suspension inside it: see `switch_to`.
    #[inline(always)]
    pub fn switch(&self, value: Val) -> Result<Val, GreenletError> {
        switch_to(self.inner.as_ref(), Ok(value))
    }

    /// Raise `error` in this greenlet where it is suspended (its pending `switch` returns it);
    /// an unstarted greenlet dies at once. Replaces `g.throw(...)`.
    pub fn throw(&self, error: &str) -> Result<Val, GreenletError> {
        switch_to(self.inner.as_ref(), Err(GreenletError::thrown(error)))
    }
}

/// A switch from the root runs the hub; a switch from a greenlet suspends it, naming where to
/// go. This is always inlined into the greenlet's own code: corosensei resumes a coroutine with
/// a `call` and suspends it with a `ret`, and the CPU predicts that `ret` right only if the
/// coroutine has not returned from any frame in between. A `switch` that suspends inside a
/// function of its own returns through that frame after every resume; measured here, that
/// alone made a switch 8 ns instead of 1.
#[inline(always)]
fn switch_to(target: Option<&Rc<Inner>>, input: Msg) -> Result<Val, GreenletError> {
    let me = CURRENT.with(Cell::get);
    if me.is_null() {
        return run_hub(target, input);
    }
    // SAFETY: `me` is current, so something holds an `Rc` to it: the hub resuming it, or
    // `unwind` dropping it (see `current`).
    let me = unsafe { &*me };
    // Null once it is being unwound (see `unwind`): then it cannot suspend any more.
    let yielder = me.yielder.get();
    if yielder.is_null() || target.is_some_and(|t| std::ptr::eq(&**t, me)) {
        return switch_in_place(me, target, input);
    }
    // `next` is empty here (the hub takes it at every suspension), and empty means the root.
    if let Some(t) = target {
        me.next.set(Some(t.clone()));
    }
    me.post(input);
    // SAFETY: `me` is running, so we are on its stack, inside the closure that recorded this
    // yielder; corosensei keeps the yielder alive for as long as the coroutine.
    unsafe { &*yielder }.suspend(());
    me.receive()
}

impl Inner {
    /// Leave `input` in this greenlet's mail.
    #[inline(always)]
    fn post(&self, input: Msg) {
        // The mail is always empty here: whoever is resumed takes its mail at once, and so
        // does the hub when a greenlet suspends (`receive`). So it is written without first
        // reading the old value to drop it (were it not empty, the old value would leak,
        // which is safe): measured, 0.2 ns less per switch.
        debug_assert!(
            // SAFETY: a read of the cell on its own thread; no reference into it is held.
            unsafe { (*self.mail.as_ptr()).is_none() },
            "mail posted over mail"
        );
        match input {
            // SAFETY: as above; the write replaces `None`, which has nothing to drop.
            Ok(v) => unsafe { self.mail.as_ptr().write(Some(v)) },
            Err(e) => self.post_error(e),
        }
    }

    #[cold]
    #[inline(never)]
    fn post_error(&self, e: GreenletError) {
        *self.thrown.borrow_mut() = Some(e);
        self.mail.set(None);
    }

    /// Take what `post` left.
    #[inline(always)]
    fn receive(&self) -> Result<Val, GreenletError> {
        match self.mail.take() {
            Some(v) => Ok(v),
            None => Err(self.receive_error()),
        }
    }

    #[cold]
    #[inline(never)]
    fn receive_error(&self) -> GreenletError {
        self.thrown
            .borrow_mut()
            .take()
            .unwrap_or_else(|| GreenletError::thrown("resumed without a value"))
    }
}

/// A switch that does not suspend: to itself (greenlet returns the value at once), or from a
/// greenlet whose stack is being unwound (it cannot suspend any more).
#[cold]
#[inline(never)]
fn switch_in_place(
    me: &Inner,
    target: Option<&Rc<Inner>>,
    input: Msg,
) -> Result<Val, GreenletError> {
    if !me.dead.get() && target.is_some_and(|t| std::ptr::eq(&**t, me)) {
        return input;
    }
    Err(GreenletError::thrown(
        "switch from a greenlet that is being unwound",
    ))
}

fn panic_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic".to_owned())
}

/// The hub, on the root stack: resume the target; follow its switches; hand return values to
/// parents; come back when something switches to the root. The first target is borrowed from
/// the switching handle (no reference count to touch); anything past a switch straight back
/// to the root continues in [`run_hub_loop`].
#[inline(always)]
fn run_hub(first: Option<&Rc<Inner>>, input: Msg) -> Result<Val, GreenletError> {
    let Some(t) = first else {
        return input;
    };
    if !runnable(t) {
        return run_hub_loop(t.parent.borrow().clone(), input);
    }
    let (next, value) = resume(t, input);
    match next {
        None => value,
        next => run_hub_loop(next, value),
    }
}

/// Whether `t` can be resumed (else a switch to it goes to its parent).
#[inline(always)]
fn runnable(t: &Inner) -> bool {
    // SAFETY: the hub runs on the root stack, so `t` is not running: nothing else holds a
    // reference into its `co`.
    // (A dead greenlet's coroutine is gone: taken when it finished or was unwound.)
    unsafe { (*t.co.get()).is_some() }
}

/// Run `t` (which must be [`runnable`]) with `input` until it switches away or finishes:
/// where to go next (`None`: the root), with what.
#[inline(always)]
fn resume(t: &Rc<Inner>, input: Msg) -> (Option<Rc<Inner>>, Msg) {
    t.post(input);
    // `Rc::as_ptr`, not `&**t`: `current` turns this pointer back into an `Rc`.
    CURRENT.with(|c| c.set(Rc::as_ptr(t)));
    // SAFETY: runnable, so `Some`; while it runs, only the hub touches `co` (`Greenlet::drop`
    // leaves a running greenlet's coroutine alone).
    let co = unsafe { (*t.co.get()).as_mut().unwrap_unchecked() };
    // A panic cannot come out of `resume`: the greenlet's body catches its own (see
    // `with_stack_size`).
    let outcome = co.resume(());
    CURRENT.with(|c| c.set(std::ptr::null()));
    // SAFETY: it has stopped running; the `&mut` above is no longer used.
    let finished = |t: &Inner| unsafe { (*t.co.get()).take() };
    match outcome {
        CoroutineResult::Yield(()) => {
            let (next, i) = (t.next.take(), t.receive());
            if t.owners.get() == 0
                && let Some(co) = finished(t)
            {
                // Its last owner went while it ran: unwind it now, from the root stack.
                unwind(t, co);
            }
            (next, i)
        }
        CoroutineResult::Return(r) => {
            t.dead.set(true);
            drop(finished(t));
            (t.parent.borrow().clone(), r)
        }
    }
}

/// The rest of the hub's work after a first resume: greenlet-to-greenlet switches, dead
/// targets (their parents stand in), finished greenlets.
#[inline(never)]
fn run_hub_loop(mut target: Option<Rc<Inner>>, mut input: Msg) -> Result<Val, GreenletError> {
    loop {
        let t = loop {
            let Some(t) = target else {
                return input;
            };
            if runnable(&t) {
                break t;
            }
            target = t.parent.borrow().clone();
        };
        (target, input) = resume(&t, input);
    }
}
