//! [`FrameReader`]: frames read ahead in bulk by the one owner of a descriptor, and a large
//! frame that ends with a byte string read straight into its value (`tail.rs`).

use std::os::fd::{AsFd, BorrowedFd};

use serde::de::DeserializeOwned;

use super::read::{body_len, decode, make_room, read_full, read_some};
use super::tail::{Arrived, decode_arriving};
use super::{DIRECT, FrameError, HEADER};

/// A buffered reader of frames, for a descriptor that has exactly **one** reader (one end of a
/// socket pair that only one thread reads). It reads whatever has arrived, up to 64 KiB at a
/// time, and hands out the frames in it one by one: a stream of small messages costs one
/// `read` per batch instead of two per message.
///
/// It must not be used where several readers share a descriptor (a pipe that several processes
/// read): the bytes it reads ahead belong to it alone. A prefix over `max` is refused before
/// anything is allocated for it, and a long frame's room grows as its bytes arrive, as in
/// [`read_frame`](super::read_frame).
///
/// A frame of [`DIRECT`] bytes or more whose value ends with a byte string asked for as an
/// owned buffer (a `serde_bytes::ByteBuf`, or a struct whose last field is one) running to the
/// frame's end is decoded as it arrives: the string is read from the descriptor straight into
/// the `Vec` the value keeps, instead of into this buffer and then copied out of it.
///
/// ```
/// use ipc::frame::{FrameReader, write_frame};
/// let (a, b) = std::os::unix::net::UnixStream::pair()?;
/// for n in 1..=3u32 {
///     write_frame(&a, &n, 1024)?;
/// }
/// let mut r = FrameReader::new(1024);
/// assert_eq!(r.read::<u32>(&b)?, 1);          // one `read` brought all three
/// assert_eq!(r.buffered(), 2 * 5);            // two more frames of 4 + 1 bytes wait
/// assert_eq!((r.read::<u32>(&b)?, r.read::<u32>(&b)?), (2, 3));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct FrameReader {
    buf: Vec<u8>,
    /// `buf[start..end]` has arrived and is not yet handed out.
    start: usize,
    end: usize,
    max: usize,
    /// How much it asks the kernel for at once (and holds at least, once used).
    read_ahead: usize,
    /// The length of the last frame handed out (see [`FrameReader::trim_after`]).
    last: usize,
}

/// How much a [`FrameReader`] asks the kernel for at once.
const READ_AHEAD: usize = 64 * 1024;

/// A frame this long or longer, not yet whole in the buffer, is decoded as it arrives, so
/// that a byte string ending it is read straight into the value (`tail.rs`): the size at
/// which the writer sends a byte string straight from the message ([`DIRECT`]).
const LARGE: usize = DIRECT;

/// How much of a large frame's body must be buffered before decoding it as it arrives: its
/// byte string's length, and the fields before it, should be there.
const PROBE: usize = 1024;

impl FrameReader {
    /// A reader refusing frames over `max` bytes.
    pub fn new(max: usize) -> FrameReader {
        FrameReader::with_read_ahead(max, READ_AHEAD)
    }

    /// A reader that asks for `read_ahead` bytes at a time: less memory where the peer sends
    /// one small frame and waits (a request/response connection).
    pub(crate) fn with_read_ahead(max: usize, read_ahead: usize) -> FrameReader {
        FrameReader {
            buf: Vec::new(),
            start: 0,
            end: 0,
            max,
            read_ahead: read_ahead.max(HEADER),
            last: 0,
        }
    }

    /// Give back memory past `keep` bytes once no more than that is buffered: one large frame
    /// must not pin its memory for the life of the connection.
    pub(crate) fn trim(&mut self, keep: usize) {
        if self.buf.len() > keep && self.buffered() <= keep {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            self.buf.truncate(keep.max(self.read_ahead));
            self.buf.shrink_to_fit();
        }
    }

    /// [`FrameReader::trim`] to `keep`, but only once the buffer is four times larger than the
    /// last frame handed out: a stream of large frames keeps its buffer (no allocation and
    /// zeroing per frame), a large frame followed by small ones gives it back.
    pub(crate) fn trim_after(&mut self, keep: usize) {
        if self.buf.len() / 4 > self.last {
            self.trim(keep);
        }
    }

