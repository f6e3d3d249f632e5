//! A worker: a forked process that runs the tasks of each batch from its socket, keeps its
//! progress in its [`Journal`], and sends each sub-job's results back, until the parent closes
//! the socket.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};

use ipc::FrameError;
use ipc::frame::{DEFAULT_MAX_FRAME, read_bytes_into, write_frame};
use processes::Process;
use serde_bytes::Bytes;

use crate::entry::{EntryError, MAX_ENTRY, push_entry, take_entry};
use crate::journal::{Journal, Writer};
use crate::shared::{BatchIn, Member, PartOut, PoolError, Task, TaskError};

/// This process's worker number, if it is a pool worker (0: it is not). Set once, in the forked
/// child, before its loop: atomics only, so reading it is safe in any process, forked or not.
static NUMBER: AtomicU32 = AtomicU32::new(0);
/// Which of [`PREFIXES`] this worker's name starts with.
static PREFIX: AtomicU8 = AtomicU8::new(0);

/// Workers' names start with one of these: a `Pool`'s are `ForkPoolWorker-N` and a
/// `ProcessPoolExecutor`'s `ForkProcess-N`, as Python names them under the fork start method.
pub(crate) const PREFIXES: [&str; 2] = ["ForkPoolWorker", "ForkProcess"];

/// The name of the pool worker running the calling code, as Python names them:
/// `ForkPoolWorker-3` (Python's `multiprocessing.current_process().name` in a `Pool` worker);
/// `None` outside a pool worker. A pool numbers its own workers from 1, and a replacement
/// takes the next number (Python numbers every process of the program: a second pool's first
/// worker there is `ForkPoolWorker-6`).
pub fn current_worker_name() -> Option<String> {
    let number = NUMBER.load(Ordering::Acquire);
    (number != 0).then(|| {
        let prefix = PREFIXES[usize::from(PREFIX.load(Ordering::Acquire)) % PREFIXES.len()];
        format!("{prefix}-{number}")
    })
}

/// A narration context for a task running in a pool worker: `handoff`'s, speaking as the
/// worker (`ForkPoolWorker-3`) on the lesson's timeline; outside a worker, `handoff`'s own.
pub fn worker_cx(handoff: &lesson::Handoff) -> lesson::Cx {
    match current_worker_name() {
        Some(name) => handoff.clone().named(name).cx(),
        None => handoff.cx(),
    }
}

/// A live worker, as its driver thread holds it. Fields drop in order: the socket closes
/// first, so a worker still waiting for work sees end-of-file and leaves, and only then is
/// the process reaped (the other order waits forever for a worker that waits for us).
pub(crate) struct Worker {
    pub(crate) stream: UnixStream,
    pub(crate) journal: Journal,
    pub(crate) process: Process,
    /// Tasks handed to it so far (for `maxtasksperchild`).
    pub(crate) given: usize,
    /// Its number: its name is `{prefix}-{number}`.
    pub(crate) number: u32,
}

impl Worker {
    pub(crate) fn pid(&self) -> i32 {
        self.process.pid().unwrap_or_default()
    }

    /// Its pid and number, as `Shared::pids` lists it.
    pub(crate) fn member(&self) -> Member {
        Member {
            pid: self.pid(),
            number: self.number,
        }
    }
}

/// Fork one worker with a socket pair and a journal of its own, named
/// `{PREFIXES[prefix]}-{number}`.
pub(crate) fn fork_worker<T: Task>(number: u32, prefix: u8) -> Result<Worker, PoolError> {
    let (parent_end, child_end) =
        UnixStream::pair().map_err(|e| PoolError::Start(format!("socketpair: {e}")))?;
    let journal =
        Journal::new().map_err(|e| PoolError::Start(format!("shared memory for a worker: {e}")))?;
    let keep = child_end.as_raw_fd();
    let theirs = journal.clone();
    // The worker keeps only its own end: otherwise a worker forked later would hold copies of
    // the other workers' ends, and they would never see end-of-file when told to stop. (The
    // parent's copy of `child_end` goes when the closure is dropped, right after the fork.)
    let name = format!(
        "{}-{number}",
        PREFIXES[usize::from(prefix) % PREFIXES.len()]
    );
    let mut process = Process::new(move || {
        // In the child, which is single-threaded here: plain atomic stores.
        PREFIX.store(prefix, Ordering::Release);
        NUMBER.store(number, Ordering::Release);
        worker_main::<T>(&child_end, &theirs)
    })
    .named(name)
    .keep_only_fds(&[keep]);
    process
        .start()
        .map_err(|e| PoolError::Start(format!("{e:#}")))?;
    Ok(Worker {
        stream: parent_end,
        journal,
        process,
        given: 0,
        number,
    })
}

