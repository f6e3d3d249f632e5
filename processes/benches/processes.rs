//! Processes chapter figures, as BENCH lines (DESIGN.md), per process:
//! - start+join through `Process` and through raw fork / _exit / waitpid (the floor), one after
//!   another and "1000 started, then 1000 joined" (the seed's pattern), in alternation;
//! - the spawn start method (the binary run again);
//! - the forkserver start method (a child forked by a server that runs this binary afresh),
//!   one after another, against Python's forkserver;
//! - a thread's start+join, for contrast.
//!
//! Targets (issue): `Process` at most 1.5x raw fork; at least 8x faster than Python's
//! multiprocessing fork (`bench/python/process_start.py`); spawn at least 10x faster than
//! Python's spawn.

use lesson::bench::{Param, line, measure, measure_counted, measure_pair_counted, report_per_op};
use nix::libc;
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, fork};
use processes::{Entry, ForkServer, Process};

const N: usize = 1000;
const RUNS: usize = 5;

fn raw_fork() -> nix::unistd::Pid {
    // SAFETY: the child only calls _exit, which is async-signal-safe.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            // SAFETY: ends the child at once without running the parent's destructors.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => child,
    }
}

fn ratio(name: &str, value: f64, key: &str, target: f64, met: bool) {
    println!(
        "{}",
        line(
            name,
            "x",
            value,
            &[(key, target.into()), ("met", Param::Str(met.to_string()))]
        )
    );
}

static ENTRIES: &[Entry] = &[Entry {
    name: "noop",
    run: |_| Ok(()),
}];

fn main() {
    // The bench binary is its own spawn target: a spawned copy runs `noop` and exits here.
    processes::spawn_main(ENTRIES);

    // One after another: start, join, repeat.
    let ((raw, raw_counts), (ours, ours_counts)) = measure_pair_counted(
        RUNS,
        N as u64,
        || {
            for _ in 0..N {
                waitpid(raw_fork(), None).expect("waitpid");
            }
        },
        || {
            for _ in 0..N {
                let mut p = Process::new(|| ());
                p.start().expect("start");
                p.join().expect("join");
            }
        },
    );
    let raw_seq = report_per_op(
        "process_start_join_raw",
        raw,
        N as u64,
        &raw_counts.with(&[("pattern", "one after another".into())]),
    );
    let ours_seq = report_per_op(
        "process_start_join",
        ours,
        N as u64,
        &ours_counts.with(&[("pattern", "one after another".into())]),
    );
    ratio(
        "process_vs_raw_fork_sequential",
        ours_seq / raw_seq,
        "target_max",
        1.5,
        ours_seq / raw_seq <= 1.5,
    );

    // The seed's pattern: start them all, then join them all.
    let ((raw, raw_counts), (ours, ours_counts)) = measure_pair_counted(
        RUNS,
        N as u64,
        || {
            let pids: Vec<_> = (0..N).map(|_| raw_fork()).collect();
            for pid in pids {
                waitpid(pid, None).expect("waitpid");
            }
        },
        || {
            let mut all: Vec<Process> = (0..N).map(|_| Process::new(|| ())).collect();
            for p in &mut all {
                p.start().expect("start");
            }
            for p in &mut all {
                p.join().expect("join");
            }
        },
    );
    let raw_batch = report_per_op(
        "process_start_join_raw",
        raw,
        N as u64,
        &raw_counts.with(&[("pattern", "1000 started, then joined".into())]),
    );
    let ours_batch = report_per_op(
        "process_start_join",
        ours,
        N as u64,
        &ours_counts.with(&[("pattern", "1000 started, then joined".into())]),
    );
    ratio(
        "process_vs_raw_fork_batch",
        ours_batch / raw_batch,
        "target_max",
        1.5,
        ours_batch / raw_batch <= 1.5,
    );

    const SPAWNS: usize = 50;
    // Counted per process; the children (fork + exec) inherit the counters.
    let (s, spawn_counts) = measure_counted(RUNS, SPAWNS as u64, || {
        for _ in 0..SPAWNS {
            let mut p = Process::spawn_entry("noop", &()).expect("serialize");
            p.start().expect("spawn");
            assert_eq!(p.join().expect("join"), 0);
        }
    });
    report_per_op(
        "process_spawn_start_join",
        s,
        SPAWNS as u64,
        &spawn_counts.with(&[("method", "spawn".into())]),
    );

    // The server is started (and warmed) before the measured runs, as Python's forkserver is
    // started by its first use; each round trip: request, fork in the server, pid and pidfd
    // back, the child's exit code back.
    const SERVED: usize = 200;
    ForkServer::shared(None)
        .and_then(|s| s.ensure_running())
        .expect("fork server");
    let f = measure(RUNS, || {
        for _ in 0..SERVED {
            let mut p = Process::forkserver_entry("noop", &()).expect("serialize");
            p.start().expect("forkserver start");
            assert_eq!(p.join().expect("join"), 0);
        }
    });
    report_per_op(
        "process_forkserver_start_join",
        f,
        SERVED as u64,
        &[
            ("method", "forkserver".into()),
            ("pattern", "one after another".into()),
        ],
    );

    let t = measure(RUNS, || {
        let all: Vec<_> = (0..N).map(|_| std::thread::spawn(|| ())).collect();
        for h in all {
            let _ = h.join();
        }
    });
    report_per_op(
        "thread_start_join",
        t,
        N as u64,
        &[("pattern", "1000 started, then joined".into())],
    );
}
