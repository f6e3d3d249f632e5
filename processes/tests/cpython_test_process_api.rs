//! CPython 3.11's `_TestProcess` tests that need `current_process()`, `parent_process()`,
//! `active_children()`, `sentinel` and `close()` (ported once this crate had them; the rest of
//! `_TestProcess` is in `cpython_test_process.rs`). Each is named after its original.

use std::io::{Read, Write};
use std::sync::{Arc, Weak};
use std::time::Duration;

use lesson::within;
use nix::unistd::getpid;
use processes::{Process, StartMethod, active_children, current_process, parent_process};

mod common;
use common::*;

#[test]
fn test_current() {
    // The main process (this test binary): alive, not a daemon, ident == getpid(), no exit
    // code. `authkey` has no counterpart (managers here check peer credentials instead).
    let current = current_process();
    assert!(current.is_alive());
    assert!(!current.daemon);
    assert_eq!(current.pid, getpid().as_raw());
    assert_eq!(current.exitcode(), None);
    assert_eq!(current.name, processes::MAIN_NAME);
    assert_eq!(current.start_method, None);
    // And in a child: the name and daemon flag its parent gave it.
    let (mut r, w) = pipe();
    let keep = raw(&w);
    let mut p = Process::new(move || {
        let mut w = w;
        let me = current_process();
        send(
            &mut w,
            &(
                me.name,
                me.daemon,
                me.pid,
                me.start_method == Some(StartMethod::Fork),
            ),
        )
    })
    .named("Curious")
    .daemon(true)
    .keep_only_fds(&[keep]);
    p.start().unwrap();
    let got: (String, bool, i32, bool) = recv(&mut r);
    assert_eq!(p.join().unwrap(), 0);
    assert_eq!(
        got,
        ("Curious".to_owned(), true, p.pid().unwrap_or(got.2), true)
    );
}

#[test]
fn test_active_children() {
    // Our own children only: other tests of this binary start theirs concurrently, so the
    // assertions are about this one's pid.
    let mut p = Process::new(|| std::thread::sleep(Duration::from_secs(60))).daemon(true);
    let listed = |pid: Option<i32>| active_children().iter().any(|c| Some(c.pid) == pid);
    assert!(!listed(p.pid()));
    p.start().unwrap();
    let pid = p.pid();
    assert!(listed(pid));
    let info = active_children()
        .into_iter()
        .find(|c| Some(c.pid) == pid)
        .unwrap();
    assert_eq!(info.name, p.name());
    assert!(info.daemon);
    assert_eq!(info.start_method, StartMethod::Fork);
    p.terminate().unwrap();
    assert!(p.join_timeout(LONG).unwrap());
    assert!(!listed(pid));
    // A child lists its own children, not its parent's.
    let (mut r, w) = pipe();
    let keep = raw(&w);
    let mut outer = Process::new(move || -> anyhow::Result<()> {
        let mut w = w;
        let inherited = active_children().len();
        let mut inner = Process::new(|| std::thread::sleep(Duration::from_secs(60)));
        inner.start()?;
        let mine = active_children()
            .into_iter()
            .filter(|c| Some(c.pid) == inner.pid())
            .count();
        inner.terminate()?;
        inner.join()?;
        send(&mut w, &(inherited, mine, active_children().len()))?;
        Ok(())
    })
    .keep_only_fds(&[keep]);
    outer.start().unwrap();
    let (inherited, mine, after): (usize, usize, usize) = recv(&mut r);
    assert_eq!(outer.join().unwrap(), 0);
    assert_eq!((inherited, mine, after), (0, 1, 0));
}

/// Whether `fd` is readable within `wait`.
fn wait_for_handle(fd: std::os::fd::BorrowedFd<'_>, wait: Duration) -> bool {
    readable_by(&fd, std::time::Instant::now() + wait)
}

