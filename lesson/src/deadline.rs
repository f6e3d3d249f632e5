//! Waiting for a child process with a deadline: a demo that hangs is killed, never waited on
//! forever.

use std::io::{self, Read};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Run `f` on a new thread and wait at most `limit` for its result: the test-side deadline for
/// a lesson or a blocking call, so a bug fails the test instead of hanging it. On time-out the
/// thread is left behind (it cannot be killed) and this panics naming `what`.
///
/// ```
/// let v = lesson::within(std::time::Duration::from_secs(10), "adding", || 2 + 2);
/// assert_eq!(v, 4);
/// ```
pub fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let name = thread::current().name().unwrap_or("within").to_owned();
    let spawned = thread::Builder::new().name(name).spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    if let Err(e) = spawned {
        panic!("{what}: cannot start a thread: {e}");
    }
    match rx.recv_timeout(limit) {
        Ok(Ok(v)) => v,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("{what} did not finish within {limit:?}"),
    }
}

/// Wait for `child` to exit, at most `limit`. On time-out the child is killed and reaped, and
/// `Ok(None)` is returned: no zombie is left either way.
pub fn wait_within(child: &mut Child, limit: Duration) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            // It may have exited in between: kill then fails with InvalidInput, wait still reaps.
            let _ = child.kill();
            child.wait()?;
            return Ok(None);
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Run `cmd` with stdin closed, collecting stdout and stderr, for at most `limit`.
/// A child still running at the deadline is killed, and this returns an error saying so with
/// what it had printed.
pub fn output_within(cmd: &mut Command, limit: Duration) -> anyhow::Result<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status = wait_within(&mut child, limit)
        .with_context(|| format!("waiting for {:?}", cmd.get_program()))?;
    // The readers end when the pipes close, which the child's exit (or kill) guarantees.
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    match status {
        Some(status) => Ok(Output {
            status,
            stdout,
            stderr,
        }),
        None => bail!(
            "{:?} did not finish within {limit:?} and was killed; it had printed:\n{}{}",
            cmd.get_program(),
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        ),
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}
