//! The Manager's server under hostile clients and limits (issue 15, items 1 to 6): every test
//! asserts the clear error, that the other clients went on, and that nothing else was lost.
//!
//! Raw clients speak the wire format by hand: a 4-byte little-endian length, then a postcard
//! body whose first byte is the request's variant: 1 `NewList(Vec<Data>)`, 7 `ListItems(id)`,
//! 9 `ValueGet(id)`; a reply's first byte 5 is `Int`. The server must never trust them.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use ipc::{Data, Manager, ManagerError};
use lesson::testing::Rng;
use lesson::within;
use nix::libc;

const LONG: Duration = Duration::from_secs(60);

static FORK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    FORK.lock().unwrap_or_else(|e| e.into_inner())
}

fn raw(m: &Manager) -> UnixStream {
    let s = UnixStream::connect(m.socket_dir().join("socket")).expect("connect");
    s.set_read_timeout(Some(LONG)).unwrap();
    s
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32).to_le_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

/// One reply frame's body, read from a raw client.
fn reply(s: &mut UnixStream) -> std::io::Result<Vec<u8>> {
    let mut header = [0u8; 4];
    s.read_exact(&mut header)?;
    let mut body = vec![0u8; u32::from_le_bytes(header) as usize];
    s.read_exact(&mut body)?;
    Ok(body)
}

/// Wait, polling, until `cond` holds; panic after `LONG`.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < LONG, "{what}: not within {LONG:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Bytes this end has sent that the peer has not read yet (`SIOCOUTQ`).
fn unread(s: &UnixStream) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int through the pointer, which is valid.
    let rc = unsafe { libc::ioctl(s.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
    assert_eq!(rc, 0, "SIOCOUTQ");
    n as usize
}

/// A field of /proc/PID/status, in kB.
fn status_kb(pid: i32, field: &str) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in {status}"))
}

#[test]
fn value_add_overflow_is_an_error_reply_and_the_server_goes_on() {
    let _fork = serial();
    within(LONG, "overflow", || {
        let m = Manager::start().unwrap();
        let v = m.value(i64::MAX - 1).unwrap();
        let d = m.dict().unwrap();
        assert_eq!(v.add(1).unwrap(), i64::MAX);
        let err = v.add(1).unwrap_err();
        assert!(
            err.to_string().contains("overflow"),
            "not a clear overflow error: {err}"
        );
        let err = v.add(i64::MIN).map(|_| ()).and_then(|()| v.add(i64::MIN));
        assert!(err.is_err(), "i64::MAX + MIN + MIN overflows below");
        // Nothing changed but the one addition that fitted; the server and the others go on.
        assert_eq!(v.get().unwrap(), -1);
        d.set("still", "here").unwrap();
        assert_eq!(d.get("still").unwrap(), Some(Data::from("here")));
    });
}

#[test]
fn a_request_nested_10_000_deep_is_refused_and_the_server_goes_on() {
    let _fork = serial();
    within(LONG, "deep request", || {
        let m = Manager::start().unwrap();
        let v = m.value(3).unwrap();
        // NewList([[[...[0]...]]]), 10 000 lists deep: 20 KB.
        let mut body = vec![1u8, 1];
        body.extend([2u8, 1].repeat(10_000));
        body.extend([0, 0]);
        let mut s = raw(&m);
        s.write_all(&framed(&body)).unwrap();
        // An answer comes back (an error), not the end of the connection...
        let answer = reply(&mut s).expect("an error reply, not a dead server");
        assert_ne!(answer.first(), Some(&0u8), "it was not created");
        // ... and the same connection, and every other, goes on.
        s.write_all(&framed(&[9, 0])).unwrap();
        assert_eq!(reply(&mut s).unwrap(), vec![5, 6], "ValueGet(0) -> Int(3)");
        assert_eq!(v.add(1).unwrap(), 4);
        let pid = m.server_pid().unwrap();
        assert!(std::fs::metadata(format!("/proc/{pid}")).is_ok());
    });
}

#[test]
fn a_claimed_16_mib_costs_the_server_nothing_until_it_is_sent() {
    let _fork = serial();
    within(LONG, "huge claim", || {
        let m = Manager::start().unwrap();
        let v = m.value(0).unwrap();
        assert_eq!(v.add(1).unwrap(), 1);
        let pid = m.server_pid().unwrap();
        let before = status_kb(pid, "VmHWM:");
        // Claims 16 MiB, sends 10 bytes, and stalls (the connection stays open).
        let mut s = raw(&m);
        let mut bytes = (16u32 << 20).to_le_bytes().to_vec();
        bytes.extend([0u8; 10]);
        s.write_all(&bytes).unwrap();
        wait_until("the server reads the 14 bytes", || unread(&s) == 0);
        // The others go on while that client stalls...
        assert_eq!(v.add(1).unwrap(), 2);
        // ... and the claim did not cost its 16 MiB.
        let after = status_kb(pid, "VmHWM:");
        assert!(
            after < before + 4096,
            "the server's peak memory grew from {before} kB to {after} kB for 14 bytes"
        );
        drop(s);
        assert_eq!(v.add(1).unwrap(), 3);
    });
}

