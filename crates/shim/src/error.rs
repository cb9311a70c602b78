//! The shim's typed error. Every variant maps to a shared [`types::ErrorKind`].

use types::ErrorKind;

/// Result alias of the shim crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error of the shim. Messages are lowercase one-liners: the foreground `start` prints
/// `error <message>` as its only line for the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command-line argument or request is not acceptable.
    #[error("{0}")]
    InvalidArgument(String),
    /// An error of the built-in runtime library.
    #[error(transparent)]
    Runtime(#[from] runtime::Error),
    /// An external OCI runtime binary (`--runtime`) failed; the text is its own message.
    #[error("{0}")]
    ExternalRuntime(String),
    /// A system call or file operation failed; `what` says which step.
    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A shim answered something that is not the protocol, or went away mid-request.
    #[error("shim protocol: {0}")]
    Protocol(String),
    /// A shim refused a request (its `{"error": ...}` reply).
    #[error("{0}")]
    Refused(String),
}

impl Error {
    /// Wraps an errno or io error with the step that made it.
    pub fn sys(what: impl Into<String>, source: impl Into<std::io::Error>) -> Self {
        Self::Sys {
            what: what.into(),
            source: source.into(),
        }
    }

    /// The shared kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Self::Runtime(e) => e.kind(),
            Self::Refused(_) => ErrorKind::FailedPrecondition,
            Self::Sys { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            Self::Sys { .. } | Self::ExternalRuntime(_) | Self::Protocol(_) => ErrorKind::Internal,
        }
    }
}

/// Adds the step name to a nix/io error: `open(..).map_err(sys("open log"))`.
pub fn sys<E: Into<std::io::Error>>(what: impl Into<String>) -> impl FnOnce(E) -> Error {
    let what = what.into();
    move |e| Error::sys(what, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_cause() {
        assert_eq!(
            Error::InvalidArgument("x".into()).kind(),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            Error::Runtime(runtime::Error::NotFound("c".into())).kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            Error::sys("read", std::io::Error::from_raw_os_error(libc::EIO)).kind(),
            ErrorKind::Internal
        );
        assert_eq!(
            Error::Refused("no".into()).kind(),
            ErrorKind::FailedPrecondition
        );
    }
}
