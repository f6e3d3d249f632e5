//! The ring of bytes in shared memory under a [`Queue`](super::Queue), and how items cross it
//! in chunks that a process killed at any instant cannot tear.
//!
//! # Layout and who writes what
//!
//! One anonymous `MAP_SHARED` mapping: a page of [`Counters`], then [`CAPACITY`] bytes of
//! ring. Bytes are addressed by their position in the endless stream (`pos % CAPACITY` in the
//! ring). `head` is where readers have consumed to, `tail` where writers have published to;
//! `tail - head` bytes are waiting. Only the holder of the writer lock writes ring bytes past
//! `tail` and then moves `tail`; only the holder of the reader lock reads bytes between `head`
//! and `tail` and then moves `head`. Both locks are robust process-shared mutexes.
//!
//! # Chunks
//!
//! An item's encoding goes into the ring as one or more chunks, each a 4-byte header (its
//! payload length, and flags) and its payload, each published whole by one store of `tail`
//! after its bytes are copied in: a process killed while copying leaves nothing published. An
//! item that fits is one chunk (the header is then just its length, as a frame's). A larger
//! one streams through as several, flagged [`MORE`] but the last.
//!
//! The low bit of `tail` says "a writer is in the middle of an item" (it published a `MORE`
//! chunk and not yet the last one); the low bit of `head` says the same of a reader. Each is
//! set and cleared by the very store that moves the position, so a process killed anywhere
//! leaves a bit that tells the truth. Then:
//!
//! - **A writer died mid-item** (`tail`'s bit found set by the next writer, or by a reader
//!   that waited mid-item and could take the writer lock: whoever holds that lock and sees the
//!   bit). It publishes an [`ABORT`] chunk after what the dead writer published. A reader that
//!   reaches it drops what it assembled of that item and reports it lost
//!   ([`FrameError::Lost`], `ProducerDied`); the next item starts right after.
//! - **A reader died mid-item** (`head`'s bit found set by the next reader). That reader skips
//!   the item's remaining chunks up to its last, counting them, and reports the item lost
//!   (`ConsumerDied`).
//! - **A `put_timeout` expires mid-item**: its writer publishes a [`CANCEL`] chunk: the reader
//!   drops the partial item silently (it was never put) and goes on to the next.
//!
//! A marker always has room: a writer publishes a `MORE` chunk only if it leaves at least a
//! header's worth of the ring free, and nothing but readers (freeing more) acts between that
//! chunk and the marker.
//!
//! # Waiting
//!
//! A wait for the start of an item honours its deadline. A reader in the middle of an item
//! waits in slices of [`PROBE`]; after each empty slice it tries the writer lock: if it gets
//! it, the writer of its item is dead, and it publishes the `ABORT` itself. So a dead writer
//! costs the reader at most a slice or two, never a hang. A writer's every wait honours its
//! deadline (`put_timeout`): mid-item, by cancelling the item.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::time::{Duration, Instant};

use super::futex::{futex_wake, wait};
use crate::frame::{FrameError, LostCause};
use crate::shm::{Lock, LockError, Mapping};

/// Bytes in the ring: as much as a Linux pipe buffers by default.
pub const CAPACITY: usize = 64 * 1024;

/// Where the ring's bytes start in the mapping (the counters take the first page).
const RING: usize = 4096;

/// A chunk's header: its payload length in the low bits, and flags.
const HEADER: usize = 4;
/// More chunks of this item follow.
const MORE: u32 = 1 << 31;
/// The item in progress was cut: its writer died (a marker, no payload).
const ABORT: u32 = 1 << 30;
/// The item in progress was cut by its own writer (its `put_timeout` expired): not an item.
const CANCEL: u32 = 1 << 29;
const LEN: u32 = (1 << 24) - 1;

/// The least payload a `MORE` chunk carries (a writer waits for that much room), so a large
/// item does not crawl through in tiny chunks.
const MIN_CHUNK: usize = 4096;

/// How long a reader in the middle of an item waits for its next chunk before it checks that
/// the item's writer is still alive.
pub(super) const PROBE: Duration = Duration::from_millis(10);

/// A position and its "in the middle of an item" bit, packed in one word.
fn packed(pos: u64, mid: bool) -> u64 {
    pos << 1 | u64::from(mid)
}

fn unpacked(word: u64) -> (u64, bool) {
    (word >> 1, word & 1 == 1)
}

