//! `selectors`: Python's `selectors` module. A [`Selector`] watches many file descriptors and
//! says which are ready: [`SelectSelector`] on `select`, [`PollSelector`] on `poll`,
//! [`EpollSelector`] on `epoll` ([`DefaultSelector`], as in Python on Linux). The same program
//! runs on any of them (the `select-poll-epoll` lesson's echo server); what differs is the
//! cost of a wait, and `select`'s limit of descriptors below 1024.
//!
//! | Python | Rust |
//! |---|---|
//! | `selectors.DefaultSelector()` | [`DefaultSelector::new`] (epoll) |
//! | `sel.register(fileobj, events, data)` | [`Selector::register`]: a borrowed fd (any `AsFd`), [`Events`], data of any type `T` |
//! | `sel.unregister(fileobj)`, `sel.modify(...)` | [`Selector::unregister`] (by number: it works after the fd is closed, as Python's), [`Selector::modify`] |
//! | `sel.select(timeout)` -> `[(key, events)]` | [`Selector::select`] (or [`Selector::select_into`], which allocates nothing) |
//! | `sel.get_key(f)`, `sel.get_map()` | [`Selector::get_key`], [`Selector::get_map`] |
//! | `sel.close()`, `with sel:` | [`Selector::close`], and `Drop` |
//! | `EVENT_READ`, `EVENT_WRITE` | [`Events::READ`], [`Events::WRITE`] (and [`Events::HUP`], reported only) |
//! | `ValueError`, `KeyError`, `RuntimeError`, `OSError` | [`SelectorError`]'s kinds |
//!
//! A selector does not own the descriptors it watches, as in Python: the caller closes them,
//! and unregisters them (before or after closing).

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::ops::{BitAnd, BitOr};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

mod backends;

pub use backends::{EpollSelector, PollSelector, SelectSelector};

/// Python's `selectors.DefaultSelector` on Linux: the epoll selector.
pub type DefaultSelector<T> = EpollSelector<T>;

/// What to watch a descriptor for, and what a `select` found: Python's `EVENT_READ` and
/// `EVENT_WRITE` as bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Events(u8);

impl Events {
    /// Readable (or a connection to accept, or the peer's end of file). `EVENT_READ`.
    pub const READ: Events = Events(1);
    /// Writable (or a connect finished). `EVENT_WRITE`.
    pub const WRITE: Events = Events(2);
    /// Reported, never asked for: the peer hung up or the descriptor failed. Python reports
    /// these as readable and writable (a read or write then says what happened); so does this,
    /// and it adds `HUP`, for who wants to know without the extra call.
    pub const HUP: Events = Events(4);

    /// No event.
    pub const fn empty() -> Events {
        Events(0)
    }

    /// Whether every event of `other` is in `self`.
    pub const fn contains(self, other: Events) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether it has no event.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether it shares an event with `other`.
    pub const fn intersects(self, other: Events) -> bool {
        self.0 & other.0 != 0
    }
}

impl BitOr for Events {
    type Output = Events;
    fn bitor(self, rhs: Events) -> Events {
        Events(self.0 | rhs.0)
    }
}

impl BitAnd for Events {
    type Output = Events;
    fn bitand(self, rhs: Events) -> Events {
        Events(self.0 & rhs.0)
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [
            (Events::READ, "READ"),
            (Events::WRITE, "WRITE"),
            (Events::HUP, "HUP"),
        ]
        .into_iter()
        .filter(|(e, _)| self.contains(*e))
        .map(|(_, n)| n)
        .collect();
        if names.is_empty() {
            f.write_str("Events()")
        } else {
            write!(f, "Events({})", names.join(" | "))
        }
    }
}

/// A registered descriptor: Python's `SelectorKey` (its `fileobj` is the number here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key<T> {
    /// The descriptor's number.
    pub fd: RawFd,
    /// What it is watched for.
    pub events: Events,
    /// What was registered with it.
    pub data: T,
}

