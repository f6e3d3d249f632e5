//! One test, alone in its binary (descriptors and children are process-wide): after every
//! lesson and a manager started and dropped, no descriptor, socket directory, shared-memory
//! block or child is left.

use std::time::Duration;

use lesson::{Cx, within};
use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, waitpid};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn manager_dirs() -> usize {
    let prefix = format!("ipc-manager-{}-", std::process::id());
    std::fs::read_dir(std::env::temp_dir())
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn no_fd_socket_or_child_is_left_behind() {
    let before = open_fds();
    within(Duration::from_secs(120), "every lesson", || {
        let cx = Cx::quiet(0.02).with_exe(env!("CARGO_BIN_EXE_ipc"));
        for lesson in ipc::CHAPTER.lessons {
            (lesson.run)(&cx).unwrap_or_else(|e| panic!("{}: {e:#}", lesson.name));
        }
        let m = ipc::Manager::start().unwrap();
        let d = m.dict().unwrap();
        d.set(1, 2).unwrap();
        drop(d);
        drop(m);
    });
    assert_eq!(open_fds(), before, "file descriptors leaked");
    assert_eq!(manager_dirs(), 0, "a manager's socket directory was left");
    let prefix = format!("ipc_{}_", std::process::id());
    let blocks = std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(blocks, 0, "a shared-memory block was left in /dev/shm");
    assert_eq!(
        waitpid(None, Some(WaitPidFlag::WNOHANG)),
        Err(Errno::ECHILD),
        "a child was left behind"
    );
}
