//! Reading a container's json-file log (written by its shim): filters of `docker logs`
//! (`since`, `until`, `tail`, streams) and following it while the container runs.

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::mpsc;

use crate::error::Result;
use crate::{ContainerEntry, Engine};

/// Which output stream a log entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One entry of the log.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub stream: Stream,
    /// RFC 3339 with nanoseconds.
    pub time: String,
    pub line: Vec<u8>,
}

/// Options of `GET /containers/{id}/logs`.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub follow: bool,
    /// Unix seconds (fractional).
    pub since: Option<f64>,
    pub until: Option<f64>,
    /// Only the last N entries.
    pub tail: Option<usize>,
    /// Attach mode: only new output, until the container's next exit (a created container is
    /// waited for through its start and run).
    pub attach: bool,
}

#[derive(Deserialize)]
struct JsonLine {
    log: String,
    stream: String,
    time: String,
}

fn parse(line: &str) -> Option<LogEntry> {
    let entry: JsonLine = serde_json::from_str(line).ok()?;
    Some(LogEntry {
        stream: if entry.stream == "stderr" {
            Stream::Stderr
        } else {
            Stream::Stdout
        },
        time: entry.time,
        line: entry.log.into_bytes(),
    })
}

fn timestamp(time: &str) -> f64 {
    chrono::DateTime::parse_from_rfc3339(time)
        .map(|t| t.timestamp() as f64 + t.timestamp_subsec_nanos() as f64 / 1e9)
        .unwrap_or_default()
}

fn wanted(entry: &LogEntry, options: &LogOptions) -> bool {
    let stream_ok = match entry.stream {
        Stream::Stdout => options.stdout,
        Stream::Stderr => options.stderr,
    };
    let time = timestamp(&entry.time);
    stream_ok
        && options.since.is_none_or(|since| time >= since)
        && options.until.is_none_or(|until| time <= until)
}

impl Engine {
    /// The log of a container as a channel of entries; it ends at the end of the file, or with
    /// `follow` once the container stopped and everything was read.
    pub async fn logs(
        &self,
        name_or_id: &str,
        options: LogOptions,
    ) -> Result<mpsc::Receiver<LogEntry>> {
        let entry = self.find(name_or_id)?;
        let path = entry
            .record
            .lock()
            .await
            .log_path(&self.config.containers_root());
        let file = std::fs::File::open(&path)?;
        let (sender, receiver) = mpsc::channel(256);
        tokio::task::spawn_blocking(move || follow_file(file, options, entry, sender));
        Ok(receiver)
    }
}

fn follow_file(
    mut file: std::fs::File,
    options: LogOptions,
    entry: Arc<ContainerEntry>,
    sender: mpsc::Sender<LogEntry>,
) {
    let status = entry.status.subscribe();
    let exits_at_start = status.borrow().exits;
    if options.attach {
        let _ = file.seek(SeekFrom::End(0));
    }
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    // The whole existing log first, keeping only the tail if asked.
    let mut backlog = std::collections::VecDeque::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if !line.ends_with('\n') => {
                // A line still being written: read it again later.
                let _ = reader.seek_relative(-(line.len() as i64));
                break;
            }
            Ok(_) => {
                if let Some(entry) = parse(&line).filter(|e| wanted(e, &options)) {
                    backlog.push_back(entry);
                    if options.tail.is_some_and(|tail| backlog.len() > tail) {
                        backlog.pop_front();
                    }
                }
            }
        }
    }
    if options.tail == Some(0) {
        backlog.clear();
    }
    for entry in backlog {
        if sender.blocking_send(entry).is_err() {
            return;
        }
    }
    if !options.follow && !options.attach {
        return;
    }
    loop {
        let now = *status.borrow();
        let running = if options.attach {
            now.exits == exits_at_start && !now.removed
        } else {
            now.status.is_running() && !now.removed
        };
        let mut progressed = false;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) if !line.ends_with('\n') => {
                    let _ = reader.seek_relative(-(line.len() as i64));
                    break;
                }
                Ok(_) => {
                    progressed = true;
                    if let Some(entry) = parse(&line).filter(|e| wanted(e, &options))
                        && sender.blocking_send(entry).is_err()
                    {
                        return;
                    }
                }
            }
        }
        if options
            .until
            .is_some_and(|until| chrono::Utc::now().timestamp() as f64 > until)
        {
            return;
        }
        // Stopped and drained: the shim wrote everything before it reported the exit.
        if !running && !progressed {
            return;
        }
        if sender.is_closed() {
            return;
        }
        if !progressed {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
