//! The errors of the image crate, each mapped to a shared [`ErrorKind`]. Messages that Docker's
//! CLI shows to users are Docker's own wording (daemon/images/image_delete.go and friends).

use std::io;

use types::{DigestError, ErrorKind, ReferenceError};

/// What went wrong in the image store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No image matches the name or id (Docker: `No such image: busybox:latest`).
    #[error("No such image: {0}")]
    NoSuchImage(String),
    /// An id prefix matches more than one image.
    #[error("multiple IDs found with provided prefix: {0}")]
    AmbiguousPrefix(String),
    /// A delete conflict (HTTP 409 at the API edge): tags in several repositories, a container
    /// using the image, dependent children. `hard` conflicts cannot be forced.
    #[error("conflict: unable to delete {short_id} ({}) - {reason}", if *.hard { "cannot be forced" } else { "must be forced" })]
    DeleteConflict {
        /// The first 12 hex characters of the image id.
        short_id: String,
        /// Whether `force` cannot override the conflict.
        hard: bool,
        /// Docker's reason text.
        reason: String,
    },
    /// Removing the only reference of an image a container uses would leave it dangling.
    #[error(
        "conflict: unable to remove repository reference {reference:?} (must force) - container {container} is using its referenced image {short_id}"
    )]
    ReferenceInUse {
        /// The reference as the caller wrote it.
        reference: String,
        /// The short id of the container.
        container: String,
        /// The short id of the image.
        short_id: String,
    },
    /// A `--change` instruction that is not allowed or malformed.
    #[error("{0}")]
    InvalidChange(String),
    /// A list filter that does not exist or has a bad value.
    #[error("{0}")]
    InvalidFilter(String),
    /// An argument that names impossible values (bad reference, bad id).
    #[error("{0}")]
    InvalidArgument(String),
    /// An image archive (docker save or OCI layout) that is malformed or fails verification.
    #[error("invalid image archive: {0}")]
    InvalidArchive(String),
    /// A layer tar that cannot be applied as written (an entry names something the layer
    /// does not have, such as a hard link through a symlink that leads out of the layer).
    #[error("invalid layer: {0}")]
    InvalidLayer(String),
    /// An image config that does not parse or is inconsistent with its layers.
    #[error("invalid image config: {0}")]
    InvalidConfig(String),
    /// A reference that does not parse.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// A digest that does not parse.
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// A failure of the blob or snapshot store (this includes bad layer tars: traversal,
    /// truncation, digest mismatch).
    #[error(transparent)]
    Content(#[from] content::ContentError),
    /// An I/O failure with what we were doing.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A record on disk that does not parse.
    #[error("corrupt record {path}: {source}")]
    CorruptRecord {
        /// The file.
        path: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The primary error, and a cleanup failure that happened while handling it.
    #[error("{primary} (cleanup also failed: {cleanup})")]
    WithCleanup {
        /// The error that caused the cleanup.
        primary: Box<Error>,
        /// What went wrong while cleaning up.
        cleanup: Box<Error>,
    },
}

impl Error {
    /// The shared error kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NoSuchImage(_) => ErrorKind::NotFound,
            Self::AmbiguousPrefix(_)
            | Self::InvalidChange(_)
            | Self::InvalidFilter(_)
            | Self::InvalidArgument(_)
            | Self::InvalidArchive(_)
            | Self::InvalidLayer(_)
            | Self::InvalidConfig(_) => ErrorKind::InvalidArgument,
            Self::DeleteConflict { .. } | Self::ReferenceInUse { .. } => {
                ErrorKind::FailedPrecondition
            }
            Self::Reference(e) => e.kind(),
            Self::Digest(e) => e.kind(),
            Self::Content(e) => e.kind(),
            Self::Io { source, .. } => match source.kind() {
                io::ErrorKind::NotFound => ErrorKind::NotFound,
                io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => {
                    ErrorKind::InvalidArgument
                }
                _ => ErrorKind::Internal,
            },
            Self::CorruptRecord { .. } => ErrorKind::Internal,
            Self::WithCleanup { primary, .. } => primary.kind(),
        }
    }

    /// Wraps an I/O error with what we were doing.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// Attaches a cleanup failure to this (primary) error.
    pub(crate) fn with_cleanup(self, cleanup: Error) -> Self {
        Self::WithCleanup {
            primary: Box::new(self),
            cleanup: Box::new(cleanup),
        }
    }
}

/// Adds context to `io::Result`s.
pub(crate) trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(context(), e))
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_messages_are_dockers() {
        let soft = Error::DeleteConflict {
            short_id: "0123456789ab".into(),
            hard: false,
            reason: "image is referenced in multiple repositories".into(),
        };
        assert_eq!(
            soft.to_string(),
            "conflict: unable to delete 0123456789ab (must be forced) - image is referenced in multiple repositories"
        );
        assert_eq!(soft.kind(), ErrorKind::FailedPrecondition);
        let hard = Error::DeleteConflict {
            short_id: "0123456789ab".into(),
            hard: true,
            reason: "image is being used by running container 111111111111".into(),
        };
        assert!(hard.to_string().contains("(cannot be forced)"));
        let r = Error::ReferenceInUse {
            reference: "busybox".into(),
            container: "c1".into(),
            short_id: "i1".into(),
        };
        assert_eq!(
            r.to_string(),
            "conflict: unable to remove repository reference \"busybox\" (must force) - container c1 is using its referenced image i1"
        );
        assert_eq!(Error::NoSuchImage("x".into()).kind(), ErrorKind::NotFound);
    }
}
