//! [`Greenlet`]: greenlet's `switch()` on corosensei.
//!
//! # Why a hub
//!
//! greenlet is *symmetric*: any greenlet may switch straight to any other. corosensei is
//! *asymmetric* by design: a coroutine can only suspend back to whoever resumed it. So here a
//! `switch` from inside a greenlet suspends to a small loop on the root stack (the "hub" of this
//! module; the thread's own stack), saying which greenlet to run next, and the loop resumes
//! that one. A greenlet-to-greenlet switch therefore costs two context switches (suspend, then
//! resume) instead of one; both are a few nanoseconds (`cargo bench -p coroutines`).
//!
//! # Behaviour, as greenlet's
//!
//! - A greenlet's return value goes to its *parent* (by default, whoever created it), as if the
//!   parent's last `switch` had returned it. Switching to a dead greenlet goes to its parent.
//! - [`Greenlet::throw`] makes the target's pending `switch` return `Err`, as greenlet raises
//!   the exception at the target's suspension point.
//! - A panic inside a greenlet reaches its parent as `Err(GreenletError::Panicked)`.
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
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};

/// A value passed by `switch` (greenlet passes any object).
pub type Val = Box<dyn Any>;

/// Box a value for `switch`.
pub fn val<T: Any>(t: T) -> Val {
    Box::new(t)
}

/// The default stack of a greenlet: 256 KiB of address space (memory is only used as the
/// stack grows into it), plus a guard page. Deep recursion needs [`Greenlet::with_stack_size`];
/// running past the end is a segmentation fault on the guard page, not a panic.
pub const DEFAULT_STACK: usize = 256 * 1024;

/// Why a switch returned no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GreenletError {
    /// Raised into this greenlet by [`Greenlet::throw`] (or its child finished with it).
    Thrown(String),
    /// A greenlet panicked; the message.
    Panicked(String),
    /// A stack could not be made (for example past the process's memory-map limit).
    NoStack(String),
}

impl fmt::Display for GreenletError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GreenletError::Thrown(m) => write!(f, "thrown: {m}"),
            GreenletError::Panicked(m) => write!(f, "a greenlet panicked: {m}"),
            GreenletError::NoStack(m) => write!(f, "cannot make a greenlet stack: {m}"),
        }
    }
}

impl std::error::Error for GreenletError {}

enum Input {
    Value(Val),
    Throw(GreenletError),
}

impl Input {
    fn into_result(self) -> Result<Val, GreenletError> {
        match self {
            Input::Value(v) => Ok(v),
            Input::Throw(e) => Err(e),
        }
    }
}

/// What a suspending greenlet asks the hub: run `target` with `input`.
struct SwitchTo(usize, Input);

type Co = Coroutine<Input, SwitchTo, Result<Val, GreenletError>, DefaultStack>;

const ROOT: usize = 0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    New,
    Suspended,
    Running,
    Dead,
}

struct Slot {
    co: Option<Co>,
    parent: usize,
    state: State,
    yielder: *const Yielder<Input, SwitchTo>,
    /// The last handle went while it was running: drop it when it next suspends.
    orphaned: bool,
}

/// Greenlet ids are small distinct integers: hashing them is the identity (std's SipHash
/// would cost more than the context switch itself).
#[derive(Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = n as u64;
    }
}

type Slots = HashMap<usize, Slot, std::hash::BuildHasherDefault<IdHasher>>;

struct Runtime {
    slots: Slots,
    current: usize,
    next: usize,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // At thread exit the runtime goes first; unwinding a suspended greenlet now would run
        // code that needs it. Leave their stacks to the process's end instead.
        for (_, slot) in self.slots.drain() {
            std::mem::forget(slot.co);
        }
    }
}

thread_local! {
    static RT: RefCell<Runtime> = RefCell::new(Runtime {
        slots: Slots::default(),
        current: ROOT,
        next: 1,
    });
}

fn with_rt<R>(f: impl FnOnce(&mut Runtime) -> R) -> R {
    RT.with(|rt| f(&mut rt.borrow_mut()))
}

struct Handle {
    id: usize,
}

