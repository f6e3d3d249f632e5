//! # Chapter 5: communication between processes
//!
//! The seed's sections 进程间的通信 (队列), 管道, Managers and 进程同步, retold with typed
//! messages (serde + postcard, length-prefixed, never executed: in place of pickle), a
//! shared-memory [`Queue`], socket-pair [`Pipe`]s, a [`Manager`] server, shared memory with a
//! robust process-shared [`Lock`]; and the rest of Python's `multiprocessing` a program reaches
//! for next: process-shared [`Event`], [`Semaphore`], [`Condition`], [`Barrier`] and
//! [`RLock`], [`SharedMemory`] by name, and [`connection::wait`].
//!
//! # Python -> Rust
//!
//! | Python | Rust |
//! |---|---|
//! | `multiprocessing.Queue(maxsize)`: `put`, `put(timeout=)`, `put_nowait`, `get`, `get(timeout=)`, `get_nowait`, `qsize`, `empty`, `full`, `close` | [`Queue<T>`] ([`new`](Queue::new), [`with_maxsize`](Queue::with_maxsize)): [`put`](Queue::put), [`put_timeout`](Queue::put_timeout), [`try_put`](Queue::try_put), [`get`](Queue::get), [`get_timeout`](Queue::get_timeout), [`try_get`](Queue::try_get), [`qsize`](Queue::qsize), [`is_empty`](Queue::is_empty), [`is_full`](Queue::is_full), [`close`](Queue::close) |
//! | `queue.Full` / `queue.Empty`; `ValueError: Queue is closed` | [`FrameError::Timeout`]; [`FrameError::Closed`] |
//! | `Pipe()` / `Pipe(duplex=False)` | [`Pipe::duplex`] / [`Pipe::oneway`] -> [`Connection<S, R>`] ends |
//! | `conn.send(obj)`, `conn.recv()`, `conn.poll(t)`, `conn.close()` | [`Connection::send`], [`recv`](Connection::recv), [`recv_timeout`](Connection::recv_timeout), [`poll`](Connection::poll), [`close`](Connection::close) |
//! | `conn.send_bytes`, `recv_bytes`, `recv_bytes_into(buf, offset)`; `BufferTooShort` | [`Connection::send_bytes`], [`recv_bytes`](Connection::recv_bytes), [`recv_bytes_into`](Connection::recv_bytes_into); [`FrameError::BufferTooShort`] |
//! | pickle | postcard: typed frames bounded in length and nesting ([`frame`]); a bad frame is a [`FrameError`] |
//! | `EOFError` on a closed pipe | [`FrameError::Eof`] (or [`FrameError::Truncated`] mid-message) |
//! | `Manager()`, `manager.dict()`, `manager.list()`, `manager.Value` | [`Manager::start`], [`Manager::dict`], [`Manager::list`], [`Manager::value`] |
//! | `OverflowError` (C types) | [`ManagerError::Overflow`]: 64-bit integers, checked |
//! | `authkey` | a 0700 socket directory and an `SO_PEERCRED` uid check ([`manager`]) |
//! | `multiprocessing.Lock()` | [`Lock`]: robust, so a dead owner does not leave it locked |
//! | `multiprocessing.Value`, `Array` (`lock=`, `get_lock()`) | [`Value<T>`], [`Array<T>`] (with their lock: [`Value::with_lock`], [`Value::get_lock`], [`Value::get_mut`]), [`AtomicValue`] (lock-free) |
//! | `RawValue`, `RawArray` | [`RawValue`] (an [`AtomicValue`]), [`RawArray`] (atomics) |
//! | `multiprocessing.RLock` | [`RLock`] |
//! | `multiprocessing.Event` | [`Event`] |
//! | `multiprocessing.Semaphore`, `BoundedSemaphore` | [`Semaphore`], [`BoundedSemaphore`] ([`Permit`]) |
//! | `multiprocessing.Condition` | [`Condition`] ([`ConditionGuard`]) |
//! | `multiprocessing.Barrier`; `BrokenBarrierError` | [`Barrier`]; [`SyncError::BrokenBarrier`] |
//! | `shared_memory.SharedMemory` | [`SharedMemory`]; [`Value::create_shared`], [`Array::create_shared`] |
//! | `connection.wait(objects, timeout)`, `p.sentinel` | [`connection::wait`], [`connection::sentinel`] |
//! | `manager.Namespace()`, `manager.Queue()` | [`Manager::namespace`], [`Manager::queue`] |
//! | `BaseManager.register`; `manager.connect()`, `manager.address` | [`Manager::builder`] ([`ManagerBuilder::register`], [`manager::Managed`]), [`Manager::create`]; [`Manager::connect`], [`Manager::address`], [`Manager::publish`], [`Manager::lookup`] |
//!
//! # Lessons, in the seed's order
//!
//! 1. [`lessons::queue`] (`queue`): a child puts 1, 2, 3; a thread queue does not cross fork.
//! 2. [`lessons::pipe`] (`pipe`): the seed's exchange; end-of-file when the child is gone.
//! 3. [`lessons::manager`] (`manager`): 5 processes write a shared dict and list.
//! 4. [`lessons::lock`] (`lock`): 10 printers under a process lock; a killed holder.
//! 5. [`lessons::shared_memory`] (`shared-memory`): lost updates, then the lock and the atomic.
//!
//! Beyond the seed's demos:
//!
//! 6. [`lessons::event`] (`event`): the seed's boss and workers as processes; a dead holder.
//! 7. [`lessons::shared_memory_by_name`] (`shared-memory-by-name`): a spawned child attaches.
//! 8. [`lessons::wait`] (`wait`): several pipes and a sentinel, waited on at once.
//! 9. [`lessons::manager_served`] (`manager-served`): Namespace, Queue, a registered type, by
//!    address.
//!
//! Run them with `cargo run -p ipc` (all) or `cargo run -p ipc -- pipe` (one).
//!
//! # Layout
//!
//! The primitives are at the crate root: [`frame`] (the message codec every other one uses),
//! [`pipe`] ([`Pipe`], [`Connection`]), [`connection`] ([`connection::wait`]), [`queue`]
//! ([`Queue`]), [`shm`] (shared memory: [`Lock`], [`Value`], [`Array`], [`AtomicValue`],
//! [`RawArray`], [`SharedMemory`]), [`synchronize`] ([`Event`], [`Semaphore`], [`RLock`],
//! [`Condition`], [`Barrier`]) and [`manager`] ([`Manager`] and its proxies). The
//! lessons are in [`lessons`], one module per lesson named as on the command line, with the
//! ordered list [`CHAPTER`]; they use only the primitives' safe API (`#![forbid(unsafe_code)]`).
//!
//! # Faults
//!
//! Every promise about a killed process, a hostile message or an exhausted limit is a test:
//! a frame cannot make a reader panic, abort or allocate for bytes that never came
//! ([`frame`]); a killed producer or consumer costs a [`Queue`] the one item it was in the
//! middle of, reported as [`FrameError::Lost`]; no request can take a [`Manager`] server down
//! or make it wait for another client, and it removes its socket however it ends; a holder
//! killed with a [`Value`] or [`Array`] locked is reported to the next holder; a dead holder of
//! a [`Semaphore`] permit or an [`RLock`] is found and reported, a killed [`Condition`] waiter
//! does not swallow a notify, a party killed at a [`Barrier`] breaks it; a [`SharedMemory`]
//! block outlives no creator.

pub mod connection;
mod deadline;
pub mod frame;
mod futex;
pub mod lessons;
pub mod manager;
pub mod pipe;
mod procid;
pub mod queue;
pub mod shm;
pub mod synchronize;

pub use frame::{DEFAULT_MAX_FRAME, FrameError};
pub use manager::{
    Data, DictProxy, ListProxy, Manager, ManagerBuilder, ManagerError, NamespaceProxy, ObjectProxy,
    QueueProxy, ValueProxy,
};
pub use pipe::{Connection, Duplex, OneWay, Pipe};
pub use queue::Queue;
pub use shm::{
    Array, ArrayGuard, AtomicValue, Lock, LockError, LockGuard, Plain, RawArray, RawValue,
    SharedMemory, ShmAtomic, ShmError, Value, ValueGuard,
};
pub use synchronize::{
    Barrier, BoundedSemaphore, Condition, ConditionGuard, Event, Permit, RLock, RLockGuard,
    Semaphore, SyncError,
};

pub use lessons::CHAPTER;
