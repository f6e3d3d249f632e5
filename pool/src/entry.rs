//! Entries: each task and each result encoded on its own, as a varint length (one byte below
//! 128) and then the value's postcard bytes, so that one that fails to encode or to decode is an
//! error for that value alone. Written straight through a postcard `Serializer` into a `Vec`
//! (the parent's batch) or into a fixed slice (a worker's journal), with the rare long length
//! and the error paths out of line: these run once per task, and showed in the profiles.

use ipc::frame::DEFAULT_MAX_FRAME;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::shared::TaskError;

/// The largest task or result entry: a frame's limit less room for the rest of the frame.
pub(crate) const MAX_ENTRY: usize = DEFAULT_MAX_FRAME - 4096;

/// Appends postcard's output to a `Vec` it borrows (so a failed encoding leaves the `Vec` to
/// be truncated, not lost).
struct Extend<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Extend<'_> {
    type Output = ();

    fn try_push(&mut self, b: u8) -> postcard::Result<()> {
        self.0.push(b);
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Writes postcard's output into a slice from `pos`; full is an error.
struct Area<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl postcard::ser_flavors::Flavor for Area<'_> {
    type Output = usize;

    #[inline]
    fn try_push(&mut self, b: u8) -> postcard::Result<()> {
        let slot = self
            .buf
            .get_mut(self.pos)
            .ok_or(postcard::Error::SerializeBufferFull)?;
        *slot = b;
        self.pos += 1;
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        let end = self.pos + data.len();
        let dst = self
            .buf
            .get_mut(self.pos..end)
            .ok_or(postcard::Error::SerializeBufferFull)?;
        dst.copy_from_slice(data);
        self.pos = end;
        Ok(())
    }

    fn finalize(self) -> postcard::Result<usize> {
        Ok(self.pos)
    }
}

/// Bytes in the varint (LEB128) of `n`.
fn varint_len(n: usize) -> usize {
    let bits = usize::BITS - (n | 1).leading_zeros();
    bits.div_ceil(7) as usize
}

fn write_varint(out: &mut [u8], mut n: usize) {
    for b in out.iter_mut() {
        *b = (n as u8 & 0x7f) | if n >= 0x80 { 0x80 } else { 0 };
        n >>= 7;
    }
}

/// After `n` bytes were encoded at `buf[at + 1..]` behind one reserved byte at `at`, write
/// their length there, moving them if the length needs more than one byte. `false` if `buf`
/// has no room for that (only for a fixed-size `buf`; a `Vec` is grown by the caller).
#[inline]
fn fix_prefix(buf: &mut [u8], at: usize, n: usize) -> bool {
    if n < 0x80 {
        // The common case, one byte: a small task or result.
        buf[at] = n as u8;
        return true;
    }
    let k = varint_len(n);
    if k > 1 {
        if at + k + n > buf.len() {
            return false;
        }
        buf.copy_within(at + 1..at + 1 + n, at + k);
    }
    write_varint(&mut buf[at..at + k], n);
    true
}

/// Why an entry could not be written.
pub(crate) enum EntryError {
    /// No room left in a fixed-size buffer.
    Full,
    /// The value's `Serialize` failed.
    Encode(String),
}

/// Append `value` to `buf` as an entry; on error `buf` is as it was. Returns the entry's size.
#[inline]
pub(crate) fn push_entry<V: Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    value: &V,
) -> Result<usize, EntryError> {
    let at = buf.len();
    buf.push(0);
    let mut ser = postcard::Serializer {
        output: Extend(buf),
    };
    if let Err(e) = value.serialize(&mut ser) {
        return Err(refused(buf, at, e));
    }
    let n = buf.len() - at - 1;
    if n < 0x80 {
        buf[at] = n as u8;
        return Ok(n + 1);
    }
    Ok(long_prefix(buf, at, n))
}

#[cold]
fn refused(buf: &mut Vec<u8>, at: usize, e: postcard::Error) -> EntryError {
    buf.truncate(at);
    EntryError::Encode(e.to_string())
}

