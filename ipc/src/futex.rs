//! Sleeping and waking on a 32-bit word of shared memory (Linux futexes), between processes.
//!
//! Not `FUTEX_PRIVATE`: the words live in mappings shared by several processes, so the kernel
//! must key them by the physical page. Every wait may return early (a wake-up meant for
//! another waiter, a signal, the value already changed): callers always look again.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

use nix::libc;

/// Sleep while `*word == expected`, at most `timeout` (`None`: until woken). Any return means
/// "look again".
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(crate::deadline::timespec);
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, aligned u32 for the whole call; FUTEX_WAIT only reads it;
    // `ts_ptr` is null or points to a timespec on our stack for the whole call.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            ts_ptr,
            std::ptr::null::<u32>(),
            0,
        );
    }
}

/// Wake at most `n` of the processes and threads sleeping on `word`; how many were woken.
pub(crate) fn wake(word: &AtomicU32, n: u32) -> usize {
    let n = i32::try_from(n).unwrap_or(i32::MAX);
    // SAFETY: `word` is a live, aligned u32; FUTEX_WAKE does not touch memory.
    let woken = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            n,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0,
        )
    };
    usize::try_from(woken).unwrap_or(0)
}

/// Wake every sleeper on `word`.
pub(crate) fn wake_all(word: &AtomicU32) {
    wake(word, u32::MAX);
}