/// The counters at the start of the shared mapping. The mapping starts zero-filled, which is
/// an empty queue. Readers write the first cache line, writers the second, so the two sides do
/// not steal each other's line on every message.
#[repr(C, align(64))]
struct Counters {
    /// Bytes consumed so far, and whether a reader is in the middle of an item.
    head: AtomicU64,
    /// Readers asleep waiting for data (at most one: the others wait for the reader lock).
    readers_waiting: AtomicU32,
    /// Bumped when space is freed while a writer sleeps: the futex word writers sleep on.
    space_seq: AtomicU32,
    /// Items taken out (for `qsize`). Relaxed: stored before the `head` store that frees the
    /// item's room, so a writer that sees the room sees the count.
    got: AtomicU64,
    _reader_line: [u8; 40],
    /// Bytes published so far, and whether a writer is in the middle of an item.
    tail: AtomicU64,
    /// Writers asleep waiting for room.
    writers_waiting: AtomicU32,
    /// Bumped when data is published while a reader sleeps: the futex word readers sleep on.
    data_seq: AtomicU32,
    /// Items put whole (for `qsize`). Relaxed: only writers, who hold the writer lock, store it
    /// and rely on it; to readers it is an estimate.
    put: AtomicU64,
    /// At most this many items waiting (0: no limit but the ring's bytes). Set at creation.
    maxsize: AtomicU64,
}

const _: () = assert!(std::mem::size_of::<Counters>() <= RING);

pub(super) fn lock_err(e: LockError) -> FrameError {
    FrameError::Io(std::io::Error::other(e.to_string()))
}

pub(super) struct Ring {
    map: Mapping,
    /// Writers take it for a whole item, so items never interleave.
    pub(super) wlock: Lock,
    /// Readers take it for a whole item, so two readers never split one between them.
    pub(super) rlock: Lock,
}

impl Ring {
    pub(super) fn new(maxsize: usize) -> std::io::Result<Ring> {
        let ring = Ring {
            map: Mapping::new(RING + CAPACITY)?,
            wlock: Lock::new()?,
            rlock: Lock::new()?,
        };
        ring.counters().maxsize.store(maxsize as u64, SeqCst);
        Ok(ring)
    }

    fn counters(&self) -> &Counters {
        // SAFETY: the mapping is page-aligned, at least RING bytes long, zero-filled at
        // creation (a valid `Counters`: atomics of 0), and only ever accessed atomically.
        unsafe { &*self.map.at::<Counters>(0) }
    }

    fn head(&self) -> (u64, bool) {
        unpacked(self.counters().head.load(SeqCst))
    }

    fn tail(&self) -> (u64, bool) {
        unpacked(self.counters().tail.load(SeqCst))
    }

    /// Bytes published and not yet consumed.
    pub(super) fn queued(&self) -> usize {
        (self.tail().0 - self.head().0) as usize
    }

    /// Items put and not yet taken (approximate while others put and get).
    pub(super) fn items(&self) -> usize {
        let c = self.counters();
        c.put.load(Relaxed).saturating_sub(c.got.load(Relaxed)) as usize
    }

    pub(super) fn maxsize(&self) -> usize {
        self.counters().maxsize.load(SeqCst) as usize
    }

