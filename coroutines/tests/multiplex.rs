//! The three echo servers and the two trigger modes.

use std::os::fd::AsFd;
use std::time::Duration;

use coroutines::lessons::select_poll_epoll;
use coroutines::multiplex::{Backend, check_select_fd, dup_at_or_above, wakeups};
use lesson::within;

#[test]
fn every_client_gets_its_bytes_back_on_each_backend() {
    for backend in [Backend::Select, Backend::Poll, Backend::Epoll] {
        let (ok, served) = within(Duration::from_secs(60), "echo", move || {
            select_poll_epoll::echo(backend, 50).unwrap()
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
    let high = dup_at_or_above(l.as_fd(), 1500).unwrap();
    let err = check_select_fd(high.as_fd()).unwrap_err();
    assert!(err.to_string().contains("below 1024"), "{err}");
}
