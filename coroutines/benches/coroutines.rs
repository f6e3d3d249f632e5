//! Coroutines chapter figures, as BENCH lines (DESIGN.md):
//! - a greenlet switch (a round trip main -> greenlet -> main counts as two switches) against
//!   raw corosensei resume + suspend (the floor), in alternation (target: at most 2.5x raw,
//!   and 50x faster than Python's greenlet, `bench/python/greenlet_switch.py`);
//! - a thread ping-pong over two rendezvous channels, for contrast;
//! - creating a greenlet;
//! - resident memory with 10 000 sleeping hub tasks alive at once (target: no more than
//!   gevent's, `bench/python/gevent_memory.py`);
//! - echo round trips per second with 1000 connections: the hub (a task per connection), a raw
//!   epoll loop (the floor) and gevent's StreamServer (`bench/python/gevent_echo.py`), all
//!   driven by the same client (targets: at least 5x gevent, at most 1.5x the raw loop); and
//!   each server's CPU time per round trip (from the kernel's `schedstat`), which the rate
//!   cannot show once the client keeps its own core busy.

use std::hint::black_box;
use std::time::Duration;

use corosensei::{Coroutine, CoroutineResult};
use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::Instant;

use coroutines::multiplex::serve_raw_epoll;
use coroutines::{Greenlet, getcurrent, hub, val};
use lesson::bench::{
    Counters, Param, line, measure, measure_pair_counted, report_per_op, run_selected,
};

const RUNS: usize = 7;
const ROUNDS: u64 = 200_000;

fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

const CONNS: usize = 1000;
const ECHO_ROUNDS: usize = 20;

/// Where a server runs, to read the CPU time it has used: a process (gevent), or one of
/// this process's threads (the hub, the raw loop).
#[derive(Clone, Copy)]
enum Server {
    Process(u32),
    Thread(i32),
}

impl Server {
    /// Nanoseconds on a CPU so far: the first field of the kernel's `schedstat`.
    fn cpu_ns(self) -> Option<u64> {
        let path = match self {
            Server::Process(pid) => format!("/proc/{pid}/schedstat"),
            Server::Thread(tid) => format!("/proc/self/task/{tid}/schedstat"),
        };
        std::fs::read_to_string(path)
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }
}

/// One drive of a server: round trips per second, and the server's CPU time per round trip.
struct Drive {
    rate: f64,
    server_cpu_ns: Option<f64>,
}

/// Open `CONNS` connections, then `ECHO_ROUNDS` times write 16 bytes on each and read them
/// back on each. Connection set-up is not timed, nor counted in the server's CPU time, nor by
/// `counters` (which count the timed part, per round trip: the client and whatever was
/// started after they were opened, such as the server's thread).
fn drive(addr: SocketAddr, server: Server, counters: &mut Counters) -> Drive {
    let mut conns: Vec<TcpStream> = (0..CONNS)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    for c in &conns {
        c.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        c.set_nodelay(true).expect("nodelay");
    }
    let msg = [7u8; 16];
    let mut back = [0u8; 16];
    let cpu_before = server.cpu_ns();
    let trips = (CONNS * ECHO_ROUNDS) as f64;
    let elapsed = counters.count(trips as u64, || {
        let t = Instant::now();
        for _ in 0..ECHO_ROUNDS {
            for c in &mut conns {
                c.write_all(&msg).expect("write");
            }
            for c in &mut conns {
                c.read_exact(&mut back).expect("read");
            }
        }
        t.elapsed()
    });
    let server_cpu_ns = cpu_before
        .zip(server.cpu_ns())
        .map(|(before, after)| after.saturating_sub(before) as f64 / trips);
    Drive {
        rate: trips / elapsed.as_secs_f64(),
        server_cpu_ns,
    }
}