impl Drop for Handle {
    fn drop(&mut self) {
        // Take the coroutine out first, then drop it with the runtime released: unwinding it
        // runs its destructors, which may use greenlets too.
        let co = RT
            .try_with(|rt| {
                let mut rt = rt.borrow_mut();
                match rt.slots.get_mut(&self.id) {
                    Some(slot) if slot.state == State::Running => {
                        slot.orphaned = true;
                        None
                    }
                    Some(_) => rt.slots.remove(&self.id).and_then(|s| s.co),
                    None => None,
                }
            })
            .ok()
            .flatten();
        drop(co);
    }
}

/// A greenlet: a function with its own stack that runs when switched to and gives control
/// away by switching. Replaces `greenlet.greenlet(run, parent)`.
///
/// ```
/// use coroutines::{Greenlet, val};
///
/// let g = Greenlet::new(|v| {
///     let n = *v.downcast::<i32>().unwrap();
///     Ok(val(n * 2))                      // returned to the parent: main here
/// })?;
/// let out = g.switch(val(21))?;          // start it with 21
/// assert_eq!(*out.downcast::<i32>().unwrap(), 42);
/// assert!(g.dead());
/// # Ok::<(), coroutines::GreenletError>(())
/// ```
#[derive(Clone)]
pub struct Greenlet {
    id: usize,
    /// Present on handles made by `new`: the last one dropped unwinds the greenlet. Handles
    /// from `getcurrent` and `parent` only name it.
    _owner: Option<Rc<Handle>>,
    // Not Send: a greenlet's stack belongs to its thread.
    _not_send: PhantomData<*const ()>,
}

impl fmt::Debug for Greenlet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Greenlet")
            .field("id", &self.id)
            .field("dead", &self.dead())
            .finish()
    }
}

impl PartialEq for Greenlet {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

/// The greenlet running now: the thread's main (root) greenlet outside any other.
/// Replaces `greenlet.getcurrent()`.
pub fn getcurrent() -> Greenlet {
    let id = with_rt(|rt| rt.current);
    if id == ROOT {
        return Greenlet::view(ROOT);
    }
    Greenlet::view(id)
}

impl Greenlet {
    /// A handle that names greenlet `id` without owning it (dropping it does nothing).
    fn view(id: usize) -> Greenlet {
        Greenlet {
            id,
            _owner: None,
            _not_send: PhantomData,
        }
    }

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
        let stack = DefaultStack::new(size).map_err(|e| GreenletError::NoStack(e.to_string()))?;
        let id = with_rt(|rt| {
            let id = rt.next;
            rt.next += 1;
            id
        });
        let co = Coroutine::with_stack(stack, move |y: &Yielder<Input, SwitchTo>, first: Input| {
            with_rt(|rt| {
                if let Some(slot) = rt.slots.get_mut(&id) {
                    slot.yielder = y;
                }
            });
            match first {
                Input::Value(v) => f(v),
                Input::Throw(e) => Err(e),
            }
        });
        with_rt(|rt| {
            let parent = rt.current;
            rt.slots.insert(
                id,
                Slot {
                    co: Some(co),
                    parent,
                    state: State::New,
                    yielder: std::ptr::null(),
                    orphaned: false,
                },
            )
        });
        Ok(Greenlet {
            id,
            _owner: Some(Rc::new(Handle { id })),
            _not_send: PhantomData,
        })
    }

    fn id(&self) -> usize {
        self.id
    }

    /// Whether it has finished (returned, raised or panicked). Replaces `g.dead`.
    pub fn dead(&self) -> bool {
        self.id() != ROOT
            && with_rt(|rt| {
                rt.slots
                    .get(&self.id())
                    .is_none_or(|s| s.state == State::Dead)
            })
    }

    /// Whether it has started and not finished.
    pub fn started(&self) -> bool {
        with_rt(|rt| {
            rt.slots
                .get(&self.id())
                .is_some_and(|s| matches!(s.state, State::Suspended | State::Running))
        })
    }

    /// Its parent (`None` for the root). Replaces `g.parent`.
    pub fn parent(&self) -> Option<Greenlet> {
        if self.id() == ROOT {
            return None;
        }
        let p = with_rt(|rt| rt.slots.get(&self.id()).map_or(ROOT, |s| s.parent));
        Some(Greenlet::view(p))
    }

