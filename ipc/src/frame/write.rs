//! Writing frames: encoding into a reused buffer, and large byte strings straight from the
//! message ([`write_frame`]).

use std::io;
use std::os::fd::AsFd;

use nix::errno::Errno;
use serde::Serialize;

use super::{FrameError, HEADER, SCRATCH};

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

/// Append `msg` as one frame to `buf` (whose capacity is reused). On error `buf` is left as
/// it was.
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    msg: &T,
    buf: &mut Vec<u8>,
    max: usize,
) -> Result<(), FrameError> {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; HEADER]);
    if let Err(e) = postcard::serialize_with_flavor(msg, Append(buf)) {
        buf.truncate(start);
        return Err(FrameError::Encode(e));
    }
    let body = buf.len() - start - HEADER;
    if body > max || body > u32::MAX as usize {
        buf.truncate(start);
        return Err(FrameError::TooLarge { claimed: body, max });
    }
    buf[start..start + HEADER].copy_from_slice(&(body as u32).to_le_bytes());
    Ok(())
}

/// Encodes onto the end of a borrowed buffer.
struct Append<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    fn try_push(&mut self, b: u8) -> postcard::Result<()> {
        self.0.push(b);
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
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
        // What is gathered (the header, small fields) and the large piece go out together:
        // one `writev`, as a frame written whole would take one `write`.
        let sent = write_all_vectored(self.fd, &self.buf, data);
        self.buf.clear();
        sent.map_err(|e| {
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
    write_all_vectored(&fd, &(bytes.len() as u32).to_le_bytes(), bytes)
}

/// Write `head` then `tail` with as few system calls as the kernel allows: one `writev` for
/// both, usually (a header and its body in one call, as a frame encoded whole goes).
pub(crate) fn write_all_vectored(
    fd: impl AsFd,
    mut head: &[u8],
    mut tail: &[u8],
) -> Result<(), FrameError> {
    while !head.is_empty() {
        let iov = [io::IoSlice::new(head), io::IoSlice::new(tail)];
        match nix::sys::uio::writev(&fd, &iov) {
            Ok(0) => return Err(FrameError::Io(io::ErrorKind::WriteZero.into())),
            Ok(n) if n < head.len() => head = &head[n..],
            Ok(n) => {
                tail = &tail[n - head.len()..];
                head = &[];
            }
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    write_all(fd, tail)
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
