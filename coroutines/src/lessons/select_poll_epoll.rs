//! Lesson `select-poll-epoll` (IO多路复用): one echo server, written once against the
//! `Selector` trait (Python's `selectors`), run on select, poll
//! and epoll, serving many clients from one thread.

use std::net::TcpListener;
use std::os::fd::{AsFd, AsRawFd};

use anyhow::{Context, ensure};
use lesson::Cx;

use crate::multiplex::{Backend, Served, dup_at_or_above, run_clients, serve};
use crate::selectors::{Events, SelectSelector, Selector};

/// Clients per backend.
pub const CLIENTS: usize = 100;

/// Serve `clients` echo clients with `backend`; (clients that got their bytes back, stats).
///
/// # Errors
/// If the listener, the server's thread or the server fails, or a client cannot connect.
pub fn echo(backend: Backend, clients: usize) -> anyhow::Result<(usize, Served)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = std::thread::Builder::new()
        .name(format!("{backend:?}-server"))
        .spawn(move || serve(backend, listener, clients))?;
    let ok = run_clients(addr, clients);
    let served = server
        .join()
        .map_err(|_| anyhow::anyhow!("the server panicked"))??;
    Ok((ok?, served))
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    for backend in [Backend::Select, Backend::Poll, Backend::Epoll] {
        let (ok, s) = echo(backend, CLIENTS)?;
        cx.say(format!(
            "{backend:?}: {ok}/{CLIENTS} clients got their bytes back; {} accepted, {} bytes echoed, {} open at most, {} waits",
            s.accepted, s.echoed, s.most_open, s.waits
        ));
        ensure!(ok == CLIENTS, "{backend:?} lost a client");
    }
    // A socket numbered past select's limit: dup one to fd 1100.
    let l = TcpListener::bind("127.0.0.1:0")?;
    let high = dup_at_or_above(l.as_fd(), 1100).context("dup to fd 1100")?;
    let mut sel: SelectSelector<()> = SelectSelector::new();
    match sel.register(high.as_fd(), Events::READ, ()) {
        Ok(_) => anyhow::bail!("select accepted fd {}", high.as_raw_fd()),
        Err(e) => cx.say(format!(
            "SelectSelector.register(fd {}): {e}",
            high.as_raw_fd()
        )),
    }
    cx.explain(
        "The server is one loop over Selector::select; only the selector changes.\n\
         select: a bitmap of fds below 1024, rebuilt and scanned in full on every call.\n\
         poll: an array of any fds, still passed and scanned in full on every call.\n\
         epoll: the kernel keeps the list; each wait returns only the ready ones, so the cost\n\
         follows the activity, not the number of connections (the seed: \"效率最高\").",
    );
    Ok(())
}
