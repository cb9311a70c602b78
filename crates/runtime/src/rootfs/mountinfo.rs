//! Reading the mount table (`/proc/self/mountinfo`) and the process's cgroups
//! (`/proc/self/cgroup`), and planning the container's view of the cgroup hierarchies from
//! them. Pure parsing and planning; the caller performs the mounts.

use std::collections::BTreeSet;
use std::path::PathBuf;

pub use types::mountinfo::{MountInfo, containing as mount_containing, parse as parse_mountinfo};

/// One line of `/proc/PID/cgroup` (cgroups(7)): `hierarchy-ID:controller-list:cgroup-path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMembership {
    /// The hierarchy's id; 0 for the cgroup v2 hierarchy.
    pub hierarchy_id: u32,
    /// Controllers bound to the hierarchy, including `name=...` for named v1 hierarchies;
    /// empty for v2.
    pub controllers: BTreeSet<String>,
    /// The process's cgroup, relative to the hierarchy root (or to the cgroup namespace root).
    pub path: PathBuf,
}

/// Parses the text of `/proc/PID/cgroup`.
pub fn parse_proc_cgroup(text: &str) -> Vec<CgroupMembership> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let hierarchy_id = parts.next()?.parse().ok()?;
            let controllers = parts
                .next()?
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect();
            let path = PathBuf::from(parts.next()?);
            Some(CgroupMembership {
                hierarchy_id,
                controllers,
                path,
            })
        })
        .collect()
}

/// A cgroup hierarchy mounted on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupHierarchy {
    /// The name of its directory under the host's cgroup root (`cpu,cpuacct`, `unified`).
    pub name: String,
    /// Where the host mounts it.
    pub mount: MountInfo,
    /// `cgroup` (v1) or `cgroup2`.
    pub version2: bool,
    /// The v1 controllers and `name=` of the hierarchy, as listed in `/proc/self/cgroup`.
    pub subsystems: BTreeSet<String>,
}

/// Super options of a v1 cgroup mount that are not controllers (kernel/cgroup/cgroup-v1.c,
/// `cgroup1_parse_param`).
fn is_controller_option(option: &str) -> bool {
    !matches!(
        option,
        "rw" | "ro"
            | "none"
            | "noprefix"
            | "clone_children"
            | "xattr"
            | "cpuset_v2_mode"
            | "favordynmods"
            | "nofavordynmods"
    ) && !option.starts_with("release_agent=")
}

/// The cgroup hierarchies mounted on the host, one per hierarchy (a hierarchy mounted twice is
/// listed once), in mount table order.
pub fn cgroup_hierarchies(mounts: &[MountInfo]) -> Vec<CgroupHierarchy> {
    let mut hierarchies: Vec<CgroupHierarchy> = Vec::new();
    for mount in mounts {
        let version2 = match mount.fs_type.as_str() {
            "cgroup" => false,
            "cgroup2" => true,
            _ => continue,
        };
        let subsystems: BTreeSet<String> = if version2 {
            BTreeSet::new()
        } else {
            mount
                .super_options
                .split(',')
                .filter(|o| is_controller_option(o))
                .map(str::to_owned)
                .collect()
        };
        if hierarchies
            .iter()
            .any(|h| h.version2 == version2 && h.subsystems == subsystems)
        {
            continue;
        }
        let Some(name) = mount.mount_point.file_name() else {
            continue;
        };
        hierarchies.push(CgroupHierarchy {
            name: name.to_string_lossy().into_owned(),
            mount: mount.clone(),
            version2,
            subsystems,
        });
    }
    hierarchies
}

/// How the container gets its view of one hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupSource {
    /// Bind-mount this host directory: the process's own cgroup in the hierarchy.
    Bind(PathBuf),
    /// Mount the hierarchy afresh (`mount -t cgroup -o <data>`). Used when the process is in a
    /// cgroup namespace: the host's mount root is then outside the namespace (mountinfo shows
    /// it as `/..`), and a new mount shows exactly the namespace's root.
    Mount {
        fs_type: &'static str,
        data: Option<String>,
    },
}

/// The plan for one hierarchy: what to mount at `<destination>/<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupPlan {
    /// Directory name under the destination.
    pub name: String,
    /// What to mount there.
    pub source: CgroupSource,
    /// True for the cgroup v2 hierarchy.
    pub version2: bool,
}

