//! `Process` under faults, each caused at a chosen moment: a thread in a fork child, a child
//! SIGKILLed while the parent waits, a handle dropped in every state.

use std::time::{Duration, SystemTime};

use lesson::within;
use processes::Process;

/// Longer than any of these children should take on a loaded machine; a bug that hangs fails
/// here instead of hanging the suite.
const LONG: Duration = Duration::from_secs(30);

/// Wait for `p` with a deadline; if it did not end, kill and reap it before failing, so a
/// failing test leaves nothing behind.
fn ended_within(p: &mut Process, limit: Duration) -> bool {
    let ended = p.join_timeout(limit).expect("join_timeout");
    if !ended {
        p.kill().expect("kill");
        p.join().expect("join after kill");
    }
    ended
}

/// Regression: the fork child held std's stdout and stderr locks (taken in the parent across
/// `fork`) for the whole body, so a thread the body started blocked on its first print, and a
/// body that joined that thread never ended.
#[test]
fn a_thread_started_in_a_fork_child_can_print_and_be_joined() {
    within(LONG * 2, "the child", || {
        let mut p = Process::new(|| -> Result<(), String> {
            let t = std::thread::spawn(|| {
                // What every print does, without writing to the test's output.
                drop(std::io::stdout().lock());
                drop(std::io::stderr().lock());
            });
            t.join()
                .map_err(|_| "the child's thread panicked".to_owned())
        });
        p.start().unwrap();
        assert!(
            ended_within(&mut p, LONG),
            "the child's thread waited for a lock its main thread kept"
        );
        assert_eq!(p.exitcode(), Some(0));
    });
}

/// Regression: a spawned child inherited every descriptor the parent had open without
/// close-on-exec (a `nix::unistd::pipe`, a socketpair without `SOCK_CLOEXEC`, whatever the
/// parent itself inherited), so it could keep a pipe's reader from ever seeing end-of-file.
/// Python's spawn passes the child only the descriptors it needs.
#[test]
fn a_spawned_child_has_only_stdin_stdout_and_stderr() {
    processes::register(processes::ENTRIES);
    // Opened without close-on-exec, as nix's pipe() does.
    let (r, w) = nix::unistd::pipe().unwrap();
    let n = within(LONG * 2, "the spawned child", || {
        let mut p = Process::spawn_entry("count-fds", &(0.0_f64, SystemTime::now(), false))
            .unwrap()
            .exe(env!("CARGO_BIN_EXE_processes"));
        p.start().unwrap();
        assert!(ended_within(&mut p, LONG), "the spawned child hung");
        p.exitcode().unwrap()
    });
    drop((r, w));
    // The count is its exit code: 3 (stdin, stdout, stderr), fewer only if one of stdout or
    // stderr was closed when the test started.
    assert!(
        (1..=3).contains(&n),
        "the spawned child had {n} descriptors open"
    );
}
