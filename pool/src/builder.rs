//! [`Builder`]: a [`Pool`]'s options, Python's `Pool(processes, maxtasksperchild=...)` and
//! this pool's own `max_batch`.

use crate::pool::Pool;
use crate::shared::{PoolError, Task};

/// Jobs a worker may be handed at once, by default (see [`Builder::max_batch`]).
pub const DEFAULT_MAX_BATCH: usize = 64;

/// Options for a [`Pool`]: Python's `Pool(processes, maxtasksperchild=...)`.
#[derive(Debug, Clone, Default)]
pub struct Builder {
    processes: Option<usize>,
    maxtasksperchild: Option<usize>,
    max_batch: Option<usize>,
    /// Which of `worker::PREFIXES` the workers' names start with.
    pub(crate) prefix: u8,
}

/// The checked settings a pool starts with.
pub(crate) struct Settings {
    pub(crate) processes: usize,
    pub(crate) maxtasks: Option<usize>,
    pub(crate) max_batch: usize,
    pub(crate) prefix: u8,
}

impl Builder {
    /// How many workers (default: `available_parallelism()`); 0 is refused by
    /// [`Builder::build`].
    pub fn processes(mut self, n: usize) -> Builder {
        self.processes = Some(n);
        self
    }

    /// Replace a worker after it has run this many tasks (Python's `maxtasksperchild`): a
    /// worker is never given more. 0 is refused by [`Builder::build`]. Each task of a `map`
    /// counts (Python counts a chunk as one).
    pub fn maxtasksperchild(mut self, n: usize) -> Builder {
        self.maxtasksperchild = Some(n);
        self
    }

    /// How many jobs (an `apply_async`, or a chunk of a `map`) a worker may be handed at once,
    /// in one message (default [`DEFAULT_MAX_BATCH`]; 0 is refused by [`Builder::build`]).
    ///
    /// Python's workers take one job at a time, each when it is free, from one queue in the
    /// order submitted: with `Pool(5)` and tasks that sleep, tasks 0 to 4 run, then 5 to 9.
    /// This pool does the same whenever the tasks a worker ran last took a millisecond or
    /// more each (a sleep, I/O, real work), and always with `max_batch(1)`. Only while tasks
    /// are shorter than that is a worker handed several jobs at once, up to `n`: one message
    /// and one wake-up for many small tasks (the difference between 30 000 and 300 000 tasks
    /// a second), at the price that the jobs of a batch wait behind each other on their
    /// worker, so tasks may start out of the order submitted.
    pub fn max_batch(mut self, n: usize) -> Builder {
        self.max_batch = Some(n);
        self
    }

    /// Start the workers, then the pool's threads.
    ///
    /// # Errors
    ///
    /// [`PoolError::Invalid`] for `processes(0)`, `maxtasksperchild(0)` or `max_batch(0)`
    /// (Python raises `ValueError` for the first two); [`PoolError::Start`] when a worker or a
    /// thread cannot be created (a process or descriptor limit, say), after every worker
    /// already started has been stopped and reaped.
    pub fn build<T: Task>(self) -> Result<Pool<T>, PoolError> {
        Pool::start(self.settings()?)
    }

    /// The settings, checked.
    pub(crate) fn settings(&self) -> Result<Settings, PoolError> {
        let processes = self
            .processes
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        if processes == 0 {
            return Err(PoolError::Invalid(
                "the number of processes must be at least 1".into(),
            ));
        }
        if self.maxtasksperchild == Some(0) {
            return Err(PoolError::Invalid(
                "maxtasksperchild must be at least 1 (or not set)".into(),
            ));
        }
        if self.max_batch == Some(0) {
            return Err(PoolError::Invalid(
                "max_batch must be at least 1 (or not set)".into(),
            ));
        }
        Ok(Settings {
            processes,
            maxtasks: self.maxtasksperchild,
            max_batch: self.max_batch.unwrap_or(DEFAULT_MAX_BATCH),
            prefix: self.prefix,
        })
    }
}
