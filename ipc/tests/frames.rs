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