/// Decides, for each host hierarchy, how the container sees it: its own cgroup directory
/// bound from the host's mount when the process's cgroup path lies under the mount's root,
/// else (cgroup namespace) a fresh mount of the hierarchy. Hierarchies the process is not a
/// member of are skipped.
pub fn plan_cgroups(
    hierarchies: &[CgroupHierarchy],
    memberships: &[CgroupMembership],
) -> Vec<CgroupPlan> {
    hierarchies
        .iter()
        .filter_map(|hierarchy| {
            let membership = memberships.iter().find(|m| {
                if hierarchy.version2 {
                    m.hierarchy_id == 0 && m.controllers.is_empty()
                } else {
                    m.hierarchy_id != 0 && m.controllers == hierarchy.subsystems
                }
            })?;
            let source = match membership.path.strip_prefix(&hierarchy.mount.root) {
                Ok(relative)
                    if !hierarchy
                        .mount
                        .root
                        .components()
                        .any(|c| c.as_os_str() == "..") =>
                {
                    CgroupSource::Bind(hierarchy.mount.mount_point.join(relative))
                }
                _ if hierarchy.version2 => CgroupSource::Mount {
                    fs_type: "cgroup2",
                    data: None,
                },
                _ => CgroupSource::Mount {
                    fs_type: "cgroup",
                    data: Some(
                        hierarchy
                            .subsystems
                            .iter()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(","),
                    ),
                },
            };
            Some(CgroupPlan {
                name: hierarchy.name.clone(),
                source,
                version2: hierarchy.version2,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime shared:9 - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,release_agent=/x,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
90 22 0:32 / /mnt/again\\040there rw,relatime - cgroup cgroup rw,memory
";

    const PROC_CGROUP: &str = "\
9:name=systemd:/
4:memory:/process_api/f4d2
3:cpuset:/
1:cpu,cpuacct:/a/b
0::/
";

    #[test]
    fn hierarchies_of_a_hybrid_host() {
        let hierarchies = cgroup_hierarchies(&parse_mountinfo(HYBRID));
        let names: Vec<_> = hierarchies.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            names,
            ["cpu,cpuacct", "cpuset", "memory", "systemd", "unified"]
        );
        let systemd = &hierarchies[3];
        assert_eq!(
            systemd.subsystems,
            BTreeSet::from(["name=systemd".to_owned()])
        );
        assert!(hierarchies[4].version2);
    }

    #[test]
    fn proc_cgroup_lines() {
        let memberships = parse_proc_cgroup(PROC_CGROUP);
        assert_eq!(memberships.len(), 5);
        assert_eq!(
            memberships[3].controllers,
            BTreeSet::from(["cpu".to_owned(), "cpuacct".to_owned()])
        );
        assert_eq!(memberships[4].hierarchy_id, 0);
        assert!(memberships[4].controllers.is_empty());
    }

    #[test]
    fn plan_binds_own_cgroups_on_the_host() {
        let plan = plan_cgroups(
            &cgroup_hierarchies(&parse_mountinfo(HYBRID)),
            &parse_proc_cgroup(PROC_CGROUP),
        );
        let bind = |p: &str| CgroupSource::Bind(PathBuf::from(p));
        assert_eq!(
            plan.iter()
                .map(|p| (p.name.as_str(), p.source.clone()))
                .collect::<Vec<_>>(),
            [
                ("cpu,cpuacct", bind("/sys/fs/cgroup/cpu,cpuacct/a/b")),
                ("cpuset", bind("/sys/fs/cgroup/cpuset/")),
                ("memory", bind("/sys/fs/cgroup/memory/process_api/f4d2")),
                ("systemd", bind("/sys/fs/cgroup/systemd/")),
                ("unified", bind("/sys/fs/cgroup/unified/")),
            ]
        );
    }

    #[test]
    fn plan_mounts_afresh_in_a_cgroup_namespace() {
        let mountinfo = "\
35 31 0:32 /.. /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
41 31 0:38 /../.. /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
        let plan = plan_cgroups(
            &cgroup_hierarchies(&parse_mountinfo(mountinfo)),
            &parse_proc_cgroup("4:memory:/\n1:cpu:/\n0::/\n"),
        );
        assert_eq!(
            plan[0].source,
            CgroupSource::Mount {
                fs_type: "cgroup",
                data: Some("memory".into())
            }
        );
        assert_eq!(
            plan[1].source,
            CgroupSource::Bind(PathBuf::from("/sys/fs/cgroup/cpu/"))
        );
        assert_eq!(
            plan[2].source,
            CgroupSource::Mount {
                fs_type: "cgroup2",
                data: None
            }
        );
    }
}
