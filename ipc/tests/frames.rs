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
