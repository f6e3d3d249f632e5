//! Deadlines for timed waits. Python accepts any timeout up to `threading.TIMEOUT_MAX` (and a
//! `Duration` can be far longer than that); `Instant::now() + timeout` panics when the sum does
//! not fit. A deadline too far away to be represented is no deadline: the wait lasts as long
//! as it takes, which is what such a timeout means anyway.

use std::time::{Duration, Instant};

/// The deadline `timeout` from now, or `None` (wait as long as it takes) when it cannot be
/// represented.
pub(crate) fn after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}
