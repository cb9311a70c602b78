//! The multiplexed stdio stream of attach and logs when the container has no TTY.
//!
//! Docker Engine API, "Attach to a container / Stream format": each frame is an 8-byte header
//! `[STREAM_TYPE, 0, 0, 0, SIZE1, SIZE2, SIZE3, SIZE4]` (size big-endian u32) followed by SIZE
//! bytes of payload. STREAM_TYPE is 0 stdin, 1 stdout, 2 stderr (3 is used by dockerd for a
//! system error message). With a TTY the stream is raw, without headers.

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Length of a frame header.
pub const HEADER_LEN: usize = 8;

/// Which standard stream a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// 0: written to the container's stdin (echoed back in some modes).
    Stdin,
    /// 1: the container's stdout.
    Stdout,
    /// 2: the container's stderr.
    Stderr,
    /// 3: an error message of the daemon itself, inside the stream.
    SystemErr,
}

impl StreamKind {
    /// The stream type byte of the frame header.
    pub fn from_byte(b: u8) -> Option<StreamKind> {
        match b {
            0 => Some(StreamKind::Stdin),
            1 => Some(StreamKind::Stdout),
            2 => Some(StreamKind::Stderr),
            3 => Some(StreamKind::SystemErr),
            _ => None,
        }
    }

    /// The byte written in a frame header for this stream.
    pub fn as_byte(self) -> u8 {
        match self {
            StreamKind::Stdin => 0,
            StreamKind::Stdout => 1,
            StreamKind::Stderr => 2,
            StreamKind::SystemErr => 3,
        }
    }
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The stream the payload belongs to.
    pub kind: StreamKind,
    /// The payload bytes.
    pub payload: Bytes,
}

/// A malformed frame header.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid stream frame header: type byte {0}")]
pub struct FrameError(pub u8);

/// Incremental decoder: push bytes as they arrive, pull whole frames.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: BytesMut,
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let kind = StreamKind::from_byte(self.buf[0]).ok_or(FrameError(self.buf[0]))?;
        let len = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
        if self.buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        self.buf.advance(HEADER_LEN);
        let payload = self.buf.split_to(len).freeze();
        Ok(Some(Frame { kind, payload }))
    }

    /// Bytes received but not yet part of a complete frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// Encodes one frame (used by tests and fakes of the daemon).
pub fn encode_frame(kind: StreamKind, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&[kind.as_byte(), 0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Copies a multiplexed stream to `stdout` and `stderr` until EOF. Frames of type 3 (a daemon
/// error inside the stream) are returned as an error after the copy.
pub async fn demux_copy<R, O, E>(
    mut reader: R,
    stdout: &mut O,
    stderr: &mut E,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    O: AsyncWrite + Unpin,
    E: AsyncWrite + Unpin,
{
    let mut decoder = FrameDecoder::new();
    let mut chunk = vec![0u8; 32 * 1024];
    loop {
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        decoder.push(&chunk[..n]);
        while let Some(frame) = decoder
            .next_frame()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?
        {
            match frame.kind {
                StreamKind::Stdout | StreamKind::Stdin => {
                    stdout.write_all(&frame.payload).await?;
                    stdout.flush().await?;
                }
                StreamKind::Stderr => {
                    stderr.write_all(&frame.payload).await?;
                    stderr.flush().await?;
                }
                StreamKind::SystemErr => {
                    return Err(std::io::Error::other(
                        String::from_utf8_lossy(&frame.payload).into_owned(),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Copies a raw (TTY) stream to `stdout` until EOF.
pub async fn raw_copy<R, O>(mut reader: R, stdout: &mut O) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    O: AsyncWrite + Unpin,
{
    let mut chunk = vec![0u8; 32 * 1024];
    loop {
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        stdout.write_all(&chunk[..n]).await?;
        stdout.flush().await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_split_frames() {
        let mut bytes = encode_frame(StreamKind::Stdout, b"hello\n");
        bytes.extend(encode_frame(StreamKind::Stderr, b"oops"));
        let mut d = FrameDecoder::new();
        d.push(&bytes[..5]);
        assert_eq!(d.next_frame().unwrap(), None);
        d.push(&bytes[5..]);
        let f = d.next_frame().unwrap().unwrap();
        assert_eq!(
            (f.kind, &f.payload[..]),
            (StreamKind::Stdout, &b"hello\n"[..])
        );
        let f = d.next_frame().unwrap().unwrap();
        assert_eq!((f.kind, &f.payload[..]), (StreamKind::Stderr, &b"oops"[..]));
        assert_eq!(d.next_frame().unwrap(), None);
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn rejects_bad_type() {
        let mut d = FrameDecoder::new();
        d.push(&[9, 0, 0, 0, 0, 0, 0, 1, b'x']);
        assert_eq!(d.next_frame(), Err(FrameError(9)));
    }
}
