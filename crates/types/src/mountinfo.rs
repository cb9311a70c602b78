//! The mount table's text format (`/proc/PID/mountinfo`, proc(5)): parsing only; reading the
//! file is left to the crates that ask about mounts.

use std::path::{Path, PathBuf};

/// One line of a mountinfo file:
/// `id parent major:minor root mount-point options [optional...] - fstype source super-options`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// (4) the directory of the filesystem that forms the root of this mount.
    pub root: PathBuf,
    /// (5) the mount point, relative to the process's root.
    pub mount_point: PathBuf,
    /// (7) optional fields such as `shared:2` or `master:1`.
    pub optional: Vec<String>,
    /// (9) the filesystem type.
    pub fs_type: String,
    /// (10) the filesystem's source (device, or a name such as `tmpfs`).
    pub source: String,
    /// (11) per-superblock options.
    pub super_options: String,
}

impl MountInfo {
    /// Whether the mount is in a peer group (mount_namespaces(7), "shared:N").
    pub fn is_shared(&self) -> bool {
        self.optional.iter().any(|f| f.starts_with("shared:"))
    }

    /// Whether the mount receives propagation from a master ("master:N").
    pub fn is_slave(&self) -> bool {
        self.optional.iter().any(|f| f.starts_with("master:"))
    }
}

/// Parses one line; `None` when it is malformed.
pub fn parse_line(line: &str) -> Option<MountInfo> {
    let fields: Vec<&str> = line.split(' ').collect();
    let separator = fields.iter().position(|f| *f == "-")?;
    if separator < 6 || fields.len() < separator + 4 {
        return None;
    }
    Some(MountInfo {
        root: PathBuf::from(unescape(fields[3])),
        mount_point: PathBuf::from(unescape(fields[4])),
        optional: fields[6..separator].iter().map(|s| s.to_string()).collect(),
        fs_type: fields[separator + 1].to_owned(),
        source: unescape(fields[separator + 2]),
        super_options: fields[separator + 3].to_owned(),
    })
}

/// Parses the text of a mountinfo file; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<MountInfo> {
    text.lines().filter_map(parse_line).collect()
}

/// The mount that holds `path`: the longest mount point that is a prefix of it, component-wise;
/// of several mounts stacked on that point, the last listed (the visible one).
pub fn containing<'a>(mounts: &'a [MountInfo], path: &Path) -> Option<&'a MountInfo> {
    mounts
        .iter()
        .filter(|m| path.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.components().count())
}

/// Undoes the octal escapes (`\040` for a space, `\134` for a backslash) the kernel writes for
/// blanks and backslashes in paths.
pub fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let digit = |b: u8| u32::from(b - b'0');
            let value = digit(bytes[i + 1]) * 64 + digit(bytes[i + 2]) * 8 + digit(bytes[i + 3]);
            out.push(value as u8);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 27 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
40 27 0:50 / /srv rw,relatime shared:5 - tmpfs tmpfs rw
41 40 0:51 /sub /srv/a\\040b rw master:7 - tmpfs my\\040tmpfs rw
42 27 0:52 / /srv rw shared:9 master:3 - tmpfs tmpfs rw
";

    #[test]
    fn fields() {
        let mounts = parse(TABLE);
        assert_eq!(mounts.len(), 5);
        assert_eq!(mounts[0].mount_point, Path::new("/"));
        assert_eq!(mounts[0].optional, ["shared:1"]);
        assert_eq!(mounts[0].fs_type, "ext4");
        assert_eq!(mounts[0].source, "/dev/vda");
        assert_eq!(mounts[1].super_options, "rw,cpu,cpuacct");
        assert_eq!(mounts[3].root, Path::new("/sub"));
        assert_eq!(mounts[3].mount_point, Path::new("/srv/a b"));
        assert_eq!(mounts[3].source, "my tmpfs");
        assert!(parse("garbage\n1 2 3\n1 2 3 4 5 - x\n").is_empty());
    }

    #[test]
    fn the_mount_holding_a_path() {
        let mounts = parse(TABLE);
        let root = containing(&mounts, Path::new("/etc/x")).unwrap();
        assert_eq!(root.mount_point, Path::new("/"));
        assert!(root.is_shared() && !root.is_slave());
        // The later mount on /srv hides the earlier one.
        let srv = containing(&mounts, Path::new("/srv/data")).unwrap();
        assert_eq!(srv.optional, ["shared:9", "master:3"]);
        assert!(srv.is_shared() && srv.is_slave());
        let ab = containing(&mounts, Path::new("/srv/a b/c")).unwrap();
        assert!(ab.is_slave() && !ab.is_shared());
        // Component-wise: /srvx is not under /srv.
        assert_eq!(
            containing(&mounts, Path::new("/srvx")).unwrap().mount_point,
            Path::new("/")
        );
    }

    #[test]
    fn octal_escapes() {
        assert_eq!(unescape("a\\040b\\134c"), "a b\\c");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
    }
}
