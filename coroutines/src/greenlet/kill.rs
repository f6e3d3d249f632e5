//! The chain of greenlets executing now, and killing a greenlet whose owners are gone: the
//! module doc's rules 2, 3 and 6, as code. Also what the hub of tasks needs to know about the
//! chain ([`Pinned`], [`current_key`]) and what the overflow handler reads ([`current_guard`]).

use std::cell::Cell;
use std::ptr;
use std::rc::Rc;

use super::switch::{runnable, switch_to};
use super::{CURRENT, Co, GreenletError, Inner, current, report, would_cycle};

/// Whether `i` is on the chain (rule 2): `CURRENT`, or below it among the greenlets being
/// unwound on top of one another.
pub(super) fn in_use(i: &Inner) -> bool {
    let mut p = CURRENT.with(Cell::get);
    while !p.is_null() {
        if ptr::eq(p, i) {
            return true;
        }
        // SAFETY: every greenlet on the chain is held by an `Rc` for as long as it is on it
        // (rule 5), and `under` names only greenlets on the chain.
        p = unsafe { (*p).under.get() };
    }
    false
}

/// Whether the code running now could switch away and come back: no panic is unwinding, and
/// it is the root or a greenlet that can suspend (rule 6).
fn can_switch_here() -> bool {
    if std::thread::panicking() {
        return false;
    }
    let p = CURRENT.with(Cell::get);
    // SAFETY: as in `in_use`.
    p.is_null() || !unsafe { (*p).yielder.get() }.is_null()
}

/// Kill `i`, whose owners are gone and which is off the chain (rule 3).
#[cold]
#[inline(never)]
pub(super) fn kill(i: &Rc<Inner>) {
    /// Ends the kill however its frame goes. Normally: `GreenletExit` was raised, and if the
    /// greenlet did not end (it switched elsewhere), its stack is unwound. Cut short (this
    /// frame is being unwound, because the killer's own stack is: a kill cannot switch then):
    /// the same unwind, at once. Either way no greenlet is left alive with no owner, unless it
    /// is on the chain, where the hub kills it when it suspends.
    struct Finish<'a>(&'a Rc<Inner>);
    impl Drop for Finish<'_> {
        fn drop(&mut self) {
            let i = self.0;
            if i.owners.get() == 0 && !in_use(i) && runnable(i) {
                // SAFETY: off the chain (checked just above), so nothing refers into `co`
                // (rule 4).
                if let Some(co) = unsafe { (*i.co.get()).take() } {
                    unwind(i, co);
                }
            }
            i.killing.set(false);
        }
    }
    if !runnable(i) || i.killing.replace(true) {
        return; // finished, killed already, or being killed (this is a switch during that)
    }
    let _finish = Finish(i);
    if !i.started.get() {
        i.dead.set(true);
        // SAFETY: off the chain, so nothing holds a reference into `co` (rule 4).
        let co = unsafe { (*i.co.get()).take() };
        // Never resumed: corosensei drops the function without running it.
        drop(co);
        return;
    }
    if can_switch_here() {
        throw_exit(i);
    }
}

/// Raise `GreenletExit` in suspended `i`, with the current greenlet as its parent for the
/// duration (when that makes no cycle), as greenlet does for a greenlet it collects.
fn throw_exit(i: &Rc<Inner>) {
    /// Puts the parent back on every way out.
    struct Restore<'a>(&'a Rc<Inner>, Option<Option<Rc<Inner>>>);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            if let Some(old) = self.1.take()
                && !would_cycle(self.0, old.as_ref())
            {
                *self.0.parent.borrow_mut() = old;
            }
        }
    }
    let killer = current();
    let saved = if would_cycle(i, killer.as_ref()) {
        None
    } else {
        Some(i.parent.replace(killer))
    };
    let restore = Restore(i, saved);
    let outcome = switch_to(&Some(i.clone()), Err(GreenletError::exit()));
    drop(restore);
    match outcome {
        // `GreenletExit` (it ended with the kill), what it returned, or what it switched to
        // its parent, the killer: nothing to hand on.
        Ok(v) => drop(v),
        // The killer itself is being killed (it was dropped meanwhile): its own unwind goes on.
        Err(e) if e.is_exit() => {}
        Err(e) => report(&format!(
            "a greenlet killed because its last owning handle was dropped ended with an \
             error: {e}"
        )),
    }
}

/// Unwind suspended `i`'s stack by dropping its coroutine (corosensei's forced unwind): its
/// destructors run. Meanwhile it is on the chain, on top of what was current (rule 2), and
/// dead with no yielder, so a switch from a destructor fails instead of suspending a stack
/// that is being unwound (rule 6).
pub(super) fn unwind(i: &Rc<Inner>, co: Co) {
    /// Takes `i` off the chain again on every way out.
    struct OffChain<'a>(&'a Inner);
    impl Drop for OffChain<'_> {
        fn drop(&mut self) {
            let below = self.0.under.replace(ptr::null());
            CURRENT.with(|c| c.set(below));
        }
    }
    i.dead.set(true);
    i.yielder.set(ptr::null());
    let below = CURRENT.with(|c| c.replace(Rc::as_ptr(i)));
    i.under.set(below);
    let _off = OffChain(i);
    drop(co);
}

/// While a hub task runs on top of the current greenlet (it called `hub::joinall` or another
/// hub wait), that greenlet cannot suspend (rule 6): its yielder is put away until this is
/// dropped. On the root, nothing to do.
pub(crate) struct Pinned {
    inner: *const Inner,
    yielder: *const corosensei::Yielder<(), ()>,
}

impl Pinned {
    /// Pin the current greenlet, if any.
    pub(crate) fn current() -> Pinned {
        let inner = CURRENT.with(Cell::get);
        let yielder = if inner.is_null() {
            ptr::null()
        } else {
            // SAFETY: `CURRENT` is on the chain, so alive (rule 5).
            unsafe { (*inner).yielder.replace(ptr::null()) }
        };
        Pinned { inner, yielder }
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        if !self.inner.is_null() {
            // SAFETY: the greenlet stays on the chain while the task runs on top of it: it is
            // executing below the task, so it can neither suspend nor end meanwhile.
            unsafe { (*self.inner).yielder.set(self.yielder) };
        }
    }
}

/// Which greenlet's code runs now, as a number (0: the root): the hub of tasks uses it to tell
/// whether a wait comes from a task's own code or from a greenlet started inside the task.
pub(crate) fn current_key() -> usize {
    CURRENT.with(Cell::get).addr()
}

/// The first address of the guard page of the current greenlet's stack (0: no greenlet runs).
/// Called from the SIGSEGV handler: it reads a thread-local `Cell` with no destructor and a
/// plain field, nothing that can block or allocate.
pub(crate) fn current_guard() -> usize {
    let p = CURRENT.with(Cell::get);
    if p.is_null() {
        return 0;
    }
    // SAFETY: `CURRENT` is on the chain, so alive (rule 5); `guard` never changes.
    unsafe { (*p).guard }
}
