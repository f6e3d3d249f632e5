//! How many CPUs: the machine's, and the ones this process may run on.
//!
//! Python has two answers and so does this module. `os.cpu_count()` (and
//! `multiprocessing.cpu_count()`) count the CPUs the machine has online; Python 3.13's
//! `os.process_cpu_count()` counts the CPUs this process may run on, its affinity mask
//! (`sched_getaffinity`), which `taskset`, a container or a job scheduler may have narrowed.
//! Size a pool of CPU-bound workers by the second: more workers than usable CPUs only take turns.
//! `std::thread::available_parallelism()` goes one step further and also honours a cgroup CPU
//! quota.
//!
//! The `threads` chapter re-exports both (`threads::cpu_count`), since its `gil` lesson picks its
//! thread count with them; they live here because Python's `multiprocessing.cpu_count()` does.

use nix::sched::sched_getaffinity;
use nix::unistd::{Pid, SysconfVar, sysconf};

/// The CPUs the machine has online, at least 1. Replaces `os.cpu_count()` and
/// `multiprocessing.cpu_count()` (which raise or return `None` where the count is unknown; this
/// says 1 there).
pub fn cpu_count() -> usize {
    match sysconf(SysconfVar::_NPROCESSORS_ONLN) {
        Ok(Some(n)) if n > 0 => n as usize,
        _ => 1,
    }
}

/// The CPUs this process may run on (the calling thread's affinity mask), at least 1.
/// Replaces Python 3.13's `os.process_cpu_count()`: `len(os.sched_getaffinity(0))`. Falls back
/// to [`cpu_count`] where the mask cannot be read.
pub fn process_cpu_count() -> usize {
    let Ok(set) = sched_getaffinity(Pid::from_raw(0)) else {
        return cpu_count();
    };
    // CpuSet has no count: ask each index until it is out of range.
    let n = (0..)
        .map_while(|i| set.is_set(i).ok())
        .filter(|&on| on)
        .count();
    n.max(1)
}
