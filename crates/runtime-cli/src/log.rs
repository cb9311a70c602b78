//! Logging as runc does it: `--log FILE` with `--log-format text|json`. Engines read the JSON
//! log to report a runtime's error (conmon passes `--log-format json`), so an error is always
//! written both there and, as one line, to stderr.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where errors go.
pub struct Logger {
    file: Option<PathBuf>,
    format: LogFormat,
}

impl Logger {
    /// Sets up tracing (debug level with `--debug`) towards the log file or stderr.
    pub fn install(file: Option<&Path>, format: LogFormat, debug: bool) -> Self {
        let level = if debug { "debug" } else { "warn" };
        let filter = tracing_subscriber::EnvFilter::new(level);
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_target(false);
        let opened =
            file.and_then(|path| OpenOptions::new().create(true).append(true).open(path).ok());
        let _ = match (opened, format) {
            (Some(file), LogFormat::Json) => builder
                .json()
                .with_writer(std::sync::Mutex::new(file))
                .try_init(),
            (Some(file), LogFormat::Text) => builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file))
                .try_init(),
            (None, _) => builder.with_writer(std::io::stderr).try_init(),
        };
        Self {
            file: file.map(Path::to_path_buf),
            format,
        }
    }

    /// Reports a failure: one line on stderr, and an entry in the log file if there is one.
    pub fn error(&self, error: &anyhow::Error) {
        let message = format!("{error:#}");
        eprintln!("berth-runtime: {message}");
        let Some(path) = &self.file else { return };
        let Ok(mut file) = OpenOptions::new().create(true).append(true).open(path) else {
            return;
        };
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let line = match self.format {
            LogFormat::Json => {
                serde_json::json!({"level": "error", "msg": message, "time": time}).to_string()
            }
            LogFormat::Text => format!("time=\"{time}\" level=error msg={message:?}"),
        };
        let _ = writeln!(file, "{line}");
    }
}
