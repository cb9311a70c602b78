//! The crate's error type and its mapping onto the shared [`types::ErrorKind`].

use std::path::PathBuf;

use types::ErrorKind;

/// Errors of the cgroups crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `/proc/self/mountinfo` could not be read or shows no cgroup filesystem at all.
    #[error("no cgroup filesystem is mounted")]
    NoCgroupMounts,

    /// A line of mountinfo could not be parsed.
    #[error("malformed mountinfo line: {0:?}")]
    Mountinfo(String),

    /// The relative cgroup path is not acceptable (empty, root, `..`, NUL...).
    #[error("invalid cgroup path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// A resource value is out of range or malformed.
    #[error("invalid value for {what}: {reason}")]
    InvalidValue {
        /// The resource field, e.g. `memory.swap`.
        what: String,
        /// Why it was refused.
        reason: String,
    },

    /// A resource was requested but the controller (or the file) serving it is absent here.
    #[error("{0} is not supported on this host")]
    Unsupported(String),

    /// Reading, writing, creating or removing a cgroup file failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was attempted ("write \"100\" to", "mkdir", ...).
        op: String,
        /// The file or directory.
        path: PathBuf,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },

    /// The freezer did not reach the wanted state in time.
    #[error("cgroup {path} did not become {state} in time")]
    FreezeTimeout {
        /// The cgroup directory.
        path: PathBuf,
        /// The state waited for (FROZEN / THAWED).
        state: &'static str,
    },

    /// A bpf(2) call failed while installing the cgroup v2 device filter.
    #[error("bpf {op}: {errno}{}", if log.is_empty() { String::new() } else { format!("; verifier log: {log}") })]
    Bpf {
        /// The bpf command (prog load, prog attach, ...).
        op: &'static str,
        /// The kernel's errno.
        errno: nix::errno::Errno,
        /// The verifier log, when loading failed.
        log: String,
    },
}

impl Error {
    /// The shared kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NoCgroupMounts => ErrorKind::Unsupported,
            Self::Mountinfo(_) => ErrorKind::Internal,
            Self::InvalidPath { .. } | Self::InvalidValue { .. } => ErrorKind::InvalidArgument,
            Self::Unsupported(_) => ErrorKind::Unsupported,
            Self::Io { source, .. } => match source.raw_os_error() {
                Some(libc::ENOENT) => ErrorKind::NotFound,
                Some(libc::EEXIST) => ErrorKind::AlreadyExists,
                Some(libc::EPERM) | Some(libc::EACCES) => ErrorKind::PermissionDenied,
                Some(libc::EINVAL) | Some(libc::ERANGE) => ErrorKind::InvalidArgument,
                Some(libc::EBUSY) => ErrorKind::FailedPrecondition,
                Some(libc::EOPNOTSUPP) => ErrorKind::Unsupported,
                _ => ErrorKind::Internal,
            },
            Self::FreezeTimeout { .. } => ErrorKind::Internal,
            Self::Bpf { errno, .. } => match errno {
                nix::errno::Errno::EPERM | nix::errno::Errno::EACCES => ErrorKind::PermissionDenied,
                nix::errno::Errno::ENOSYS | nix::errno::Errno::EOPNOTSUPP => ErrorKind::Unsupported,
                _ => ErrorKind::Internal,
            },
        }
    }

    pub(crate) fn io(
        op: impl Into<String>,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            op: op.into(),
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidValue {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_map_by_errno() {
        let e = Error::io(
            "write",
            "/x",
            std::io::Error::from_raw_os_error(libc::ENOENT),
        );
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = Error::io(
            "write",
            "/x",
            std::io::Error::from_raw_os_error(libc::EBUSY),
        );
        assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
        assert_eq!(
            Error::Unsupported("memory".into()).kind(),
            ErrorKind::Unsupported
        );
        assert!(
            Error::Unsupported("memory".into())
                .to_string()
                .contains("memory")
        );
    }
}
