//! Who a process is, in a form that outlives it: its pid and its start time (in clock ticks
//! since boot, `/proc/<pid>/stat` field 22). A pid alone is reused once its process is reaped;
//! the pair is not (a new process with the same pid starts later). Used to find the holders a
//! dead process left behind (a semaphore's permits) and the shared-memory names a dead
//! creator left in `/dev/shm`.

use std::sync::Once;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use nix::libc;

/// A process, named so that its death can be told apart from a new process reusing its pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcId {
    pub(crate) pid: i32,
    pub(crate) start: u64,
}

/// The state letter and start time in a `/proc/<pid>/stat` line: after the last `)` (the
/// command name may hold spaces and parentheses) come field 3 (state) ... field 22 (start).
fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 3 is the first after ')'; field 22 is 19 further on.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

fn stat_of(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

static PID: AtomicI32 = AtomicI32::new(0);
static START: AtomicU64 = AtomicU64::new(0);
static FORGET_AT_FORK: Once = Once::new();

extern "C" fn forget() {
    PID.store(0, Ordering::Relaxed);
}

/// This process. Read from `/proc/self/stat` once, and again in a forked child (a
/// `pthread_atfork` handler forgets the cached value; it only stores to an atomic, which is
/// async-signal-safe).
pub(crate) fn me() -> ProcId {
    FORGET_AT_FORK.call_once(|| {
        // SAFETY: registers a handler that only stores to an atomic, as a handler running in a
        // freshly forked child of a multi-threaded parent must.
        unsafe { libc::pthread_atfork(None, None, Some(forget)) };
    });
    let pid = PID.load(Ordering::Relaxed);
    if pid != 0 {
        return ProcId {
            pid,
            start: START.load(Ordering::Relaxed),
        };
    }
    let pid = std::process::id() as i32;
    // /proc is mounted wherever this crate runs; without it, 0 (the pid alone then decides).
    let start = stat_of(pid).map_or(0, |(_, start)| start);
    START.store(start, Ordering::Relaxed);
    PID.store(pid, Ordering::Relaxed);
    ProcId { pid, start }
}

impl ProcId {
    /// Whether the process still runs: it exists, is not a zombie (dead, not yet reaped), and
    /// is the same process (same start time), not a later one given its pid.
    pub(crate) fn alive(self) -> bool {
        if self.pid <= 0 {
            return false;
        }
        match stat_of(self.pid) {
            None => false,
            Some((state, start)) => {
                !matches!(state, 'Z' | 'X' | 'x') && (self.start == 0 || start == self.start)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_names_parse() {
        let line = "42 (a) b) (c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 12345 \
                    1000 10 18446744073709551615";
        assert_eq!(parse_stat(line), Some(('S', 12345)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_later_start_time_is_not_it() {
        let me = me();
        assert!(me.alive());
        assert!(me.start > 0);
        assert!(
            !ProcId {
                start: me.start + 1,
                ..me
            }
            .alive()
        );
        assert!(!ProcId { pid: 0, start: 0 }.alive());
    }
}
