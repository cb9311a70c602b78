//! The host's mount table (/proc/self/mountinfo, proc(5)), for the two questions this crate
//! asks: is a path a mount point, and how does the mount holding a path propagate
//! (mount_namespaces(7), "shared:N" and "master:N" optional fields).

use std::path::Path;

pub use types::mountinfo::{MountInfo, containing, parse};

/// The host's table now (empty when unreadable).
pub fn current() -> Vec<MountInfo> {
    parse(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
}

/// Whether `path` is a mount point.
pub fn is_mount_point(path: &Path) -> bool {
    current().iter().any(|m| m.mount_point == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_host() {
        assert!(is_mount_point(Path::new("/")));
        assert!(!current().is_empty());
    }
}
