//! A worker's journal: what survives a worker killed mid-job, in memory it shares with the
//! parent.
//!
//! A reply goes out when a sub-job is done, so a batch of small tasks costs one `write`, not
//! one per task. But a worker killed halfway through a chunk takes the results it had not sent
//! with it, and the parent could not tell the finished tasks from the one that was running and
//! the ones that had not started. So the worker keeps, in a shared anonymous mapping made by the
//! parent before the fork:
//!
//! - the results it has not sent yet, as entries in an [`ipc::Array`] (the worker holds its lock
//!   for life; the lock is robust, so after the worker's death the parent takes it);
//! - one [`ipc::AtomicValue`] word, `state`: the index of the first result in that area
//!   (`start`), how many results are in it (`committed`), and what the worker is doing with
//!   the next task: nothing yet, decoding it, or running it ([`Phase`]).
//!
//! Every change of `state` is one atomic store, so a kill at any instruction leaves either the
//! state before or the state after: a task is never both finished and running, or neither.
//! After the worker is dead and reaped, the parent reads it: the finished results are
//! delivered, the running task fails with [`crate::TaskError::WorkerDied`], and the tasks after
//! it, which had not started, run on another worker. Each task runs at most once. A task
//! whose *decoding* was cut short had not started either and runs elsewhere; but a task
//! during whose decoding two workers died is suspected of killing them and fails (the driver
//! counts these strikes), so a task that crashes whatever decodes it cannot make the pool fork
//! forever.

use std::sync::atomic::{AtomicU64, Ordering};

use ipc::{Array, ArrayGuard, AtomicValue};

use crate::entry::{EntryError, put_entry, take_entry};

/// Bytes of the result area: room for the results of a big chunk of small tasks, so they go
/// back in one part (past 64 KiB, `ipc::frame::write_frame` writes them straight from this
/// shared memory, in a second `write`, without copying them).
const AREA: usize = 256 << 10;
/// The area starts with the sub-job's dispatch number.
const HEADER: usize = 8;

/// Nothing in progress: nothing committed, nothing running.
const IDLE: u64 = 0;

/// What a worker is doing with the task after its committed results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Nothing: no sub-job in progress.
    Between = 0,
    /// Decoding it (its `Deserialize` runs; its `run` has not started).
    Decoding = 1,
    /// Running it (its `run`, or encoding its result).
    Running = 2,
}

fn pack(start: u32, committed: u32, phase: Phase) -> u64 {
    (u64::from(start) << 32) | (u64::from(committed) << 2) | phase as u64
}

fn unpack(state: u64) -> (u32, u32, Phase) {
    let phase = match state & 3 {
        1 => Phase::Decoding,
        2 => Phase::Running,
        _ => Phase::Between,
    };
    (
        (state >> 32) as u32,
        ((state & 0xffff_ffff) >> 2) as u32,
        phase,
    )
}

/// One worker's journal; the parent keeps one handle, the worker (forked after) another.
#[derive(Clone)]
pub(crate) struct Journal {
    area: Array<u8>,
    state: AtomicValue<AtomicU64>,
}

/// What a dead worker's journal says about its last sub-job.
pub(crate) struct Recovered {
    /// The sub-job's dispatch number.
    pub(crate) seq: u64,
    /// The index (in the whole job) of the first entry.
    pub(crate) start: usize,
    /// The results not sent, as entries.
    pub(crate) entries: Vec<u8>,
    /// How many entries.
    pub(crate) committed: usize,
    /// What the worker was doing with the task after them.
    pub(crate) phase: Phase,
}

impl Journal {
    pub(crate) fn new() -> std::io::Result<Journal> {
        Ok(Journal {
            area: Array::new(HEADER + AREA, 0)?,
            state: AtomicValue::new(AtomicU64::new(IDLE))?,
        })
    }

    /// The worker's side: hold the area's lock for the worker's life.
    pub(crate) fn writer(&self) -> Result<Writer<'_>, ipc::LockError> {
        Ok(Writer {
            area: self.area.lock()?,
            state: &self.state,
            phase: Phase::Between,
            used: HEADER,
            start: 0,
            committed: 0,
        })
    }

    /// The parent's side, once the worker is dead **and reaped** (its lock is then free or
    /// owner-dead, never held by a live process): what it left, and the journal cleared.
    pub(crate) fn recover(&self) -> Option<Recovered> {
        let state = self.state.swap(IDLE, Ordering::Acquire);
        if state == IDLE {
            return None;
        }
        let area = self.area.lock().ok()?;
        let (start, committed, phase) = unpack(state);
        let mut seq = [0u8; HEADER];
        seq.copy_from_slice(&area[..HEADER]);
        // Whole entries only: `committed` counts them (past them the area holds leftovers).
        let body = &area[HEADER..];
        let mut rest = body;
        let mut whole = 0;
        while whole < committed {
            match take_entry(rest) {
                Some((_, after)) => rest = after,
                None => break,
            }
            whole += 1;
        }
        let entries = body[..body.len() - rest.len()].to_vec();
        Some(Recovered {
            seq: u64::from_le_bytes(seq),
            start: start as usize,
            committed: whole as usize,
            entries,
            phase,
        })
    }
}

