//! The switch itself: a greenlet's side (suspend, naming where to go) and the hub's (resume
//! the target, follow its switches, hand return values to parents).

use std::cell::Cell;
use std::rc::Rc;

use corosensei::CoroutineResult;

use super::{CURRENT, Inner, Msg, unwind};
use crate::greenlet::GreenletError;
use crate::val::Val;

/// A switch from the root runs the hub; a switch from a greenlet suspends it, naming where to
/// go. This is always inlined into the greenlet's own code: corosensei resumes a coroutine with
/// a `call` and suspends it with a `ret`, and the CPU predicts that `ret` right only if the
/// coroutine has not returned from any frame in between. A `switch` that suspends inside a
/// function of its own returns through that frame after every resume; measured here, that
/// alone made a switch 8 ns instead of 1.
#[inline(always)]
pub(super) fn switch_to(target: Option<&Rc<Inner>>, input: Msg) -> Result<Val, GreenletError> {
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
