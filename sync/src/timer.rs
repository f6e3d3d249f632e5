//! [`Timer`]: Python's `threading.Timer`, a function run once after a delay unless cancelled.

use std::io;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

/// Runs a function on its own thread after a delay, unless cancelled first.
/// Replaces `threading.Timer(seconds, f)` + `start()`.
///
/// The thread sleeps in `recv_timeout` on a channel: time running out means fire, a message
/// (or the sender dropped) means cancelled. So cancelling wakes it at once, with no polling.
///
/// Dropping a `Timer` cancels it; call [`Timer::join`] to let it fire and wait for it.
///
/// ```
/// use std::time::Duration;
/// use sync::Timer;
///
/// let t = Timer::start(Duration::from_secs(60), || println!("never"))?;
/// assert!(t.cancel());     // cancelled long before the minute is up: it will never fire
/// let t = Timer::start(Duration::from_millis(1), || ())?;
/// assert!(t.join());       // fired
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Timer {
    cancel: Option<Sender<()>>,
    thread: Option<JoinHandle<bool>>,
}

impl Timer {
    /// Start the timer: `f` runs on a new thread after `delay`.
    pub fn start<F: FnOnce() + Send + 'static>(delay: Duration, f: F) -> io::Result<Timer> {
        let (cancel, cancelled) = mpsc::channel::<()>();
        let thread =
            std::thread::Builder::new()
                .name("timer".into())
                .spawn(move || match cancelled.recv_timeout(delay) {
                    Err(RecvTimeoutError::Timeout) => {
                        f();
                        true
                    }
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => false,
                })?;
        Ok(Timer {
            cancel: Some(cancel),
            thread: Some(thread),
        })
    }

    fn finish(&mut self, cancel: bool) -> bool {
        if cancel {
            // Ignored if the thread has already decided to fire (it no longer listens).
            self.cancel.take().map(|c| c.send(()));
        }
        let fired = self
            .thread
            .take()
            .map(|t| t.join().unwrap_or(true))
            .unwrap_or(false);
        self.cancel.take();
        fired
    }

    /// Cancel it. `true` if it had not fired and now never will; `false` if the delay had
    /// already run out (the function has then run: this waits for it to finish).
    /// Replaces `timer.cancel()`, which cannot tell you which happened.
    pub fn cancel(mut self) -> bool {
        !self.finish(true)
    }

    /// Wait for the timer; `true` if the function ran. Replaces `timer.join()`.
    pub fn join(mut self) -> bool {
        self.finish(false)
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.finish(true);
    }
}
