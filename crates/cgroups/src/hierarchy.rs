//! Which cgroup hierarchies are mounted where, read from `/proc/self/mountinfo`.
//!
//! Three host layouts exist (kernel Documentation/admin-guide/cgroup-v1 and cgroup-v2.rst):
//! - legacy: only v1 hierarchies (`cgroup` filesystems), each bound to one or more controllers
//!   or to none with a name (`name=systemd`);
//! - hybrid: v1 hierarchies plus a cgroup2 mount (often `/sys/fs/cgroup/unified`) that carries
//!   the controllers no v1 hierarchy took (on this kind of host: hugetlb);
//! - unified: one cgroup2 mount and nothing else.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The host's cgroup layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// cgroup v1 hierarchies only.
    Legacy,
    /// cgroup v1 hierarchies and a cgroup2 mount beside them.
    Hybrid,
    /// A single cgroup2 hierarchy.
    Unified,
}

/// One mounted cgroup v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Hierarchy {
    /// Where it is mounted (already joined to the test root prefix, if any).
    pub mount_point: PathBuf,
    /// Controllers bound to it (`cpu`, `cpuacct`) and its name, if any (`name=systemd`).
    pub controllers: Vec<String>,
}

/// The cgroup mounts of this host: every v1 hierarchy and the cgroup2 mount, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchies {
    v1: Vec<V1Hierarchy>,
    unified: Option<PathBuf>,
}

/// Super-options of a v1 cgroup mount that are not controller or hierarchy names
/// (cgroup-v1.rst section 1.4 and kernel/cgroup/cgroup-v1.c `cgroup1_parse_param`).
const V1_NON_CONTROLLER_OPTIONS: &[&str] = &[
    "rw",
    "ro",
    "none",
    "all",
    "noprefix",
    "clone_children",
    "cpuset_v2_mode",
    "xattr",
    "favordynmods",
    "nofavordynmods",
];