/// The worker process's body: batches in, results out, until end-of-file.
fn worker_main<T: Task>(stream: &UnixStream, journal: &Journal) -> Result<(), String> {
    let mut w = journal
        .writer()
        .map_err(|e| format!("pool worker: its journal: {e}"))?;
    // The batch's bytes, kept from batch to batch; the tasks are decoded from them in place.
    let mut frame = Vec::new();
    loop {
        match read_bytes_into(stream, &mut frame, DEFAULT_MAX_FRAME) {
            Ok(_) => {}
            Err(FrameError::Eof) => return Ok(()),
            Err(e) => return Err(format!("pool worker: reading a batch: {e}")),
        }
        let batch: BatchIn<'_> = postcard::from_bytes(&frame)
            .map_err(|e| format!("pool worker: a malformed batch: {e}"))?;
        let mut tasks: &[u8] = batch.tasks;
        for job in &batch.jobs {
            w.begin(job.seq, job.first);
            for _ in 0..job.count {
                let Some((entry, rest)) = take_entry(tasks) else {
                    return Err("pool worker: a batch with fewer tasks than it says".into());
                };
                tasks = rest;
                // Decoding is not running (the journal says "decoding" from the end of the
                // previous task on): a worker killed while decoding leaves the task not started
                // (see `journal`). A `Deserialize` that panics is that task's error.
                let decoded = catch_unwind(AssertUnwindSafe(|| postcard::from_bytes::<T>(entry)));
                let result = match decoded {
                    Ok(Ok(task)) => {
                        w.running();
                        run(task)
                    }
                    Ok(Err(e)) => Err(TaskError::TaskEncoding(format!(
                        "the worker cannot decode the task: {e}"
                    ))),
                    Err(payload) => Err(TaskError::TaskEncoding(format!(
                        "decoding the task panicked: {}",
                        lesson::panic_message(&*payload)
                    ))),
                };
                record(&mut w, stream, job.seq, &result)?;
            }
            if !w.is_empty() {
                send_unsent(&w, stream, job.seq)?;
            }
            w.end();
        }
    }
}

fn run<T: Task>(task: T) -> Result<T::Output, TaskError> {
    match catch_unwind(AssertUnwindSafe(|| task.run())) {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(e)) => Err(TaskError::Failed(format!("{e:#}"))),
        Err(payload) => Err(TaskError::Panicked(lesson::panic_message(&*payload))),
    }
}

fn send_unsent(w: &Writer<'_>, stream: &UnixStream, seq: u64) -> Result<(), String> {
    let (start, entries) = w.unsent();
    write_frame(
        stream,
        &PartOut {
            seq,
            start,
            entries: Bytes::new(entries),
        },
        DEFAULT_MAX_FRAME,
    )
    .map_err(|e| format!("pool worker: sending results: {e}"))
}

/// Record the running task's result: in the journal if it fits (sending what is there first
/// when the area is full), on its own if it is bigger than the area, and as a
/// [`TaskError::ResultEncoding`] if it cannot be encoded or is over the frame limit.
fn record<O: serde::Serialize>(
    w: &mut Writer<'_>,
    stream: &UnixStream,
    seq: u64,
    result: &Result<O, TaskError>,
) -> Result<(), String> {
    let why = match w.commit(result) {
        Ok(()) => return Ok(()),
        Err(EntryError::Encode(e)) => format!("cannot encode the result: {e}"),
        Err(EntryError::Full) => {
            if !w.is_empty() {
                send_unsent(w, stream, seq)?;
                w.sent();
                match w.commit(result) {
                    Ok(()) => return Ok(()),
                    Err(EntryError::Encode(e)) => {
                        return commit_error::<O>(
                            w,
                            stream,
                            seq,
                            format!("cannot encode the result: {e}"),
                        );
                    }
                    Err(EntryError::Full) => {}
                }
            }
            // Bigger than the whole area: encode it on the heap and send it alone.
            let mut alone = Vec::new();
            match push_entry(&mut alone, result) {
                Err(EntryError::Encode(e)) => format!("cannot encode the result: {e}"),
                Err(EntryError::Full) => "cannot encode the result".into(),
                Ok(n) if n > MAX_ENTRY => {
                    format!("the result is {n} bytes encoded, over the limit of {MAX_ENTRY} bytes")
                }
                Ok(_) => {
                    write_frame(
                        stream,
                        &PartOut {
                            seq,
                            start: w.next(),
                            entries: Bytes::new(&alone),
                        },
                        DEFAULT_MAX_FRAME,
                    )
                    .map_err(|e| format!("pool worker: sending a result: {e}"))?;
                    w.sent_alone();
                    return Ok(());
                }
            }
        }
    };
    commit_error::<O>(w, stream, seq, why)
}

/// Commit a [`TaskError::ResultEncoding`] in place of a result that could not be sent.
fn commit_error<O: serde::Serialize>(
    w: &mut Writer<'_>,
    stream: &UnixStream,
    seq: u64,
    mut why: String,
) -> Result<(), String> {
    if why.len() > 4096 {
        let mut cut = 4096;
        while !why.is_char_boundary(cut) {
            cut -= 1;
        }
        why.truncate(cut);
        why.push_str("...");
    }
    let err: Result<O, TaskError> = Err(TaskError::ResultEncoding(why));
    match w.commit(&err) {
        Ok(()) => Ok(()),
        Err(_) => {
            // Only a full area can refuse a short error: send what is there, then it fits.
            send_unsent(w, stream, seq)?;
            w.sent();
            w.commit(&err)
                .map_err(|_| "pool worker: cannot record an encoding error".to_string())
        }
    }
}
