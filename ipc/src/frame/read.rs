//! Reading frames: one at a time ([`read_frame`]), one per request ([`read_one_frame`]), raw
//! ([`read_bytes_into`], [`read_bytes_at`]), or read ahead in bulk by one owner
//! ([`FrameReader`]).
//!
//! # What a claimed length costs
//!
//! A frame's prefix says how long its body is. The limit (`max`) is checked first; then the
//! reader does *not* reserve the claimed length: a buffer grows with the bytes that have
//! arrived, doubling at most ([`make_room`]), so a prefix claiming 16 MiB followed by nothing
//! costs 4 KiB, not 16 MiB. A buffer already large enough (this thread's scratch buffer, reused
//! message after message) is read into directly: the steady state allocates nothing.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno;
use serde::de::DeserializeOwned;

use super::depth::{Budget, Limited, MAX_DEPTH};
use super::tail::{Arrived, decode_arriving};
use super::{DIRECT, DecodeError, FrameError, HEADER, INBOX, SCRATCH};

/// Decode a frame's body, refusing a value nested deeper than [`MAX_DEPTH`] levels
/// (a value nested deeper would overflow the stack of the thread decoding it).
///
/// # Errors
/// [`FrameError::Decode`]: the bytes are not an encoding of `T`
/// ([`DecodeError::Invalid`]) or nest too deep ([`DecodeError::TooDeep`]).
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    let budget = Budget::new(MAX_DEPTH, body.len());
    let mut de = postcard::Deserializer::from_bytes(body);
    T::deserialize(Limited {
        de: &mut de,
        budget: &budget,
    })
    .map_err(|e| {
        FrameError::Decode(if budget.tripped() {
            DecodeError::TooDeep { limit: MAX_DEPTH }
        } else {
            DecodeError::Invalid(e)
        })
    })
}

/// The least a buffer grows by while a frame arrives.
pub(super) const GROW_MIN: usize = 4096;

/// Before reading more of a frame whose bytes go to `buf[from..end]`, of which `buf[from..at]`
/// has arrived: if `buf` has no room left at `at`, grow it by as much as has arrived (at least
/// [`GROW_MIN`]), never past `end`, so new memory is at most about twice what arrived; room it
/// already has the capacity for is used at once.
pub(crate) fn make_room(buf: &mut Vec<u8>, from: usize, at: usize, end: usize) {
    if at < buf.len() || at >= end {
        return;
    }
    let arrived = at - from;
    // Memory the buffer already has costs nothing new: use it at once (one `read` can then
    // fill it), and grow past it only with what arrives.
    let want = if buf.capacity() >= end {
        end
    } else {
        end.min(at + arrived.max(GROW_MIN))
    };
    buf.resize(want, 0);
}

/// Give back a large scratch buffer once a much smaller frame went through it: one huge
/// message must not pin its memory for the life of the thread.
fn trim(buf: &mut Vec<u8>, used: usize) {
    const KEEP: usize = 1 << 20;
    if buf.capacity() > KEEP && buf.capacity() / 4 > used {
        buf.truncate(used.max(GROW_MIN));
        buf.shrink_to_fit();
    }
}

/// One `read` into `buf` (0 at end-of-file), retried on signals. A socket with a receive
/// time-out (`SO_RCVTIMEO`) that expires gives [`FrameError::Timeout`]; a reset connection is
/// end-of-file.
fn read_some(fd: &impl AsFd, buf: &mut [u8]) -> Result<usize, FrameError> {
    loop {
        match nix::unistd::read(fd, buf) {
            Ok(n) => return Ok(n),
            Err(e) => {
                if let Some(e) = read_error(e) {
                    return Err(e);
                }
            }
        }
    }
}

/// What a failed `read` means for a reader of frames; `None` for a signal (read again).
pub(super) fn read_error(e: Errno) -> Option<FrameError> {
    match e {
        Errno::EINTR => None,
        Errno::EAGAIN => Some(FrameError::Timeout),
        Errno::ECONNRESET => Some(FrameError::Eof),
        e => Some(e.into()),
    }
}

