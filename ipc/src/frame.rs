//! Typed messages on a byte stream: postcard-encoded values behind a 4-byte little-endian length.
//!
//! In place of Python's pickle, and safer: decoding only builds the declared type, it never runs
//! code from the peer. The length is checked against a maximum *before* anything is allocated,
//! so a hostile or corrupt prefix costs an error, not 4 GiB of memory.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::os::fd::AsFd;

use nix::errno::Errno;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The largest frame accepted unless configured otherwise: 16 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 << 20;

/// Bytes in the length prefix.
pub const HEADER: usize = 4;

/// Why a message could not be sent or received.
#[derive(Debug)]
pub enum FrameError {
    /// The peer closed its end (or exited) between messages: no more will come.
    Eof,
    /// The peer went away in the middle of a message.
    Truncated {
        /// Bytes the frame needed (header included).
        expected: usize,
        /// Bytes that arrived before the end.
        got: usize,
    },
    /// A length prefix larger than the limit (nothing was allocated for it).
    TooLarge {
        /// What the prefix claimed.
        claimed: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not a valid encoding of the expected type.
    Decode(postcard::Error),
    /// The value could not be encoded.
    Encode(postcard::Error),
    /// Nothing arrived within the timeout.
    Timeout,
    /// An operating-system error (for example `EPIPE`: the reader is gone).
    Io(io::Error),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Eof => f.write_str("end of file: the peer closed the connection"),
            FrameError::Truncated { expected, got } => write!(
                f,
                "the peer went away mid-message ({got} of {expected} bytes arrived)"
            ),
            FrameError::TooLarge { claimed, max } => write!(
                f,
                "a message of {claimed} bytes is over the limit of {max} (refused, not read)"
            ),
            FrameError::Decode(e) => write!(f, "a malformed message: {e}"),
            FrameError::Encode(e) => write!(f, "cannot encode the message: {e}"),
            FrameError::Timeout => f.write_str("timed out (nothing was sent or received)"),
            FrameError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for FrameError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FrameError::Decode(e) | FrameError::Encode(e) => Some(e),
            FrameError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<Errno> for FrameError {
    fn from(e: Errno) -> Self {
        FrameError::Io(io::Error::from(e))
    }
}

thread_local! {
    /// Reused for encoding and for receiving bodies, so a steady stream of messages does not
    /// allocate (and, for large ones, page-fault) a fresh buffer each time.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn finish(mut buf: Vec<u8>, max: usize) -> Result<Vec<u8>, FrameError> {
    let body = buf.len() - HEADER;
    if body > max || body > u32::MAX as usize {
        return Err(FrameError::TooLarge { claimed: body, max });
    }
    buf[..HEADER].copy_from_slice(&(body as u32).to_le_bytes());
    Ok(buf)
}

/// Encode `msg` as one frame (header and body in one buffer, so one `write` can send it).
pub fn encode<T: Serialize + ?Sized>(msg: &T, max: usize) -> Result<Vec<u8>, FrameError> {
    let buf = postcard::to_extend(msg, vec![0u8; HEADER]).map_err(FrameError::Encode)?;
    finish(buf, max)
}

/// Encode `msg` and write it to `fd` as one frame.
///
/// A message is encoded into this thread's scratch buffer and written with one `write`.
/// When it holds a byte string or `str` of [`DIRECT`] bytes or more (a 1 MiB `ByteBuf`, say),
/// copying it into the scratch buffer would cost as much as the `write` itself. Then the
/// message is first measured, and written in pieces: the header and the small fields go
/// through the buffer, and each large byte string goes straight from the message to `fd`.
/// The frame on the wire is the same either way.
pub fn write_frame<T: Serialize + ?Sized>(
    fd: impl AsFd,
    msg: &T,
    max: usize,
) -> Result<(), FrameError> {
    SCRATCH.with(|scratch| {
        let mut buf = std::mem::take(&mut *scratch.borrow_mut());
        buf.clear();
        buf.resize(HEADER, 0);
        let mut ser = postcard::Serializer {
            output: Staged { buf, big: false },
        };
        let encoded = msg.serialize(&mut ser);
        let Staged { buf, big } = ser.output;
        let (sent, buf) = match encoded {
            Ok(()) => match finish(buf, max) {
                Ok(buf) => (write_all(&fd, &buf), buf),
                // `finish` only fails before it touches the buffer; it is dropped here, and
                // the next message starts a fresh one.
                Err(e) => (Err(e), Vec::new()),
            },
            Err(_) if big => write_direct(&fd, msg, max, buf),
            Err(e) => (Err(FrameError::Encode(e)), buf),
        };
        *scratch.borrow_mut() = buf;
        sent
    })
}

/// Byte strings at least this long are written by [`write_frame`] straight from the message,
/// not copied into a buffer first.
pub const DIRECT: usize = 64 << 10;

/// Encodes into a buffer; refuses (with `big` set) the first byte string of [`DIRECT`] bytes
/// or more, so that [`write_frame`] can switch to [`write_direct`].
struct Staged {
    buf: Vec<u8>,
    big: bool,
}

impl postcard::ser_flavors::Flavor for Staged {
    type Output = Vec<u8>;

    fn try_push(&mut self, b: u8) -> postcard::Result<()> {
        self.buf.push(b);
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        if data.len() >= DIRECT {
            self.big = true;
            return Err(postcard::Error::SerializeBufferFull);
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<Vec<u8>> {
        Ok(self.buf)
    }
}

/// Counts the bytes of an encoding without storing them.
struct Counted(usize);

impl postcard::ser_flavors::Flavor for Counted {
    type Output = usize;

    fn try_push(&mut self, _: u8) -> postcard::Result<()> {
        self.0 += 1;
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0 += data.len();
        Ok(())
    }

    fn finalize(self) -> postcard::Result<usize> {
        Ok(self.0)
    }
}

/// Writes an encoding to a descriptor: small pieces gather in `buf`, large byte strings go
/// out directly. `written` counts the body, to check it against the measured length.
struct Streamed<'a, F: AsFd> {
    fd: &'a F,
    buf: Vec<u8>,
    written: usize,
    failed: Option<FrameError>,
}

impl<F: AsFd> Streamed<'_, F> {
    fn flush(&mut self) -> postcard::Result<()> {
        match write_all(self.fd, &self.buf) {
            Ok(()) => {
                self.buf.clear();
                Ok(())
            }
            Err(e) => {
                self.failed = Some(e);
                Err(postcard::Error::SerializeBufferFull)
            }
        }
    }
}

impl<F: AsFd> postcard::ser_flavors::Flavor for Streamed<'_, F> {
    type Output = ();

    fn try_push(&mut self, b: u8) -> postcard::Result<()> {
        self.buf.push(b);
        self.written += 1;
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.written += data.len();
        if data.len() < DIRECT {
            self.buf.extend_from_slice(data);
            return if self.buf.len() >= DIRECT {
                self.flush()
            } else {
                Ok(())
            };
        }
        self.flush()?;
        write_all(self.fd, data).map_err(|e| {
            self.failed = Some(e);
            postcard::Error::SerializeBufferFull
        })
    }

    fn finalize(mut self) -> postcard::Result<()> {
        self.flush()
    }
}

/// The second way of [`write_frame`]: measure `msg`, write the header, then encode it
/// straight to `fd`. Gives back `buf` (emptied) for reuse.
fn write_direct<F: AsFd, T: Serialize + ?Sized>(
    fd: &F,
    msg: &T,
    max: usize,
    mut buf: Vec<u8>,
) -> (Result<(), FrameError>, Vec<u8>) {
    let body = match postcard::serialize_with_flavor(msg, Counted(0)) {
        Ok(n) => n,
        Err(e) => return (Err(FrameError::Encode(e)), buf),
    };
    if body > max || body > u32::MAX as usize {
        return (Err(FrameError::TooLarge { claimed: body, max }), buf);
    }
    buf.clear();
    buf.extend_from_slice(&(body as u32).to_le_bytes());
    let mut ser = postcard::Serializer {
        output: Streamed {
            fd,
            buf,
            written: 0,
            failed: None,
        },
    };
    let encoded = msg.serialize(&mut ser);
    let mut out = ser.output;
    let sent = match encoded {
        Ok(()) if out.written != body => Err(FrameError::Io(io::Error::other(
            "the message encoded to a different length when written than when measured; \
             the stream is no longer framed",
        ))),
        Ok(()) => match out.flush() {
            Ok(()) => Ok(()),
            Err(_) => Err(out.failed.take().unwrap_or(FrameError::Eof)),
        },
        Err(e) => Err(out.failed.take().unwrap_or(FrameError::Encode(e))),
    };
    out.buf.clear();
    (sent, out.buf)
}

/// Encode `msg` as a whole frame in this thread's scratch buffer and hand it to `send`.
pub(crate) fn with_frame<T: Serialize + ?Sized, R>(
    msg: &T,
    max: usize,
    send: impl FnOnce(&[u8]) -> Result<R, FrameError>,
) -> Result<R, FrameError> {
    SCRATCH.with(|scratch| {
        let mut buf = std::mem::take(&mut *scratch.borrow_mut());
        buf.clear();
        buf.resize(HEADER, 0);
        let outcome = postcard::to_extend(msg, buf)
            .map_err(FrameError::Encode)
            .and_then(|buf| finish(buf, max));
        match outcome {
            Ok(buf) => {
                let sent = send(&buf);
                *scratch.borrow_mut() = buf;
                sent
            }
            Err(e) => Err(e),
        }
    })
}

/// Lend this thread's scratch buffer (for receiving a body) to `f`.
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    SCRATCH.with(|scratch| f(&mut scratch.borrow_mut()))
}

/// Write `bytes` as one frame without encoding (Python's `send_bytes`).
pub fn write_bytes(fd: impl AsFd, bytes: &[u8], max: usize) -> Result<(), FrameError> {
    if bytes.len() > max || bytes.len() > u32::MAX as usize {
        return Err(FrameError::TooLarge {
            claimed: bytes.len(),
            max,
        });
    }
    write_all(&fd, &(bytes.len() as u32).to_le_bytes())?;
    write_all(&fd, bytes)
}

/// Decode a frame's body.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    postcard::from_bytes(body).map_err(FrameError::Decode)
}

/// Write all of `buf` to `fd`, retrying on signals.
pub fn write_all(fd: impl AsFd, mut buf: &[u8]) -> Result<(), FrameError> {
    while !buf.is_empty() {
        match nix::unistd::write(&fd, buf) {
            Ok(0) => return Err(FrameError::Io(io::ErrorKind::WriteZero.into())),
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
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
