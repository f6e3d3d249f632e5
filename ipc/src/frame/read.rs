//! Reading frames: one at a time ([`read_frame`]), one per request ([`read_one_frame`]), or
//! raw ([`read_bytes_into`], [`read_bytes_at`]). Reading ahead in bulk by one owner,
//! [`FrameReader`](super::FrameReader), is in `reader.rs` and uses the pieces here.
//!
//! # What a claimed length costs
//!
//! A frame's prefix says how long its body is. The limit (`max`) is checked first; then the
//! reader does *not* reserve the claimed length: a buffer grows with the bytes that have
//! arrived, doubling at most ([`make_room`]), so a prefix claiming 16 MiB followed by nothing
//! costs 4 KiB, not 16 MiB. A buffer already large enough (this thread's scratch buffer, reused
//! message after message) is read into directly: the steady state allocates nothing.

use std::io;
use std::os::fd::AsFd;

use nix::errno::Errno;
use serde::de::DeserializeOwned;

use super::depth::{Budget, Limited, MAX_DEPTH};
use super::{DecodeError, FrameError, HEADER, INBOX, SCRATCH};

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
pub(super) fn read_some(fd: &impl AsFd, buf: &mut [u8]) -> Result<usize, FrameError> {
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
pub(super) fn read_full(fd: impl AsFd, buf: &mut [u8]) -> Result<usize, FrameError> {
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
