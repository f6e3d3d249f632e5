//! The parent's side of each worker: one thread per worker slot sends it batches of tasks,
//! reads its results, and when it dies delivers what its journal kept, fails the one task that
//! was running, puts the tasks it had not started back in the queue, and forks a replacement.
//!
//! # The rules it keeps
//!
//! - Every task yields exactly one result, in its place: a job completes when each of its
//!   tasks has one ([`crate::result`] assembles the parts).
//! - A task fails with [`TaskError::WorkerDied`] only if it had started on the worker that died
//!   (the journal says so); tasks sent to that worker but not started run elsewhere, and each
//!   task runs at most once.
//! - A task that cannot be encoded, or is over the frame limit, fails at once with
//!   [`TaskError::TaskEncoding`]; it never reaches a worker, and the batch goes on without it.
//! - A worker is given at most `maxtasksperchild` tasks: a chunk bigger than what it has left
//!   is split, and the rest goes back to the queue.
//! - Only our own children are signalled: a worker's pid leaves [`Shared::pids`] before it is
//!   reaped (see there).

use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, RecvTimeoutError, Sender};
use ipc::frame::{DEFAULT_MAX_FRAME, FrameReader, write_frame};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use processes::Process;

use crate::batch::{Batch, InFlight, Refused};
use crate::entry::decode_results;
use crate::journal::Phase;
use crate::shared::{Job, Part, PartIn, PoolError, Shared, Task, TaskError};
use crate::worker::{Worker, fork_worker};

/// A batch whose tasks took less than this each, from its sending to its last result, makes
/// the driver *quick*: it may hand its worker several jobs at once next time (see
/// `Builder::max_batch`). Tasks of a millisecond or more (a sleep, I/O) go one at a time, to
/// whichever worker is free, in the order submitted, as Python's do.
const QUICK: Duration = Duration::from_millis(1);
/// How often an idle driver looks at its worker and at the pool's state.
const TICK: Duration = Duration::from_millis(20);

/// What a driver reuses from batch to batch.
struct Scratch {
    /// The batch being sent.
    batch: Batch,
    /// Reads the worker's replies ahead; a new one for each new worker.
    replies: FrameReader,
    /// Why the last fork failed, for [`TaskError::NoWorker`].
    fork_error: String,
}

/// One worker slot's thread in the parent. Built by the pool, run by [`Driver::run`].
pub(crate) struct Driver<T: Task> {
    /// The slot's index (its place in `Shared::pids`).
    pub(crate) slot: usize,
    /// The slot's worker; `None` after a replacement could not be forked.
    pub(crate) worker: Option<Worker>,
    pub(crate) shared: Arc<Shared<T::Output>>,
    /// The pool's job queue.
    pub(crate) jobs: Receiver<Job<T>>,
    /// The same queue, to put back what a worker will not run.
    pub(crate) requeue: Sender<Job<T>>,
    /// To the result handler.
    pub(crate) done: Sender<Part<T::Output>>,
    /// Python's `maxtasksperchild`.
    pub(crate) maxtasks: Option<usize>,
    /// The most jobs in one batch (`Builder::max_batch`).
    pub(crate) max_batch: usize,
    /// The last batch's tasks took under [`QUICK`] each: the next may carry several jobs.
    pub(crate) quick: bool,
}

/// Send a part to the result handler (gone only once the pool has stopped).
fn deliver<O>(done: &Sender<Part<O>>, id: u64, start: usize, results: Vec<Result<O, TaskError>>) {
    let _ = done.send(Part { id, start, results });
}

/// `n` copies of an error, as results.
fn errors<O>(why: &TaskError, n: usize) -> Vec<Result<O, TaskError>> {
    (0..n).map(|_| Err(why.clone())).collect()
}