#[test]
fn no_client_delays_another_beyond_its_own_request() {
    let _fork = serial();
    within(Duration::from_secs(120), "slow clients", || {
        // Calls fail after 30 s: the server as it was would have made them wait for ever.
        let m = Manager::start_with_timeout(Duration::from_secs(30)).unwrap();
        // List 0: 4 MiB, so its reply is far larger than a socket's buffer.
        let big = m.list([Data::from("x".repeat(4 << 20))]).unwrap();
        let v = m.value(0).unwrap();
        // A client that asks for the 4 MiB and never reads it,
        let mut hog = raw(&m);
        hog.write_all(&framed(&[7, 0])).unwrap();
        // one that sends half a request and stalls,
        let mut stalled = raw(&m);
        stalled.write_all(&framed(&[9, 1])[..3]).unwrap();
        // and one that sends a request one byte at a time, with the others' calls in between.
        let mut trickle = raw(&m);
        let request = framed(&[9, 1]);
        let (last, first) = request.split_last().unwrap();
        for (i, b) in first.iter().enumerate() {
            trickle.write_all(&[*b]).unwrap();
            assert_eq!(v.add(1).unwrap(), i as i64 + 1, "a call was delayed");
        }
        trickle.write_all(&[*last]).unwrap();
        assert_eq!(
            reply(&mut trickle).unwrap(),
            vec![5, 10],
            "Int(5) for the trickler"
        );
        for i in 0..20 {
            assert_eq!(v.add(1).unwrap(), 6 + i);
        }
        // The hog's reply is still whole when it finally reads.
        let items = reply(&mut hog).unwrap();
        assert!(items.len() > 4 << 20);
        drop((hog, stalled));
        assert_eq!(big.items().unwrap().len(), 1);
    });
}