    /// Make `parent` this greenlet's parent. Replaces `g.parent = p`.
    pub fn set_parent(&self, parent: &Greenlet) {
        with_rt(|rt| {
            if let Some(slot) = rt.slots.get_mut(&self.id()) {
                slot.parent = parent.id();
            }
        });
    }

    /// Run this greenlet, giving it `value`; returns what is later switched back to the
    /// caller (or a child's return value). Replaces `g.switch(value)`.
    pub fn switch(&self, value: Val) -> Result<Val, GreenletError> {
        switch_to(self.id(), Input::Value(value))
    }

    /// Raise `error` in this greenlet where it is suspended (its pending `switch` returns it);
    /// an unstarted greenlet dies at once. Replaces `g.throw(...)`.
    pub fn throw(&self, error: &str) -> Result<Val, GreenletError> {
        switch_to(
            self.id(),
            Input::Throw(GreenletError::Thrown(error.to_owned())),
        )
    }
}

fn switch_to(target: usize, input: Input) -> Result<Val, GreenletError> {
    let current = with_rt(|rt| rt.current);
    if current == ROOT {
        return run_hub(target, input);
    }
    if target == current {
        return input.into_result();
    }
    let yielder = with_rt(|rt| rt.slots.get(&current).map(|s| s.yielder));
    let Some(yielder) = yielder.filter(|y| !y.is_null()) else {
        return Err(GreenletError::Thrown(
            "switch from an unknown greenlet".into(),
        ));
    };
    // SAFETY: `current` is running, so we are on its stack, inside the closure that
    // recorded this yielder; corosensei keeps the yielder alive for as long as the coroutine.
    let yielder = unsafe { &*yielder };
    yielder.suspend(SwitchTo(target, input)).into_result()
}

fn panic_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic".to_owned())
}

/// The loop on the root stack: resume the target; follow its switches; hand return values to
/// parents; come back when something switches to the root.
fn run_hub(mut target: usize, mut input: Input) -> Result<Val, GreenletError> {
    loop {
        // A dead (or dropped) target means its parent, and so on up to the root.
        let co = with_rt(|rt| {
            loop {
                if target == ROOT {
                    return None;
                }
                match rt.slots.get_mut(&target) {
                    Some(slot) if slot.state != State::Dead => {
                        slot.state = State::Running;
                        rt.current = target;
                        return slot.co.take();
                    }
                    Some(slot) => target = slot.parent,
                    None => target = ROOT,
                }
            }
        });
        let Some(mut co) = co else {
            return input.into_result();
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| co.resume(input)));
        let (next, next_input, keep) = with_rt(|rt| {
            rt.current = ROOT;
            let slot = rt.slots.get_mut(&target);
            let parent = slot.as_ref().map_or(ROOT, |s| s.parent);
            match outcome {
                Ok(CoroutineResult::Yield(SwitchTo(t, i))) => {
                    let keep = slot.is_some_and(|s| {
                        s.state = State::Suspended;
                        !s.orphaned
                    });
                    (t, i, keep)
                }
                Ok(CoroutineResult::Return(r)) => {
                    if let Some(s) = slot {
                        s.state = State::Dead;
                    }
                    let i = match r {
                        Ok(v) => Input::Value(v),
                        Err(e) => Input::Throw(e),
                    };
                    (parent, i, false)
                }
                Err(payload) => {
                    if let Some(s) = slot {
                        s.state = State::Dead;
                    }
                    let e = GreenletError::Panicked(panic_text(&*payload));
                    (parent, Input::Throw(e), false)
                }
            }
        });
        if keep {
            with_rt(|rt| {
                if let Some(s) = rt.slots.get_mut(&target) {
                    s.co = Some(co);
                }
            });
        } else {
            // Finished (or orphaned: unwound now, from the root stack).
            let orphaned = with_rt(|rt| {
                rt.slots
                    .get(&target)
                    .is_some_and(|s| s.orphaned && s.state != State::Dead)
            });
            if orphaned {
                with_rt(|rt| rt.slots.remove(&target));
            }
            drop(co);
        }
        target = next;
        input = next_input;
    }
}
