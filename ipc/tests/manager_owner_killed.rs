//! Issue 15, item 7: when the process that started a Manager is SIGKILLed, the server removes
//! its socket and directory on its way out.
//!
//! Alone in its binary: this process becomes a child subreaper, so that the server, orphaned
//! by its owner's death, becomes our child and is reaped here (no zombie is left behind).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::libc;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use processes::Process;

const LONG: Duration = Duration::from_secs(60);

#[test]
fn the_server_removes_its_socket_directory_when_its_owner_is_sigkilled() {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) only changes who adopts our orphans.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(rc, 0);
    let (mut from_owner, to_parent) = std::os::unix::net::UnixStream::pair().unwrap();
    // The owner: starts a Manager, uses it once, tells us where its socket is and who serves
    // it, then waits to be killed.
    let mut owner = Process::new(move || -> anyhow::Result<()> {
        let m = ipc::Manager::start()?;
        m.value(1)?.add(1)?;
        let mut to_parent = to_parent;
        let dir = m.socket_dir().to_string_lossy().into_owned();
        let pid = m.server_pid().unwrap_or(0);
        writeln!(to_parent, "{pid} {dir}")?;
        std::thread::sleep(Duration::from_secs(600));
        Ok(())
    })
    .named("owner")
    .close_in_child(&from_owner);
    owner.start().unwrap();
    from_owner.set_read_timeout(Some(LONG)).unwrap();
    let mut line = String::new();
    let mut byte = [0u8; 1];
    while from_owner.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        line.push(byte[0] as char);
    }
    let (pid, dir) = line.split_once(' ').expect("the owner's report");
    let server = Pid::from_raw(pid.parse().unwrap());
    let dir = PathBuf::from(dir);
    assert!(dir.join("socket").exists(), "the manager is up");
    owner.kill().unwrap();
    assert_eq!(owner.join().unwrap(), -9);
    // The server sees its owner gone, removes the socket and the directory, and exits; as
    // our adopted child, it is reaped here.
    let t = Instant::now();
    let status = loop {
        match waitpid(server, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {
                assert!(t.elapsed() < LONG, "the server outlived its owner");
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(status) => break status,
            Err(e) => panic!("waitpid: {e}"),
        }
    };
    assert_eq!(
        status,
        WaitStatus::Exited(server, 0),
        "the server left cleanly"
    );
    assert!(!dir.exists(), "{} was left behind", dir.display());
    // Nothing else of ours is left running.
    assert!(kill(server, None::<Signal>).is_err());
    drop(from_owner);
}
