//! sync -- race: the seed's lost update, which Rust refuses to compile.
//!
//! After the lesson `cargo run -p sync -- race`.
//! Check your work: `cargo xtask exercise race-lock`.
//! Run it: `cargo run --bin race-lock` in `exercises/`.
//!
//! The seed's `sub()` reads the global `num`, pauses, and writes `temp - 1`: a hundred threads
//! doing that at once overwrite each other's updates, and the result is not 0. Written the same
//! way in Rust, it does not compile at all.

use std::thread;

/// The seed's `time.sleep(0.001)` between the read and the write: let the others run.
fn pause() {
    thread::yield_now();
}

// TODO(sync -- race): make this compile and return 0: put `num` inside a lock
// (`std::sync::Mutex`) and hold the lock from the read to the write, pause included, as the
// seed does with `lock.acquire()` ... `lock.release()`.
/// Start `threads` threads; each takes 1 from a counter that starts at `threads`. The end value.
pub fn count_down(threads: usize) -> i64 {
    let mut num = threads as i64;
    thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let temp = num;
                pause();
                num = temp - 1;
            });
        }
    });
    num
}

fn main() {
    println!("{}", count_down(100));
}

#[cfg(test)]
mod tests {
    use super::*;
    use exercise_check::nothing_left;

    #[test]
    fn a_hundred_threads_reach_zero() {
        for _ in 0..5 {
            assert_eq!(nothing_left(|| count_down(100)), 0, "an update was lost");
        }
    }
}