/// [`push_entry`] for an entry of 128 bytes or more: room for a longer length.
#[cold]
fn long_prefix(buf: &mut Vec<u8>, at: usize, n: usize) -> usize {
    let k = varint_len(n);
    buf.resize(buf.len() + k - 1, 0);
    fix_prefix(buf, at, n);
    buf.len() - at
}

/// Write `value` as an entry at `buf[at..]`; the end of the entry.
#[inline]
pub(crate) fn put_entry<V: Serialize + ?Sized>(
    buf: &mut [u8],
    at: usize,
    value: &V,
) -> Result<usize, EntryError> {
    let mut ser = postcard::Serializer {
        output: Area {
            buf: &mut *buf,
            pos: at + 1,
        },
    };
    if let Err(e) = value.serialize(&mut ser) {
        return Err(not_put(e));
    }
    let end = ser.output.pos;
    let n = end - at - 1;
    match buf.get_mut(at) {
        Some(b) if n < 0x80 => {
            *b = n as u8;
            Ok(end)
        }
        _ => put_long(buf, at, n),
    }
}

#[cold]
fn not_put(e: postcard::Error) -> EntryError {
    match e {
        postcard::Error::SerializeBufferFull => EntryError::Full,
        e => EntryError::Encode(e.to_string()),
    }
}

/// [`put_entry`] for an entry of 128 bytes or more (or no room at all).
#[cold]
fn put_long(buf: &mut [u8], at: usize, n: usize) -> Result<usize, EntryError> {
    if at >= buf.len() || !fix_prefix(buf, at, n) {
        return Err(EntryError::Full);
    }
    Ok(at + varint_len(n) + n)
}

/// The first entry of `bytes` and what follows it; `None` if `bytes` does not start with a
/// whole entry.
#[inline]
pub(crate) fn take_entry(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    if let Some((&b, rest)) = bytes.split_first()
        && b < 0x80
    {
        let n = usize::from(b);
        return (rest.len() >= n).then(|| rest.split_at(n));
    }
    let mut n = 0usize;
    for (i, &b) in bytes.iter().enumerate().take(5) {
        n |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let rest = &bytes[i + 1..];
            return (rest.len() >= n).then(|| rest.split_at(n));
        }
    }
    None
}

/// Decode result entries (of a part, or of a dead worker's journal): one result each, an
/// entry that does not decode being that task's [`TaskError::ResultEncoding`].
pub(crate) fn decode_results<O: DeserializeOwned>(mut entries: &[u8]) -> Vec<Result<O, TaskError>> {
    let mut out = Vec::new();
    while let Some((entry, rest)) = take_entry(entries) {
        entries = rest;
        out.push(
            postcard::from_bytes::<Result<O, TaskError>>(entry).unwrap_or_else(|e| {
                Err(TaskError::ResultEncoding(format!(
                    "the parent cannot decode the result: {e}"
                )))
            }),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_at_every_prefix_length() {
        let mut buf = Vec::new();
        let sizes = [0usize, 1, 126, 127, 128, 300, 16_383, 16_384, 70_000];
        for &n in &sizes {
            push_entry(&mut buf, &vec![7u8; n]).ok().unwrap();
        }
        let mut rest = &buf[..];
        for &n in &sizes {
            let (entry, after) = take_entry(rest).unwrap();
            let v: Vec<u8> = postcard::from_bytes(entry).unwrap();
            assert_eq!(v.len(), n);
            rest = after;
        }
        assert!(rest.is_empty());
    }

    #[test]
    fn put_entry_says_full_and_moves_long_entries_in_place() {
        let mut area = vec![0u8; 400];
        let end = put_entry(&mut area, 0, &vec![1u8; 200]).ok().unwrap();
        let (entry, _) = take_entry(&area[..end]).unwrap();
        assert_eq!(
            postcard::from_bytes::<Vec<u8>>(entry).unwrap(),
            vec![1u8; 200]
        );
        assert!(matches!(
            put_entry(&mut area, end, &vec![2u8; 300]),
            Err(EntryError::Full)
        ));
        assert!(take_entry(&[0x80]).is_none());
        assert!(take_entry(&[3, 1]).is_none());
    }
}
