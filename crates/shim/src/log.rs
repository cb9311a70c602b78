//! The container log in Docker's `json-file` format: one JSON object per line,
//!
//! ```text
//! {"log":"hello\n","stream":"stdout","time":"2026-11-23T11:00:00.123456789Z"}
//! ```
//!
//! Each line of output is one entry, its newline kept in `log`. Like Docker's log copier
//! (daemon/logger/copier.go), a line that grows past 16 KiB without a newline is written as
//! 16 KiB partial entries (no trailing newline), and what remains at end of stream is written as
//! a last entry without a newline. Bytes that are not UTF-8 become U+FFFD, as Go's JSON encoder
//! writes them.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::error::{Result, sys};

/// Longest entry: a partial line is flushed at this size (Docker's copier buffer).
pub const MAX_ENTRY: usize = 16 * 1024;

/// Which output stream an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

/// Cuts one stream's bytes into log entries; holds the unfinished line between reads.
#[derive(Debug)]
pub struct LineSplitter {
    stream: Stream,
    pending: Vec<u8>,
}

impl LineSplitter {
    /// A splitter for `stream`, with nothing pending.
    pub fn new(stream: Stream) -> Self {
        Self {
            stream,
            pending: Vec::new(),
        }
    }

    /// Appends to `out` an encoded entry for every line completed by `data` (and for every
    /// 16 KiB of a line without a newline), stamped `time`.
    pub fn push(&mut self, data: &[u8], time: &str, out: &mut Vec<u8>) {
        let mut rest = data;
        while !rest.is_empty() {
            let room = MAX_ENTRY - self.pending.len();
            let take = &rest[..room.min(rest.len())];
            if let Some(end) = take.iter().position(|&b| b == b'\n') {
                let line = &take[..=end];
                if self.pending.is_empty() {
                    encode(line, self.stream, time, out);
                } else {
                    self.pending.extend_from_slice(line);
                    encode(&self.pending, self.stream, time, out);
                    self.pending.clear();
                }
                rest = &rest[end + 1..];
            } else {
                self.pending.extend_from_slice(take);
                rest = &rest[take.len()..];
                if self.pending.len() == MAX_ENTRY {
                    encode(&self.pending, self.stream, time, out);
                    self.pending.clear();
                }
            }
        }
        if self.pending.is_empty() && self.pending.capacity() > MAX_ENTRY {
            // Keep the shim small after a burst of long lines.
            self.pending = Vec::new();
        }
    }

    /// End of stream: the unfinished line, if any, becomes a last entry.
    pub fn finish(&mut self, time: &str, out: &mut Vec<u8>) {
        if !self.pending.is_empty() {
            encode(&self.pending, self.stream, time, out);
            self.pending = Vec::new();
        }
    }
}

/// Appends one entry, newline-terminated, to `out`.
fn encode(line: &[u8], stream: Stream, time: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"log\":");
    let text = String::from_utf8_lossy(line);
    // Serialising a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text.as_ref());
    out.extend_from_slice(b",\"stream\":\"");
    out.extend_from_slice(stream.name().as_bytes());
    out.extend_from_slice(b"\",\"time\":\"");
    out.extend_from_slice(time.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

/// The time stamp of entries read now: RFC 3339 in UTC with nanoseconds.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// The log file, opened for appending (created 0640 if missing).
pub fn open(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(sys(format!("create {}", parent.display())))?;
    }
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(sys(format!("open log {}", path.display())))
}

/// Writes the encoded entries in `out` to the log and empties `out`. A full disk must not stop
/// the container: a failed write loses these entries (Docker's json-file does the same).
pub fn flush(file: &mut File, out: &mut Vec<u8>) {
    if !out.is_empty() {
        let _ = file.write_all(out);
        out.clear();
        if out.capacity() > 4 * MAX_ENTRY {
            *out = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "2026-11-23T11:00:00.123456789Z";

    fn entries(out: &[u8]) -> Vec<serde_json::Value> {
        String::from_utf8(out.to_vec())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn one_entry_per_line_with_its_newline() {
        let mut splitter = LineSplitter::new(Stream::Stdout);
        let mut out = Vec::new();
        splitter.push(b"hello\nwor", T, &mut out);
        splitter.push(b"ld\n", T, &mut out);
        let all = entries(&out);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0]["log"], "hello\n");
        assert_eq!(all[1]["log"], "world\n");
        assert_eq!(all[0]["stream"], "stdout");
        assert_eq!(all[0]["time"], T);
        assert_eq!(
            String::from_utf8(out).unwrap().lines().next().unwrap(),
            format!(r#"{{"log":"hello\n","stream":"stdout","time":"{T}"}}"#)
        );
    }

    #[test]
    fn long_lines_split_at_16_kib_and_the_rest_ends_the_stream() {
        let mut splitter = LineSplitter::new(Stream::Stderr);
        let mut out = Vec::new();
        let long = vec![b'x'; MAX_ENTRY * 2 + 10];
        splitter.push(&long, T, &mut out);
        splitter.push(b"\ntail", T, &mut out);
        splitter.finish(T, &mut out);
        let all = entries(&out);
        let logs: Vec<&str> = all.iter().map(|e| e["log"].as_str().unwrap()).collect();
        assert_eq!(logs.len(), 4);
        assert_eq!(logs[0].len(), MAX_ENTRY);
        assert_eq!(logs[1].len(), MAX_ENTRY);
        assert_eq!(logs[2], "xxxxxxxxxx\n");
        assert_eq!(logs[3], "tail");
        assert!(all.iter().all(|e| e["stream"] == "stderr"));
    }

    #[test]
    fn special_and_invalid_bytes_are_escaped() {
        let mut splitter = LineSplitter::new(Stream::Stdout);
        let mut out = Vec::new();
        splitter.push(b"a\"b\\c\td\x01\xffe\n", T, &mut out);
        assert_eq!(entries(&out)[0]["log"], "a\"b\\c\td\u{1}\u{fffd}e\n");
    }

    #[test]
    fn finish_without_pending_writes_nothing() {
        let mut splitter = LineSplitter::new(Stream::Stdout);
        let mut out = Vec::new();
        splitter.push(b"x\n", T, &mut out);
        out.clear();
        splitter.finish(T, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn time_stamps_have_nanoseconds_in_utc() {
        let stamp = now();
        assert!(stamp.ends_with('Z'), "{stamp}");
        let fraction = stamp.split('.').nth(1).unwrap();
        assert_eq!(fraction.len(), 10, "{stamp}");
    }
}
