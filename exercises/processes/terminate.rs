//! processes -- api: a child that never ends on its own.
//!
//! After the lesson `cargo run -p processes -- api`.
//! Check your work: `cargo xtask exercise terminate`.
//! Run it: `cargo run --bin terminate` in `exercises/`.
//!
//! Unlike a thread, a process can be stopped from outside: `terminate()` sends it SIGTERM
//! (Python's `p.terminate()`), and a child killed by signal N reports exit code -N.

use std::time::Duration;

use processes::Process;

/// A server's main loop: it serves until it is stopped from outside.
fn serve_forever() {
    loop {
        std::thread::sleep(Duration::from_millis(10)); // one request
    }
}

// TODO(processes -- api): `join()` waits for the child to end, and this child never ends on
// its own. Give it `grace` (`Process::join_timeout`); if it is still running then, stop it
// (`terminate`) and join it. Return its exit code: -15, SIGTERM's number, negated.
/// Run `serve_forever` in a child, let it serve for `grace`, then stop it. Its exit code.
pub fn stop_server(grace: Duration) -> anyhow::Result<i32> {
    let mut server = Process::new(serve_forever).named("server");
    server.start()?;
    let _ = grace;
    server.join()
}

fn main() -> anyhow::Result<()> {
    println!("exit code {}", stop_server(Duration::from_millis(100))?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use exercise_check::nothing_left;

    #[test]
    fn stopped_by_sigterm() {
        let code = nothing_left(|| stop_server(Duration::from_millis(20))).unwrap();
        assert_eq!(code, -15, "killed by SIGTERM (15)");
    }
}
