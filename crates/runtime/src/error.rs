//! The runtime's typed error. Every variant maps to a shared [`types::ErrorKind`].

use std::path::PathBuf;

use types::ErrorKind;

/// Result alias of the runtime library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error of the runtime library. Messages are lowercase one-liners (they end up as the CLI's
/// only output line).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bundle's config.json is missing, unreadable or not a valid runtime spec.
    #[error("invalid config: {0}")]
    InvalidSpec(String),
    /// A request argument or spec value is not acceptable.
    #[error("{0}")]
    InvalidArgument(String),
    /// No container with this id in the state root.
    #[error("container \"{0}\" does not exist")]
    NotFound(String),
    /// A container with this id already exists.
    #[error("container \"{0}\" already exists")]
    AlreadyExists(String),
    /// The container is not in a state that allows the operation.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A path resolved outside of the root it must stay in.
    #[error("path {path:?} escapes its root {root:?}")]
    PathEscape { root: PathBuf, path: PathBuf },
    /// A system call failed; `what` says which step.
    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// An error from the cgroups crate.
    #[error(transparent)]
    Cgroups(#[from] cgroups::Error),
    /// The failure of a step that the container's init process reported back.
    #[error("{0}")]
    Child(String),
}

impl Error {
    /// Wraps an errno from a syscall with the step that made it.
    pub fn sys(what: impl Into<String>, errno: impl Into<std::io::Error>) -> Self {
        Self::Sys {
            what: what.into(),
            source: errno.into(),
        }
    }

    /// The shared kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidSpec(_) | Self::InvalidArgument(_) | Self::PathEscape { .. } => {
                ErrorKind::InvalidArgument
            }
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::AlreadyExists(_) => ErrorKind::AlreadyExists,
            Self::FailedPrecondition(_) => ErrorKind::FailedPrecondition,
            Self::Sys { source, .. } if source.raw_os_error() == Some(libc::EPERM) => {
                ErrorKind::PermissionDenied
            }
            Self::Cgroups(e) => e.kind(),
            Self::Sys { .. } | Self::Child(_) => ErrorKind::Internal,
        }
    }
}

/// Adds the step name to a nix/io error: `mount(...).map_err(sys("mount /proc"))`.
pub fn sys<E: Into<std::io::Error>>(what: impl Into<String>) -> impl FnOnce(E) -> Error {
    let what = what.into();
    move |e| Error::sys(what, e)
}