impl Hierarchies {
    /// Reads `/proc/self/mountinfo` and finds every cgroup mount.
    pub fn detect() -> Result<Self> {
        let text = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| Error::io("read", "/proc/self/mountinfo", e))?;
        Self::from_mountinfo(&text, Path::new("/"))
    }

    /// Parses mountinfo text (proc(5), `/proc/pid/mountinfo`). Each mount point is re-rooted
    /// under `root` so that tests can point the crate at a fake tree in a temporary directory;
    /// pass `/` for the real host.
    ///
    /// When the same hierarchy is mounted twice (bind mounts), the first mount wins.
    pub fn from_mountinfo(text: &str, root: &Path) -> Result<Self> {
        let mut v1: Vec<V1Hierarchy> = Vec::new();
        let mut unified = None;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let mount = types::mountinfo::parse_line(line)
                .ok_or_else(|| Error::Mountinfo(line.to_string()))?;
            let mount_point = root.join(
                mount
                    .mount_point
                    .strip_prefix("/")
                    .unwrap_or(&mount.mount_point),
            );
            match mount.fs_type.as_str() {
                "cgroup2" if unified.is_none() => unified = Some(mount_point),
                "cgroup" => {
                    let controllers: Vec<String> = mount
                        .super_options
                        .split(',')
                        .filter(|o| {
                            !V1_NON_CONTROLLER_OPTIONS.contains(o)
                                && !o.starts_with("release_agent=")
                        })
                        .map(str::to_string)
                        .collect();
                    if controllers.is_empty() {
                        continue;
                    }
                    let mut sorted = controllers.clone();
                    sorted.sort();
                    let seen = v1.iter().any(|h| {
                        let mut other = h.controllers.clone();
                        other.sort();
                        other == sorted
                    });
                    if !seen {
                        v1.push(V1Hierarchy {
                            mount_point,
                            controllers,
                        });
                    }
                }
                _ => {}
            }
        }
        if v1.is_empty() && unified.is_none() {
            return Err(Error::NoCgroupMounts);
        }
        Ok(Self { v1, unified })
    }

    /// The host layout these mounts form.
    ///
    /// A host whose v1 hierarchies are all named ones without controllers (a `name=systemd`
    /// mount kept for old tools beside a cgroup2 `/sys/fs/cgroup`) manages its resources
    /// through cgroup2 alone: that is Unified.
    pub fn layout(&self) -> Layout {
        let v1_controllers = self
            .v1
            .iter()
            .any(|h| h.controllers.iter().any(|c| !c.starts_with("name=")));
        match (v1_controllers, self.unified.is_some()) {
            (false, true) => Layout::Unified,
            (true, true) => Layout::Hybrid,
            (_, false) => Layout::Legacy,
        }
    }

    /// `"2"` on a unified host, `"1"` otherwise (what `docker info` reports as CgroupVersion:
    /// a hybrid host manages its controllers through v1).
    pub fn cgroup_version_string(&self) -> &'static str {
        match self.layout() {
            Layout::Unified => "2",
            Layout::Legacy | Layout::Hybrid => "1",
        }
    }

    /// The v1 hierarchies, in mountinfo order.
    pub fn v1(&self) -> &[V1Hierarchy] {
        &self.v1
    }

    /// The cgroup2 mount point, if cgroup2 is mounted.
    pub fn unified_mount(&self) -> Option<&Path> {
        self.unified.as_deref()
    }

    /// The mount point of the v1 hierarchy carrying `controller` (or `name=...`).
    pub fn v1_mount(&self, controller: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))
            .map(|h| h.mount_point.as_path())
    }

    /// Controllers the cgroup2 root offers (`cgroup.controllers` of its mount), empty without
    /// a cgroup2 mount. On a hybrid host these are the controllers no v1 hierarchy bound.
    pub fn unified_controllers(&self) -> Vec<String> {
        self.unified
            .as_ref()
            .and_then(|m| std::fs::read_to_string(m.join("cgroup.controllers")).ok())
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
impl Hierarchies {
    /// The same mounts minus the v1 hierarchy of `controller`, to fake a host lacking it.
    pub(crate) fn without(&self, controller: &str) -> Self {
        let mut copy = self.clone();
        copy.v1
            .retain(|h| !h.controllers.iter().any(|c| c == controller));
        copy
    }

    /// The same mounts minus cgroup2: a legacy host.
    pub(crate) fn without_unified(&self) -> Self {
        let mut copy = self.clone();
        copy.unified = None;
        copy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// mountinfo of this project's hybrid test host.
    pub(crate) const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime shared:9 - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_layout() {
        let h = Hierarchies::from_mountinfo(HYBRID, Path::new("/")).unwrap();
        assert_eq!(h.layout(), Layout::Hybrid);
        assert_eq!(h.cgroup_version_string(), "1");
        assert_eq!(h.v1().len(), 5);
        assert_eq!(
            h.v1_mount("memory"),
            Some(Path::new("/sys/fs/cgroup/memory"))
        );
        assert_eq!(
            h.v1_mount("name=systemd"),
            Some(Path::new("/sys/fs/cgroup/systemd"))
        );
        assert_eq!(h.unified_mount(), Some(Path::new("/sys/fs/cgroup/unified")));
        assert_eq!(h.v1_mount("pids"), None);
    }

    #[test]
    fn unified_and_legacy_layouts() {
        let text =
            "29 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
        let h = Hierarchies::from_mountinfo(text, Path::new("/tmp/x")).unwrap();
        assert_eq!(h.layout(), Layout::Unified);
        assert_eq!(h.cgroup_version_string(), "2");
        assert_eq!(h.unified_mount(), Some(Path::new("/tmp/x/sys/fs/cgroup")));

        let text = "\
25 20 0:22 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
26 20 0:23 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup none rw,net_cls,net_prio,release_agent=/x
27 20 0:22 / /mnt/again rw - cgroup cgroup rw,cpuacct,cpu
";
        let h = Hierarchies::from_mountinfo(text, Path::new("/")).unwrap();
        assert_eq!(h.layout(), Layout::Legacy);
        assert_eq!(
            h.v1().len(),
            2,
            "the bind mount of cpu,cpuacct is the same hierarchy"
        );
        assert_eq!(
            h.v1_mount("cpuacct"),
            Some(Path::new("/sys/fs/cgroup/cpu,cpuacct"))
        );
        assert_eq!(h.v1()[1].controllers, vec!["net_cls", "net_prio"]);
    }

    #[test]
    fn named_v1_beside_cgroup2_is_unified() {
        let text = "\
29 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
30 29 0:27 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd
";
        let h = Hierarchies::from_mountinfo(text, Path::new("/")).unwrap();
        assert_eq!(h.layout(), Layout::Unified);
        assert_eq!(h.v1().len(), 1, "still created and joined");
        let text = "30 29 0:27 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n";
        let h = Hierarchies::from_mountinfo(text, Path::new("/")).unwrap();
        assert_eq!(h.layout(), Layout::Legacy);
    }

    #[test]
    fn escapes_and_errors() {
        let text = "25 20 0:22 / /mnt/my\\040cg rw - cgroup2 cgroup2 rw\n";
        let h = Hierarchies::from_mountinfo(text, Path::new("/")).unwrap();
        assert_eq!(h.unified_mount(), Some(Path::new("/mnt/my cg")));
        assert!(matches!(
            Hierarchies::from_mountinfo("1 2 3\n", Path::new("/")),
            Err(Error::Mountinfo(_))
        ));
        assert!(matches!(
            Hierarchies::from_mountinfo("22 1 0:2 / /proc rw - proc proc rw\n", Path::new("/")),
            Err(Error::NoCgroupMounts)
        ));
    }
}
