//! [`FrameError`]: why a message could not be sent or received.

use std::fmt;
use std::io;

use nix::errno::Errno;

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
    /// The bytes are not a valid encoding of the expected type, or nest too deep. The frame
    /// was read whole: the stream is still framed and the next message can be read.
    Decode(DecodeError),
    /// The value could not be encoded.
    Encode(postcard::Error),
    /// Nothing arrived within the timeout.
    Timeout,
    /// An operating-system error (for example `EPIPE`: the reader is gone).
    Io(io::Error),
    /// The buffer given to [`Connection::recv_bytes_into`](crate::Connection::recv_bytes_into)
    /// is too short for the message that arrived; the whole message is here (Python's
    /// `BufferTooShort`, whose `args[0]` is the message).
    BufferTooShort(Vec<u8>),
    /// The queue was closed by this handle ([`Queue::close`](crate::Queue::close)): Python's
    /// `ValueError("Queue ... is closed")`.
    Closed,
    /// A process died in the middle of putting or getting one item of a
    /// [`Queue`](crate::Queue): that item is lost. Its torn bytes were discarded and the queue
    /// found the start of the next item, so the next `get` goes on normally.
    Lost {
        /// Who died.
        cause: LostCause,
        /// Bytes of the item that were discarded here (what the dead process had already
        /// taken, or had not yet written, is not counted).
        discarded: usize,
    },
}

/// Why a message did not decode.
#[derive(Debug)]
pub enum DecodeError {
    /// The bytes are not a postcard encoding of the expected type.
    Invalid(postcard::Error),
    /// The value nests deeper than [`MAX_DEPTH`](super::MAX_DEPTH) levels: refused before it
    /// could overflow the reader's stack.
    TooDeep {
        /// The limit.
        limit: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Invalid(e) => write!(f, "{e}"),
            DecodeError::TooDeep { limit } => write!(f, "nested deeper than {limit} levels"),
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DecodeError::Invalid(e) => Some(e),
            DecodeError::TooDeep { .. } => None,
        }
    }
}

/// Who died in the middle of an item of a [`Queue`](crate::Queue) ([`FrameError::Lost`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostCause {
    /// The process putting the item died after writing part of it.
    ProducerDied,
    /// The process getting the item died after taking part of it out.
    ConsumerDied,
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
            FrameError::BufferTooShort(msg) => write!(
                f,
                "the buffer is too short for a message of {} bytes (the message is in this error)",
                msg.len()
            ),
            FrameError::Closed => f.write_str("the queue is closed"),
            FrameError::Lost {
                cause: LostCause::ProducerDied,
                discarded,
            } => write!(
                f,
                "an item was lost: the process putting it died mid-item \
                 ({discarded} bytes of it discarded; the queue goes on)"
            ),
            FrameError::Lost {
                cause: LostCause::ConsumerDied,
                discarded,
            } => write!(
                f,
                "an item was lost: the process getting it died mid-item \
                 ({discarded} bytes of it discarded; the queue goes on)"
            ),
        }
    }
}

impl std::error::Error for FrameError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FrameError::Decode(e) => Some(e),
            FrameError::Encode(e) => Some(e),
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