/// The worker's hold on its journal.
pub(crate) struct Writer<'a> {
    area: ArrayGuard<'a, u8>,
    state: &'a AtomicU64,
    phase: Phase,
    /// The end of the last entry.
    used: usize,
    start: u32,
    committed: u32,
}

impl Writer<'_> {
    #[inline]
    fn publish(&mut self, phase: Phase) {
        self.phase = phase;
        // Release: the entry bytes and the header are written before the state that counts
        // them (a kill is asynchronous; the compiler must not sink those writes past this).
        self.state
            .store(pack(self.start, self.committed, phase), Ordering::Release);
    }

    /// A new sub-job, whose first task has index `first`.
    pub(crate) fn begin(&mut self, seq: u64, first: u32) {
        self.state.store(IDLE, Ordering::Release);
        self.area[..HEADER].copy_from_slice(&seq.to_le_bytes());
        self.used = HEADER;
        self.start = first;
        self.committed = 0;
        self.publish(Phase::Decoding);
    }

    /// The next task (index `start + committed`) starts.
    #[inline]
    pub(crate) fn running(&mut self) {
        self.publish(Phase::Running);
    }

    /// The index of the next task to commit.
    pub(crate) fn next(&self) -> u32 {
        self.start + self.committed
    }

    /// Commit the running task's result as the next entry: one atomic step from "running" to
    /// "finished, and decoding the next" (a worker goes straight on to the next task; after
    /// its last, the phase means nothing). `Full`: no room (send the entries, then [`Writer::sent`], then retry).
    pub(crate) fn commit<V: serde::Serialize + ?Sized>(
        &mut self,
        value: &V,
    ) -> Result<(), EntryError> {
        let end = put_entry(&mut self.area, self.used, value)?;
        self.used = end;
        self.committed += 1;
        self.publish(Phase::Decoding);
        Ok(())
    }

    /// The entries not sent yet: (index of the first, the entries).
    pub(crate) fn unsent(&self) -> (u32, &[u8]) {
        (self.start, &self.area[HEADER..self.used])
    }

    /// Whether no entry waits to be sent.
    pub(crate) fn is_empty(&self) -> bool {
        self.committed == 0
    }

    /// The unsent entries went out (to make room for the next task's result, which will be
    /// the first entry of the emptied area; the phase stays).
    pub(crate) fn sent(&mut self) {
        self.start += self.committed;
        self.committed = 0;
        self.used = HEADER;
        self.publish(self.phase);
    }

    /// The running task's result went out on its own (too big for the area).
    pub(crate) fn sent_alone(&mut self) {
        debug_assert_eq!(self.committed, 0);
        self.start += 1;
        self.publish(Phase::Decoding);
    }

    /// The sub-job is over, every result sent.
    pub(crate) fn end(&mut self) {
        self.committed = 0;
        self.used = HEADER;
        self.phase = Phase::Between;
        self.state.store(IDLE, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_packs_and_unpacks() {
        for (s, c, p) in [
            (0, 0, Phase::Between),
            (7, 3, Phase::Running),
            (9, 1, Phase::Decoding),
            (u32::MAX, (1 << 30) - 1, Phase::Running),
        ] {
            assert_eq!(unpack(pack(s, c, p)), (s, c, p));
        }
    }

    #[test]
    fn a_journal_left_mid_job_says_what_was_done_and_what_ran() {
        let j = Journal::new().unwrap();
        {
            let mut w = j.writer().unwrap();
            w.begin(42, 10);
            w.running();
            w.commit(&Ok::<u32, ()>(100)).ok().unwrap();
            w.running();
            w.commit(&Ok::<u32, ()>(110)).ok().unwrap();
            w.running();
            // Dropped here as a killed worker would leave it (the lock is released in this
            // test, which is also what the parent sees after EOWNERDEAD).
        }
        let r = j.recover().unwrap();
        assert_eq!(
            (r.seq, r.start, r.committed, r.phase),
            (42, 10, 2, Phase::Running)
        );
        let got: Vec<Result<u32, crate::TaskError>> = crate::entry::decode_results(&r.entries);
        assert_eq!(got.len(), 2);
        assert!(j.recover().is_none(), "recovering clears the journal");
    }

    #[test]
    fn sent_entries_are_not_recovered_again() {
        let j = Journal::new().unwrap();
        {
            let mut w = j.writer().unwrap();
            w.begin(1, 0);
            w.running();
            w.commit(&5u8).ok().unwrap();
            w.running();
            w.sent();
        }
        let r = j.recover().unwrap();
        assert_eq!((r.start, r.committed, r.phase), (1, 0, Phase::Running));
    }
}
