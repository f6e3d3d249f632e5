//! coroutines -- triggers: under edge-triggered epoll, read until WouldBlock.
//!
//! After the lesson `cargo run -p coroutines -- triggers`.
//! Check your work: `cargo xtask exercise edge-drain`.
//! Run it: `cargo run --bin edge-drain` in `exercises/`.
//!
//! Level-triggered epoll reports a socket as long as it has data; edge-triggered
//! (`EPOLLET`) reports it once, when data arrives. After an edge, what is left unread waits
//! for the *next* arrival, and if nothing more arrives, forever.

use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

// TODO(coroutines -- triggers): each wake-up reads one buffer (1 KiB) and goes back to
// `wait`; with more than 1 KiB waiting, the rest never brings another edge, and `wait` never
// returns. At each wake-up, read in a loop until `read` says `WouldBlock` (all read for now)
// or returns 0 (the peer closed: return what you have).
/// Read everything `stream` receives until its peer closes, waking up through an
/// edge-triggered epoll.
pub fn read_all_edge(stream: &mut UnixStream) -> io::Result<Vec<u8>> {
    stream.set_nonblocking(true)?;
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLET;
    epoll.add(stream.as_fd(), EpollEvent::new(flags, 1))?;
    let mut events = [EpollEvent::empty(); 4];
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        epoll.wait(&mut events, EpollTimeout::NONE)?;
        match stream.read(&mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

fn main() -> io::Result<()> {
    let (mut reader, mut writer) = UnixStream::pair()?;
    io::Write::write_all(&mut writer, &[7u8; 3000])?;
    drop(writer);
    println!("read {} bytes", read_all_edge(&mut reader)?.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use exercise_check::nothing_left;
    use std::io::Write;

    #[test]
    fn more_than_one_read_at_once() {
        let (mut reader, mut writer) = UnixStream::pair().unwrap();
        let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        writer.write_all(&data).unwrap();
        drop(writer);
        let got = nothing_left(|| read_all_edge(&mut reader)).unwrap();
        assert_eq!(got.len(), 3000);
        assert_eq!(got, data);
    }
}
