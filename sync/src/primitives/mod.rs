//! The primitives Python's `threading` has and std lacks (or hides).

mod event;
mod rlock;
mod semaphore;
pub(crate) mod shim;
mod timer;
mod waitgraph;

pub use event::Event;
pub use rlock::{RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, OverRelease, Permit, Semaphore};
pub use timer::Timer;
pub use waitgraph::{DEFAULT_TICK, Deadlock, Edge, LockGraph, TrackedGuard, TrackedMutex};
