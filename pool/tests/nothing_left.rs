//! One test, alone in its binary: after every lesson and pools dropped unjoined, no child and
//! no descriptor is left.

use std::time::Duration;

use lesson::{Cx, within};
use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, waitpid};
use pool::Pool;
use pool::lessons::tasks::Trouble;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn no_child_or_fd_is_left_behind() {
    let before = open_fds();
    within(Duration::from_secs(120), "every lesson", || {
        let cx = Cx::quiet(0.01);
        for lesson in pool::CHAPTER.lessons {
            (lesson.run)(&cx).unwrap_or_else(|e| panic!("{}: {e:#}", lesson.name));
        }
        // Dropped while busy: terminated and reaped.
        let p: Pool<Trouble> = Pool::new(2).unwrap();
        let _h = p.apply_async(Trouble::Slow(1, 5000)).unwrap();
        drop(p);
    });
    // The result-handler and worker threads are joined by then; give the kernel nothing to
    // wait for: no child, running or zombie.
    assert_eq!(
        waitpid(None, Some(WaitPidFlag::WNOHANG)),
        Err(Errno::ECHILD)
    );
    assert_eq!(open_fds(), before, "file descriptors leaked");
}
