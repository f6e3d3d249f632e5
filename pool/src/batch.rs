//! A batch: the jobs a driver sends its worker in one frame, each task encoded on its own.
//!
//! A task that cannot be encoded, or whose encoding is over the frame limit, is refused here,
//! before anything is sent: it fails at once with [`TaskError::TaskEncoding`], and its job is
//! split around it (the tasks before and after still go, as sub-jobs). Jobs that do not fit
//! in one frame beside the others go back to the queue.

use ipc::frame::DEFAULT_MAX_FRAME;
use serde_bytes::Bytes;

use crate::entry::{EntryError, MAX_ENTRY, push_entry};
use crate::shared::{BatchOut, Job, Task, TaskError, WireJob};

/// A batch frame's tasks and sub-job list stay below this.
const FRAME_ROOM: usize = DEFAULT_MAX_FRAME - 1024;
/// Bytes a sub-job's entry in a batch frame takes, at most.
const WIRE_JOB: usize = 32;

/// A sub-job on its way to a worker, or being run by it.
pub(crate) struct InFlight<T> {
    pub(crate) seq: u64,
    pub(crate) job: Job<T>,
    /// Results received so far (always the first ones: a worker goes in order).
    pub(crate) delivered: usize,
}

/// What [`Batch::fill`] did not put in the batch.
pub(crate) enum Refused<T> {
    /// Task `index` of job `id` cannot be sent: its result.
    Failed(u64, usize, TaskError),
    /// Did not fit in this frame: for a later batch.
    Later(Job<T>),
}

/// The frame being built; reused from batch to batch.
#[derive(Default)]
pub(crate) struct Batch {
    /// The tasks, as entries.
    blob: Vec<u8>,
    /// The sub-jobs.
    wire: Vec<WireJob>,
}

impl Batch {
    /// The frame to send.
    pub(crate) fn frame(&self) -> BatchOut<'_> {
        BatchOut {
            jobs: &self.wire,
            tasks: Bytes::new(&self.blob),
        }
    }

    /// Start a new batch with the tasks of `taken`, each sub-job numbered by `seq`; what
    /// cannot go (see the module docs) is handed to `refused`. The sub-jobs sent, in order.
    pub(crate) fn fill<T: Task>(
        &mut self,
        taken: Vec<Job<T>>,
        mut seq: impl FnMut() -> u64,
        mut refused: impl FnMut(Refused<T>),
    ) -> Vec<InFlight<T>> {
        self.blob.clear();
        self.wire.clear();
        let mut out = Vec::new();
        let mut taken = taken.into_iter();
        while let Some(job) = taken.next() {
            let mut bad: Vec<(usize, String)> = Vec::new();
            let mut overflow = None;
            for (k, task) in job.tasks.iter().enumerate() {
                let at = self.blob.len();
                match push_entry(&mut self.blob, task) {
                    Ok(n) if n > MAX_ENTRY => {
                        self.blob.truncate(at);
                        bad.push((
                            k,
                            format!(
                                "the task is {n} bytes encoded, over the limit of {MAX_ENTRY} bytes"
                            ),
                        ));
                    }
                    // Past the frame's room with others before it: this task and the rest go
                    // in a later batch (alone first in one, it fits: it is under MAX_ENTRY).
                    Ok(_)
                        if at > 0
                            && self.blob.len() + WIRE_JOB * (out.len() + bad.len() + 2)
                                > FRAME_ROOM =>
                    {
                        self.blob.truncate(at);
                        overflow = Some(k);
                        break;
                    }
                    Ok(_) => {}
                    Err(EntryError::Encode(e)) => {
                        bad.push((k, format!("cannot encode the task: {e}")));
                    }
                    Err(EntryError::Full) => bad.push((k, "cannot encode the task".into())),
                }
            }
            let Job {
                id,
                first,
                mut tasks,
                strikes,
                gated: _,
            } = job;
            // Strikes belong to the job's first task, and go wherever it goes.
            let strikes_at = |k: usize| if k == 0 { strikes } else { 0 };
            let rest = overflow.map(|k| Job {
                id,
                first: first + k,
                tasks: tasks.split_off(k),
                strikes: strikes_at(k),
                gated: false,
            });
            if bad.is_empty() {
                if !tasks.is_empty() {
                    out.push(self.sub_job(seq(), id, first, tasks, strikes));
                }
            } else {
                // Sub-jobs of the runs of good tasks between the bad ones.
                let mut bad = bad.into_iter().peekable();
                let mut run = Vec::new();
                let mut run_first = first;
                for (k, task) in tasks.into_iter().enumerate() {
                    match bad.next_if(|(b, _)| *b == k) {
                        Some((_, why)) => {
                            if !run.is_empty() {
                                let run = std::mem::take(&mut run);
                                let s = strikes_at(run_first - first);
                                out.push(self.sub_job(seq(), id, run_first, run, s));
                            }
                            drop(task);
                            refused(Refused::Failed(id, first + k, TaskError::TaskEncoding(why)));
                            run_first = first + k + 1;
                        }
                        None => run.push(task),
                    }
                }
                if !run.is_empty() {
                    let s = strikes_at(run_first - first);
                    out.push(self.sub_job(seq(), id, run_first, run, s));
                }
            }
            if let Some(rest) = rest {
                refused(Refused::Later(rest));
                taken.by_ref().for_each(|job| refused(Refused::Later(job)));
            }
        }
        out
    }

    fn sub_job<T>(
        &mut self,
        seq: u64,
        id: u64,
        first: usize,
        tasks: Vec<T>,
        strikes: u8,
    ) -> InFlight<T> {
        self.wire.push(WireJob {
            seq,
            first: first as u32,
            count: tasks.len() as u32,
        });
        InFlight {
            seq,
            job: Job {
                id,
                first,
                tasks,
                strikes,
                gated: false,
            },
            delivered: 0,
        }
    }
}