/// Why a selector call failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum SelectorError {
    /// Events with neither `READ` nor `WRITE`, or with `HUP` (Python's `ValueError`).
    InvalidEvents(Events),
    /// A negative descriptor (Python's `ValueError`).
    InvalidFd(RawFd),
    /// `register` of a descriptor registered already (Python's `KeyError`).
    AlreadyRegistered(RawFd),
    /// A descriptor that is not registered (Python's `KeyError`).
    NotRegistered(RawFd),
    /// The selector was closed (Python's `RuntimeError`).
    Closed,
    /// `select` cannot watch a descriptor this high (it only handles those below 1024,
    /// `FD_SETSIZE`): use poll or epoll. Python's `ValueError` at `select` time.
    TooHigh(RawFd),
    /// The system call failed (for example epoll's `EPERM` for a regular file).
    Os(io::Error),
}

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectorError::InvalidEvents(e) => write!(f, "invalid events: {e:?}"),
            SelectorError::InvalidFd(fd) => write!(f, "invalid file descriptor {fd}"),
            SelectorError::AlreadyRegistered(fd) => write!(f, "fd {fd} is already registered"),
            SelectorError::NotRegistered(fd) => write!(f, "fd {fd} is not registered"),
            SelectorError::Closed => f.write_str("the selector is closed"),
            SelectorError::TooHigh(fd) => write!(
                f,
                "select cannot watch fd {fd}: it only handles fds below {} (use poll or epoll)",
                nix::libc::FD_SETSIZE
            ),
            SelectorError::Os(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SelectorError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SelectorError::Os(e) => Some(e),
            _ => None,
        }
    }
}

impl From<nix::Error> for SelectorError {
    fn from(e: nix::Error) -> SelectorError {
        SelectorError::Os(e.into())
    }
}

impl From<SelectorError> for io::Error {
    fn from(e: SelectorError) -> io::Error {
        match e {
            SelectorError::Os(e) => e,
            other => io::Error::other(other),
        }
    }
}

/// Watches descriptors and says which are ready. Python's `selectors.BaseSelector`.
pub trait Selector<T> {
    /// Watch `fd` for `events`, with `data`. Python's `register`.
    ///
    /// # Errors
    /// [`SelectorError::InvalidEvents`], [`SelectorError::InvalidFd`],
    /// [`SelectorError::AlreadyRegistered`], [`SelectorError::Closed`],
    /// [`SelectorError::TooHigh`] (select), or [`SelectorError::Os`] (epoll refused it; it is
    /// not registered then).
    fn register(
        &mut self,
        fd: BorrowedFd<'_>,
        events: Events,
        data: T,
    ) -> Result<&Key<T>, SelectorError>;

    /// Stop watching descriptor number `fd` (closed already or not); its key. Python's
    /// `unregister`.
    ///
    /// # Errors
    /// [`SelectorError::NotRegistered`], [`SelectorError::Closed`].
    fn unregister(&mut self, fd: RawFd) -> Result<Key<T>, SelectorError>;

    /// Change what `fd` is watched for, and its data. Python's `modify`: changing only the
    /// data makes no system call.
    ///
    /// # Errors
    /// As [`register`](Selector::register), and [`SelectorError::NotRegistered`]; if the
    /// system refuses the change, the descriptor is unregistered (Python issue 30014).
    fn modify(
        &mut self,
        fd: BorrowedFd<'_>,
        events: Events,
        data: T,
    ) -> Result<&Key<T>, SelectorError>;

    /// Wait until a descriptor is ready or `timeout` passes (`None`: no limit; zero: only
    /// look), and put each ready one in `ready` (cleared first), with its events. An
    /// interrupted wait (a signal) goes on for what is left of `timeout` (PEP 475).
    ///
    /// # Errors
    /// [`SelectorError::Closed`], or [`SelectorError::Os`] from the system call.
    fn select_into(
        &mut self,
        timeout: Option<Duration>,
        ready: &mut Vec<(RawFd, Events)>,
    ) -> Result<(), SelectorError>;

    /// The registered descriptors (empty once closed). Python's `get_map`.
    fn get_map(&self) -> &HashMap<RawFd, Key<T>>;

    /// Stop watching everything, and free what the selector holds (epoll's descriptor).
    /// Python's `close`; dropping a selector does it too.
    fn close(&mut self);

    /// Whether it was closed.
    fn is_closed(&self) -> bool;

    /// The selector's own descriptor, if it has one (epoll). Python's `fileno`.
    fn fileno(&self) -> Option<RawFd>;

    /// [`select_into`](Selector::select_into), with the keys: Python's `select`.
    ///
    /// # Errors
    /// As [`select_into`](Selector::select_into).
    fn select(
        &mut self,
        timeout: Option<Duration>,
    ) -> Result<Vec<(&Key<T>, Events)>, SelectorError> {
        let mut ready = Vec::new();
        self.select_into(timeout, &mut ready)?;
        let map = self.get_map();
        Ok(ready
            .into_iter()
            .filter_map(|(fd, ev)| map.get(&fd).map(|k| (k, ev)))
            .collect())
    }

