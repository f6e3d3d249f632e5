//! Deadlines for timed waits that never overflow. Python accepts any timeout (a huge one means
//! "as long as it takes"); `Instant::now() + timeout` panics when the sum cannot be represented,
//! and a `timespec` cast from a huge `u64` turns negative (an immediate time-out). Here a
//! deadline too far away to represent is no deadline: the wait lasts as long as it takes.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::libc;

/// The instant `timeout` from now, or `None` (wait as long as it takes) when it cannot be
/// represented.
pub(crate) fn after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Time left until `deadline` (`None`: forever); `Some(ZERO)` once it has passed.
pub(crate) fn left(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

/// A relative `timespec` for a futex or `ppoll`, saturated at `time_t`'s range.
pub(crate) fn timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: d.subsec_nanos() as libc::c_long,
    }
}

/// The absolute `CLOCK_REALTIME` time `timeout` from now (what `pthread_mutex_timedlock`
/// takes), or `None` when it cannot be represented: wait without a time limit then.
pub(crate) fn realtime_after(timeout: Duration) -> Option<libc::timespec> {
    let at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .checked_add(timeout)?;
    Some(libc::timespec {
        tv_sec: libc::time_t::try_from(at.as_secs()).ok()?,
        tv_nsec: at.subsec_nanos() as libc::c_long,
    })
}

/// Milliseconds for `poll(2)`, rounded up, saturated at `i32::MAX` (about 24 days; a caller
/// waiting longer polls again).
pub(crate) fn poll_ms(d: Duration) -> i32 {
    i32::try_from(d.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_timeouts_saturate() {
        assert!(after(Duration::MAX).is_none());
        assert!(realtime_after(Duration::MAX).is_none());
        assert!(realtime_after(Duration::from_secs(u64::MAX / 2)).is_none());
        assert_eq!(timespec(Duration::MAX).tv_sec, libc::time_t::MAX);
        assert_eq!(poll_ms(Duration::MAX), i32::MAX);
        assert_eq!(poll_ms(Duration::from_micros(1)), 1);
        assert_eq!(left(None), None);
        assert_eq!(left(Some(Instant::now())), Some(Duration::ZERO));
    }
}