/// Fill `buf` from `fd`; the bytes read before end-of-file if it came first.
fn read_full(fd: impl AsFd, buf: &mut [u8]) -> Result<usize, FrameError> {
    let mut got = 0;
    while got < buf.len() {
        match read_some(&fd, &mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// The body length a frame's prefix (its first `HEADER` bytes) claims, refused over `max`
/// before anything is allocated for it.
pub(crate) fn body_len(prefix: &[u8], max: usize) -> Result<usize, FrameError> {
    let mut header = [0u8; HEADER];
    header.copy_from_slice(&prefix[..HEADER]);
    let len = u32::from_le_bytes(header) as usize;
    if len > max {
        return Err(FrameError::TooLarge { claimed: len, max });
    }
    Ok(len)
}

/// Read one frame's length from `fd`; a clean end-of-file before it is [`FrameError::Eof`].
fn read_header(fd: impl AsFd, max: usize) -> Result<usize, FrameError> {
    let mut header = [0u8; HEADER];
    match read_full(&fd, &mut header)? {
        0 => return Err(FrameError::Eof),
        n if n < HEADER => {
            return Err(FrameError::Truncated {
                expected: HEADER,
                got: n,
            });
        }
        _ => {}
    }
    body_len(&header, max)
}

/// Read one frame's body (of `len` bytes) into `buf[..len]`, growing `buf` as it arrives.
fn read_body(fd: impl AsFd, buf: &mut Vec<u8>, len: usize) -> Result<(), FrameError> {
    let mut got = 0;
    while got < len {
        make_room(buf, 0, got, len);
        let upto = buf.len().min(len);
        match read_some(&fd, &mut buf[got..upto])? {
            0 => {
                return Err(FrameError::Truncated {
                    expected: HEADER + len,
                    got: HEADER + got,
                });
            }
            n => got += n,
        }
    }
    Ok(())
}

/// Read one frame from `fd` and decode it. Blocks until a whole frame has arrived.
///
/// # Errors
/// [`FrameError::Eof`] at a clean end, [`FrameError::Truncated`] at an end mid-frame,
/// [`FrameError::TooLarge`] for a prefix over `max` (nothing read past it),
/// [`FrameError::Decode`] for a body that is not a `T` (the frame was consumed: the next one
/// can be read), [`FrameError::Timeout`] if the descriptor's receive time-out expired,
/// [`FrameError::Io`] otherwise.
pub fn read_frame<T: DeserializeOwned>(fd: impl AsFd, max: usize) -> Result<T, FrameError> {
    let len = read_header(&fd, max)?;
    SCRATCH.with(|scratch| {
        let mut buf = scratch.borrow_mut();
        let out = read_body(&fd, &mut buf, len).and_then(|()| decode(&buf[..len]));
        trim(&mut buf, len);
        out
    })
}

/// Read one frame's raw bytes into `buf` (resized to the frame's length) without decoding.
/// Reusing `buf` avoids an allocation per message.
///
/// # Errors
/// As [`read_frame`], without `Decode`.
pub fn read_bytes_into(fd: impl AsFd, buf: &mut Vec<u8>, max: usize) -> Result<usize, FrameError> {
    let len = read_header(&fd, max)?;
    read_body(&fd, buf, len)?;
    buf.truncate(len);
    Ok(len)
}

/// Read one frame's raw bytes into `buf[offset..]` (Python's `recv_bytes_into(buf, offset)`);
/// the frame's length.
///
/// # Errors
/// [`FrameError::BufferTooShort`], carrying the whole message, when it does not fit in
/// `buf[offset..]` (the message is consumed: the next one can be read);
/// [`FrameError::Io`] (`InvalidInput`) when `offset` is past the end of `buf`, before anything
/// is read; otherwise as [`read_bytes_into`].
pub fn read_bytes_at(
    fd: impl AsFd,
    buf: &mut [u8],
    offset: usize,
    max: usize,
) -> Result<usize, FrameError> {
    if offset > buf.len() {
        return Err(FrameError::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "offset {offset} is past the end of a buffer of {} bytes",
                buf.len()
            ),
        )));
    }
    let len = read_header(&fd, max)?;
    let room = &mut buf[offset..];
    if len > room.len() {
        let mut msg = Vec::new();
        read_body(&fd, &mut msg, len)?;
        msg.truncate(len);
        return Err(FrameError::BufferTooShort(msg));
    }
    let got = read_full(&fd, &mut room[..len])?;
    if got < len {
        return Err(FrameError::Truncated {
            expected: HEADER + len,
            got: HEADER + got,
        });
    }
    Ok(len)
}

/// For a connection where at most one frame is ever in flight (a strict request/response
/// exchange): read the frame with as few `read`s as possible, usually one, since the peer
/// wrote it whole. Bytes past the frame would mean the peer broke that rule: an error.
pub fn read_one_frame<T: DeserializeOwned>(fd: impl AsFd, max: usize) -> Result<T, FrameError> {
    INBOX.with(|scratch| {
        let mut buf = scratch.borrow_mut();
        let out = read_one_into(&fd, &mut buf, max);
        trim(&mut buf, GROW_MIN);
        out
    })
}

fn read_one_into<T: DeserializeOwned>(
    fd: &impl AsFd,
    buf: &mut Vec<u8>,
    max: usize,
) -> Result<T, FrameError> {
    {
        if buf.len() < GROW_MIN {
            buf.resize(GROW_MIN, 0);
        }
        let mut got = 0;
        loop {
            match read_some(&fd, &mut buf[got..])? {
                0 if got == 0 => return Err(FrameError::Eof),
                0 => {
                    return Err(FrameError::Truncated {
                        expected: HEADER.max(got + 1),
                        got,
                    });
                }
                n => got += n,
            }
            if got < HEADER {
                continue;
            }
            let len = body_len(&buf[..HEADER], max)?;
            let whole = HEADER + len;
            if got > whole {
                return Err(FrameError::Io(io::Error::other(
                    "more than one message in flight on a request/response connection",
                )));
            }
            if got == whole {
                return decode(&buf[HEADER..whole]);
            }
            make_room(buf, 0, got, whole);
        }
    }
}

/// A buffered reader of frames, for a descriptor that has exactly **one** reader (one end of a
/// socket pair that only one thread reads). It reads whatever has arrived, up to 64 KiB at a
/// time, and hands out the frames in it one by one: a stream of small messages costs one
/// `read` per batch instead of two per message.
///
/// It must not be used where several readers share a descriptor (a pipe that several processes
/// read): the bytes it reads ahead belong to it alone. A prefix over `max` is refused before
/// anything is allocated for it, and a long frame's room grows as its bytes arrive, as in
/// [`read_frame`].
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
    /// [`FrameError::Truncated`]; otherwise as [`read_frame`].
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
