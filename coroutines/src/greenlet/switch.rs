//! The switch itself: a greenlet's side (suspend, naming where to go) and the hub's (resume
//! the target, follow its switches, hand return values to parents).

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use corosensei::{CoroutineResult, Yielder};

use super::kill::kill;
use super::{
    CURRENT, GreenletErrorKind, GreenletExit, Inner, Msg, drop_payload, is_message, panic_text,
    report,
};
use crate::greenlet::GreenletError;
use crate::val::{Val, val};

/// A switch from the root runs the hub; a switch from a greenlet suspends it, naming where to
/// go. This is always inlined into the greenlet's own code: corosensei resumes a coroutine with
/// a `call` and suspends it with a `ret`, and the CPU predicts that `ret` right only if the
/// coroutine has not returned from any frame in between. A `switch` that suspends inside a
/// function of its own returns through that frame after every resume; measured here, that
/// alone made a switch 8 ns instead of 1.
#[inline(always)]
pub(super) fn switch_to(target: &Option<Rc<Inner>>, input: Msg) -> Result<Val, GreenletError> {
    let me = CURRENT.with(Cell::get);
    if me.is_null() {
        return run_hub(target.as_ref(), input);
    }
    // SAFETY: `me` is on the chain, so whoever put it there holds an `Rc` to it (rule 5).
    let me = unsafe { &*me };
    // Null while it cannot suspend (rule 6: being unwound, or a hub task on top of it). A
    // panic unwinding on the thread forbids it too; that test is one load of a global.
    let yielder = me.yielder.get();
    if yielder.is_null() || std::thread::panicking() {
        return switch_in_place(me, target.as_ref(), input);
    }
    // `next` is empty here (the hub takes it at every suspension), and empty means the root.
    // A switch to itself is tested only here, where there is a target: a switch to the root
    // (the common case, and the bench's) pays nothing for it.
    if let Some(t) = target {
        if std::ptr::eq(&**t, me) {
            return input;
        }
        me.next.set(Some(t.clone()));
    }
    me.post(input);
    // SAFETY: `me` is the innermost greenlet executing, so we are on its stack (or on the
    // stack of a `Generator` it resumed, whose frames then become part of its suspension),
    // inside the closure that recorded this yielder; corosensei keeps the yielder alive for as
    // long as the coroutine.
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
    pub(super) fn receive(&self) -> Result<Val, GreenletError> {
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
/// greenlet that cannot suspend now (rule 6).
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
    drop(input);
    let why = if me.dead.get() {
        "the greenlet is being unwound"
    } else if std::thread::panicking() {
        "a panic is unwinding on this thread"
    } else {
        "a hub task is running on top of this greenlet"
    };
    Err(GreenletErrorKind::CannotSwitch(why).into())
}

/// What a greenlet that ends with `r`, or a dead greenlet passed `r` on its way to its parent,
/// hands the parent: `GreenletExit` becomes the value [`GreenletExit`] (greenlet's rule).
#[inline(always)]
fn exit_to_value(r: Msg) -> Msg {
    match r {
        Err(e) if e.is_exit() => Ok(val(GreenletExit)),
        r => r,
    }
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
        // The parent is cloned out first: a borrow in the call's arguments would last for the
        // whole call, and a `set_parent` of `t` meanwhile would panic.
        let parent = t.parent.borrow().clone();
        return run_hub_loop(parent, exit_to_value(input));
    }
    let (next, value) = resume(t, input);
    match next {
        None => value,
        next => run_hub_loop(next, value),
    }
}

/// Whether `t` can be resumed (else a switch to it goes to its parent). Only for a `t` off the
/// chain.
#[inline(always)]
pub(super) fn runnable(t: &Inner) -> bool {
    // SAFETY: `t` is off the chain (the hub runs only when no greenlet executes, and `kill`
    // checks), so nothing holds a reference into its `co` (rule 4). A dead greenlet's
    // coroutine is gone: taken when it finished or was killed.
    unsafe { (*t.co.get()).is_some() }
}

/// Resets `CURRENT` when a resume ends, however it ends (rule 4).
struct OffChain;

impl Drop for OffChain {
    #[inline(always)]
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(std::ptr::null()));
    }
}

/// Run `t` (which must be [`runnable`]) with `input` until it switches away or finishes:
/// where to go next (`None`: the root), with what.
#[inline(always)]
fn resume(t: &Rc<Inner>, input: Msg) -> (Option<Rc<Inner>>, Msg) {
    t.post(input);
    // `Rc::as_ptr`, not `&**t`: `current` turns this pointer back into an `Rc`.
    CURRENT.with(|c| c.set(Rc::as_ptr(t)));
    let off = OffChain;
    // SAFETY: runnable, so `Some`; `t` is on the chain from here until `off` goes, and no one
    // else touches the coroutine of a greenlet on the chain (rule 4).
    let co = unsafe { (*t.co.get()).as_mut().unwrap_unchecked() };
    // No panic comes out of `resume`: the greenlet's function catches its own (rule 8). Were
    // one to, `off` would still take `t` off the chain.
    let outcome = co.resume(());
    drop(off);
    match outcome {
        CoroutineResult::Yield(()) => {
            let (next, i) = (t.next.take(), t.receive());
            if t.owners.get() == 0 {
                // Its last owner went while it ran: kill it now that it is off the chain,
                // before its switch goes on (rule 3).
                kill(t);
            }
            (next, i)
        }
        CoroutineResult::Return(r) => {
            t.dead.set(true);
            // SAFETY: it has stopped running, off the chain; the `&mut` above is unused now.
            drop(unsafe { (*t.co.get()).take() });
            let parent = t.parent.borrow().clone();
            (parent, exit_to_value(r))
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
            // Dead: its parent stands in (the walk ends: rule 7).
            input = exit_to_value(input);
            target = t.parent.borrow().clone();
        };
        (target, input) = resume(&t, input);
    }
}

/// The greenlet's function, run on its own stack: receive the first switch's value, run `f`
/// with the panic caught once (rule 8; a `catch_unwind` in the hub would cost a call on every
/// switch), and return what goes to the parent.
pub(super) fn body(y: &Yielder<(), ()>, f: impl FnOnce(Val) -> Msg) -> Msg {
    let p = CURRENT.with(Cell::get);
    if p.is_null() {
        return Err(GreenletError::thrown("resumed outside the hub"));
    }
    // SAFETY: the hub resumes a greenlet only after setting `CURRENT` to it, and holds an `Rc`
    // to it while its code runs; the `Inner` outlives the coroutine it holds (rule 5), so this
    // reference stays valid for as long as this function's frame exists.
    let me = unsafe { &*p };
    me.yielder.set(y);
    me.started.set(true);
    let out = match me.receive() {
        Ok(v) => catch_unwind(AssertUnwindSafe(move || f(v))),
        // Thrown into before it started: it ends at once, its function unrun.
        Err(e) => catch_unwind(AssertUnwindSafe(move || drop(f))).map(|()| Err(e)),
    };
    match out {
        Ok(r) => r,
        Err(payload) => {
            let text = panic_text(&*payload);
            let message = is_message(&*payload);
            drop_payload(payload);
            if me.dead.get() {
                // Its stack was being unwound (rule 3): that unwind, or a panic raised while it
                // ran, ends here. Returning normally ends the coroutine, as corosensei allows.
                if message {
                    report(&format!(
                        "a panic while the greenlet's stack was unwound was discarded: {text}"
                    ));
                }
                return Err(GreenletError::exit());
            }
            Err(GreenletErrorKind::Panicked(text).into())
        }
    }
}