    /// The key of descriptor number `fd`. Python's `get_key`.
    ///
    /// # Errors
    /// [`SelectorError::NotRegistered`], [`SelectorError::Closed`].
    fn get_key(&self, fd: RawFd) -> Result<&Key<T>, SelectorError> {
        if self.is_closed() {
            return Err(SelectorError::Closed);
        }
        self.get_map()
            .get(&fd)
            .ok_or(SelectorError::NotRegistered(fd))
    }
}

/// The part every backend shares: the keys, and the checks Python's `_BaseSelectorImpl` makes.
struct Registry<T> {
    keys: HashMap<RawFd, Key<T>>,
    closed: bool,
}

impl<T> Registry<T> {
    fn new() -> Registry<T> {
        Registry {
            keys: HashMap::new(),
            closed: false,
        }
    }

    fn check_open(&self) -> Result<(), SelectorError> {
        if self.closed {
            Err(SelectorError::Closed)
        } else {
            Ok(())
        }
    }

    /// The checks of a new registration; the key, not yet inserted.
    fn new_key(
        &self,
        fd: BorrowedFd<'_>,
        events: Events,
        data: T,
    ) -> Result<Key<T>, SelectorError> {
        self.check_open()?;
        let fd = fd.as_raw_fd();
        if events.is_empty()
            || events.contains(Events::HUP)
            || !events.intersects(Events::READ | Events::WRITE)
        {
            return Err(SelectorError::InvalidEvents(events));
        }
        if fd < 0 {
            return Err(SelectorError::InvalidFd(fd));
        }
        if self.keys.contains_key(&fd) {
            return Err(SelectorError::AlreadyRegistered(fd));
        }
        Ok(Key { fd, events, data })
    }

    fn insert(&mut self, key: Key<T>) -> &Key<T> {
        let fd = key.fd;
        self.keys.insert(fd, key);
        &self.keys[&fd]
    }

    /// For `modify`: take `fd`'s key out and build its new one (not yet inserted), with the
    /// events it had; when the new key cannot be built, the old one stays registered.
    fn rekey(
        &mut self,
        fd: BorrowedFd<'_>,
        events: Events,
        data: T,
    ) -> Result<(Key<T>, Events), SelectorError> {
        let old = self.remove(fd.as_raw_fd())?;
        match self.new_key(fd, events, data) {
            Ok(key) => Ok((key, old.events)),
            Err(e) => {
                self.insert(old);
                Err(e)
            }
        }
    }

    fn remove(&mut self, fd: RawFd) -> Result<Key<T>, SelectorError> {
        self.check_open()?;
        self.keys
            .remove(&fd)
            .ok_or(SelectorError::NotRegistered(fd))
    }

    fn close(&mut self) {
        self.closed = true;
        self.keys.clear();
    }
}

/// What is left of `timeout` after `start`, for a wait restarted after a signal.
fn remaining(timeout: Option<Duration>, start: Instant) -> Option<Duration> {
    timeout.map(|t| t.saturating_sub(start.elapsed()))
}

/// Milliseconds for poll and epoll: rounded up (a wait never ends early), -1 for none.
fn millis(timeout: Option<Duration>) -> nix::poll::PollTimeout {
    match timeout {
        None => nix::poll::PollTimeout::NONE,
        Some(t) => {
            let ms = t.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32;
            nix::poll::PollTimeout::try_from(ms).unwrap_or(nix::poll::PollTimeout::MAX)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wait with less than a millisecond left still waits (1 ms): rounded down to 0 it
    /// returned at once, and the event loop waited once more for nothing.
    #[test]
    fn millis_rounds_any_time_left_up_to_a_whole_millisecond() {
        let ms = |d: Duration| i32::from(millis(Some(d)));
        assert_eq!(ms(Duration::ZERO), 0);
        assert_eq!(ms(Duration::from_nanos(1)), 1);
        assert_eq!(ms(Duration::from_nanos(500)), 1);
        assert_eq!(ms(Duration::from_micros(1000)), 1);
        assert_eq!(ms(Duration::from_nanos(1_000_001)), 2);
        assert_eq!(ms(Duration::MAX), i32::MAX);
        assert_eq!(i32::from(millis(None)), -1);
    }
}
