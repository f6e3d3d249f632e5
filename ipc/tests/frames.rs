//! The frame codec against bad input: oversized prefixes, garbage, truncation, end-of-file.

use std::os::fd::AsFd;

use ipc::frame::{self, FrameError};

fn pipe_with(bytes: &[u8]) -> std::os::fd::OwnedFd {
    let (r, w) = nix::unistd::pipe().unwrap();
    frame::write_all(w.as_fd(), bytes).unwrap();
    drop(w);
    r
}

#[test]
fn a_round_trip_decodes_what_was_encoded() {
    let msg = (7u32, "seven".to_owned(), vec![1u8, 2, 3]);
    let buf = frame::encode(&msg, 1024).unwrap();
    let r = pipe_with(&buf);
    let got: (u32, String, Vec<u8>) = frame::read_frame(r.as_fd(), 1024).unwrap();
    assert_eq!(got, msg);
    assert!(matches!(
        frame::read_frame::<u32>(r.as_fd(), 1024),
        Err(FrameError::Eof)
    ));
}

#[test]
fn an_oversized_prefix_is_refused_before_any_allocation() {
    // Claims 4 GiB - 1. Reading it would need that much memory; the limit is checked first.
    let r = pipe_with(&u32::MAX.to_le_bytes());
    match frame::read_frame::<Vec<u8>>(r.as_fd(), 1 << 20) {
        Err(FrameError::TooLarge { claimed, max }) => {
            assert_eq!(claimed, u32::MAX as usize);
            assert_eq!(max, 1 << 20);
        }
        other => panic!("{other:?}"),
    }
    // And the sender side refuses to make one.
    let big = vec![0u8; 2048];
    assert!(matches!(
        frame::encode(&big, 1024),
        Err(FrameError::TooLarge { .. })
    ));
}

#[test]
fn garbage_is_a_decode_error_not_a_panic() {
    let mut bytes = 5u32.to_le_bytes().to_vec();
    bytes.extend([0xff, 0xff, 0xff, 0xff, 0xff]);
    let r = pipe_with(&bytes);
    let err = frame::read_frame::<(u8, String)>(r.as_fd(), 1024).unwrap_err();
    assert!(matches!(err, FrameError::Decode(_)), "{err:?}");
    assert!(err.to_string().contains("malformed"));
}

#[test]
fn a_peer_that_dies_mid_frame_is_truncated_and_between_frames_is_eof() {
    let mut bytes = 100u32.to_le_bytes().to_vec();
    bytes.extend([1, 2, 3]);
    let r = pipe_with(&bytes);
    match frame::read_frame::<Vec<u8>>(r.as_fd(), 1024) {
        Err(FrameError::Truncated { expected, got }) => assert_eq!((expected, got), (104, 7)),
        other => panic!("{other:?}"),
    }
    let r = pipe_with(&[1, 0]);
    assert!(matches!(
        frame::read_frame::<u8>(r.as_fd(), 1024),
        Err(FrameError::Truncated {
            expected: 4,
            got: 2
        })
    ));
    let r = pipe_with(&[]);
    assert!(matches!(
        frame::read_frame::<u8>(r.as_fd(), 1024),
        Err(FrameError::Eof)
    ));
}

#[test]
fn a_frame_reader_hands_out_every_frame_in_order_across_reads() {
    // 3000 frames of different sizes: many arrive per read, some straddle two reads, and one
    // is larger than the reader's 64 KiB read-ahead.
    let mut bytes = Vec::new();
    let msgs: Vec<Vec<u8>> = (0..3000u32)
        .map(|i| vec![i as u8; (i as usize * 7) % 300])
        .chain(std::iter::once(vec![9u8; 100_000]))
        .collect();
    for m in &msgs {
        bytes.extend(frame::encode(m, 1 << 20).unwrap());
    }
    let (r, w) = nix::unistd::pipe().unwrap();
    let writer = std::thread::spawn(move || frame::write_all(w.as_fd(), &bytes));
    let mut reader = frame::FrameReader::new(1 << 20);
    for m in &msgs {
        assert_eq!(&reader.read::<Vec<u8>>(r.as_fd()).unwrap(), m);
    }
    writer.join().unwrap().unwrap();
    assert!(matches!(
        reader.read::<Vec<u8>>(r.as_fd()),
        Err(FrameError::Eof)
    ));
}

