//! Docker's stdout/stderr stream framing: without a TTY each chunk is prefixed with an 8-byte
//! header (stream type 1 = stdout, 2 = stderr, three zero bytes, big-endian u32 length); with a
//! TTY the stream is raw.

use engine::logs::{LogEntry, Stream};

/// Content type of a multiplexed stream (API 1.42+), or of a raw one.
pub fn content_type(tty: bool) -> &'static str {
    if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    }
}

/// Encodes one entry, with its timestamp first when asked.
pub fn encode(entry: &LogEntry, tty: bool, timestamps: bool) -> Vec<u8> {
    let mut payload = Vec::with_capacity(entry.line.len() + 40);
    if timestamps {
        payload.extend_from_slice(entry.time.as_bytes());
        payload.push(b' ');
    }
    payload.extend_from_slice(&entry.line);
    if tty {
        return payload;
    }
    let kind = match entry.stream {
        Stream::Stdout => 1u8,
        Stream::Stderr => 2u8,
    };
    let mut frame = Vec::with_capacity(payload.len() + 8);
    frame.extend_from_slice(&[kind, 0, 0, 0]);
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&payload);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_dockers_header() {
        let entry = LogEntry {
            stream: Stream::Stderr,
            time: "T".into(),
            line: b"hi\n".to_vec(),
        };
        assert_eq!(
            encode(&entry, false, false),
            vec![2, 0, 0, 0, 0, 0, 0, 3, b'h', b'i', b'\n']
        );
        assert_eq!(encode(&entry, true, true), b"T hi\n".to_vec());
    }
}