/// Whether `stream` has something to read: from an idle worker, that is end-of-file.
fn readable(stream: &UnixStream) -> bool {
    let mut fds = [PollFd::new(stream.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
}

/// Why a worker could not be started, without the "cannot start the pool" of the error's
/// display (the pool is running; one worker is missing).
fn start_error(e: PoolError) -> String {
    match e {
        PoolError::Start(why) => why,
        other => other.to_string(),
    }
}

/// Reap a dead (or killed) worker; how it died.
fn died(process: &mut Process) -> TaskError {
    let pid = process.pid().unwrap_or_default();
    let (signal, code) = match process.join() {
        Ok(code) if code < 0 => (Some(-code), None),
        Ok(code) => (None, Some(code)),
        Err(_) => (None, None),
    };
    TaskError::WorkerDied { pid, signal, code }
}

impl<T: Task> Driver<T> {
    /// Serve the slot until the pool stops; the worker is then told to leave and reaped.
    pub(crate) fn run(mut self) {
        let mut scratch = Scratch {
            batch: Batch::default(),
            replies: FrameReader::new(DEFAULT_MAX_FRAME),
            fork_error: String::new(),
        };
        loop {
            let first = match self.jobs.recv_timeout(TICK) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => {
                    if self.shared.stopped.load(Ordering::SeqCst) {
                        break;
                    }
                    match &self.worker {
                        // An idle worker has nothing to say: readable means it is gone.
                        Some(w) if readable(&w.stream) => self.lost(Vec::new(), &mut scratch),
                        None => {
                            self.restart(&mut scratch);
                        }
                        Some(_) => {}
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            self.serve(first, &mut scratch);
        }
        if let Some(w) = self.worker.take() {
            self.unregister();
            // The socket closes first: the worker sees end-of-file, leaves, and is reaped.
            drop(w);
        }
    }

    /// A number for the next worker of this pool.
    fn number(&self) -> u32 {
        self.shared.next_number.fetch_add(1, Ordering::Relaxed)
    }

    fn stopping(&self) -> bool {
        self.shared.terminated.load(Ordering::SeqCst)
    }

    /// Every task of `job` fails with `why`.
    fn fail(&self, job: Job<T>, why: &TaskError) {
        if job.gated {
            // Never asked: let go of it with the job.
            drop(self.shared.take_gate(job.id));
        }
        let (id, first, n) = (job.id, job.first, job.tasks.len());
        // The tasks go before their results: once a job's results are all in, the pool holds
        // none of its task values (CPython's test_release_task_refs).
        drop(job);
        deliver(&self.done, id, first, errors(why, n));
    }

    /// Back to the queue (or failed, once the pool is terminated).
    fn resubmit(&self, job: Job<T>) {
        if job.tasks.is_empty() {
            return;
        }
        if self.stopping() {
            self.fail(job, &TaskError::Terminated);
        } else if let Err(e) = self.requeue.send(job) {
            self.fail(e.0, &TaskError::Terminated);
        }
    }

    fn serve(&mut self, first: Job<T>, scratch: &mut Scratch) {
        if self.stopping() {
            self.fail(first, &TaskError::Terminated);
            return;
        }
        if self.worker.is_none() && !self.restart(scratch) {
            if self.shared.live_workers.load(Ordering::SeqCst) == 0 {
                self.fail(first, &TaskError::NoWorker(scratch.fork_error.clone()));
            } else {
                // Another slot has a worker: leave the job to it, and try again later.
                self.resubmit(first);
                std::thread::sleep(TICK);
            }
            return;
        }
        let taken = self.take(first);
        let shared = &self.shared;
        let inflight = scratch.batch.fill(
            taken,
            || shared.next_seq.fetch_add(1, Ordering::Relaxed),
            |refused| match refused {
                Refused::Failed(id, index, why) => deliver(&self.done, id, index, vec![Err(why)]),
                Refused::Later(job) => self.resubmit(job),
            },
        );
        if !inflight.is_empty() {
            self.dispatch(inflight, scratch);
        }
    }

    /// `first`, and while the tasks are quick a fair share of the queue (so up to `max_batch`
    /// small jobs travel together, and slow ones spread over every worker), within what the
    /// worker may still run. Otherwise `first` alone: a worker takes its next job when it is
    /// free, as Python's do.
    fn take(&self, first: Job<T>) -> Vec<Job<T>> {
        let given = self.worker.as_ref().map_or(0, |w| w.given);
        let budget = self
            .maxtasks
            .map_or(usize::MAX, |m| m.saturating_sub(given).max(1));
        let limit = if self.quick { self.max_batch } else { 1 };
        let share = (1 + self.jobs.len() / self.shared.size).min(limit);
        let mut taken = Vec::new();
        let mut count = 0;
        let mut next = Some(first);
        while let Some(mut job) = next.take() {
            if std::mem::take(&mut job.gated)
                && self.shared.take_gate(job.id).is_some_and(|gate| !gate())
            {
                // Cancelled while it waited in the queue: it is not sent.
                self.fail(job, &TaskError::Cancelled);
                if taken.len() < share {
                    next = self.jobs.try_recv().ok();
                }
                continue;
            }
            let room = budget - count;
            if job.tasks.len() > room {
                let rest = job.tasks.split_off(room);
                self.resubmit(Job {
                    id: job.id,
                    first: job.first + room,
                    tasks: rest,
                    strikes: 0,
                    gated: false,
                });
            }
            count += job.tasks.len();
            taken.push(job);
            if taken.len() < share && count < budget {
                next = self.jobs.try_recv().ok();
            }
        }
        taken
    }

    /// Send the batch, then read the results of each sub-job in turn.
    fn dispatch(&mut self, mut inflight: Vec<InFlight<T>>, scratch: &mut Scratch) {
        let Some(w) = self.worker.as_mut() else {
            return;
        };
        let sent = Instant::now();
        if write_frame(&w.stream, &scratch.batch.frame(), DEFAULT_MAX_FRAME).is_err() {
            self.quick = false;
            self.lost(inflight, scratch);
            return;
        }
        let tasks = inflight.iter().map(|f| f.job.tasks.len()).sum::<usize>();
        w.given += tasks;
        let given = w.given;
        let stream = &w.stream;
        let mut cur = 0;
        while cur < inflight.len() {
            let Ok(part) = scratch.replies.read::<PartIn<T::Output>>(stream) else {
                break;
            };
            let f = &mut inflight[cur];
            let start = f.job.first + f.delivered;
            let left = f.job.tasks.len() - f.delivered;
            if part.seq != f.seq || part.start as usize != start {
                // Not what this worker was asked for: it cannot be trusted with the rest.
                break;
            }
            let results = part.results.0;
            let n = results.len();
            if n == 0 || n > left {
                break;
            }
            f.delivered += n;
            if f.delivered == f.job.tasks.len() {
                // Done with these task values before their last results go (see `fail`).
                f.job.tasks = Vec::new();
                cur += 1;
            }
            deliver(&self.done, f.job.id, start, results);
        }
        if cur < inflight.len() {
            self.quick = false;
            self.lost(inflight.split_off(cur), scratch);
            return;
        }
        self.quick =
            sent.elapsed() < QUICK.saturating_mul(u32::try_from(tasks).unwrap_or(u32::MAX));
        drop(inflight);
        if self.maxtasks.is_some_and(|m| given >= m) {
            self.recycle(scratch);
        }
    }

    /// Take the slot's pid out of `Shared::pids` (before its process is reaped).
    fn unregister(&self) {
        let mut pids = self.shared.pids();
        if let Some(p) = pids.get_mut(self.slot) {
            *p = None;
        }
        self.shared.live_workers.fetch_sub(1, Ordering::SeqCst);
    }

    /// Put `w` in the slot, unless the pool was terminated meanwhile (then it is let go).
    fn install(&mut self, w: Worker, scratch: &mut Scratch) -> Option<Worker> {
        let mut pids = self.shared.pids();
        if self.stopping() {
            drop(pids);
            drop(w);
            return None;
        }
        if let Some(p) = pids.get_mut(self.slot) {
            *p = Some(w.member());
        }
        drop(pids);
        scratch.replies = FrameReader::new(DEFAULT_MAX_FRAME);
        self.worker.replace(w)
    }

    /// Fork a worker for an empty slot; `false` if none could be forked (or the pool is
    /// terminated).
    fn restart(&mut self, scratch: &mut Scratch) -> bool {
        debug_assert!(self.worker.is_none());
        if self.stopping() {
            return false;
        }
        match fork_worker::<T>(self.number(), self.shared.prefix) {
            Ok(w) => {
                self.install(w, scratch);
                if self.worker.is_some() {
                    self.shared.live_workers.fetch_add(1, Ordering::SeqCst);
                }
                self.worker.is_some()
            }
            Err(e) => {
                scratch.fork_error = start_error(e);
                false
            }
        }
    }

    /// The worker has been given its `maxtasksperchild` tasks and finished them: a new one
    /// takes the slot (forked first, so the slot is never empty), and the old one leaves.
    fn recycle(&mut self, scratch: &mut Scratch) {
        match fork_worker::<T>(self.number(), self.shared.prefix) {
            Ok(new) => match self.install(new, scratch) {
                // The old pid left `pids` when the new one took its place; closing the old
                // socket lets the old worker leave, and dropping reaps it.
                Some(old) => drop(old),
                None => {
                    if let Some(old) = self.worker.take() {
                        self.unregister();
                        drop(old);
                    }
                }
            },
            Err(e) => {
                scratch.fork_error = start_error(e);
                if let Some(old) = self.worker.take() {
                    self.unregister();
                    drop(old);
                }
            }
        }
    }

    /// The worker is gone (end-of-file, a broken reply, or a failed send) with `inflight`
    /// (from the sub-job it was on) not finished: make sure it is dead, reap it, read its
    /// journal, deliver what it finished, fail what it was running, and put back the rest.
    fn lost(&mut self, inflight: Vec<InFlight<T>>, scratch: &mut Scratch) {
        let Some(mut w) = self.worker.take() else {
            inflight.into_iter().for_each(|f| self.resubmit(f.job));
            return;
        };
        // Still our unreaped child, so the pid is ours: killing a zombie does nothing, and a
        // worker that sent something it should not have is stopped here.
        let _ = w.process.kill();
        self.unregister();
        let status = died(&mut w.process);
        if !self.stopping()
            && let Some(hook) = &self.shared.on_death
        {
            hook(&self.shared, &status);
        }
        let why = if self.stopping() {
            TaskError::Terminated
        } else {
            status
        };
        let journal = w.journal.recover();
        drop(w);
        let mut inflight = inflight.into_iter();
        if let Some(mut f) = inflight.next() {
            let id = f.job.id;
            let mut next = f.job.first + f.delivered;
            // Workers that died decoding the task at `next` (only a job's first task can have
            // any from before).
            let (first, before) = (f.job.first, f.job.strikes);
            let prior = |next: usize| if next == first { before } else { 0 };
            let mut strikes = prior(next);
            let mut parts = Vec::new();
            if let Some(r) = journal.filter(|r| r.seq == f.seq) {
                if r.start > next {
                    // Results sent in a reply we could not read: finished, but lost.
                    let lost = TaskError::ResultEncoding(
                        "the result was lost with its worker's reply".into(),
                    );
                    parts.push((next, errors(&lost, r.start - next)));
                    next = r.start;
                }
                let mut results = decode_results::<T::Output>(&r.entries);
                results.truncate(r.committed);
                let have = results.len();
                let fresh: Vec<_> = results.into_iter().skip(next - r.start).collect();
                if !fresh.is_empty() {
                    let n = fresh.len();
                    parts.push((next, fresh));
                    next += n;
                }
                strikes = prior(next);
                if r.start + have == next && next < first + f.job.tasks.len() {
                    match r.phase {
                        Phase::Running => {
                            parts.push((next, vec![Err(why)]));
                            next += 1;
                            strikes = 0;
                        }
                        // Not started; but after a second worker died decoding it, it is the
                        // suspect, and it fails rather than kill workers for ever.
                        Phase::Decoding if strikes >= 1 => {
                            parts.push((next, vec![Err(why)]));
                            next += 1;
                            strikes = 0;
                        }
                        Phase::Decoding => strikes += 1,
                        Phase::Between => {}
                    }
                }
            }
            let rest = f.job.tasks.split_off(next - f.job.first);
            // The finished tasks' values go before their results (see `fail`).
            drop(f);
            for (start, results) in parts {
                deliver(&self.done, id, start, results);
            }
            self.resubmit(Job {
                id,
                first: next,
                tasks: rest,
                strikes,
                gated: false,
            });
        }
        for f in inflight {
            self.resubmit(f.job);
        }
        if !self.stopping() {
            self.restart(scratch);
        }
    }
}