#[test]
fn a_frame_reader_refuses_bad_input_as_read_frame_does() {
    let mut reader = frame::FrameReader::new(1 << 20);
    let r = pipe_with(&u32::MAX.to_le_bytes());
    assert!(matches!(
        reader.read::<Vec<u8>>(r.as_fd()),
        Err(FrameError::TooLarge { claimed, .. }) if claimed == u32::MAX as usize
    ));
    let mut reader = frame::FrameReader::new(1024);
    let r = pipe_with(&[3, 0, 0, 0, 0xff, 0xff, 0xff]);
    assert!(matches!(
        reader.read::<u32>(r.as_fd()),
        Err(FrameError::Decode(_))
    ));
    let mut reader = frame::FrameReader::new(1024);
    let r = pipe_with(&[10, 0, 0, 0, 1, 2]);
    assert!(matches!(
        reader.read::<Vec<u8>>(r.as_fd()),
        Err(FrameError::Truncated {
            expected: 14,
            got: 6
        })
    ));
}

/// A message mixing large byte strings (written straight from the message) with small fields
/// (gathered in a buffer), as `write_frame` sends it.
#[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
struct Mixed {
    id: u32,
    head: serde_bytes::ByteBuf,
    big: serde_bytes::ByteBuf,
    text: String,
    // 3000 small strings: more than DIRECT bytes of small pieces, so the gather buffer fills.
    many: Vec<serde_bytes::ByteBuf>,
    tail: u64,
}

fn mixed() -> Mixed {
    let pattern = |n: usize, seed: u8| -> Vec<u8> {
        (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
    };
    Mixed {
        id: 7,
        head: pattern(100, 1).into(),
        big: pattern(frame::DIRECT * 3 + 5, 2).into(),
        text: "é".repeat(frame::DIRECT),
        many: (0..3000).map(|i| pattern(40, i as u8).into()).collect(),
        tail: u64::MAX,
    }
}

fn socketpair() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .unwrap()
}

#[test]
fn a_message_with_large_byte_strings_is_written_in_pieces_as_the_same_frame() {
    let msg = mixed();
    let expected = frame::encode(&msg, 1 << 20).unwrap();
    assert!(expected.len() > 4 * frame::DIRECT);
    let (r, w) = socketpair();
    let writer = std::thread::spawn(move || {
        let msg = mixed();
        // Twice, so the second frame is written after the scratch buffer was given back.
        frame::write_frame(&w, &msg, 1 << 20).unwrap();
        frame::write_frame(&w, &msg, 1 << 20).unwrap();
        // A small message afterwards takes the one-buffer path again.
        frame::write_frame(&w, &9u8, 1 << 20).unwrap();
    });
    let mut wire = Vec::new();
    frame::read_bytes_into(&r, &mut wire, 1 << 20).unwrap();
    assert_eq!(wire.len() + frame::HEADER, expected.len());
    assert!(wire[..] == expected[frame::HEADER..], "the bytes differ");
    let again: Mixed = frame::read_frame(&r, 1 << 20).unwrap();
    assert_eq!(again, msg);
    assert_eq!(frame::read_frame::<u8>(&r, 1 << 20).unwrap(), 9);
    writer.join().unwrap();
}

