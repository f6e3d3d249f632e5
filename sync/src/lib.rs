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
//! | an exception between `acquire` and `release` | the guard releases during the unwind and *poisons* the mutex (lesson [`poison`](lessons::poison)) |
//! | `num -= 1` on a shared global from many threads | does not compile; `AtomicI64::fetch_sub`, or a `Mutex<i64>` |
//! | `lock.acquire(blocking=False)` / `acquire(timeout=...)` | `Mutex::try_lock`; `parking_lot::Mutex::try_lock_for` |
//! | a deadlock: the program hangs | [`LockGraph`] / [`TrackedMutex`]: `lock()` returns a [`Deadlock`] naming the cycle |
//! | the lesson's `Lock`: `acquire(False)`, `acquire(timeout=)`, `locked()` | [`TrackedMutex::try_lock`], [`TrackedMutex::lock_timeout`], [`TrackedMutex::locked`] |
//! | `threading.RLock()`, `_is_owned()` | [`RLock`] (shows its count), [`RLock::is_owned`]; `parking_lot::ReentrantMutex` for data |
//! | `threading.Semaphore(n)`, `release(n)` | [`Semaphore`] with an RAII [`Permit`]; `try_acquire`, `acquire_timeout`, [`Semaphore::release_n`] |
//! | `threading.BoundedSemaphore(n)` | [`BoundedSemaphore`]: a release past the bound (also by dropping a permit already released) is refused, an [`OverRelease`] error where it can be reported |
//! | `threading.Event()`: `set`, `clear`, `is_set` (`isSet`), `wait([timeout])` | [`Event`], which no waiter can miss even when `set` is followed at once by `clear` |
//! | `threading.Condition()`: `wait_for`, `notify`, `notify_all` | `std::sync::Condvar`: `wait_while`, `wait_timeout_while`, `notify_one`, `notify_all` |
//! | `threading.Barrier(n, action, timeout)`, `BrokenBarrierError` | [`Barrier`]: the action runs before anyone is released; `wait_timeout`, `abort`, `reset`, `broken`, `n_waiting`, `parties`; [`BrokenBarrier`] (std's `Barrier` has none of these) |
//! | `threading.Timer(s, f)`, `cancel()` | [`Timer`]: `cancel()` says whether it was in time |
//!
//! # Lessons, in the seed's order
//!
//! 1. [`race`](lessons::race): 100 threads lose 99 updates without a lock; a `Mutex` or
//!    `fetch_sub` gives 0.
//! 2. [`deadlock`](lessons::deadlock): the seed's two locks in opposite orders, detected; fixed
//!    by one RLock, and by one lock order.
//! 3. [`rlock`](lessons::rlock): the count of a reentrant lock, and a plain lock's deadlock with
//!    itself.
//! 4. [`semaphore`](lessons::semaphore): Semaphore(5) with 10 threads: never more than 5 inside.
//! 5. [`event`](lessons::event): the boss and the workers; a set followed at once by clear still
//!    wakes waiters.
//! 6. [`condition`](lessons::condition): a consumer waits on a `Condvar` for a predicate.
//! 7. [`barrier`](lessons::barrier): std's barrier and its leader; [`Barrier`]'s action runs
//!    before anyone passes, and a timeout breaks it.
//! 8. [`timer`](lessons::timer): a function after a delay, and a cancelled one that never runs.
//! 9. [`poison`](lessons::poison): a panic inside a locked section, and the seed's
//!    acquire/release without finally.
//!
//! Run them with `cargo run -p sync` (all) or `cargo run -p sync -- deadlock` (one).
//!
//! # Layout
//!
//! The primitives are the private modules at the crate root, re-exported here: `semaphore`
//! ([`Semaphore`], [`BoundedSemaphore`]), `event` ([`Event`]), `rlock` ([`RLock`]), `barrier`
//! ([`Barrier`]), `timer` ([`Timer`]), `waitgraph` ([`LockGraph`], [`TrackedMutex`]),
//! `deadline` (timed waits: a timeout too long to represent waits as long as it takes), and
//! `shim`, which switches the semaphore and the event to loom's types under `--cfg loom`. The lessons are in [`lessons`], one module per lesson
//! named as on the command line, with [`CHAPTER`], their order; they use the primitives only
//! through these re-exports and contain no `unsafe`.
#![forbid(unsafe_code)]

mod barrier;
mod deadline;
mod event;
pub mod lessons;
mod rlock;
mod semaphore;
mod shim;
mod timer;
mod waitgraph;

pub use barrier::{Barrier, BrokenBarrier};
pub use event::Event;
pub use lessons::CHAPTER;
pub use rlock::{RLock, RLockGuard};
pub use semaphore::{
    BoundedSemaphore, MAX_PERMITS, OverRelease, Permit, Semaphore, TooManyPermits,
};
pub use timer::Timer;
pub use waitgraph::{DEFAULT_TICK, Deadlock, Edge, LockGraph, TrackedGuard, TrackedMutex};