    /// Bytes read from the descriptor and not handed out yet.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// The next frame, decoded: from the buffer if it holds a whole one, else after reading
    /// more.
    ///
    /// # Errors
    /// End-of-file between frames is [`FrameError::Eof`], within one
    /// [`FrameError::Truncated`]; otherwise as [`read_frame`](super::read_frame).
    pub fn read<T: DeserializeOwned>(&mut self, fd: impl AsFd) -> Result<T, FrameError> {
        let mut tried = false;
        let len = loop {
            if self.buffered() >= HEADER {
                let len = body_len(&self.buf[self.start..self.end], self.max)?;
                if self.buffered() >= HEADER + len {
                    break len;
                }
                if !tried && len >= LARGE && self.buffered() - HEADER >= PROBE {
                    tried = true;
                    if let Some(out) = self.read_arriving(fd.as_fd(), len) {
                        return out;
                    }
                }
                self.fill(&fd, HEADER + len)?;
            } else {
                self.fill(&fd, HEADER)?;
            }
        };
        let body = self.start + HEADER..self.start + HEADER + len;
        self.start = body.end;
        self.last = len;
        decode(&self.buf[body])
    }

    /// A large frame, of body length `len`, of which only the start is buffered: if the
    /// value ends with a byte string that runs to the frame's end, read that straight into
    /// the value (`tail.rs`); `None` if it does not, nothing having been read.
    fn read_arriving<T: DeserializeOwned>(
        &mut self,
        fd: BorrowedFd<'_>,
        len: usize,
    ) -> Option<Result<T, FrameError>> {
        let have = &self.buf[self.start + HEADER..self.end];
        match decode_arriving::<T>(have, len, fd) {
            Arrived::Whole => None,
            Arrived::Done(out) => {
                // Every byte buffered was this frame's, and the rest came from `fd`.
                (self.start, self.end) = (0, 0);
                self.last = len;
                Some(out)
            }
            Arrived::Cut(e, got) => {
                // Keep what arrived, as `fill` would have: after a time-out the next `read`
                // goes on with this frame.
                self.buf.truncate(self.end);
                self.buf.extend_from_slice(&got);
                self.end = self.buf.len();
                Some(Err(e))
            }
        }
    }

    /// The next frame's body length, once its header is buffered (reading for it if need
    /// be); the header stays buffered. A clean end before it is [`FrameError::Eof`].
    pub(crate) fn next_len(&mut self, fd: &impl AsFd) -> Result<usize, FrameError> {
        while self.buffered() < HEADER {
            self.fill(fd, HEADER)?;
        }
        body_len(&self.buf[self.start..self.end], self.max)
    }

    /// Consume the next frame (whose length [`FrameReader::next_len`] gave: `dest.len()`)
    /// into `dest`: what is buffered is copied, the rest is read from `fd` straight into
    /// `dest`, with no copy through the buffer (a large `recv_bytes`).
    pub(crate) fn take_into(&mut self, fd: &impl AsFd, dest: &mut [u8]) -> Result<(), FrameError> {
        let len = dest.len();
        self.last = len;
        self.start += HEADER;
        let have = self.buffered().min(len);
        dest[..have].copy_from_slice(&self.buf[self.start..self.start + have]);
        self.start += have;
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
        let got = have + read_full(fd, &mut dest[have..])?;
        if got < len {
            return Err(FrameError::Truncated {
                expected: HEADER + len,
                got: HEADER + got,
            });
        }
        Ok(())
    }

    /// Consume the next frame (of body length `len`, from [`FrameReader::next_len`]) into a
    /// new `Vec`: what is buffered is copied, the rest read straight into the `Vec`, which
    /// grows only as the bytes arrive (as [`read_frame`]'s buffer does).
    pub(crate) fn take_growing(
        &mut self,
        fd: &impl AsFd,
        len: usize,
    ) -> Result<Vec<u8>, FrameError> {
        self.last = len;
        self.start += HEADER;
        let have = self.buffered().min(len);
        let mut out = self.buf[self.start..self.start + have].to_vec();
        self.start += have;
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
        let mut got = have;
        while got < len {
            make_room(&mut out, 0, got, len);
            let upto = out.len().min(len);
            match read_some(fd, &mut out[got..upto])? {
                0 => {
                    return Err(FrameError::Truncated {
                        expected: HEADER + len,
                        got: HEADER + got,
                    });
                }
                n => got += n,
            }
        }
        Ok(out)
    }

    /// Refuse frames over `max` bytes from now on.
    pub(crate) fn set_max(&mut self, max: usize) {
        self.max = max;
    }

    /// Read at least once, with room for a frame of `need` bytes (a length already checked
    /// against `max`) from `start`.
    fn fill(&mut self, fd: &impl AsFd, need: usize) -> Result<(), FrameError> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() < self.read_ahead {
            self.buf.resize(self.read_ahead, 0);
        }
        if self.end == self.buf.len() {
            // Full, and the frame at its start is longer: grow with what has arrived (`need`
            // is more than `end`, or the frame would be whole).
            self.buf.resize(need.min(2 * self.end), 0);
        }
        match read_some(fd, &mut self.buf[self.end..])? {
            0 if self.end == 0 => Err(FrameError::Eof),
            0 => Err(FrameError::Truncated {
                expected: need.max(HEADER),
                got: self.end,
            }),
            n => {
                self.end += n;
                Ok(())
            }
        }
    }
}
