//! The host's mount table (/proc/self/mountinfo, proc(5)), for the two questions this crate
//! asks: is a path a mount point, and how does the mount holding a path propagate
//! (mount_namespaces(7), "shared:N" and "master:N" optional fields).

use std::path::{Path, PathBuf};

/// One line of mountinfo, the fields we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_point: PathBuf,
    /// Optional fields: `shared:2`, `master:1`...
    pub optional: Vec<String>,
}

impl MountEntry {
    pub fn is_shared(&self) -> bool {
        self.optional.iter().any(|f| f.starts_with("shared:"))
    }
    pub fn is_slave(&self) -> bool {
        self.optional.iter().any(|f| f.starts_with("master:"))
    }
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 4 <= bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value =
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses mountinfo text.
pub fn parse(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let separator = fields.iter().position(|f| *f == "-")?;
            let mount_point = fields.get(4)?;
            Some(MountEntry {
                mount_point: PathBuf::from(unescape(mount_point)),
                optional: fields
                    .get(6..separator)
                    .unwrap_or_default()
                    .iter()
                    .map(|f| f.to_string())
                    .collect(),
            })
        })
        .collect()
}

/// The host's table now (empty when unreadable).
pub fn current() -> Vec<MountEntry> {
    parse(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
}

/// Whether `path` is a mount point.
pub fn is_mount_point(path: &Path) -> bool {
    current().iter().any(|m| m.mount_point == path)
}

/// The mount that holds `path` (the last mounted of the longest matching mount point, as the
/// kernel resolves it).
pub fn containing<'a>(mounts: &'a [MountEntry], path: &Path) -> Option<&'a MountEntry> {
    mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| path.starts_with(&m.mount_point))
        .max_by_key(|(index, m)| (m.mount_point.components().count(), *index))
        .map(|(_, m)| m)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
40 27 0:50 / /srv rw,relatime shared:5 - tmpfs tmpfs rw
41 40 0:51 / /srv/a\\040b rw master:7 - tmpfs tmpfs rw
42 27 0:52 / /srv rw shared:9 master:3 - tmpfs tmpfs rw
";

    #[test]
    fn finds_the_mount_of_a_path() {
        let mounts = parse(TABLE);
        assert_eq!(mounts.len(), 4);
        assert_eq!(mounts[2].mount_point, Path::new("/srv/a b"));
        let root = containing(&mounts, Path::new("/etc/x")).unwrap();
        assert_eq!(root.mount_point, Path::new("/"));
        assert!(!root.is_shared() && !root.is_slave());
        // The later mount on /srv hides the earlier one.
        let srv = containing(&mounts, Path::new("/srv/data")).unwrap();
        assert_eq!(srv.optional, ["shared:9", "master:3"]);
        assert!(srv.is_shared() && srv.is_slave());
        let ab = containing(&mounts, Path::new("/srv/a b/c")).unwrap();
        assert!(ab.is_slave() && !ab.is_shared());
        assert!(containing(&mounts, Path::new("/srvx")).unwrap().mount_point == Path::new("/"));
    }

    #[test]
    fn reads_this_host() {
        assert!(is_mount_point(Path::new("/")));
        assert!(!current().is_empty());
    }
}
