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

/// Appends one entry, newline-terminated, to `out`. Encoded by hand rather than through
/// serde_json and chrono: this runs for every line of every container, and a small hot path keeps
/// the shim's resident code small (see [`crate::memory`]).
fn encode(line: &[u8], stream: Stream, time: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"log\":\"");
    match std::str::from_utf8(line) {
        Ok(text) => escape_into(text, out),
        Err(_) => escape_into(&String::from_utf8_lossy(line), out),
    }
    out.extend_from_slice(b"\",\"stream\":\"");
    out.extend_from_slice(stream.name().as_bytes());
    out.extend_from_slice(b"\",\"time\":\"");
    out.extend_from_slice(time.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

/// JSON string escaping (RFC 8259 section 7): quote, backslash and control characters.
fn escape_into(text: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = text.as_bytes();
    let mut clean_from = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        let short: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[clean_from..index]);
        clean_from = index + 1;
        if short.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0xf)]);
        } else {
            out.extend_from_slice(short);
        }
    }
    out.extend_from_slice(&bytes[clean_from..]);
}

/// A time stamp of log entries, RFC 3339 in UTC with nanoseconds
/// (`2026-11-23T11:00:00.123456789Z`), kept on the stack.
#[derive(Clone, Copy)]
pub struct Timestamp([u8; 30]);

impl Timestamp {
    /// The text of the stamp.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and separators are ever written.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

/// The time stamp of entries read now.
pub fn now() -> Timestamp {
    let mut spec = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid pointer we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut spec) };
    format_time(spec.tv_sec, spec.tv_nsec as u32)
}

/// Formats seconds since the epoch and nanoseconds as RFC 3339 UTC with nine fraction digits.
fn format_time(seconds: i64, nanos: u32) -> Timestamp {
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let mut text = [0u8; 30];
    let mut put = |at: usize, value: u64, width: usize| {
        let mut value = value;
        for position in (at..at + width).rev() {
            text[position] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, year as u64, 4);
    put(5, month as u64, 2);
    put(8, day as u64, 2);
    put(11, (of_day / 3600) as u64, 2);
    put(14, (of_day / 60 % 60) as u64, 2);
    put(17, (of_day % 60) as u64, 2);
    put(20, u64::from(nanos), 9);
    for (position, byte) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (29, b'Z'),
    ] {
        text[position] = byte;
    }
    Timestamp(text)
}

/// Year, month, day of a count of days since 1970-01-01 in the proleptic Gregorian calendar
/// (the "days from civil" inverse of H. Hinnant's chrono-Compatible Low-Level Date Algorithms).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
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
        // write(2) directly: the shortest code path for the shim's hottest call.
        let fd = std::os::fd::AsRawFd::as_raw_fd(file);
        let mut rest: &[u8] = out;
        while !rest.is_empty() {
            // SAFETY: writes from a live slice of `rest.len()` bytes.
            let written = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
            if written > 0 {
                rest = &rest[written as usize..];
            } else if written < 0
                && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
            {
                continue;
            } else {
                break;
            }
        }
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
    fn hand_encoding_matches_serde_json() {
        let samples: [&[u8]; 4] = [
            b"plain",
            b"q\"b\\\n\r\t\x08\x0c\x00\x1f\x7f",
            "ünï€😀".as_bytes(),
            b"\xff\xfe",
        ];
        for sample in samples {
            let mut out = Vec::new();
            encode(sample, Stream::Stdout, T, &mut out);
            let entry: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(entry["log"], String::from_utf8_lossy(sample).as_ref());
            let text = String::from_utf8_lossy(sample);
            let expected = serde_json::to_string(text.as_ref()).unwrap();
            let mut escaped = Vec::new();
            escape_into(&text, &mut escaped);
            assert_eq!(
                format!("\"{}\"", String::from_utf8(escaped).unwrap()),
                expected
            );
        }
    }

    #[test]
    fn times_format_like_chrono() {
        for (seconds, nanos) in [
            (0i64, 0u32),
            (951_782_400, 5), // 2000-02-29
            (1_795_000_000, 123_456_789),
            (4_102_444_799, 999_999_999), // 2099-12-31T23:59:59
            (-86_400, 1),                 // 1969-12-31
        ] {
            let expected = chrono::DateTime::from_timestamp(seconds, nanos)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            assert_eq!(format_time(seconds, nanos).as_str(), expected);
        }
        for days in -800_000..800_000i64 {
            if days % 997 != 0 {
                continue;
            }
            let expected = chrono::DateTime::from_timestamp(days * 86_400, 0)
                .unwrap()
                .date_naive();
            let (y, m, d) = civil_from_days(days);
            assert_eq!(
                (y, m, d),
                (
                    i64::from(chrono::Datelike::year(&expected)),
                    chrono::Datelike::month(&expected),
                    chrono::Datelike::day(&expected)
                )
            );
        }
    }

    #[test]
    fn time_stamps_have_nanoseconds_in_utc() {
        let stamp = now().as_str().to_string();
        assert!(stamp.ends_with('Z'), "{stamp}");
        let fraction = stamp.split('.').nth(1).unwrap();
        assert_eq!(fraction.len(), 10, "{stamp}");
    }
}
