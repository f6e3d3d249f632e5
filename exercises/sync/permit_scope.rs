//! sync -- semaphore: a permit lasts as long as its binding.
//!
//! After the lesson `cargo run -p sync -- semaphore`.
//! Check your work: `cargo xtask exercise permit-scope`.
//! Run it: `cargo run --bin permit-scope` in `exercises/`.
//!
//! `sync::Semaphore::acquire` returns a `Permit`; the permit goes back when the value is
//! dropped (Python's `with semaphore:`). So when it is dropped is the whole point, and Rust
//! has a trap there: `let _ = value;` does not bind the value at all, it drops it at once,
//! while `let _permit = value;` keeps it to the end of the block.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use sync::Semaphore;

// TODO(sync -- semaphore): the permit is given back on this very line, before `site` runs, so
// the semaphore limits nothing. Keep it until `site` has returned.
/// Run `site` while holding one of `sem`'s permits.
pub fn visit(sem: &Semaphore, site: impl FnOnce()) {
    let _ = sem.acquire();
    site();
}

/// The seed's program: `threads` threads visit under `Semaphore(limit)`; the most visitors
/// that were inside at the same moment.
pub fn most_inside(threads: usize, limit: usize) -> usize {
    let sem = Semaphore::new(limit);
    let inside = AtomicUsize::new(0);
    let most = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                visit(&sem, || {
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    thread::yield_now();
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            });
        }
    });
    most.into_inner()
}

fn main() {
    println!("at most {} inside at once", most_inside(10, 5));
}

#[cfg(test)]
mod tests {
    use super::*;
    use exercise_check::nothing_left;

    #[test]
    fn a_visit_holds_a_permit() {
        nothing_left(|| {
            let sem = Semaphore::new(5);
            visit(&sem, || {
                assert_eq!(
                    sem.available(),
                    4,
                    "while `site` runs, the visitor's permit must be taken"
                )
            });
            assert_eq!(sem.available(), 5, "the permit goes back after the visit");
        });
    }

    #[test]
    fn never_more_than_five_inside() {
        for _ in 0..20 {
            let most = nothing_left(|| most_inside(10, 5));
            assert!(most <= 5, "{most} visitors inside at once");
        }
    }
}