/// Each thread's state letter in /proc/PID/task/*/stat (R running, S sleeping...).
fn thread_states(pid: i32) -> Vec<char> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.flatten()
                .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
                .filter_map(|s| {
                    s.rsplit_once(')')
                        .and_then(|(_, rest)| rest.trim_start().chars().next())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The lowest descriptor number not open in process `pid`.
fn lowest_free_fd(pid: i32) -> u64 {
    let open: std::collections::BTreeSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    (0..).find(|n| !open.contains(n)).unwrap()
}

fn set_nofile(pid: i32, soft: u64) -> u64 {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: prlimit reads `new` and writes `old`, both valid for the call.
    let rc = unsafe {
        let new = libc::rlimit {
            rlim_cur: soft,
            rlim_max: libc::RLIM_INFINITY,
        };
        libc::prlimit(pid, libc::RLIMIT_NOFILE, &new, &mut old)
    };
    if rc != 0 {
        // RLIM_INFINITY may be above what we may set: keep the old hard limit then.
        // SAFETY: as above.
        let rc = unsafe {
            let mut cur = old;
            libc::prlimit(pid, libc::RLIMIT_NOFILE, std::ptr::null(), &mut cur);
            let new = libc::rlimit {
                rlim_cur: soft,
                rlim_max: cur.rlim_max,
            };
            libc::prlimit(pid, libc::RLIMIT_NOFILE, &new, &mut old)
        };
        assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
    }
    old.rlim_cur
}

#[test]
fn at_the_descriptor_limit_the_server_sleeps_until_a_descriptor_frees() {
    let _fork = serial();
    within(LONG, "descriptor limit", || {
        let m = Manager::start().unwrap();
        let v = m.value(41).unwrap();
        assert_eq!(v.get().unwrap(), 41);
        let w = m.value(1).unwrap();
        assert_eq!(w.get().unwrap(), 1);
        let pid = m.server_pid().unwrap();
        // The next descriptor the server would get is refused by its limit (set from here,
        // as an administrator's `prlimit` would).
        set_nofile(pid, lowest_free_fd(pid));
        let mut waiting = raw(&m);
        waiting.write_all(&framed(&[9, 0])).unwrap();
        // The server cannot accept it. It must not spin: sampled 40 times, its threads are
        // asleep in most of them (spinning on accept, a thread is never asleep).
        let mut asleep = 0;
        for _ in 0..40 {
            let states = thread_states(pid);
            if !states.is_empty() && states.iter().all(|&s| s == 'S') {
                asleep += 1;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            asleep >= 20,
            "the server was asleep in {asleep} of 40 samples"
        );
        // The connected clients go on meanwhile.
        assert_eq!(w.add(1).unwrap(), 2);
        // One client leaves, a descriptor frees, and the waiting one is served.
        drop(v);
        let answer = reply(&mut waiting).expect("served once a descriptor freed");
        assert_eq!(answer, vec![5, 82], "ValueGet(0) -> Int(41)");
        assert_eq!(w.add(1).unwrap(), 3);
    });
}

#[test]
fn a_reply_over_the_frame_limit_is_refused_clearly_and_the_server_goes_on() {
    let _fork = serial();
    within(Duration::from_secs(120), "reply too large", || {
        let m = Manager::start().unwrap();
        let l = m.list([]).unwrap();
        for i in 0..9 {
            l.append(format!("{i}").repeat(2 << 20)).unwrap();
        }
        // 9 x 2 MiB: more than a frame may hold.
        let err = l.items().unwrap_err();
        assert!(
            err.to_string().contains("too large"),
            "not a clear error: {err}"
        );
        // The server goes on, the list is intact, and the same proxy still works.
        l.append("small").unwrap();
        let d = m.dict().unwrap();
        d.set(1, 2).unwrap();
        assert_eq!(d.items().unwrap(), vec![(Data::from(1), Data::from(2))]);
    });
}

#[test]
fn a_malformed_request_gets_an_error_reply_and_the_connection_goes_on() {
    let _fork = serial();
    within(LONG, "malformed", || {
        let m = Manager::start().unwrap();
        let v = m.value(5).unwrap();
        let mut s = raw(&m);
        for garbage in [vec![200u8, 1, 2], vec![], vec![9], vec![3, 0, 9, 9, 9]] {
            s.write_all(&framed(&garbage)).unwrap();
            let answer = reply(&mut s).expect("an error reply");
            assert_ne!(
                answer.first(),
                Some(&5),
                "{garbage:?} was answered as valid"
            );
        }
        s.write_all(&framed(&[9, 0])).unwrap();
        assert_eq!(reply(&mut s).unwrap(), vec![5, 10], "ValueGet(0) -> Int(5)");
        assert_eq!(v.add(1).unwrap(), 6);
    });
}

#[test]
fn the_server_removes_its_socket_directory_when_it_is_terminated() {
    let _fork = serial();
    within(LONG, "terminated", || {
        let m = Manager::start().unwrap();
        let dir = m.socket_dir().to_owned();
        let pid = nix::unistd::Pid::from_raw(m.server_pid().unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        wait_until("the server removes its directory", || !dir.exists());
        match m.value(1) {
            Err(ManagerError::Connection(_)) => {}
            Err(e) => panic!("not a connection error: {e}"),
            Ok(_) => panic!("a terminated server answered"),
        }
    });
}

#[test]
fn random_frames_from_raw_clients_never_take_the_server_down() {
    let _fork = serial();
    within(Duration::from_secs(120), "random requests", || {
        let mut rng = Rng::new(lesson::testing::seed("MANAGER_FUZZ_SEED"));
        let m = Manager::start().unwrap();
        let v = m.value(0).unwrap();
        let l = m.list([Data::from(1), Data::from("two")]).unwrap();
        let pid = m.server_pid().unwrap();
        let before = status_kb(pid, "VmHWM:");
        // Valid requests to start from: NewList([1, "a"]), ListItems(1), ValueGet(0).
        let valid: [&[u8]; 3] = [&[1, 2, 0, 2, 1, 1, 97], &[7, 1], &[9, 0]];
        let mut answered = 0;
        for _ in 0..300 {
            let mut bytes = Vec::new();
            for _ in 0..1 + rng.below(3) {
                let mut body = valid[rng.below(valid.len())].to_vec();
                match rng.below(4) {
                    0 => body = (0..rng.below(40)).map(|_| rng.next() as u8).collect(),
                    1 => {
                        for _ in 0..1 + rng.below(3) {
                            let at = rng.below(body.len());
                            body[at] = rng.next() as u8;
                        }
                    }
                    _ => {}
                }
                let mut f = framed(&body);
                if rng.below(8) == 0 {
                    f[..4].copy_from_slice(&(rng.next() as u32).to_le_bytes());
                }
                if rng.below(8) == 0 {
                    f.truncate(rng.below(f.len()));
                }
                bytes.extend(f);
            }
            let mut s = raw(&m);
            s.write_all(&bytes).unwrap();
            s.shutdown(std::net::Shutdown::Write).unwrap();
            // Every reply until the server closes the connection: never a hang.
            while let Ok(_body) = reply(&mut s) {
                answered += 1;
            }
        }
        eprintln!("{answered} replies");
        assert!(answered > 0);
        // The server is up, its objects intact, and it did not allocate for claims.
        assert_eq!(l.get(1).unwrap(), Data::from("two"));
        assert!(v.add(1).is_ok());
        let after = status_kb(pid, "VmHWM:");
        assert!(
            after < before + 16 * 1024,
            "the server's peak memory grew from {before} kB to {after} kB"
        );
    });
}
