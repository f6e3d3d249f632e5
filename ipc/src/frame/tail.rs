//! A large frame whose value ends with a byte string (a 1 MiB `ByteBuf`, a struct whose last
//! field is one): the string is read from the descriptor straight into the `Vec` the value
//! will own, instead of into the reader's buffer and then copied out of it by the decoder.
//!
//! Why: a raw `read` into a reused buffer moves each byte once (kernel to user). Reading a
//! frame into the read-ahead buffer and decoding it into a new `ByteBuf` moved each byte twice,
//! and for 1 MiB messages the second copy cost about as much as the first (issue 22). Here
//! the only copy left is of the few KiB that the first `read` brought into the read-ahead
//! buffer along with the header.
//!
//! How: once a large frame's first bytes are buffered, [`decode_arriving`] decodes them with a
//! postcard input ([`Arriving`]) that holds only the bytes that have arrived. When the decoder
//! asks for a byte string as an owned buffer (see `depth.rs`) whose length runs exactly to the
//! frame's end, the input copies the part already buffered into a new `Vec` and reads the rest
//! of the frame from the descriptor into it, then hands it over. Anything else that needs a
//! byte that has not arrived, or a value that did not reach the string, gives up before a
//! byte past the buffer was read: the caller then reads the frame whole and decodes it as
//! usual ([`Arrived::Whole`]), so every other type decodes exactly as before, and errors come
//! out the same. The partial decode costs at most the bytes already buffered (64 KiB), once
//! per frame.
//!
//! What a claimed length costs stays as in `read.rs`: the string's `Vec` grows only as its
//! bytes arrive (doubling at most, never past the frame's end), the length hints are rationed
//! to the bytes that have arrived, and no `read` asks for a byte past the frame.
//!
//! # Unsafe
//!
//! One block reads into the `Vec`'s spare capacity, so that 1 MiB is not zeroed before the
//! kernel overwrites it. Its rules: the `Vec` owns its spare capacity and nothing else points
//! into it; `read(2)` is given at most that many bytes of room and writes at most as many as
//! it returns; only then does the length grow, by exactly that count. `tests/bulk.rs` checks
//! every byte delivered, over random sizes, frames larger than the socket buffer, and frames
//! cut short; `ipc/memcheck.sh` (run by CI) runs it and `frame_fuzz.rs` under valgrind memcheck,
//! which reports a write past the capacity or a length set past the bytes read.

use std::cell::Cell;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;
use postcard::de_flavors::Flavor;
use serde::de::DeserializeOwned;

use super::depth::{Budget, Limited, MAX_DEPTH};
use super::read::{GROW_MIN, read_error};
use super::{DecodeError, FrameError, HEADER};

/// What became of a large frame decoded as it arrives.
pub(super) enum Arrived<T> {
    /// The value's byte string ran to the frame's end and was read straight into it: the
    /// frame is consumed (the value, or why it did not decode).
    Done(Result<T, FrameError>),
    /// No byte string ran to the frame's end: nothing was read, decode the frame whole.
    Whole,
    /// Reading the string failed; the bytes of it that came from the descriptor (the part
    /// that was buffered not included), to put back behind the buffered ones.
    Cut(FrameError, Vec<u8>),
}

/// What the input reports to [`decode_arriving`].
#[derive(Default)]
struct Report {
    /// The byte string ran to the frame's end and was read into a `Vec`.
    took: Cell<bool>,
    /// Reading it failed: why, and the bytes that had come from the descriptor.
    cut: Cell<Option<(FrameError, Vec<u8>)>>,
}

/// Decode a frame of `len` body bytes of which `have` has arrived (`have.len() < len`),
/// reading a byte string that runs to its end from `fd` straight into the value.
pub(super) fn decode_arriving<T: DeserializeOwned>(
    have: &[u8],
    len: usize,
    fd: BorrowedFd<'_>,
) -> Arrived<T> {
    // Length hints may promise no more elements than bytes have arrived.
    let budget = Budget::new(MAX_DEPTH, have.len());
    let report = Report::default();
    let mut de = postcard::Deserializer::from_flavor(Arriving {
        have,
        at: 0,
        len,
        fd,
        budget: &budget,
        report: &report,
    });
    let out = T::deserialize(Limited {
        de: &mut de,
        budget: &budget,
    });
    if let Some((e, got)) = report.cut.take() {
        return Arrived::Cut(e, got);
    }
    if !report.took.get() {
        return Arrived::Whole;
    }
    Arrived::Done(out.map_err(|e| {
        FrameError::Decode(if budget.tripped() {
            DecodeError::TooDeep { limit: MAX_DEPTH }
        } else {
            DecodeError::Invalid(e)
        })
    }))
}

