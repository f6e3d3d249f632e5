//! # Chapter 5: communication between processes
//!
//! The seed's sections 进程间的通信 (队列), 管道, Managers and 进程同步, retold with typed
//! messages (serde + postcard, length-prefixed, never executed: in place of pickle), a
//! shared-memory [`Queue`], socket-pair [`Pipe`]s, a [`Manager`] server, and shared memory
//! with a robust process-shared [`Lock`].
//!
//! # Python -> Rust
//!
//! | Python | Rust |
//! |---|---|
//! | `multiprocessing.Queue()`: `put`, `get`, `get(timeout=)`, `get_nowait` | [`Queue<T>`]: [`put`](Queue::put), [`put_timeout`](Queue::put_timeout), [`get`](Queue::get), [`get_timeout`](Queue::get_timeout), [`try_get`](Queue::try_get) |
//! | `Pipe()` / `Pipe(duplex=False)` | [`Pipe::duplex`] / [`Pipe::oneway`] -> [`Connection<S, R>`] ends |
//! | `conn.send(obj)`, `conn.recv()`, `conn.poll(t)`, `conn.close()` | [`Connection::send`], [`recv`](Connection::recv), [`recv_timeout`](Connection::recv_timeout), [`poll`](Connection::poll), [`close`](Connection::close) |
//! | pickle | postcard: typed, bounded frames ([`frame`]); a bad frame is a [`FrameError`] |
//! | `EOFError` on a closed pipe | [`FrameError::Eof`] (or [`FrameError::Truncated`] mid-message) |
//! | `Manager()`, `manager.dict()`, `manager.list()`, `manager.Value` | [`Manager::start`], [`Manager::dict`], [`Manager::list`], [`Manager::value`] |
//! | `authkey` | a 0700 socket directory and an `SO_PEERCRED` uid check ([`manager`]) |
//! | `multiprocessing.Lock()` | [`Lock`]: robust, so a dead owner does not leave it locked |
//! | `multiprocessing.Value`, `Array` | [`Value<T>`], [`Array<T>`] (with their lock), [`AtomicValue`] (lock-free) |
//!
//! # Lessons, in the seed's order
//!
//! 1. [`process_queue`] (`queue`): a child puts 1, 2, 3; a thread queue does not cross fork.
//! 2. [`pipe_demo`] (`pipe`): the seed's exchange; end-of-file when the child is gone.
//! 3. [`manager_demo`] (`manager`): 5 processes write a shared dict and list.
//! 4. [`lock_demo`] (`lock`): 10 printers under a process lock; a killed holder.
//! 5. [`shared_memory`] (`shared-memory`): lost updates, then the lock and the atomic.
//!
//! Run them with `cargo run -p ipc` (all) or `cargo run -p ipc -- pipe` (one).

pub mod frame;
pub mod lock_demo;
pub mod manager;
pub mod manager_demo;
pub mod pipe;
pub mod pipe_demo;
pub mod process_queue;
pub mod queue;
pub mod shared_memory;
pub mod shm;

pub use frame::{DEFAULT_MAX_FRAME, FrameError};
pub use manager::{Data, DictProxy, ListProxy, Manager, ManagerError, ValueProxy};
pub use pipe::{Connection, Duplex, OneWay, Pipe};
pub use queue::Queue;
pub use shm::{
    Array, ArrayGuard, AtomicValue, Lock, LockError, LockGuard, Plain, ShmAtomic, Value, ValueGuard,
};

use lesson::{Chapter, Lesson};

/// The chapter: its lessons in the seed's order.
pub static CHAPTER: Chapter = Chapter {
    name: "ipc",
    title: "between processes: queues, pipes, managers, locks, shared memory",
    lessons: &[
        Lesson {
            name: "queue",
            title: "a process queue, and a thread queue that does not cross (进程间的通信)",
            run: process_queue::run,
        },
        Lesson {
            name: "pipe",
            title: "a two-way pipe with typed messages (管道)",
            run: pipe_demo::run,
        },
        Lesson {
            name: "manager",
            title: "a dict and a list shared through a manager process (Managers)",
            run: manager_demo::run,
        },
        Lesson {
            name: "lock",
            title: "a process lock, and a holder that dies (进程同步)",
            run: lock_demo::run,
        },
        Lesson {
            name: "shared-memory",
            title: "a shared counter: lost updates, the lock, the atomic (beyond the seed)",
            run: shared_memory::run,
        },
    ],
    helpers: &[],
};