    /// Copy `bytes` into the ring at stream position `pos` (wrapping around its end).
    fn copy_in(&self, pos: u64, bytes: &[u8]) {
        let at = (pos % CAPACITY as u64) as usize;
        let first = bytes.len().min(CAPACITY - at);
        let ring = self.map.at::<u8>(RING);
        // SAFETY: `at + first <= CAPACITY` and `bytes.len() - first <= at`, so both copies stay
        // inside the ring; the writer lock keeps other writers off bytes past `tail`, and
        // readers never read them until `tail` is moved past them.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), ring.add(at), first);
            std::ptr::copy_nonoverlapping(bytes.as_ptr().add(first), ring, bytes.len() - first);
        }
    }

    /// Copy bytes out of the ring from stream position `pos` into `out`.
    fn copy_out(&self, pos: u64, out: &mut [u8]) {
        let at = (pos % CAPACITY as u64) as usize;
        let first = out.len().min(CAPACITY - at);
        let ring = self.map.at::<u8>(RING);
        // SAFETY: as in `copy_in`; these bytes are published and not yet consumed, and the
        // reader lock keeps other readers off them.
        unsafe {
            std::ptr::copy_nonoverlapping(ring.add(at), out.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(ring, out.as_mut_ptr().add(first), out.len() - first);
        }
    }

    /// Publish a chunk at `at` (the current tail): header, payload, then `tail`.
    fn publish(&self, at: u64, flags: u32, payload: &[u8]) -> u64 {
        self.copy_in(at, &(payload.len() as u32 | flags).to_le_bytes());
        self.copy_in(at + HEADER as u64, payload);
        self.publish_to(at + (HEADER + payload.len()) as u64, flags & MORE != 0)
    }

    /// Publish everything up to `end` (copied in already), with the writer's in-item bit.
    fn publish_to(&self, end: u64, mid: bool) -> u64 {
        let c = self.counters();
        c.tail.store(packed(end, mid), SeqCst);
        if c.readers_waiting.load(SeqCst) > 0 {
            c.data_seq.fetch_add(1, SeqCst);
            futex_wake(&c.data_seq);
        }
        end
    }

    /// The 4 bytes of a chunk header at stream position `pos` (which may wrap).
    fn header_at(&self, pos: u64) -> u32 {
        let at = (pos % CAPACITY as u64) as usize;
        let ring = self.map.at::<u8>(RING);
        if at + HEADER <= CAPACITY {
            // SAFETY: the 4 bytes are inside the ring, published and not yet consumed; the
            // reader lock keeps other readers off them. Unaligned reads of bytes are fine.
            return u32::from_le(unsafe { ring.add(at).cast::<u32>().read_unaligned() });
        }
        let mut bytes = [0u8; HEADER];
        for (i, b) in bytes.iter_mut().enumerate() {
            // SAFETY: `(at + i) % CAPACITY` is inside the ring; these bytes are published and
            // not yet consumed, and the reader lock keeps other readers off them.
            *b = unsafe { *ring.add((at + i) % CAPACITY) };
        }
        u32::from_le_bytes(bytes)
    }

    /// Mark bytes up to `pos` consumed (with the reader's in-item bit), waking a writer that
    /// waits for room.
    fn consume(&self, pos: u64, mid: bool) {
        let c = self.counters();
        c.head.store(packed(pos, mid), SeqCst);
        if c.writers_waiting.load(SeqCst) > 0 {
            c.space_seq.fetch_add(1, SeqCst);
            futex_wake(&c.space_seq);
        }
    }

    /// Wait until `need` bytes are free past `at` (and, when `counted`, the item limit allows
    /// one more).
    fn wait_room(
        &self,
        at: u64,
        need: usize,
        counted: bool,
        deadline: Option<Instant>,
    ) -> Result<(), FrameError> {
        let c = self.counters();
        let max_items = c.maxsize.load(SeqCst);
        let room = || {
            CAPACITY - (at - self.head().0) as usize >= need
                && (!counted || max_items == 0 || (self.items() as u64) < max_items)
        };
        while !room() {
            wait(&c.writers_waiting, &c.space_seq, room, deadline)?;
        }
        Ok(())
    }

    /// Put one item (the caller holds the writer lock): `frame` is its encoding behind a
    /// 4-byte little-endian length, which is also the header of a chunk holding it whole, so an
    /// item that fits is copied in with one copy. With a deadline, on time-out nothing of it
    /// is handed out: it was not put.
    pub(super) fn write(&self, frame: &[u8], deadline: Option<Instant>) -> Result<(), FrameError> {
        let c = self.counters();
        let body = &frame[HEADER..];
        debug_assert_eq!(frame[..HEADER], (body.len() as u32).to_le_bytes());
        let (mut at, mid) = self.tail();
        if mid {
            // The writer before us died in the middle of an item: cut it here.
            at = self.publish(at, ABORT, &[]);
        }
        let mut done = 0;
        loop {
            let rest = body.len() - done;
            let whole = HEADER + rest;
            let need = if whole <= CAPACITY {
                whole
            } else {
                2 * HEADER + MIN_CHUNK
            };
            if let Err(e) = self.wait_room(at, need.min(whole), done == 0, deadline) {
                if done > 0 {
                    // Part of it is out: take it back (there is room for the marker).
                    self.publish(at, CANCEL, &[]);
                }
                return Err(e);
            }
            let free = CAPACITY - (at - self.head().0) as usize;
            if free >= whole {
                if done == 0 && body.len() <= LEN as usize {
                    self.copy_in(at, frame);
                    self.publish_to(at + frame.len() as u64, false);
                } else {
                    self.publish(at, 0, &body[done..]);
                }
                c.put.store(c.put.load(Relaxed) + 1, Relaxed);
                return Ok(());
            }
            // A chunk of what fits, leaving room for a marker.
            let n = free - 2 * HEADER;
            at = self.publish(at, MORE, &body[done..done + n]);
            done += n;
        }
    }

    /// Wait, in the middle of an item at `at`, for its next chunk; if none comes, find out
    /// whether its writer is alive, and cut the item if not.
    fn wait_next_chunk(&self, at: u64) -> Result<(), FrameError> {
        let c = self.counters();
        let ready = || self.tail().0 - at >= HEADER as u64;
        while !ready() {
            // One slice of waiting (a wake-up, or PROBE without one)...
            match wait(
                &c.readers_waiting,
                &c.data_seq,
                ready,
                Some(Instant::now() + PROBE),
            ) {
                Ok(()) | Err(FrameError::Timeout) => {}
                Err(e) => return Err(e),
            }
            if ready() {
                break;
            }
            // ... then: writers hold their lock for a whole item, so if we can take it, the
            // item's writer is gone and nothing will come after what is here.
            let Some(_w) = self.wlock.try_acquire().map_err(lock_err)? else {
                continue;
            };
            if !ready() {
                // All it published is consumed, so the ring is empty: room for the marker,
                // which also clears the dead writer's in-item bit.
                self.publish(at, ABORT, &[]);
            }
        }
        Ok(())
    }

    /// Take one item's encoding into `buf[..len]` (the caller holds the reader lock); `len`.
    /// `deadline` applies to the start of an item; once in one, the reader waits for the
    /// rest as long as its writer lives.
    pub(super) fn read(
        &self,
        buf: &mut Vec<u8>,
        max: usize,
        deadline: Option<Instant>,
    ) -> Result<usize, FrameError> {
        let c = self.counters();
        let (mut at, mut mid) = self.head();
        // The reader before us died in the middle of an item: skip the rest of it.
        let skipping = mid;
        let mut have = 0;
        let mut too_large = false;
        loop {
            if mid {
                self.wait_next_chunk(at)?;
            } else {
                let ready = || self.tail().0 - at >= HEADER as u64;
                while !ready() {
                    wait(&c.readers_waiting, &c.data_seq, ready, deadline)?;
                }
            }
            let h = self.header_at(at);
            let n = (h & LEN) as usize;
            if h & (ABORT | CANCEL) != 0 {
                at += HEADER as u64;
                self.consume(at, false);
                if !mid {
                    continue; // nothing was in progress
                }
                mid = false;
                if skipping || h & ABORT != 0 {
                    let cause = if skipping {
                        LostCause::ConsumerDied
                    } else {
                        LostCause::ProducerDied
                    };
                    return Err(FrameError::Lost {
                        cause,
                        discarded: have,
                    });
                }
                // Cancelled by its own writer: never put. Look for the next item.
                (have, too_large) = (0, false);
                continue;
            }
            if n > CAPACITY - HEADER || (self.tail().0 - at) < (HEADER + n) as u64 {
                // Chunks are published whole and never larger than the ring: only a process
                // scribbling on the shared memory makes this.
                return Err(FrameError::Io(std::io::Error::other(
                    "the queue's shared memory is corrupt (a chunk header that cannot be)",
                )));
            }
            if !skipping && !too_large {
                if have + n > max {
                    too_large = true;
                } else {
                    if buf.len() < have + n {
                        buf.resize((have + n).max(2 * have), 0);
                    }
                    self.copy_out(at + HEADER as u64, &mut buf[have..have + n]);
                }
            }
            have += n;
            at += (HEADER + n) as u64;
            let more = h & MORE != 0;
            if more {
                self.consume(at, true);
                mid = true;
                continue;
            }
            // The item's last chunk: counted before the store that frees its room, so a
            // writer woken by that store sees the count too.
            c.got.store(c.got.load(Relaxed) + 1, Relaxed);
            self.consume(at, false);
            if skipping {
                return Err(FrameError::Lost {
                    cause: LostCause::ConsumerDied,
                    discarded: have,
                });
            }
            if too_large {
                return Err(FrameError::TooLarge { claimed: have, max });
            }
            return Ok(have);
        }
    }
}
