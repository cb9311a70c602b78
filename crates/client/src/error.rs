//! Errors of the client: transport failures and error responses of the daemon.

use types::ErrorKind;

/// Everything that can go wrong talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The host string (`-H`, `BERTH_HOST`, `DOCKER_HOST`) cannot be used.
    #[error("invalid host {host:?}: {reason}")]
    InvalidHost {
        /// The host as given.
        host: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The socket could not be reached (daemon not running, wrong path, refused).
    #[error("cannot connect to the daemon at {host}: {source}")]
    Connect {
        /// The host as given.
        host: String,
        /// The error of connect(2).
        source: std::io::Error,
    },
    /// The TLS options cannot be used (a certificate file missing, unreadable or invalid).
    #[error("{0}")]
    TlsConfig(String),
    /// The TLS handshake with the daemon failed (certificate refused either way, not TLS).
    #[error("tls handshake with {host}: {source}")]
    Tls {
        /// The host as given.
        host: String,
        /// The handshake's error.
        source: std::io::Error,
    },
    /// The HTTP exchange failed (connection closed early, malformed response).
    #[error("http: {}", with_causes(.0))]
    Http(#[from] hyper::Error),
    /// A request could not be built (invalid header value or URI).
    #[error("invalid request: {0}")]
    Request(#[from] hyper::http::Error),
    /// The daemon answered with an error status; `message` is its `{"message": ...}` text.
    #[error("{message}")]
    Daemon {
        /// HTTP status code of the answer.
        status: u16,
        /// The daemon's message.
        message: String,
    },
    /// The daemon's answer did not decode as the expected JSON model.
    #[error("decode response: {0}")]
    Decode(#[from] serde_json::Error),
    /// Local I/O (reading a body to upload, copying a stream).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The daemon did not switch protocols for an attach/hijack request.
    #[error("daemon did not upgrade the connection (status {0})")]
    NotUpgraded(u16),
}

impl Error {
    /// The shared error kind this error stands for; daemon errors map back from the HTTP status
    /// (the inverse of the mapping done by the `api` crate).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidHost { .. } | Self::Request(_) | Self::TlsConfig(_) => {
                ErrorKind::InvalidArgument
            }
            Self::Daemon { status, .. } => match status {
                400 => ErrorKind::InvalidArgument,
                401 | 403 => ErrorKind::PermissionDenied,
                404 => ErrorKind::NotFound,
                409 => ErrorKind::AlreadyExists,
                412 => ErrorKind::FailedPrecondition,
                501 => ErrorKind::Unsupported,
                _ => ErrorKind::Internal,
            },
            _ => ErrorKind::Internal,
        }
    }

    /// True when the daemon answered (as opposed to a transport failure).
    pub fn is_daemon_error(&self) -> bool {
        matches!(self, Self::Daemon { .. })
    }

    /// The HTTP status of a daemon error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Daemon { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// An error with its causes, `outer: inner: ...`: hyper's own text ("connection error") hides
/// what happened (e.g. the daemon's TLS alert refusing our certificate).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Result of the client.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_status() {
        let e = |status| Error::Daemon {
            status,
            message: String::new(),
        };
        assert_eq!(e(404).kind(), ErrorKind::NotFound);
        assert_eq!(e(409).kind(), ErrorKind::AlreadyExists);
        assert_eq!(e(400).kind(), ErrorKind::InvalidArgument);
        assert_eq!(e(500).kind(), ErrorKind::Internal);
        assert_eq!(e(500).status(), Some(500));
    }
}
