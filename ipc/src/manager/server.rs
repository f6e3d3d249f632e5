//! The server's side: the loop that owns the objects and answers every proxy.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

use anyhow::Context;
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{getsockopt, sockopt};
use nix::unistd::Uid;

use super::{Data, Request, Response};
use crate::frame::{self, DEFAULT_MAX_FRAME};

enum Object {
    Dict(BTreeMap<Data, Data>),
    List(Vec<Data>),
    Value(i64),
}

/// Move the listener to fd 3 and close every other descriptor above stderr: the server was
/// forked from a parent that may hold pipes and sockets, and keeping copies of them open would
/// stop their readers from ever seeing end-of-file.
fn keep_only(listener: UnixListener) -> UnixListener {
    let fd = listener.as_raw_fd();
    // SAFETY: dup2 and close_range are plain system calls on descriptors we own; after them
    // fd 3 is a copy of the listener and nothing above it is open. The old listener object is
    // forgotten (its descriptor is closed by close_range, unless it was 3 itself).
    unsafe {
        if fd != 3 {
            libc::dup2(fd, 3);
            std::mem::forget(listener);
        } else {
            std::mem::forget(listener);
        }
        libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32);
        UnixListener::from(OwnedFd::from_raw_fd(3))
    }
}

/// The server loop: one thread, `poll` over the listener and every client.
pub(super) fn serve(listener: UnixListener, uid: Uid) -> anyhow::Result<()> {
    let listener = keep_only(listener);
    let mut objects: Vec<Object> = Vec::new();
    let mut clients: Vec<UnixStream> = Vec::new();
    loop {
        let mut ready: Vec<bool> = Vec::new();
        let listener_ready;
        {
            let mut fds = vec![PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
            fds.extend(
                clients
                    .iter()
                    .map(|c| PollFd::new(c.as_fd(), PollFlags::POLLIN)),
            );
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e).context("poll"),
            }
            listener_ready = has_events(&fds[0]);
            ready.extend(fds[1..].iter().map(has_events));
        }
        let mut gone = Vec::new();
        for (i, is_ready) in ready.into_iter().enumerate() {
            if is_ready && !answer(&clients[i], &mut objects) {
                gone.push(i);
            }
        }
        for i in gone.into_iter().rev() {
            clients.swap_remove(i);
        }
        if listener_ready && let Ok((stream, _)) = listener.accept() {
            let peer = getsockopt(&stream, sockopt::PeerCredentials);
            if peer.is_ok_and(|c| c.uid() == uid.as_raw()) {
                // A client that stalls mid-request must not freeze the server.
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                clients.push(stream);
            }
            // Otherwise the stream is dropped: another user's process is disconnected.
        }
    }
}

fn has_events(f: &PollFd<'_>) -> bool {
    f.revents().is_some_and(|r| !r.is_empty())
}

/// Read one request from `client` and answer it; `false` if the client is gone.
fn answer(client: &UnixStream, objects: &mut Vec<Object>) -> bool {
    // Clients send one request and wait for its reply before the next: one frame in flight.
    let req: Request = match frame::read_one_frame(client.as_fd(), DEFAULT_MAX_FRAME) {
        Ok(r) => r,
        Err(_) => return false,
    };
    let resp = handle(req, objects);
    frame::write_frame(client.as_fd(), &resp, DEFAULT_MAX_FRAME).is_ok()
}

fn handle(req: Request, objects: &mut Vec<Object>) -> Response {
    let new = |objects: &mut Vec<Object>, o| {
        objects.push(o);
        Response::Created((objects.len() - 1) as u32)
    };
    let missing = |id: u32, kind: &str| Response::Error(format!("no {kind} with id {id}"));
    match req {
        Request::NewDict => new(objects, Object::Dict(BTreeMap::new())),
        Request::NewList(items) => new(objects, Object::List(items)),
        Request::NewValue(v) => new(objects, Object::Value(v)),
        Request::DictSet(id, k, v) => match objects.get_mut(id as usize) {
            Some(Object::Dict(d)) => {
                d.insert(k, v);
                Response::Done
            }
            _ => missing(id, "dict"),
        },
        Request::DictGet(id, k) => match objects.get(id as usize) {
            Some(Object::Dict(d)) => Response::Got(d.get(&k).cloned()),
            _ => missing(id, "dict"),
        },
        Request::DictItems(id) => match objects.get(id as usize) {
            Some(Object::Dict(d)) => {
                Response::Items(d.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            }
            _ => missing(id, "dict"),
        },
        Request::ListAppend(id, v) => match objects.get_mut(id as usize) {
            Some(Object::List(l)) => {
                l.push(v);
                Response::Done
            }
            _ => missing(id, "list"),
        },
        Request::ListItems(id) => match objects.get(id as usize) {
            Some(Object::List(l)) => Response::List(l.clone()),
            _ => missing(id, "list"),
        },
        Request::ValueAdd(id, delta) => match objects.get_mut(id as usize) {
            Some(Object::Value(v)) => {
                *v += delta;
                Response::Int(*v)
            }
            _ => missing(id, "value"),
        },
        Request::ValueGet(id) => match objects.get(id as usize) {
            Some(Object::Value(v)) => Response::Int(*v),
            _ => missing(id, "value"),
        },
    }
}
