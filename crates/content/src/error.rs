//! The errors of the content crate, each mapped to a shared [`ErrorKind`].

use std::io;
use std::path::PathBuf;

use types::{Digest, ErrorKind};

/// What went wrong in the blob store, layer apply/diff or the snapshot store.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// An I/O or system-call failure, with what we were doing.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, e.g. `create temp file in /var/lib/berth/blobs/ingest`.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The ingested content does not hash to the digest the caller expected.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What the caller said the content hashes to.
        expected: Digest,
        /// What it actually hashes to.
        actual: Digest,
    },
    /// The store holds no blob with this digest.
    #[error("blob {0} not found")]
    BlobNotFound(Digest),
    /// An algorithm other than sha256 was asked of a store that only holds sha256 blobs.
    #[error("unsupported digest algorithm {0}")]
    UnsupportedAlgorithm(String),
    /// The layer stream's compression is recognised but not supported (bzip2, xz).
    #[error("unsupported layer compression: {0}")]
    UnsupportedCompression(&'static str),
    /// The tar stream is malformed: truncated, garbage headers, bad sizes.
    #[error("invalid tar stream: {0}")]
    InvalidTar(String),
    /// A tar entry would write outside the extraction root (path traversal, CVE-2018-15664
    /// class), or a hard link points outside it.
    #[error("tar entry {entry:?} escapes the extraction root: {reason}")]
    Breakout {
        /// The entry's name as found in the archive.
        entry: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A path inside a root that does not exist (`docker cp` of a missing path).
    #[error("no such path {0:?}")]
    PathNotFound(String),
    /// An extraction point that is not a directory.
    #[error("extraction point is not a directory")]
    NotADirectory(String),
    /// An archive entry would replace a directory with a non-directory or the other way
    /// round, and the caller asked not to (`noOverwriteDirNonDir`).
    #[error("{0}")]
    OverwriteDirNonDir(String),
    /// A snapshot key or chain id that is not in the store.
    #[error("snapshot {0} not found")]
    SnapshotNotFound(String),
    /// A snapshot with that key or chain id already exists.
    #[error("snapshot {0} already exists")]
    SnapshotExists(String),
    /// The snapshot is still a parent of other snapshots.
    #[error("snapshot {0} is in use as a parent of {1}")]
    SnapshotInUse(String, String),
    /// A snapshot key with characters that cannot name a directory.
    #[error("invalid snapshot key {0:?}")]
    InvalidKey(String),
    /// The target of an atomic apply already exists.
    #[error("target {0} already exists")]
    TargetExists(PathBuf),
    /// The primary error, and a cleanup failure that happened while handling it.
    #[error("{primary} (cleanup also failed: {cleanup})")]
    WithCleanup {
        /// The error that caused the cleanup.
        primary: Box<ContentError>,
        /// What went wrong while cleaning up.
        cleanup: Box<ContentError>,
    },
}

impl ContentError {
    /// The shared error kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Io { source, .. } => match source.kind() {
                io::ErrorKind::NotFound => ErrorKind::NotFound,
                io::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
                io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                io::ErrorKind::Unsupported => ErrorKind::Unsupported,
                _ => ErrorKind::Internal,
            },
            Self::DigestMismatch { .. } => ErrorKind::InvalidArgument,
            Self::BlobNotFound(_) | Self::SnapshotNotFound(_) | Self::PathNotFound(_) => {
                ErrorKind::NotFound
            }
            Self::NotADirectory(_) | Self::OverwriteDirNonDir(_) => ErrorKind::InvalidArgument,
            Self::UnsupportedAlgorithm(_) | Self::UnsupportedCompression(_) => {
                ErrorKind::Unsupported
            }
            Self::InvalidTar(_) | Self::Breakout { .. } | Self::InvalidKey(_) => {
                ErrorKind::InvalidArgument
            }
            Self::SnapshotExists(_) | Self::TargetExists(_) => ErrorKind::AlreadyExists,
            Self::SnapshotInUse(..) => ErrorKind::FailedPrecondition,
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
    pub(crate) fn with_cleanup(self, cleanup: ContentError) -> Self {
        Self::WithCleanup {
            primary: Box::new(self),
            cleanup: Box::new(cleanup),
        }
    }
}

/// Adds context to `io::Result`s.
pub(crate) trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, ContentError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, ContentError> {
        self.map_err(|e| ContentError::io(context(), e))
    }
}

impl<T> IoContext<T> for rustix::io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, ContentError> {
        self.map_err(|e| ContentError::io(context(), e.into()))
    }
}

/// Result alias of this crate.
pub type Result<T, E = ContentError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        let nf = ContentError::io("open x", io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(nf.kind(), ErrorKind::NotFound);
        assert_eq!(nf.to_string(), "open x: entity not found");
        let b = ContentError::Breakout {
            entry: "../x".into(),
            reason: "path escapes root",
        };
        assert_eq!(b.kind(), ErrorKind::InvalidArgument);
        let both = b.with_cleanup(ContentError::InvalidKey("k".into()));
        assert_eq!(both.kind(), ErrorKind::InvalidArgument);
        assert!(both.to_string().contains("cleanup also failed"));
    }
}
