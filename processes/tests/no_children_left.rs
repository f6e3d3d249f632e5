//! One test, alone in its binary: after every kind of child this crate makes, this process has
//! no child left, running or zombie. (`waitpid(-1)` would steal other tests' children, hence a
//! binary of its own.)

use std::time::Duration;

use lesson::{Cx, within};
use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, waitpid};
use processes::Process;
use processes::lessons::{api, introspection, pids, spawn, start_methods};

#[test]
fn no_child_is_left_behind() {
    processes::register(processes::ENTRIES);
    within(Duration::from_secs(120), "every kind of child", || {
        let cx = Cx::quiet(0.02).with_exe(env!("CARGO_BIN_EXE_processes"));
        spawn::run(&cx).unwrap();
        pids::run(&cx).unwrap();
        api::run(&cx).unwrap();
        start_methods::run(&cx).unwrap();
        introspection::run(&cx).unwrap();
        // Handles dropped without join, daemon or not, and one never started.
        let mut a = Process::new(|| std::thread::sleep(Duration::from_millis(20)));
        a.start().unwrap();
        let mut b = Process::new(|| std::thread::sleep(Duration::from_secs(60))).daemon(true);
        b.start().unwrap();
        let _never = Process::new(|| ());
        let mut s = Process::spawn_entry("exit-with", &3)
            .unwrap()
            .exe(env!("CARGO_BIN_EXE_processes"));
        s.start().unwrap();
        // A forkserver child dropped unjoined; then the shared servers are shut down (each
        // ends once its children have).
        let mut f = Process::forkserver_entry("exit-with", &0)
            .unwrap()
            .exe(env!("CARGO_BIN_EXE_processes"));
        f.start().unwrap();
        drop((a, b, s, f));
        processes::ForkServer::shutdown_shared().unwrap();
    });
    assert_eq!(
        waitpid(None, Some(WaitPidFlag::WNOHANG)),
        Err(Errno::ECHILD),
        "a child (running or zombie) was left behind"
    );
}
