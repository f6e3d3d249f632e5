//! The three echo servers and the two trigger modes.

use std::os::fd::AsFd;
use std::time::Duration;

use coroutines::multiplex::{Backend, check_select_fd, wakeups};
use coroutines::select_demo;
use lesson::within;

#[test]
fn every_client_gets_its_bytes_back_on_each_backend() {
    for backend in [Backend::Select, Backend::Poll, Backend::Epoll] {
        let (ok, served) = within(Duration::from_secs(60), "echo", move || {
            select_demo::echo(backend, 50).unwrap()
        });
        assert_eq!(ok, 50, "{backend:?}");
        assert_eq!(served.accepted, 50, "{backend:?}");
        assert_eq!(served.most_open, 50, "{backend:?}");
    }
}

#[test]
fn level_triggered_wakes_twice_edge_triggered_once() {
    assert_eq!(wakeups(false).unwrap(), 2);
    assert_eq!(wakeups(true).unwrap(), 1);
}

#[test]
fn select_refuses_an_fd_past_1024_with_an_error() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    assert!(check_select_fd(l.as_fd()).is_ok());
    let high = nix::fcntl::fcntl(l.as_fd(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(1500)).unwrap();
    // SAFETY: F_DUPFD_CLOEXEC just created this descriptor for us.
    let high = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(high) };
    let err = check_select_fd(high.as_fd()).unwrap_err();
    assert!(err.to_string().contains("below 1024"), "{err}");
}
