//! The parent's side of each worker: one thread per worker sends it batches of jobs, reads its
//! replies, and when it dies fails the task it was running, puts the rest back, and forks a
//! replacement.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam::channel::{self, Receiver, Sender};
use ipc::FrameError;
use ipc::frame::{DEFAULT_MAX_FRAME, FrameReader};
use processes::Process;

use crate::shared::{Job, Outcome, Shared, Task, TaskError};
use crate::worker::{WorkerEnd, fork_worker};

/// Jobs sent to a worker in one go, at most.
const BATCH: usize = 64;

fn died(worker: &mut Process) -> TaskError {
    let pid = worker.pid().unwrap_or_default();
    match worker.join() {
        Ok(code) if code < 0 => TaskError::WorkerDied {
            pid,
            signal: Some(-code),
            code: None,
        },
        Ok(code) => TaskError::WorkerDied {
            pid,
            signal: None,
            code: Some(code),
        },
        Err(_) => TaskError::WorkerDied {
            pid,
            signal: None,
            code: None,
        },
    }
}

/// One worker's thread in the parent: batches of jobs out, replies in, a replacement when the
/// worker dies or has run `maxtasks` tasks. [`Driver::run`] is the thread's body.
pub(crate) struct Driver<T: Task> {
    /// The worker's index in the pool (its place in `Shared::pids`).
    pub(crate) slot: usize,
    /// The worker process.
    pub(crate) worker: Process,
    /// The parent's end of the worker's socket pair.
    pub(crate) end: WorkerEnd<T>,
    pub(crate) shared: Arc<Shared<T::Output>>,
    /// The pool's job queue.
    pub(crate) jobs: Receiver<Job<T>>,
    /// The same queue, to put back the jobs a dead worker had not started.
    pub(crate) requeue: Sender<Job<T>>,
    /// To the result handler: (job id, outcome).
    pub(crate) done: Sender<(u64, Outcome<T::Output>)>,
    /// Python's `maxtasksperchild`.
    pub(crate) maxtasks: Option<usize>,
}

impl<T: Task> Driver<T> {
    /// Serve the worker until the pool stops.
    pub(crate) fn run(self) {
        let Driver {
            slot,
            mut worker,
            mut end,
            shared,
            jobs,
            requeue,
            done,
            maxtasks,
        } = self;
        let mut ran = 0usize;
        let mut replies = FrameReader::new(DEFAULT_MAX_FRAME);
        let stopping = || shared.terminated.load(Ordering::SeqCst);
        'jobs: loop {
            let first = match jobs.recv_timeout(Duration::from_millis(20)) {
                Ok(job) => job,
                Err(channel::RecvTimeoutError::Timeout) => {
                    if shared.stopped.load(Ordering::SeqCst) {
                        break;
                    }
                    continue;
                }
                Err(channel::RecvTimeoutError::Disconnected) => break,
            };
            if stopping() {
                let _ = done.send((first.id, Err(TaskError::Terminated)));
                continue;
            }
            // A fair share of what is queued, so slow tasks spread over every worker, and up to
            // BATCH trivial ones travel together.
            let share = (1 + jobs.len() / shared.pids_len()).min(BATCH);
            let mut batch = vec![first];
            while batch.len() < share {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            // One frame for the batch; the replies come one per job, read ahead in bulk.
            let sent = if end.send(&batch).is_ok() {
                batch.len()
            } else {
                0
            };
            let mut replied = 0;
            while replied < sent {
                match end.recv_buffered(&mut replies) {
                    Ok(reply) => {
                        ran += batch[replied].tasks.len();
                        let _ = done.send((reply.id, Ok(reply.results)));
                        replied += 1;
                    }
                    Err(FrameError::Decode(e)) => {
                        let _ = done.send((
                            batch[replied].id,
                            Err(TaskError::Failed(format!("a malformed reply: {e}"))),
                        ));
                        replied += 1;
                    }
                    Err(_) => break,
                }
            }
            if replied < batch.len() {
                // The worker is gone: the job it was running failed, the rest go back.
                shared.live_workers.fetch_sub(1, Ordering::SeqCst);
                let why = if stopping() {
                    TaskError::Terminated
                } else {
                    died(&mut worker)
                };
                let mut rest = batch.into_iter().skip(replied);
                if let Some(job) = rest.next() {
                    let _ = done.send((job.id, Err(why)));
                }
                for job in rest {
                    if stopping() {
                        let _ = done.send((job.id, Err(TaskError::Terminated)));
                    } else if let Err(e) = requeue.send(job) {
                        let _ = done.send((e.0.id, Err(TaskError::Terminated)));
                    }
                }
                if stopping() || !replace(slot, &mut worker, &mut end, &shared, &mut ran) {
                    break 'jobs;
                }
                // What was read ahead from the old worker's end is of no use now.
                replies = FrameReader::new(DEFAULT_MAX_FRAME);
                continue;
            }
            if maxtasks.is_some_and(|m| ran >= m) {
                // Recycle: close its connection (it exits on end-of-file), reap, fork anew.
                shared.live_workers.fetch_sub(1, Ordering::SeqCst);
                if !replace(slot, &mut worker, &mut end, &shared, &mut ran) {
                    break 'jobs;
                }
                replies = FrameReader::new(DEFAULT_MAX_FRAME);
            }
        }
        // Queue closed (join/terminate): let the worker see end-of-file, then reap it.
        drop(end);
        let _ = worker.join();
    }
}

/// Fork a new worker in place of the current one.
fn replace<T: Task>(
    slot: usize,
    worker: &mut Process,
    end: &mut WorkerEnd<T>,
    shared: &Shared<T::Output>,
    ran: &mut usize,
) -> bool {
    match fork_worker::<T>() {
        Ok((new_worker, new_end)) => {
            // Dropping the old end lets a recycled worker see end-of-file; joining reaps it.
            let old_end = std::mem::replace(end, new_end);
            drop(old_end);
            let mut old = std::mem::replace(worker, new_worker);
            let _ = old.join();
            *ran = 0;
            if let Some(p) = shared
                .pids
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut(slot)
            {
                *p = worker.pid().unwrap_or_default();
            }
            shared.live_workers.fetch_add(1, Ordering::SeqCst);
            true
        }
        Err(_) => false,
    }
}
