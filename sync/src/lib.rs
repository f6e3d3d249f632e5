//! # Chapter 2: locks, deadlock, RLock, Semaphore, Event (and Condition, Barrier, Timer)
//!
//! The seed's sections 同步锁lock, 死锁(递归锁), 信号量与同步对象 and 同步对象 event, retold
//! with std's `Mutex`, `Condvar` and `Barrier`, atomics, and the primitives below for what
//! Python's `threading` has and std lacks.
//!
//! # Python -> Rust
//!
//! | Python | Rust |
//! |---|---|
//! | `lock = threading.Lock()`; `acquire()` ... `release()` | `std::sync::Mutex<T>`: `lock()` returns a guard, dropping it releases; the data lives *inside* the lock |
//! | `with lock:` | the guard's scope |
//! | an exception between `acquire` and `release` | the guard releases during the unwind and *poisons* the mutex (lesson [`poison`]) |
//! | `num -= 1` on a shared global from many threads | does not compile; `AtomicI64::fetch_sub`, or a `Mutex<i64>` |
//! | `lock.acquire(blocking=False)` / `acquire(timeout=...)` | `Mutex::try_lock`; `parking_lot::Mutex::try_lock_for` |
//! | a deadlock: the program hangs | [`LockGraph`] / [`TrackedMutex`]: `lock()` returns a [`Deadlock`] naming the cycle |
//! | `threading.RLock()` | [`RLock`] (shows its count); `parking_lot::ReentrantMutex` for data |
//! | `threading.Semaphore(n)` | [`Semaphore`] with an RAII [`Permit`]; `try_acquire`, `acquire_timeout` |
//! | `threading.BoundedSemaphore(n)` | [`BoundedSemaphore`]: an extra `release()` is an [`OverRelease`] error |
//! | `threading.Event()`: `set`, `clear`, `is_set` (`isSet`), `wait([timeout])` | [`Event`], which no waiter can miss even when `set` is followed at once by `clear` |
//! | `threading.Condition()`: `wait_for`, `notify`, `notify_all` | `std::sync::Condvar`: `wait_while`, `wait_timeout_while`, `notify_one`, `notify_all` |
//! | `threading.Barrier(n, action)` | `std::sync::Barrier`: the leader's `wait()` returns `is_leader()` |
//! | `threading.Timer(s, f)`, `cancel()` | [`Timer`]: `cancel()` says whether it was in time |
//!
//! # Lessons, in the seed's order
//!
//! 1. [`race`]: 100 threads lose 99 updates without a lock; a `Mutex` or `fetch_sub` gives 0.
//! 2. [`deadlock`]: the seed's two locks in opposite orders, detected; fixed by one RLock, and
//!    by one lock order.
//! 3. [`rlock`]: the count of a reentrant lock, and a plain lock's deadlock with itself.
//! 4. [`semaphore`]: Semaphore(5) with 10 threads: never more than 5 inside.
//! 5. [`event`]: the boss and the workers; a set followed at once by clear still wakes waiters.
//! 6. [`condition`], [`barrier`], [`timer`]: the next tools a learner reaches for.
//! 7. [`poison`]: a panic inside a locked section, and the seed's acquire/release without
//!    finally.
//!
//! Run them with `cargo run -p sync` (all) or `cargo run -p sync -- deadlock` (one).
#![forbid(unsafe_code)]

pub mod barrier;
pub mod condition;
pub mod deadlock;
pub mod event;
pub mod poison;
mod primitives;
pub mod race;
pub mod rlock;
pub mod semaphore;
pub mod timer;

pub use primitives::{
    BoundedSemaphore, DEFAULT_TICK, Deadlock, Edge, Event, LockGraph, OverRelease, Permit, RLock,
    RLockGuard, Semaphore, Timer, TrackedGuard, TrackedMutex,
};

use lesson::{Chapter, Lesson};

/// The chapter: its lessons in the seed's order.
pub static CHAPTER: Chapter = Chapter {
    name: "sync",
    title: "locks and their traps: the race, deadlock, RLock, Semaphore, Event, and more",
    lessons: &[
        Lesson {
            name: "race",
            title: "100 threads, one number: the lost update and its fixes (同步锁lock)",
            run: race::run,
        },
        Lesson {
            name: "deadlock",
            title: "two locks in opposite orders: detected, then fixed (死锁(递归锁))",
            run: deadlock::run,
        },
        Lesson {
            name: "rlock",
            title: "the reentrant lock's counter (死锁(递归锁))",
            run: rlock::run,
        },
        Lesson {
            name: "semaphore",
            title: "Semaphore(5) and ten threads; BoundedSemaphore (信号量与同步对象)",
            run: semaphore::run,
        },
        Lesson {
            name: "event",
            title: "the boss and the workers: set, clear, wait (同步对象 event)",
            run: event::run,
        },
        Lesson {
            name: "condition",
            title: "a Condvar waited on a predicate (beyond the seed: threading.Condition)",
            run: condition::run,
        },
        Lesson {
            name: "barrier",
            title: "a Barrier and its leader (beyond the seed: threading.Barrier)",
            run: barrier::run,
        },
        Lesson {
            name: "timer",
            title: "a function after a delay, and cancelling it (beyond the seed: threading.Timer)",
            run: timer::run,
        },
        Lesson {
            name: "poison",
            title: "a panic inside a lock; acquire/release without finally (同步锁lock)",
            run: poison::run,
        },
    ],
    helpers: &[],
};
