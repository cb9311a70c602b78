//! The stdout/stderr frame demultiplexer of attach and logs.

use client::stream::{FrameDecoder, FrameError, StreamKind, demux_copy, encode_frame};

#[test]
fn header_layout() {
    let f = encode_frame(StreamKind::Stderr, b"abc");
    assert_eq!(&f[..8], &[2, 0, 0, 0, 0, 0, 0, 3]);
    assert_eq!(&f[8..], b"abc");
}

#[test]
fn byte_by_byte_decoding() {
    let mut stream = Vec::new();
    stream.extend(encode_frame(StreamKind::Stdout, b"hello\n"));
    stream.extend(encode_frame(StreamKind::Stderr, b""));
    stream.extend(encode_frame(StreamKind::Stderr, &vec![b'x'; 70_000]));
    let mut d = FrameDecoder::new();
    let mut frames = Vec::new();
    for b in &stream {
        d.push(std::slice::from_ref(b));
        while let Some(f) = d.next_frame().unwrap() {
            frames.push(f);
        }
    }
    assert_eq!(frames.len(), 3);
    assert_eq!(frames[0].kind, StreamKind::Stdout);
    assert_eq!(&frames[0].payload[..], b"hello\n");
    assert!(frames[1].payload.is_empty());
    assert_eq!(frames[2].payload.len(), 70_000);
    assert_eq!(d.pending(), 0);
}

#[test]
fn unknown_stream_type_is_an_error() {
    let mut d = FrameDecoder::new();
    d.push(&[7, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(d.next_frame(), Err(FrameError(7)));
}

#[tokio::test(flavor = "current_thread")]
async fn demux_to_two_writers() {
    let mut stream = Vec::new();
    stream.extend(encode_frame(StreamKind::Stdout, b"out1\n"));
    stream.extend(encode_frame(StreamKind::Stderr, b"err1\n"));
    stream.extend(encode_frame(StreamKind::Stdout, b"out2\n"));
    let mut out = Vec::new();
    let mut err = Vec::new();
    demux_copy(&stream[..], &mut out, &mut err).await.unwrap();
    assert_eq!(out, b"out1\nout2\n");
    assert_eq!(err, b"err1\n");
}

#[tokio::test(flavor = "current_thread")]
async fn system_error_frame_fails() {
    let stream = encode_frame(StreamKind::SystemErr, b"boom");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let e = demux_copy(&stream[..], &mut out, &mut err)
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "boom");
}
