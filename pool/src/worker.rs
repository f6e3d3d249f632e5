//! A worker: a forked process that runs jobs from its socket until the parent closes it.

use std::os::fd::AsRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};

use ipc::{Connection, Pipe};
use processes::Process;

use crate::shared::{Job, PoolError, Reply, Task, TaskError};

/// The parent's end of a worker's socket pair: a batch of jobs goes out as one frame; a reply
/// comes back for each job as it finishes (so when a worker dies, the replies already sent say
/// which jobs it had finished).
pub(crate) type WorkerEnd<T> = Connection<Vec<Job<T>>, Reply<<T as Task>::Output>>;

/// Fork one worker; the parent's end of its socket pair.
pub(crate) fn fork_worker<T: Task>() -> Result<(Process, WorkerEnd<T>), PoolError> {
    let (parent_end, child_end) = Pipe::duplex::<Vec<Job<T>>, Reply<T::Output>>()
        .map_err(|e| PoolError::Start(e.to_string()))?;
    let keep = child_end.as_raw_fd();
    // The worker keeps only its own end: otherwise a worker forked later would hold copies of
    // the other workers' ends, and they would never see end-of-file when told to stop.
    let mut worker = Process::new(move || worker_loop::<T>(child_end))
        .named("pool-worker")
        .keep_only_fds(&[keep]);
    worker
        .start()
        .map_err(|e| PoolError::Start(format!("{e:#}")))?;
    Ok((worker, parent_end))
}

/// The worker: run jobs until the parent closes the connection.
fn worker_loop<T: Task>(conn: Connection<Reply<T::Output>, Vec<Job<T>>>) {
    while let Ok(batch) = conn.recv() {
        for job in batch {
            if !run_job(&conn, job) {
                return;
            }
        }
    }
}

/// Run one job and send its reply; `false` if the parent is gone.
fn run_job<T: Task>(conn: &Connection<Reply<T::Output>, Vec<Job<T>>>, job: Job<T>) -> bool {
    let results = job
        .tasks
        .into_iter()
        .map(|task| match catch_unwind(AssertUnwindSafe(|| task.run())) {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(e)) => Err(TaskError::Failed(format!("{e:#}"))),
            Err(payload) => Err(TaskError::Panicked(processes_panic_message(&*payload))),
        })
        .collect();
    conn.send(&Reply {
        id: job.id,
        results,
    })
    .is_ok()
}

fn processes_panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic".to_owned())
}
