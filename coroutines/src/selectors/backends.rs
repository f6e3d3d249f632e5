//! The three selectors: on `select`, `poll` and `epoll`.
//!
//! They hold descriptor numbers, not descriptors (a selector owns none, as in Python), and
//! hand them to the kernel as `BorrowedFd`s made for the length of one call. A number whose
//! descriptor was closed meanwhile is answered by the kernel with `EBADF` (or `POLLNVAL`);
//! the selector never reads, writes or closes one.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::libc;
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::select::{FdSet, select};
use nix::sys::time::TimeVal;

use super::{Events, Key, Registry, Selector, SelectorError, millis, remaining};

/// The descriptor numbered `fd`, borrowed for one system call.
fn borrowed<'a>(fd: RawFd) -> BorrowedFd<'a> {
    // SAFETY: the number is only passed to select, poll or epoll_ctl, which look it up in the
    // kernel: if it was closed, they fail with EBADF (or report POLLNVAL); nothing reads,
    // writes or closes it, and the borrow ends with the call (module doc).
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Run `call` with what is left of `timeout`, again after each `EINTR` (PEP 475).
fn retrying<R>(
    timeout: Option<Duration>,
    mut call: impl FnMut(Option<Duration>) -> nix::Result<R>,
) -> nix::Result<R> {
    let start = Instant::now();
    loop {
        match call(remaining(timeout, start)) {
            Err(Errno::EINTR) => {}
            r => return r,
        }
    }
}

/// Python's `SelectSelector`: `select(2)`, with a bitmap of descriptors below 1024 built and
/// scanned in full at every call.
pub struct SelectSelector<T> {
    reg: Registry<T>,
}

impl<T> SelectSelector<T> {
    /// A new selector.
    pub fn new() -> SelectSelector<T> {
        SelectSelector {
            reg: Registry::new(),
        }
    }
}

impl<T> Default for SelectSelector<T> {
    fn default() -> SelectSelector<T> {
        SelectSelector::new()
    }
}

impl<T> Selector<T> for SelectSelector<T> {
    fn register(
        &mut self,
        fd: BorrowedFd<'_>,
        events: Events,
        data: T,
    ) -> Result<&Key<T>, SelectorError> {
        let key = self.reg.new_key(fd, events, data)?;
        if key.fd >= libc::FD_SETSIZE as RawFd {
            return Err(SelectorError::TooHigh(key.fd));
        }
        Ok(self.reg.insert(key))
    }

    fn unregister(&mut self, fd: RawFd) -> Result<Key<T>, SelectorError> {
        self.reg.remove(fd)
    }

    fn modify(
        &mut self,
        fd: BorrowedFd<'_>,
        events: Events,
        data: T,
    ) -> Result<&Key<T>, SelectorError> {
        let (key, _) = self.reg.rekey(fd, events, data)?;
        Ok(self.reg.insert(key))
    }

    fn select_into(
        &mut self,
        timeout: Option<Duration>,
        ready: &mut Vec<(RawFd, Events)>,
    ) -> Result<(), SelectorError> {
        self.reg.check_open()?;
        ready.clear();
        let (r, w) = retrying(timeout, |left| {
            let mut r = FdSet::new();
            let mut w = FdSet::new();
            for key in self.reg.keys.values() {
                if key.events.contains(Events::READ) {
                    r.insert(borrowed(key.fd));
                }
                if key.events.contains(Events::WRITE) {
                    w.insert(borrowed(key.fd));
                }
            }
            let mut tv = left.map(|d| {
                TimeVal::new(
                    d.as_secs() as libc::time_t,
                    d.subsec_micros() as libc::suseconds_t,
                )
            });
            select(None, &mut r, &mut w, None, tv.as_mut())?;
            let rfds: Vec<RawFd> = r.fds(None).map(|fd| fd.as_raw_fd()).collect();
            let wfds: Vec<RawFd> = w.fds(None).map(|fd| fd.as_raw_fd()).collect();
            Ok((rfds, wfds))
        })?;
        for fd in r {
            ready.push((fd, Events::READ));
        }
        for fd in w {
            match ready.iter_mut().find(|(f, _)| *f == fd) {
                Some((_, e)) => *e = *e | Events::WRITE,
                None => ready.push((fd, Events::WRITE)),
            }
        }
        Ok(())
    }

    fn get_map(&self) -> &HashMap<RawFd, Key<T>> {
        &self.reg.keys
    }

    fn close(&mut self) {
        self.reg.close();
    }

    fn is_closed(&self) -> bool {
        self.reg.closed
    }

    fn fileno(&self) -> Option<RawFd> {
        None
    }
}

/// What the kernel's poll or epoll flags mean as [`Events`]: an error or hang-up is reported
/// as readable and writable (and `HUP`), masked by what the key asked for.
fn reported(asked: Events, read: bool, write: bool, trouble: bool) -> Events {
    let mut e = Events::empty();
    if read {
        e = e | Events::READ;
    }
    if write {
        e = e | Events::WRITE;
    }
    if trouble {
        e = e | Events::READ | Events::WRITE | Events::HUP;
    }
    e & (asked | Events::HUP)
}

/// Python's `PollSelector`: `poll(2)`, with an array of every descriptor passed at every call.
pub struct PollSelector<T> {
    reg: Registry<T>,
}

impl<T> PollSelector<T> {
    /// A new selector.
    pub fn new() -> PollSelector<T> {
        PollSelector {
            reg: Registry::new(),
        }
    }
}

impl<T> Default for PollSelector<T> {
    fn default() -> PollSelector<T> {
        PollSelector::new()
    }
}

impl<T> Selector<T> for PollSelector<T> {
    fn register(
        &mut self,
        fd: BorrowedFd<'_>,
        events: Events,
        data: T,
    ) -> Result<&Key<T>, SelectorError> {
        let key = self.reg.new_key(fd, events, data)?;
        Ok(self.reg.insert(key))
    }

    fn unregister(&mut self, fd: RawFd) -> Result<Key<T>, SelectorError> {
        self.reg.remove(fd)
    }

    fn modify(
        &mut self,
        fd: BorrowedFd<'_>,
        events: Events,
        data: T,
    ) -> Result<&Key<T>, SelectorError> {
        let (key, _) = self.reg.rekey(fd, events, data)?;
        Ok(self.reg.insert(key))
    }

    fn select_into(
        &mut self,
        timeout: Option<Duration>,
        ready: &mut Vec<(RawFd, Events)>,
    ) -> Result<(), SelectorError> {
        self.reg.check_open()?;
        ready.clear();
        let keys: Vec<(RawFd, Events)> = self.reg.keys.values().map(|k| (k.fd, k.events)).collect();
        let found = retrying(timeout, |left| {
            let mut fds: Vec<PollFd<'_>> = keys
                .iter()
                .map(|&(fd, ev)| {
                    let mut flags = PollFlags::empty();
                    if ev.contains(Events::READ) {
                        flags |= PollFlags::POLLIN;
                    }
                    if ev.contains(Events::WRITE) {
                        flags |= PollFlags::POLLOUT;
                    }
                    PollFd::new(borrowed(fd), flags)
                })
                .collect();
            poll(&mut fds, millis(left))?;
            Ok(fds
                .iter()
                .map(|f| f.revents().unwrap_or(PollFlags::empty()))
                .collect::<Vec<_>>())
        })?;
        let trouble = PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL;
        for (&(fd, asked), got) in keys.iter().zip(found) {
            let e = reported(
                asked,
                got.contains(PollFlags::POLLIN),
                got.contains(PollFlags::POLLOUT),
                got.intersects(trouble),
            );
            if !e.is_empty() {
                ready.push((fd, e));
            }
        }
        Ok(())
    }

    fn get_map(&self) -> &HashMap<RawFd, Key<T>> {
        &self.reg.keys
    }

    fn close(&mut self) {
        self.reg.close();
    }

    fn is_closed(&self) -> bool {
        self.reg.closed
    }

    fn fileno(&self) -> Option<RawFd> {
        None
    }
}

/// Python's `EpollSelector`: `epoll(7)`; the kernel keeps the list, and a wait returns only
/// the ready descriptors. [`EpollSelector::edge_triggered`] makes the kind the hub uses.
pub struct EpollSelector<T> {
    reg: Registry<T>,
    /// `None` once closed.
    epoll: Option<Epoll>,
    /// Added to every registration: `EPOLLET | EPOLLRDHUP` when edge-triggered.
    extra: EpollFlags,
    events: Vec<EpollEvent>,
}

impl<T> EpollSelector<T> {
    /// A new, level-triggered selector, as Python's.
    ///
    /// # Errors
    /// If `epoll_create1` fails (out of descriptors).
    pub fn new() -> std::io::Result<EpollSelector<T>> {
        EpollSelector::with(EpollFlags::empty())
    }

    /// A new, edge-triggered selector: a descriptor is reported once each time it becomes
    /// ready (new data, new room), not for as long as it is; a hang-up is reported as `HUP`
    /// (with `EPOLLRDHUP`). Whoever uses it reads (or writes) until `WouldBlock` before
    /// waiting again: the `triggers` lesson shows why.
    ///
    /// # Errors
    /// If `epoll_create1` fails (out of descriptors).
    pub fn edge_triggered() -> std::io::Result<EpollSelector<T>> {
        EpollSelector::with(EpollFlags::EPOLLET | EpollFlags::EPOLLRDHUP)
    }

    fn with(extra: EpollFlags) -> std::io::Result<EpollSelector<T>> {
        Ok(EpollSelector {
            reg: Registry::new(),
            epoll: Some(Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?),
            extra,
            events: Vec::new(),
        })
    }

    fn flags(&self, events: Events) -> EpollFlags {
        let mut flags = self.extra;
        if events.contains(Events::READ) {
            flags |= EpollFlags::EPOLLIN;
        }
        if events.contains(Events::WRITE) {
            flags |= EpollFlags::EPOLLOUT;
        }
        flags
    }

    /// The key of `fd`, to change its data in place (no system call).
    pub fn get_key_mut(&mut self, fd: RawFd) -> Option<&mut Key<T>> {
        self.reg.keys.get_mut(&fd)
    }

    fn epoll(&self) -> Result<&Epoll, SelectorError> {
        self.epoll.as_ref().ok_or(SelectorError::Closed)
    }
}

impl<T> Selector<T> for EpollSelector<T> {
    fn register(
        &mut self,
        fd: BorrowedFd<'_>,
        events: Events,
        data: T,
    ) -> Result<&Key<T>, SelectorError> {
        let key = self.reg.new_key(fd, events, data)?;
        let ev = EpollEvent::new(self.flags(events), key.fd as u64);
        self.epoll()?.add(fd, ev)?;
        Ok(self.reg.insert(key))
    }

    fn unregister(&mut self, fd: RawFd) -> Result<Key<T>, SelectorError> {
        let key = self.reg.remove(fd)?;
        // Closed already (EBADF) or reused by another file (ENOENT): the kernel dropped the
        // registration with the file; nothing left to do, as in Python.
        if let Some(epoll) = &self.epoll {
            let _ = epoll.delete(borrowed(fd));
        }
        Ok(key)
    }

    fn modify(
        &mut self,
        fd: BorrowedFd<'_>,
        events: Events,
        data: T,
    ) -> Result<&Key<T>, SelectorError> {
        let (key, was) = self.reg.rekey(fd, events, data)?;
        if was != events {
            let mut ev = EpollEvent::new(self.flags(events), fd.as_raw_fd() as u64);
            if let Err(e) = self.epoll()?.modify(fd, &mut ev) {
                // Python issue 30014: a failed modify leaves the descriptor unregistered.
                let _ = self.epoll()?.delete(fd);
                return Err(e.into());
            }
        }
        Ok(self.reg.insert(key))
    }

    fn select_into(
        &mut self,
        timeout: Option<Duration>,
        ready: &mut Vec<(RawFd, Events)>,
    ) -> Result<(), SelectorError> {
        ready.clear();
        let want = self.reg.keys.len().max(1);
        if self.events.len() < want {
            self.events.resize(want, EpollEvent::empty());
        }
        let epoll = self.epoll.as_ref().ok_or(SelectorError::Closed)?;
        let events = &mut self.events;
        let n = retrying(timeout, |left| epoll.wait(events, millis(left)))?;
        let trouble = EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP | EpollFlags::EPOLLRDHUP;
        for ev in &self.events[..n] {
            let fd = ev.data() as RawFd;
            let flags = ev.events();
            let e = if flags.intersects(trouble) {
                // Rare: the key says what to report (one more look-up).
                let asked = self
                    .reg
                    .keys
                    .get(&fd)
                    .map_or(Events::READ | Events::WRITE, |k| k.events);
                reported(
                    asked,
                    flags.contains(EpollFlags::EPOLLIN),
                    flags.contains(EpollFlags::EPOLLOUT),
                    true,
                )
            } else {
                let mut e = Events::empty();
                if flags.contains(EpollFlags::EPOLLIN) {
                    e = e | Events::READ;
                }
                if flags.contains(EpollFlags::EPOLLOUT) {
                    e = e | Events::WRITE;
                }
                e
            };
            ready.push((fd, e));
        }
        Ok(())
    }

    fn get_map(&self) -> &HashMap<RawFd, Key<T>> {
        &self.reg.keys
    }

    fn close(&mut self) {
        self.reg.close();
        self.epoll = None;
    }

    fn is_closed(&self) -> bool {
        self.reg.closed
    }

    fn fileno(&self) -> Option<RawFd> {
        self.epoll.as_ref().map(|e| e.0.as_fd().as_raw_fd())
    }
}
