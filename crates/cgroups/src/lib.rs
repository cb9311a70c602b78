//! cgroups: see the crate description. (Being written.)

/// Errors of the cgroups crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Placeholder until the crate lands.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// The shared kind of this error.
    pub fn kind(&self) -> types::ErrorKind {
        types::ErrorKind::Internal
    }
}
