//! Reading frames: one at a time ([`read_frame`]), one per request ([`read_one_frame`]), raw
//! ([`read_bytes_into`]), or read ahead in bulk by one owner ([`FrameReader`]).

use std::io;
use std::os::fd::AsFd;

use nix::errno::Errno;
use serde::de::DeserializeOwned;

use super::{FrameError, HEADER, SCRATCH};

/// Decode a frame's body.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    postcard::from_bytes(body).map_err(FrameError::Decode)
}

/// One `read` into `buf` (0 at end-of-file), retried on signals. A socket with a receive
/// time-out (`SO_RCVTIMEO`) that expires gives [`FrameError::Timeout`]; a reset connection is
/// end-of-file.
fn read_some(fd: &impl AsFd, buf: &mut [u8]) -> Result<usize, FrameError> {
    loop {
        match nix::unistd::read(fd, buf) {
            Ok(n) => return Ok(n),
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => return Err(FrameError::Timeout),
            Err(Errno::ECONNRESET) => return Err(FrameError::Eof),
            Err(e) => return Err(e.into()),
        }
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

/// Read one frame's body (of `len` bytes) into `buf[..len]`, growing `buf` if needed.
fn read_body(fd: impl AsFd, buf: &mut Vec<u8>, len: usize) -> Result<(), FrameError> {
    if buf.len() < len {
        buf.resize(len, 0);
    }
    let got = read_full(&fd, &mut buf[..len])?;
    if got < len {
        return Err(FrameError::Truncated {
            expected: HEADER + len,
            got: HEADER + got,
        });
    }
    Ok(())
}

/// Read one frame from `fd` and decode it. Blocks until a whole frame has arrived.
pub fn read_frame<T: DeserializeOwned>(fd: impl AsFd, max: usize) -> Result<T, FrameError> {
    let len = read_header(&fd, max)?;
    SCRATCH.with(|scratch| {
        let mut buf = scratch.borrow_mut();
        read_body(&fd, &mut buf, len)?;
        decode(&buf[..len])
    })
}

/// Read one frame's raw bytes into `buf` (resized to the frame's length) without decoding
/// (Python's `recv_bytes_into`). Reusing `buf` avoids an allocation per message.
pub fn read_bytes_into(fd: impl AsFd, buf: &mut Vec<u8>, max: usize) -> Result<usize, FrameError> {
    let len = read_header(&fd, max)?;
    read_body(&fd, buf, len)?;
    buf.truncate(len);
    Ok(len)
}

/// For a connection where at most one frame is ever in flight (a strict request/response
/// exchange): read the frame with as few `read`s as possible, usually one, since the peer
/// wrote it whole. Bytes past the frame would mean the peer broke that rule: an error.
pub fn read_one_frame<T: DeserializeOwned>(fd: impl AsFd, max: usize) -> Result<T, FrameError> {
    SCRATCH.with(|scratch| {
        let mut buf = scratch.borrow_mut();
        if buf.len() < 4096 {
            buf.resize(4096, 0);
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
            if buf.len() < whole {
                buf.resize(whole, 0);
            }
        }
    })
}

/// A buffered reader of frames, for a descriptor that has exactly **one** reader (one end of a
/// socket pair that only one thread reads). It reads whatever has arrived, up to 64 KiB at a
/// time, and hands out the frames in it one by one: a stream of small messages costs one
/// `read` per batch instead of two per message.
///
/// It must not be used where several readers share a descriptor (an [`crate::Queue`]'s pipe):
/// the bytes it reads ahead belong to it alone. A prefix over `max` is refused before anything
/// is allocated for it, as in [`read_frame`].
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
}

/// How much a [`FrameReader`] asks the kernel for at once.
const READ_AHEAD: usize = 64 * 1024;

impl FrameReader {
    /// A reader refusing frames over `max` bytes.
    pub fn new(max: usize) -> FrameReader {
        FrameReader {
            buf: Vec::new(),
            start: 0,
            end: 0,
            max,
        }
    }

    /// Bytes read from the descriptor and not handed out yet.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// The next frame, decoded: from the buffer if it holds a whole one, else after reading
    /// more. End-of-file between frames is [`FrameError::Eof`], within one
    /// [`FrameError::Truncated`].
    pub fn read<T: DeserializeOwned>(&mut self, fd: impl AsFd) -> Result<T, FrameError> {
        let len = loop {
            if self.buffered() >= HEADER {
                let len = body_len(&self.buf[self.start..self.end], self.max)?;
                if self.buffered() >= HEADER + len {
                    break len;
                }
                self.fill(&fd, HEADER + len)?;
            } else {
                self.fill(&fd, HEADER)?;
            }
        };
        let body = self.start + HEADER..self.start + HEADER + len;
        self.start = body.end;
        decode(&self.buf[body])
    }

    /// Read at least once, with room for a frame of `need` bytes (a length already checked
    /// against `max`) from `start`.
    fn fill(&mut self, fd: &impl AsFd, need: usize) -> Result<(), FrameError> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let want = need.max(READ_AHEAD);
        if self.buf.len() < want {
            self.buf.resize(want, 0);
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
