//! The volume crate's errors, each with its [`ErrorKind`]. Messages are dockerd's where the
//! docker CLI shows them (moby volume/service/errors.go: `op name: cause - [refs]`).

use std::io;

use types::ErrorKind;

/// Result alias of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong with a volume or a mount.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A volume name the local driver refuses (`/`, `..`, a leading `.`, too short).
    #[error("{op} {name}: {reason}")]
    InvalidName {
        op: &'static str,
        name: String,
        reason: String,
    },
    /// No volume of that name.
    #[error("{op} {name}: no such volume")]
    NoSuchVolume { op: &'static str, name: String },
    /// The volume is referenced by containers (their full ids).
    #[error("{op} {name}: volume is in use - [{}]", .refs.join(", "))]
    InUse {
        op: &'static str,
        name: String,
        refs: Vec<String>,
    },
    /// A volume of that name exists with another driver.
    #[error(
        "{op} {name}: driver '{driver}' already has volume '{name}': volume name must be unique"
    )]
    NameConflict {
        op: &'static str,
        name: String,
        driver: String,
    },
    /// Options the driver refuses (`invalid option: "foo"`, `missing required option`).
    #[error("{op} {name}: {reason}")]
    InvalidOption {
        op: &'static str,
        name: String,
        reason: String,
    },
    /// No plugin of that name in the plugin directories.
    #[error("{op} {name}: error looking up volume plugin {plugin}: plugin {plugin:?} not found")]
    PluginNotFound {
        op: &'static str,
        name: String,
        plugin: String,
    },
    /// A plugin was found but its activation failed (no answer, a garbage answer, not a
    /// volume driver).
    #[error("{op} {name}: error looking up volume plugin {plugin}: {reason}")]
    PluginLookup {
        op: &'static str,
        name: String,
        plugin: String,
        reason: String,
    },
    /// A plugin call failed: the plugin's own error, an unreachable socket, a garbage answer or
    /// a timeout.
    #[error("{op} {name}: {reason}")]
    Plugin {
        op: &'static str,
        name: String,
        reason: String,
    },
    /// A mount specification (bind, volume, tmpfs, volumes-from) that Docker refuses. The
    /// message is dockerd's, complete.
    #[error("{0}")]
    InvalidMount(String),
    /// A volume subpath that does not exist or leads out of the volume.
    #[error("{0}")]
    Subpath(String),
    /// A mount the kernel refused (the local driver's `-o` mounts, a subpath bind).
    #[error("{0}")]
    Mount(String),
    /// A filter key the endpoint does not know.
    #[error("Invalid filter '{0}'")]
    InvalidFilter(String),
    /// An I/O failure, with what was being done.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// The shared kind the API maps to an HTTP status.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidName { .. }
            | Self::InvalidOption { .. }
            | Self::InvalidMount(_)
            | Self::InvalidFilter(_)
            | Self::Subpath(_) => ErrorKind::InvalidArgument,
            Self::NoSuchVolume { .. } | Self::PluginNotFound { .. } => ErrorKind::NotFound,
            Self::InUse { .. } | Self::NameConflict { .. } => ErrorKind::FailedPrecondition,
            Self::Plugin { .. } | Self::PluginLookup { .. } | Self::Mount(_) | Self::Io { .. } => {
                ErrorKind::Internal
            }
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

/// An errno as Go prints it (what dockerd's messages contain): "no such file or directory".
pub(crate) fn errno_text(errno: rustix::io::Errno) -> String {
    let text = io::Error::from_raw_os_error(errno.raw_os_error()).to_string();
    let text = match text.find(" (os error") {
        Some(end) => &text[..end],
        None => text.as_str(),
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Adds context to I/O results.
pub(crate) trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::io(context(), source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_dockerds() {
        let in_use = Error::InUse {
            op: "remove",
            name: "data".into(),
            refs: vec!["abc".into(), "def".into()],
        };
        assert_eq!(
            in_use.to_string(),
            "remove data: volume is in use - [abc, def]"
        );
        assert_eq!(in_use.kind(), ErrorKind::FailedPrecondition);
        let missing = Error::NoSuchVolume {
            op: "get",
            name: "nope".into(),
        };
        assert_eq!(missing.to_string(), "get nope: no such volume");
        assert_eq!(missing.kind(), ErrorKind::NotFound);
        assert_eq!(
            errno_text(rustix::io::Errno::NOENT),
            "no such file or directory"
        );
        assert_eq!(
            Error::PluginNotFound {
                op: "create",
                name: "v".into(),
                plugin: "nope".into()
            }
            .to_string(),
            "create v: error looking up volume plugin nope: plugin \"nope\" not found"
        );
    }
}