#[test]
fn test_sentinel() {
    for method in [
        StartMethod::Fork,
        StartMethod::Forkserver,
        StartMethod::Spawn,
    ] {
        let (go_r, mut go_w) = pipe();
        let keep = raw(&go_r);
        let mut p = match method {
            StartMethod::Fork => Process::new(move || {
                let mut go = go_r;
                go.read(&mut [0u8; 1]).map(drop)
            })
            .keep_only_fds(&[keep]),
            // These inherit no pipe: a child that sleeps a while stands in for the event.
            StartMethod::Spawn => spawned("sleep-ms", &300_u64),
            StartMethod::Forkserver => forkserved("sleep-ms", &300_u64),
        };
        // Python raises ValueError before start; here there is none.
        assert!(p.sentinel().is_none());
        within(LONG * 2, "the child", move || {
            p.start().unwrap();
            let sentinel = p.sentinel().expect("a sentinel once started");
            if method == StartMethod::Fork {
                // Still waiting for the go: not readable.
                assert!(!wait_for_handle(sentinel, Duration::ZERO), "{method:?}");
            }
            go_w.write_all(b"!").unwrap();
            assert_eq!(p.join().unwrap(), 0);
            // Readable after join, and still there.
            assert!(wait_for_handle(p.sentinel().unwrap(), LONG), "{method:?}");
            p.close().unwrap();
            assert!(p.sentinel().is_none());
        });
    }
}

#[test]
fn test_parent_process() {
    // The child starts a grandchild, which reports whether its parent (the child) is alive,
    // waits for it to end (join with a timeout), and reports again. The test terminates the
    // child in between.
    within(LONG * 3, "the process tree", || {
        let (mut r, w) = pipe();
        let keep = raw(&w);
        let mut child = Process::new(move || -> anyhow::Result<()> {
            let w2 = w.try_clone()?;
            let keep = raw(&w2);
            let mut grandchild = Process::new(move || -> anyhow::Result<()> {
                let mut w = w2;
                let parent = parent_process().ok_or_else(|| anyhow::anyhow!("no parent"))?;
                let status = |alive: bool| if alive { "alive" } else { "not alive" };
                send(
                    &mut w,
                    &(status(parent.is_alive()), parent.name().to_owned()),
                )?;
                parent.join_timeout(Duration::from_secs(60));
                send(
                    &mut w,
                    &(status(parent.is_alive()), parent.name().to_owned()),
                )?;
                Ok(())
            })
            .keep_only_fds(&[keep]);
            grandchild.start()?;
            std::thread::sleep(Duration::from_secs(300));
            Ok(())
        })
        .named("the-child")
        .keep_only_fds(&[keep]);
        child.start().unwrap();
        let (status, name): (String, String) = recv(&mut r);
        assert_eq!((status.as_str(), name.as_str()), ("alive", "the-child"));
        child.terminate().unwrap();
        assert_eq!(child.join().unwrap(), -15);
        let (status, _): (String, String) = recv(&mut r);
        assert_eq!(status, "not alive");
    });
    // And the main process has none.
    assert!(parent_process().is_none());
}

#[test]
fn test_parent_process_of_a_forkserver_child_is_the_asker() {
    // A forkserver child's kernel parent is the server; parent_process() names the process
    // that asked for it, as in Python. The chapter binary's `parent-of` entry exits 0 if its
    // parent_process() has our pid and is alive.
    let me = getpid().as_raw();
    let mut p = forkserved("parent-of", &me);
    within(LONG, "the forkserver child", move || {
        p.start().unwrap();
        assert_eq!(p.join().unwrap(), 0);
    });
}

#[test]
fn test_close() {
    let token = Arc::new(());
    let weak: Weak<()> = Arc::downgrade(&token);
    let (r, w) = pipe();
    let keep = raw(&r);
    let mut p = Process::new(move || {
        let _token = token;
        let mut r = r;
        // Waits for the parent's go (the original's q.get()).
        r.read(&mut [0u8; 1]).map(drop)
    })
    .daemon(true)
    .keep_only_fds(&[keep]);
    p.start().unwrap();
    assert!(p.is_alive());
    // Still running: cannot close (Python's ValueError).
    let err = p.close().unwrap_err();
    assert!(err.to_string().contains("still running"), "{err}");
    let mut w = w;
    w.write_all(b"!").unwrap();
    assert_eq!(p.join().unwrap(), 0);
    assert!(!p.is_alive());
    assert_eq!(p.exitcode(), Some(0));
    p.close().unwrap();
    // Divergences: is_alive() answers false instead of raising; exitcode stays readable.
    assert!(!p.is_alive());
    assert!(p.join().unwrap_err().to_string().contains("closed"));
    assert!(p.terminate().unwrap_err().to_string().contains("closed"));
    assert!(p.start().unwrap_err().to_string().contains("closed"));
    p.close().unwrap();
    assert_eq!(p.exitcode(), Some(0));
    assert!(p.sentinel().is_none());
    drop(p);
    // The closure went with the fork: nothing of it is left in the parent.
    assert!(weak.upgrade().is_none());
}