#[test]
fn a_large_message_over_the_limit_writes_nothing_and_a_gone_reader_is_an_error() {
    let msg = mixed();
    let (r, w) = socketpair();
    // Over the limit: refused after measuring, before the header goes out.
    assert!(matches!(
        frame::write_frame(&w, &msg, 100_000),
        Err(FrameError::TooLarge { max: 100_000, .. })
    ));
    drop(w);
    assert!(matches!(
        frame::read_frame::<u8>(&r, 1 << 20),
        Err(FrameError::Eof)
    ));
    // The reader gone: an error (EPIPE), not a panic or a hang; and the next frame, on a
    // healthy socket, is whole.
    let (r, w) = socketpair();
    drop(r);
    assert!(matches!(
        frame::write_frame(&w, &msg, 1 << 20),
        Err(FrameError::Io(_))
    ));
    let (r, w) = socketpair();
    frame::write_frame(&w, &(1u8, "ok"), 1 << 20).unwrap();
    let got: (u8, String) = frame::read_frame(&r, 1 << 20).unwrap();
    assert_eq!(got, (1, "ok".to_owned()));
}

#[test]
fn recv_bytes_into_a_short_buffer_is_buffer_too_short_carrying_the_message() {
    let (a, b) = ipc::Pipe::duplex::<(), ()>().unwrap();
    let long = b"hello world".repeat(10);
    a.send_bytes(&long).unwrap();
    a.send_bytes(b"next").unwrap();
    let mut buf = [b' '; 40];
    match b.recv_bytes_into(&mut buf, 0) {
        Err(FrameError::BufferTooShort(msg)) => assert_eq!(msg, long),
        other => panic!("{other:?}"),
    }
    assert_eq!(buf, [b' '; 40], "the buffer is untouched");
    // The long message was consumed whole: the next one is intact, and lands at the offset.
    assert_eq!(b.recv_bytes_into(&mut buf, 3).unwrap(), 4);
    assert_eq!(&buf[..8], b"   next ");
    // Exactly filling the rest of the buffer is fine; an offset past its end is refused
    // before anything is read.
    a.send_bytes(b"abc").unwrap();
    let mut small = [0u8; 5];
    assert!(matches!(
        b.recv_bytes_into(&mut small, 6),
        Err(FrameError::Io(e)) if e.kind() == std::io::ErrorKind::InvalidInput
    ));
    assert_eq!(b.recv_bytes_into(&mut small, 2).unwrap(), 3);
    assert_eq!(&small, &[0, 0, b'a', b'b', b'c']);
}

#[test]
fn a_decode_error_says_what_was_wrong_and_the_stream_goes_on() {
    // A tree of n nodes, each the only kid of the one above: each node is a newtype and its
    // sequence, two of the limit's levels.
    #[derive(serde::Serialize, serde::Deserialize, Debug)]
    struct Tree(Vec<Tree>);
    let nodes = |n: usize| {
        let mut body = vec![1u8; n - 1];
        body.push(0);
        body
    };
    let most = frame::MAX_DEPTH / 2;
    match frame::decode::<Tree>(&nodes(most + 1)) {
        Err(FrameError::Decode(frame::DecodeError::TooDeep { limit })) => {
            assert_eq!(limit, frame::MAX_DEPTH)
        }
        other => panic!("{other:?}"),
    }
    let ok = frame::decode::<Tree>(&nodes(most)).unwrap();
    let mut count = 1;
    let mut t = &ok;
    while let Some(kid) = t.0.first() {
        t = kid;
        count += 1;
    }
    assert_eq!(count, most);
    // In a stream, the refused frame is consumed and the next one reads normally.
    let deep = nodes(most + 1);
    let mut bytes = frame::encode(&Tree(vec![]), 1024).unwrap();
    bytes.extend((deep.len() as u32).to_le_bytes());
    bytes.extend(&deep);
    bytes.extend(frame::encode(&Tree(vec![]), 1024).unwrap());
    let r = pipe_with(&bytes);
    assert!(frame::read_frame::<Tree>(r.as_fd(), 1024).is_ok());
    let err = frame::read_frame::<Tree>(r.as_fd(), 1024).unwrap_err();
    assert!(
        err.to_string().contains("nested deeper than 128 levels"),
        "{err}"
    );
    assert!(frame::read_frame::<Tree>(r.as_fd(), 1024).is_ok());
}