/// postcard's input for [`decode_arriving`]: the bytes that have arrived, and the descriptor
/// the rest comes from, for a byte string that runs to the frame's end.
struct Arriving<'de> {
    have: &'de [u8],
    /// The next byte of `have` to decode.
    at: usize,
    /// The frame's body length.
    len: usize,
    fd: BorrowedFd<'de>,
    budget: &'de Budget,
    report: &'de Report,
}

impl<'de> Arriving<'de> {
    /// Read the byte string of `ct` bytes that starts at `at` and ends with the frame, and
    /// hand it over to the visitor (see `depth.rs`).
    fn take_tail(&mut self, ct: usize) -> postcard::Result<()> {
        let have: &'de [u8] = self.have;
        let buffered = &have[self.at..];
        let mut out = Vec::with_capacity(room_for(buffered.len(), ct));
        out.extend_from_slice(buffered);
        self.at = self.have.len();
        while out.len() < ct {
            // Before each `read`, room for as much again as has arrived: each `read` may
            // take as much as the socket holds, up to that.
            let want = room_for(out.len(), ct);
            if out.capacity() < want {
                out.reserve_exact(want - out.len());
            }
            let failed = match read_spare(self.fd, &mut out, ct) {
                Ok(0) => Some(FrameError::Truncated {
                    expected: HEADER + self.len,
                    got: HEADER + self.len - (ct - out.len()),
                }),
                Ok(_) => None,
                Err(e) => Some(e),
            };
            if let Some(e) = failed {
                out.drain(..buffered.len());
                self.report.cut.set(Some((e, out)));
                return Err(postcard::Error::DeserializeUnexpectedEnd);
            }
        }
        self.report.took.set(true);
        self.budget.hand_over(out);
        Ok(())
    }
}

impl<'de> Flavor<'de> for Arriving<'de> {
    type Remainder = ();
    type Source = ();

    fn pop(&mut self) -> postcard::Result<u8> {
        let b = *self
            .have
            .get(self.at)
            .ok_or(postcard::Error::DeserializeUnexpectedEnd)?;
        self.at += 1;
        Ok(b)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.have.len() - self.at)
    }

    fn try_take_n(&mut self, ct: usize) -> postcard::Result<&'de [u8]> {
        let end = self
            .at
            .checked_add(ct)
            .filter(|&end| end <= self.have.len())
            .ok_or(postcard::Error::DeserializeUnexpectedEnd)?;
        let bytes = &self.have[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn try_take_n_temp<'a>(&'a mut self, ct: usize) -> postcard::Result<&'a [u8]>
    where
        'de: 'a,
    {
        let owned = self.budget.take_owned_wanted();
        if owned && self.at.checked_add(ct) == Some(self.len) && self.len > self.have.len() {
            self.take_tail(ct)?;
            // Stands for the string just handed over (see `depth.rs`).
            return Ok(&[]);
        }
        self.try_take_n(ct)
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// How long a byte string's buffer may be once `arrived` of its `ct` bytes have: twice what
/// arrived (at least [`GROW_MIN`]), never past its end.
fn room_for(arrived: usize, ct: usize) -> usize {
    ct.min(arrived + arrived.max(GROW_MIN))
}

/// One `read` from `fd` into `out`'s spare capacity, never past `out.len() == limit`, without
/// zeroing the room first; the bytes read become part of `out`. 0 at end-of-file.
fn read_spare(fd: BorrowedFd<'_>, out: &mut Vec<u8>, limit: usize) -> Result<usize, FrameError> {
    loop {
        let wanted = limit.saturating_sub(out.len());
        let spare = out.spare_capacity_mut();
        let room = spare.len().min(wanted);
        // SAFETY: `spare` is memory `out` owns past its length, at least `room` bytes, and
        // nothing else refers to it while `out` is borrowed here; read(2) writes at most
        // `room` bytes there and touches no other memory of ours.
        let n = unsafe { nix::libc::read(fd.as_raw_fd(), spare.as_mut_ptr().cast(), room) };
        if let Ok(n) = usize::try_from(n) {
            // SAFETY: the kernel initialised the first `n` (at most `room`) bytes after the
            // length, all within the capacity.
            unsafe { out.set_len(out.len() + n) };
            return Ok(n);
        }
        if let Some(e) = read_error(Errno::last()) {
            return Err(e);
        }
    }
}