/// A hub echo server: a task per connection, on its own thread.
fn hub_server() -> (SocketAddr, Server, std::thread::JoinHandle<()>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        let listener = hub::TcpListener::bind("127.0.0.1:0").expect("bind");
        tx.send((
            listener.local_addr().expect("addr"),
            Server::Thread(nix::unistd::gettid().as_raw()),
        ))
        .expect("send");
        let echoes = Rc::new(RefCell::new(Vec::new()));
        let e = echoes.clone();
        let acceptor = hub::spawn(move || {
            for _ in 0..CONNS {
                let (mut s, _) = listener.accept().expect("accept");
                let h = hub::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 || s.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                })
                .expect("spawn");
                e.borrow_mut().push(h);
            }
        })
        .expect("spawn");
        hub::joinall(&[&acceptor]).expect("joinall");
        let hs = echoes.borrow();
        let refs: Vec<&dyn hub::Joinable> = hs.iter().map(|h| h as &dyn hub::Joinable).collect();
        hub::joinall(&refs).expect("joinall");
    });
    let (addr, server) = rx.recv().expect("address");
    (addr, server, t)
}

/// The middle value.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn echo_figures() {
    let mut hub_runs = Vec::new();
    let mut raw_runs = Vec::new();
    // Opened before the servers' threads start, so that their work is counted (inherit).
    let (mut hub_counters, mut raw_counters) = (Counters::open(), Counters::open());
    for _ in 0..3 {
        let (addr, server, t) = hub_server();
        hub_runs.push(drive(addr, server, &mut hub_counters));
        let _ = t.join();
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            tx.send(Server::Thread(nix::unistd::gettid().as_raw()))
                .expect("send");
            serve_raw_epoll(l, CONNS)
        });
        raw_runs.push(drive(addr, rx.recv().expect("tid"), &mut raw_counters));
        let _ = t.join();
    }
    let p = |via: &str| {
        [
            ("connections", CONNS.into()),
            ("via", Param::from(via)),
            ("runs", 3usize.into()),
        ]
    };
    let report = |suffix: &str, runs: &[Drive], via: &str, counters: Option<&mut Counters>| {
        let params = match counters {
            Some(c) => c.counts().with(&p(via)),
            None => p(via).to_vec(),
        };
        println!(
            "{}",
            line(
                &format!("hub_echo_round_trips{suffix}"),
                "round trips/s",
                median(runs.iter().map(|d| d.rate).collect()),
                &params
            )
        );
        // The server's own cost, which the round trips per second cannot show once the one
        // client keeps its core busy.
        let cpu: Vec<f64> = runs.iter().filter_map(|d| d.server_cpu_ns).collect();
        if cpu.len() == runs.len() {
            println!(
                "{}",
                line(
                    &format!("hub_echo_server_cpu{suffix}"),
                    "ns",
                    median(cpu),
                    &p(via)
                )
            );
        }
    };
    report("", &hub_runs, "coroutines::hub", Some(&mut hub_counters));
    report("_raw", &raw_runs, "raw epoll loop", Some(&mut raw_counters));
    // gevent, with the same client, if it is installed.
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../bench/python/gevent_echo.py"
    );
    let child = std::process::Command::new("python3")
        .arg(script)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Ok(mut child) = child {
        let port = child
            .stdout
            .take()
            .and_then(|out| BufReader::new(out).lines().next())
            .and_then(|l| l.ok())
            .and_then(|l| l.trim().parse::<u16>().ok());
        if let Some(port) = port {
            let server = Server::Process(child.id());
            // gevent's server is not our child: only the client would be counted.
            let mut client_only = Counters::open();
            let runs: Vec<Drive> = (0..3)
                .map(|_| {
                    let addr = SocketAddr::from(([127, 0, 0, 1], port));
                    drive(addr, server, &mut client_only)
                })
                .collect();
            report("_gevent", &runs, "gevent StreamServer", None);
        } else {
            eprintln!("gevent echo server did not start (python3 -m pip install gevent)");
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn main() {
    run_selected(&[
        ("switch", switch_figures),
        ("handoff", handoff_figure),
        ("create", create_figure),
        ("memory", memory_figure),
        ("echo", echo_figures),
    ]);
}

fn switch_figures() {
    // As `bench/python/greenlet_switch.py`: the parent is looked up once, then switched to.
    let g = Greenlet::new(|_| {
        let parent = getcurrent()
            .parent()
            .expect("made on the root, so it has a parent");
        loop {
            parent.switch(val(()))?;
        }
    })
    .expect("greenlet");
    let mut raw: Coroutine<(), (), ()> = Coroutine::new(|y, ()| {
        loop {
            y.suspend(());
        }
    });
    let switches = 2 * ROUNDS;
    let ((floor, floor_counts), (ours, our_counts)) = measure_pair_counted(
        RUNS,
        switches,
        || {
            for _ in 0..ROUNDS {
                if let CoroutineResult::Return(()) = raw.resume(()) {
                    break;
                }
            }
        },
        || {
            for _ in 0..ROUNDS {
                // The value is dropped, as the Python bench discards it. (A `black_box` on it
                // would add a store and reload of its own to every switch measured; a switch
                // cannot be optimised away without it, corosensei's switch is opaque.)
                drop(g.switch(val(())).expect("switch"));
            }
        },
    );
    let floor = report_per_op(
        "corosensei_switch_raw",
        floor,
        switches,
        &floor_counts.with(&[("via", "resume + suspend".into())]),
    );
    let ours = report_per_op(
        "greenlet_switch",
        ours,
        switches,
        &our_counts.with(&[("via", "Greenlet::switch, through the hub".into())]),
    );
    let r = ours / floor;
    println!(
        "{}",
        line(
            "greenlet_switch_vs_raw",
            "x",
            r,
            &[
                ("target_max", 2.5.into()),
                ("met", Param::Str((r <= 2.5).to_string()))
            ]
        )
    );
}

fn handoff_figure() {
    const PINGS: u64 = 20_000;
    let (to, from_main) = crossbeam::channel::bounded::<u64>(0);
    let (back, from_thread) = crossbeam::channel::bounded::<u64>(0);
    let echo = std::thread::spawn(move || {
        while let Ok(v) = from_main.recv() {
            if back.send(v).is_err() {
                break;
            }
        }
    });
    let s = measure(5, || {
        for i in 0..PINGS {
            to.send(i).expect("send");
            from_thread.recv().expect("recv");
        }
    });
    drop(to);
    let _ = echo.join();
    report_per_op(
        "thread_handoff",
        s,
        2 * PINGS,
        &[("via", "crossbeam rendezvous ping-pong".into())],
    );
}

fn create_figure() {
    const CREATE: u64 = 10_000;
    let s = measure(5, || {
        for _ in 0..CREATE {
            black_box(Greenlet::new(Ok).expect("greenlet"));
        }
    });
    report_per_op(
        "greenlet_create",
        s,
        CREATE,
        &[("stack", (coroutines::DEFAULT_STACK as f64).into())],
    );
}

fn memory_figure() {
    const TASKS: usize = 10_000;
    let before = vm_rss_kib();
    let peak = std::rc::Rc::new(std::cell::Cell::new(0u64));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            hub::spawn(|| hub::sleep(Duration::from_millis(200)).expect("sleep")).expect("spawn")
        })
        .collect();
    let p = peak.clone();
    let watcher = hub::spawn(move || {
        hub::sleep(Duration::from_millis(100)).expect("sleep");
        p.set(vm_rss_kib());
    })
    .expect("spawn");
    let mut refs: Vec<&dyn hub::Joinable> = tasks.iter().map(|t| t as &dyn hub::Joinable).collect();
    refs.push(&watcher);
    hub::joinall(&refs).expect("joinall");
    let mib = peak.get().saturating_sub(before) as f64 / 1024.0;
    println!(
        "{}",
        line(
            "hub_10000_sleeping_tasks_rss",
            "MiB",
            mib,
            &[
                ("tasks", TASKS.into()),
                ("stack", (coroutines::DEFAULT_STACK as f64).into())
            ]
        )
    );
}
