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
