//! Typed messages on a byte stream: postcard-encoded values behind a 4-byte little-endian length.
//!
//! In place of Python's pickle, and safer: decoding only builds the declared type, it never runs
//! code from the peer. A hostile or corrupt frame costs an error, never the reader's life:
//! the length is checked against a maximum before anything is read, memory for a body grows only
//! as its bytes arrive (a claim costs nothing until it is sent), and a value nested deeper than
//! [`MAX_DEPTH`] is refused before it can overflow the stack.
//!
//! The codec is split along its seams: [`FrameError`] (`error.rs`), writing (`write.rs`:
//! [`encode`], [`write_frame`], [`write_bytes`], [`write_all`]) and reading (`read.rs`:
//! [`decode`], [`read_frame`], [`read_one_frame`], [`read_bytes_into`], [`read_bytes_at`]),
//! reading ahead (`reader.rs`: [`FrameReader`]). Decoding goes through a depth limit
//! (`depth.rs`, [`MAX_DEPTH`]). A large frame that a [`FrameReader`] receives and whose value
//! ends with a byte string has that string read from the descriptor straight into the value
//! (`tail.rs`), with no copy through the read-ahead buffer.

use std::cell::RefCell;

mod depth;
mod error;
mod read;
mod reader;
mod tail;
mod write;

pub use depth::MAX_DEPTH;
pub use error::{DecodeError, FrameError, LostCause};
pub use read::{decode, read_bytes_at, read_bytes_into, read_frame, read_one_frame};
pub use reader::FrameReader;
pub use write::{DIRECT, encode, write_all, write_bytes, write_frame};
pub(crate) use write::{encode_into, with_frame, with_scratch};

/// The largest frame accepted unless configured otherwise: 16 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 << 20;

/// Bytes in the length prefix.
pub const HEADER: usize = 4;

thread_local! {
    /// Reused for encoding and for receiving bodies, so a steady stream of messages does not
    /// allocate (and, for large ones, page-fault) a fresh buffer each time.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };

    /// [`read_one_frame`]'s own buffer: it reads into a few KiB at once, and sharing
    /// `SCRATCH` with the encoder (which shortens it to each frame) would mean zeroing those
    /// KiB again on every call.
    static INBOX: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}
