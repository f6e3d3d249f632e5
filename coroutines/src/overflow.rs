//! A readable death on a coroutine stack overflow. Running past the end of a greenlet's, a hub
//! task's or a generator's stack touches its guard page, and the kernel sends SIGSEGV: with
//! nothing more, the process dies with a bare "Segmentation fault". std says what happened when
//! a *thread* overflows; this does the same for our stacks: a SIGSEGV handler, on the thread's
//! alternate signal stack (std gives every thread one), checks whether the faulting address is
//! in the guard page of the current greenlet's stack, of the running hub task's or of the
//! running generator's, prints "greenlet has overflowed its stack" (or "hub task ...",
//! "generator ...") and aborts. Any other fault goes on to the handler that was there before
//! (std's, which handles the threads' own guard pages and otherwise restores the default
//! action, so the fault kills the process as before).
//!
//! The handler only reads thread-local `Cell`s without destructors, a plain field of the
//! current greenlet, and statics set before it was installed; it writes with `write(2)` and
//! calls `abort`: all async-signal-safe.
//!
//! A hub task and a generator are marked as running by a [`StackMark`] held around their
//! `resume`: it puts back the mark it replaced (an outer task or generator, or none) on every way
//! out, unwinding included. A mark can outlive its run only if the body switches away to another
//! greenlet and never comes back; the mark then names a guard page that may be unmapped later,
//! and a fault there would be called an overflow: a wrong message before the same abort.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::LocalKey;

use corosensei::stack::{DefaultStack, Stack};
use nix::libc;

/// The handler that was installed before ours, to pass other faults on to.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();
/// The page size: the guard page's length.
static PAGE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// The first address of the running hub task's guard page (0: none runs).
    static TASK_GUARD: Cell<usize> = const { Cell::new(0) };
    /// The first address of the running generator's guard page (0: none runs).
    static GENERATOR_GUARD: Cell<usize> = const { Cell::new(0) };
}

/// The first address of `stack`'s guard page: corosensei maps it at the bottom of the stack's
/// mapping, which is what `limit` returns.
pub(crate) fn guard_page(stack: &DefaultStack) -> usize {
    stack.limit().get()
}

/// Install the handler, once per process.
pub(crate) fn install() {
    if PREVIOUS.get().is_some() {
        return;
    }
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        PAGE.store(usize::try_from(page).unwrap_or(4096), Ordering::Relaxed);
        // SAFETY: a zeroed `sigaction` is a valid value to be written over; with a null new
        // action, `sigaction` only reads the current one into it.
        let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::sigaction(libc::SIGSEGV, std::ptr::null(), &mut previous) } != 0 {
            return;
        }
        // Set before the handler can run, which reads it.
        let _ = PREVIOUS.set(previous);
        // SAFETY: as above; the fields set are the handler, its flags and an empty mask.
        let mut ours: libc::sigaction = unsafe { std::mem::zeroed() };
        ours.sa_sigaction = on_segv as *const () as libc::sighandler_t;
        ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        // SAFETY: `sa_mask` is ours to initialise.
        unsafe { libc::sigemptyset(&mut ours.sa_mask) };
        // SAFETY: `ours` is a complete action whose handler is async-signal-safe (module doc).
        unsafe { libc::sigaction(libc::SIGSEGV, &ours, std::ptr::null_mut()) };
    });
}

/// Marks the running hub task's or generator's stack for the handler while it lives; puts back
/// what was marked before (an outer one, or none) on every way out.
pub(crate) struct StackMark {
    mark: &'static LocalKey<Cell<usize>>,
    before: usize,
}

impl StackMark {
    /// The hub task whose guard page begins at `guard` runs from now on.
    pub(crate) fn task(guard: usize) -> StackMark {
        StackMark::enter(&TASK_GUARD, guard)
    }

    /// The generator whose guard page begins at `guard` runs from now on.
    pub(crate) fn generator(guard: usize) -> StackMark {
        StackMark::enter(&GENERATOR_GUARD, guard)
    }

    fn enter(mark: &'static LocalKey<Cell<usize>>, guard: usize) -> StackMark {
        StackMark {
            mark,
            before: mark.with(|g| g.replace(guard)),
        }
    }
}

impl Drop for StackMark {
    fn drop(&mut self) {
        self.mark.with(|g| g.set(self.before));
    }
}

/// Whether `addr` is in the guard page that begins at `guard`.
fn in_guard(addr: usize, guard: usize) -> bool {
    guard != 0 && addr >= guard && addr - guard < PAGE.load(Ordering::Relaxed)
}

/// Write `msg` to stderr and abort, as std does on a thread's stack overflow.
fn die(msg: &[u8]) -> ! {
    // SAFETY: write(2) on stderr with a valid buffer; abort has no preconditions.
    unsafe {
        libc::write(libc::STDERR_FILENO, msg.as_ptr().cast(), msg.len());
        libc::abort()
    }
}

extern "C" fn on_segv(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for a SA_SIGINFO handler; for SIGSEGV its
    // address field is the faulting address.
    let addr = unsafe { (*info).si_addr() }.addr();
    if in_guard(addr, crate::greenlet::current_guard()) {
        die(b"\ngreenlet has overflowed its stack (give it more with \
               Greenlet::with_stack_size)\nfatal runtime error: stack overflow, aborting\n");
    }
    if in_guard(addr, TASK_GUARD.with(Cell::get)) {
        die(b"\nhub task has overflowed its stack (give it more with \
               hub::spawn_with_stack)\nfatal runtime error: stack overflow, aborting\n");
    }
    if in_guard(addr, GENERATOR_GUARD.with(Cell::get)) {
        die(b"\ngenerator has overflowed its stack (give it more with \
               Generator::with_stack_size)\nfatal runtime error: stack overflow, aborting\n");
    }
    pass_on(sig, info, ctx);
}

/// Hand a fault that is not ours to the handler installed before, or restore the default
/// action so that returning re-runs the faulting instruction and the fault kills the process.
fn pass_on(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let default = || {
        // SAFETY: a zeroed `sigaction` is SIG_DFL with an empty mask and no flags.
        let dfl: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: installs the default action for this signal.
        unsafe { libc::sigaction(sig, &dfl, std::ptr::null_mut()) };
    };
    let Some(previous) = PREVIOUS.get() else {
        return default();
    };
    let handler = previous.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        return default();
    }
    if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: a SA_SIGINFO handler has this signature; it was installed for this signal.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(handler) };
        f(sig, info, ctx);
    } else {
        // SAFETY: a plain handler takes the signal number.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
        f(sig);
    }
}
