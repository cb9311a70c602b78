//! The network crate's typed error: a kind and a message (dockerd's wording where clients show
//! it). Only the API maps kinds to HTTP statuses.

use types::ErrorKind;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::FailedPrecondition, message)
    }
    /// dockerd answers some refusals (overlapping pools, active endpoints) with 403 Forbidden,
    /// which the API maps from this kind.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::PermissionDenied, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    /// Prefixes the message with what was being done.
    pub fn context(self, what: impl std::fmt::Display) -> Self {
        Self {
            kind: self.kind,
            message: format!("{what}: {}", self.message),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Self {
        Self::internal(error.to_string())
    }
}

impl From<nix::Error> for Error {
    fn from(error: nix::Error) -> Self {
        Self::internal(error.desc().to_lowercase())
    }
}

impl From<rtnetlink::Error> for Error {
    fn from(error: rtnetlink::Error) -> Self {
        match &error {
            rtnetlink::Error::NetlinkError(message) => {
                let code = message.raw_code().abs();
                let text = std::io::Error::from_raw_os_error(code).to_string();
                let kind = match code {
                    libc::EEXIST => ErrorKind::AlreadyExists,
                    libc::ENODEV | libc::ENOENT => ErrorKind::NotFound,
                    libc::EPERM | libc::EACCES => ErrorKind::PermissionDenied,
                    _ => ErrorKind::Internal,
                };
                Self::new(kind, format!("netlink: {text}"))
            }
            _ => Self::internal(format!("netlink: {error}")),
        }
    }
}
