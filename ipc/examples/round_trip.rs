//! Count what one message costs: `round_trip raw|conn N [pinned]` runs N round trips of an
//! 8-byte message (raw: a socketpair, 8 bytes each way; conn: `ipc::Connection<u64>`) with an
//! echo child, and prints the time per round trip; `round_trip bulk-raw|bulk-conn N` has a
//! child send N messages of 1 MiB (raw writes; `Connection<ByteBuf>`) to the parent. Run it under a counter to see what each
//! does per message, on any machine (issue 22):
//!
//! ```text
//! cargo build --release -p ipc --example round_trip
//! perf stat -e raw_syscalls:sys_enter,context-switches,cpu-migrations \
//!     target/release/examples/round_trip conn 100000
//! strace -c -f target/release/examples/round_trip conn 100000
//! ```
//!
//! Divide the counts by N (the start and end of the processes add a few hundred system calls).

use std::os::fd::AsFd;
use std::time::Instant;

use ipc::{Pipe, frame};
use nix::sched::{CpuSet, sched_setaffinity};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use nix::unistd::Pid;
use processes::Process;
use serde_bytes::ByteBuf;

const MIB: usize = 1 << 20;

fn read_exact(fd: impl AsFd, buf: &mut [u8]) -> bool {
    let mut got = 0;
    while got < buf.len() {
        match nix::unistd::read(&fd, &mut buf[got..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => got += n,
        }
    }
    true
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map_or("conn", String::as_str).to_owned();
    let n: u64 = args.get(1).map_or(Ok(100_000), |s| s.parse())?;
    if args.get(2).is_some_and(|a| a == "pinned") {
        let mut one = CpuSet::new();
        one.set(0)?;
        sched_setaffinity(Pid::from_raw(0), &one)?;
    }
    let t = match mode.as_str() {
        "raw" => {
            let (mine, theirs) = socketpair(
                AddressFamily::Unix,
                SockType::Stream,
                None,
                SockFlag::SOCK_CLOEXEC,
            )?;
            let mut echo = Process::new(move || {
                let mut buf = [0u8; 8];
                while read_exact(&theirs, &mut buf) {
                    if frame::write_all(theirs.as_fd(), &buf).is_err() {
                        break;
                    }
                }
            })
            .close_in_child(&mine);
            echo.start()?;
            let t = Instant::now();
            let mut buf = [0u8; 8];
            for i in 0..n {
                frame::write_all(mine.as_fd(), &i.to_le_bytes())?;
                anyhow::ensure!(read_exact(&mine, &mut buf), "echo ended");
            }
            let t = t.elapsed();
            drop(mine);
            echo.join()?;
            t
        }
        "conn" => {
            let (ours, child) = Pipe::duplex::<u64, u64>()?;
            let mut echo = Process::new(move || {
                while let Ok(v) = child.recv() {
                    if child.send(&v).is_err() {
                        break;
                    }
                }
            })
            .close_in_child(&ours);
            echo.start()?;
            let t = Instant::now();
            for i in 0..n {
                ours.send(&i)?;
                anyhow::ensure!(ours.recv()? == i, "wrong echo");
            }
            let t = t.elapsed();
            drop(ours);
            echo.join()?;
            t
        }
        "bulk-raw" => {
            let (mine, theirs) = socketpair(
                AddressFamily::Unix,
                SockType::Stream,
                None,
                SockFlag::SOCK_CLOEXEC,
            )?;
            let mut child = Process::new(move || {
                let data = vec![7u8; MIB];
                for _ in 0..n {
                    if frame::write_all(theirs.as_fd(), &data).is_err() {
                        break;
                    }
                }
            })
            .close_in_child(&mine);
            let t = Instant::now();
            child.start()?;
            let mut buf = vec![0u8; MIB];
            for _ in 0..n {
                anyhow::ensure!(read_exact(&mine, &mut buf), "sender ended");
            }
            child.join()?;
            t.elapsed()
        }
        "bulk-conn" => {
            let (ours, theirs) = Pipe::duplex::<(), ByteBuf>()?;
            let mut child = Process::new(move || {
                let data = ByteBuf::from(vec![7u8; MIB]);
                for _ in 0..n {
                    if theirs.send(&data).is_err() {
                        break;
                    }
                }
            })
            .close_in_child(&ours);
            let t = Instant::now();
            child.start()?;
            for _ in 0..n {
                anyhow::ensure!(ours.recv()?.len() == MIB, "wrong size");
            }
            child.join()?;
            t.elapsed()
        }
        other => anyhow::bail!("round_trip raw|conn|bulk-raw|bulk-conn N [pinned], not {other:?}"),
    };
    println!(
        "{mode}: {n} messages or round trips, {:.2} us each",
        t.as_secs_f64() * 1e6 / n as f64
    );
    Ok(())
}
