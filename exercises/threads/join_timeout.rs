//! threads -- introspection: wait with a time limit, then ask the thread to stop.
//!
//! After the lesson `cargo run -p threads -- introspection`.
//! Check your work: `cargo xtask exercise join-timeout`.
//! Run it: `cargo run --bin join-timeout` in `exercises/`.
//!
//! A thread cannot be killed from outside, in Python or in Rust: it has to be asked, and it
//! has to listen. Here the job listens to a `cancel` flag; `join_timeout` (Python's
//! `t.join(timeout)` then `t.is_alive()`) says whether it finished in time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use threads::Thread;

// TODO(threads -- introspection): `join()` waits as long as the job runs, and a job that only
// stops when cancelled never returns. Wait at most `limit` (`Thread::join_timeout`); if the
// job has not finished by then, set `cancel` and join it (it stops soon after). Return whether
// it finished in time.
/// Run `job` on a thread named "job"; give it `limit` to finish, then cancel it. `true` if it
/// finished within `limit`. Either way the thread has ended when this returns.
pub fn run_with_limit(limit: Duration, job: impl FnOnce(&AtomicBool) + Send + 'static) -> bool {
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cancel);
    let t = Thread::builder()
        .name("job")
        .spawn(move || job(&flag))
        .expect("start the job");
    let _ = limit;
    t.join().expect("the job panicked");
    true
}

/// A job that works until it is cancelled, checking the flag between steps.
pub fn until_cancelled(cancel: &AtomicBool) {
    while !cancel.load(Ordering::SeqCst) {
        std::thread::park_timeout(Duration::from_millis(1)); // one step of work
    }
}

fn main() {
    let quick = run_with_limit(Duration::from_millis(200), |_| {});
    let endless = run_with_limit(Duration::from_millis(200), until_cancelled);
    println!("quick job finished in time: {quick}; endless job finished in time: {endless}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use exercise_check::nothing_left;

    #[test]
    fn a_quick_job_finishes_in_time() {
        assert!(nothing_left(|| run_with_limit(
            Duration::from_secs(5),
            |_| {}
        )));
    }

    #[test]
    fn an_endless_job_is_cancelled() {
        let in_time = nothing_left(|| run_with_limit(Duration::from_millis(50), until_cancelled));
        assert!(!in_time, "the endless job cannot have finished in time");
    }
}
