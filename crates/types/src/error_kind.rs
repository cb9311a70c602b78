//! One shared set of error kinds. Each crate's typed errors carry one of these; only the API edge
//! maps a kind to a transport status (HTTP code, CLI exit code).

/// What went wrong, in terms a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The named object does not exist.
    NotFound,
    /// An object with that name or id already exists.
    AlreadyExists,
    /// The request itself is malformed or names impossible values.
    InvalidArgument,
    /// The request is well-formed but the object is in the wrong state for it.
    FailedPrecondition,
    /// The caller lacks the privilege or the kernel refused for lack of it.
    PermissionDenied,
    /// The host lacks a feature the request needs.
    Unsupported,
    /// A real failure of the system (I/O, kernel) that the caller could not have prevented.
    Internal,
}

impl ErrorKind {
    /// Lowercase name, used in logs and in the runtime's JSON error output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not found",
            Self::AlreadyExists => "already exists",
            Self::InvalidArgument => "invalid argument",
            Self::FailedPrecondition => "failed precondition",
            Self::PermissionDenied => "permission denied",
            Self::Unsupported => "unsupported",
            Self::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
