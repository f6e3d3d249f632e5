//! A `Connection` reads ahead (one `read` brings a small message whole, and whatever follows
//! it): what it keeps must be handed out in order by every kind of receive, and must count as
//! "something to read" for `poll`, though the descriptor is no longer readable.

use std::os::fd::AsFd;
use std::time::Duration;

use ipc::{FrameError, Pipe};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

const LIMIT: Duration = Duration::from_secs(60);

fn fd_readable(fd: impl AsFd) -> bool {
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::ZERO).unwrap() > 0
}

#[test]
fn messages_read_ahead_are_polled_and_received_in_order() {
    let (a, b) = Pipe::duplex::<u32, u32>().unwrap();
    for i in 0..3 {
        a.send(&i).unwrap();
    }
    assert_eq!(b.recv().unwrap(), 0);
    // The other two came with the first read: the descriptor has nothing left...
    assert!(
        !fd_readable(&b),
        "the first recv should have read all three"
    );
    // ... but the end does.
    assert!(b.poll(Duration::ZERO).unwrap());
    assert_eq!(b.recv_timeout(Duration::ZERO).unwrap(), 1);
    assert_eq!(b.recv().unwrap(), 2);
    assert!(!b.poll(Duration::ZERO).unwrap());
    drop(a);
    assert!(matches!(b.recv(), Err(FrameError::Eof)));
}

#[test]
fn raw_receives_take_what_was_read_ahead() {
    lesson::within(LIMIT, "raw receives", raw_receives);
}

fn raw_receives() {
    let (a, b) = Pipe::duplex::<(), ()>().unwrap();
    let big = vec![9u8; 300 << 10];
    let writer = {
        let big = big.clone();
        std::thread::spawn(move || {
            a.send_bytes(b"one").unwrap();
            a.send_bytes(b"two, longer").unwrap();
            // Larger than the socket's buffer: written while the reader reads.
            a.send_bytes(&big).unwrap();
            a.send_bytes(b"after").unwrap();
            a
        })
    };
    assert_eq!(b.recv_bytes().unwrap(), b"one");
    let mut buf = [0u8; 8];
    match b.recv_bytes_into(&mut buf, 2) {
        Err(FrameError::BufferTooShort(msg)) => assert_eq!(msg, b"two, longer"),
        other => panic!("{other:?}"),
    }
    let mut room = vec![0u8; 400 << 10];
    assert_eq!(b.recv_bytes_into(&mut room, 10).unwrap(), big.len());
    assert_eq!(&room[10..10 + big.len()], &big[..]);
    assert_eq!(b.recv_bytes().unwrap(), b"after");
    drop(writer.join().unwrap());
}

#[test]
fn a_typed_large_message_between_small_ones() {
    lesson::within(LIMIT, "typed large", typed_large);
}

fn typed_large() {
    let (a, b) = Pipe::duplex::<Vec<u8>, Vec<u8>>().unwrap();
    let writer = std::thread::spawn(move || {
        a.send(&vec![1]).unwrap();
        a.send(&vec![2u8; 3 << 20]).unwrap();
        a.send(&vec![3]).unwrap();
        a
    });
    assert_eq!(b.recv().unwrap(), vec![1]);
    assert_eq!(b.recv().unwrap().len(), 3 << 20);
    assert_eq!(b.recv().unwrap(), vec![3]);
    drop(writer.join().unwrap());
}
