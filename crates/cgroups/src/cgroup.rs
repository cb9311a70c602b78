//! [`Cgroup`]: one cgroup, at the same relative path in every hierarchy of the host.

use std::io::ErrorKind as IoKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::fs;
use crate::hierarchy::{Hierarchies, Layout};

/// A cgroup at a relative path (like `/berth/<id>`) in every mounted hierarchy.
///
/// Lifecycle: [`Cgroup::new`] only validates the path; [`Cgroup::create`] makes the
/// directories; [`Cgroup::apply`](crate::Cgroup::apply) writes limits; processes join with
/// [`Cgroup::add_process`]; [`Cgroup::destroy`] removes the directories again. The path is
/// relative to each hierarchy's root as this mount namespace sees it.
#[derive(Debug, Clone)]
pub struct Cgroup {
    path: String,
    hierarchies: Hierarchies,
}

/// Where a controller's files for this cgroup live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ControllerDir {
    /// In the v1 hierarchy that binds the controller.
    V1(PathBuf),
    /// In the cgroup2 hierarchy, where the controller is enabled for this cgroup.
    V2(PathBuf),
}

impl Cgroup {
    /// A handle on the cgroup at `path` (relative to every hierarchy root). No file system
    /// change happens here. The path is normalised to start with one `/`; empty paths, the root
    /// itself, `.`/`..` components and NUL bytes are refused.
    pub fn new(hierarchies: &Hierarchies, path: &str) -> Result<Self> {
        let invalid = |reason| Error::InvalidPath {
            path: path.to_string(),
            reason,
        };
        if path.contains('\0') {
            return Err(invalid("contains a NUL byte"));
        }
        let mut normal = String::new();
        for component in path.split('/').filter(|c| !c.is_empty()) {
            if component == "." || component == ".." {
                return Err(invalid("contains a . or .. component"));
            }
            normal.push('/');
            normal.push_str(component);
        }
        if normal.is_empty() {
            return Err(invalid("names the root cgroup"));
        }
        Ok(Self {
            path: normal,
            hierarchies: hierarchies.clone(),
        })
    }

    /// The normalised relative path, e.g. `/berth/abc`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The hierarchies this cgroup spans.
    pub fn hierarchies(&self) -> &Hierarchies {
        &self.hierarchies
    }

    pub(crate) fn rel(&self) -> &str {
        self.path.trim_start_matches('/')
    }

    /// This cgroup's directory in the v1 hierarchy binding `controller`.
    pub(crate) fn v1_dir(&self, controller: &str) -> Option<PathBuf> {
        self.hierarchies
            .v1_mount(controller)
            .map(|m| m.join(self.rel()))
    }

    /// This cgroup's directory in the cgroup2 hierarchy.
    pub(crate) fn unified_dir(&self) -> Option<PathBuf> {
        self.hierarchies.unified_mount().map(|m| m.join(self.rel()))
    }

    /// Every directory of this cgroup: one per v1 hierarchy (named ones included), then the
    /// cgroup2 one.
    pub(crate) fn all_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self
            .hierarchies
            .v1()
            .iter()
            .map(|h| h.mount_point.join(self.rel()))
            .collect();
        dirs.extend(self.unified_dir());
        dirs
    }

    /// Controllers enabled for this cgroup in cgroup2 (its `cgroup.controllers`; before the
    /// cgroup exists, the root's).
    pub(crate) fn v2_controllers(&self) -> Vec<String> {
        let Some(dir) = self.unified_dir() else {
            return Vec::new();
        };
        match std::fs::read_to_string(dir.join("cgroup.controllers")) {
            Ok(text) => text.split_whitespace().map(str::to_string).collect(),
            Err(_) => self.hierarchies.unified_controllers(),
        }
    }

    /// Where `controller` is served for this cgroup: v1 first (a controller bound to a v1
    /// hierarchy cannot be enabled in cgroup2 at the same time), else cgroup2 when enabled.
    pub(crate) fn locate(&self, controller: &str) -> Option<ControllerDir> {
        if let Some(dir) = self.v1_dir(controller) {
            return Some(ControllerDir::V1(dir));
        }
        let dir = self.unified_dir()?;
        self.v2_controllers()
            .iter()
            .any(|c| c == controller)
            .then_some(ControllerDir::V2(dir))
    }

    /// Creates the cgroup (`mkdir -p`) in every hierarchy. Idempotent.
    ///
    /// v1 cpuset: a new cpuset starts with empty `cpuset.cpus`/`cpuset.mems` and refuses tasks
    /// until both are set (cgroup-v1/cpusets.rst 2.1), so each level copies its parent's values
    /// when empty. cgroup2: every controller the parent offers is enabled in the
    /// `cgroup.subtree_control` of each ancestor (cgroup-v2.rst "Enabling and Disabling"), so
    /// the leaf gets its interface files; a controller the kernel refuses there (e.g. EBUSY
    /// from the no-internal-process rule) is left out and surfaces later as Unsupported.
    pub fn create(&self) -> Result<()> {
        for hierarchy in self.hierarchies.v1() {
            let dir = hierarchy.mount_point.join(self.rel());
            std::fs::create_dir_all(&dir).map_err(|e| Error::io("mkdir", &dir, e))?;
            if hierarchy.controllers.iter().any(|c| c == "cpuset") {
                self.init_cpuset(&hierarchy.mount_point)?;
            }
        }
        if let Some(mount) = self.hierarchies.unified_mount() {
            let dir = mount.join(self.rel());
            std::fs::create_dir_all(&dir).map_err(|e| Error::io("mkdir", &dir, e))?;
            enable_v2_controllers(mount, self.rel());
        }
        Ok(())
    }

    /// Copies cpus and mems from parent to child, top down, wherever the child's are empty.
    fn init_cpuset(&self, mount: &Path) -> Result<()> {
        // Mounted with `noprefix` the files lack the "cpuset." prefix.
        let prefix = if fs::exists(&mount.join("cpuset.cpus")) {
            "cpuset."
        } else {
            ""
        };
        let mut parent = mount.to_path_buf();
        for component in self.rel().split('/') {
            let child = parent.join(component);
            for file in ["cpus", "mems"] {
                let name = format!("{prefix}{file}");
                // Only absent in fake trees; cgroupfs always has both files.
                let Some(current) = fs::read_opt(&child.join(&name))? else {
                    continue;
                };
                if current.trim().is_empty() {
                    let inherited = fs::read(&parent.join(&name))?;
                    fs::write(&child.join(&name), inherited.trim())?;
                }
            }
            parent = child;
        }
        Ok(())
    }

    /// True when the cgroup's directory exists in at least one hierarchy.
    pub fn exists(&self) -> bool {
        self.all_dirs().iter().any(|d| d.is_dir())
    }

    /// Moves process `pid` (all its threads) into this cgroup in every hierarchy.
    pub fn add_process(&self, pid: i32) -> Result<()> {
        if pid <= 0 {
            return Err(Error::invalid("pid", format!("{pid} is not a process id")));
        }
        for dir in self.all_dirs() {
            fs::write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Moves the calling thread into this cgroup in every v1 hierarchy, by writing `0` (the
    /// caller) to each `tasks` file. For a single-threaded caller this moves the process; the
    /// cgroup2 hierarchy is joined at fork instead (clone3's `CLONE_INTO_CGROUP`, see
    /// [`Cgroup::open_unified`]), since cgroup2 moves whole processes only.
    ///
    /// Why not `cgroup.procs`: moving a whole process write-locks the kernel's
    /// `cgroup_threadgroup_rwsem`, and the first writer after a quiet moment waits for an RCU
    /// grace period (kernel/rcu/sync.c), 6 to 20 ms on the test machines, on every container
    /// start. Moving the calling thread alone cannot race with its own exit, exec or clone, so
    /// the kernel takes no such lock for it (kernel/cgroup/cgroup.c,
    /// `cgroup_procs_write_start`): about 0.3 ms for all hierarchies.
    pub fn join_v1_as_current_thread(&self) -> Result<()> {
        for hierarchy in self.hierarchies.v1() {
            let dir = hierarchy.mount_point.join(self.rel());
            fs::write(&dir.join("tasks"), "0")?;
        }
        Ok(())
    }

    /// This cgroup's cgroup2 directory, opened for clone3(2)'s `CLONE_INTO_CGROUP` (a child is
    /// born in the cgroup, which takes no migration lock); None without a cgroup2 hierarchy.
    pub fn open_unified(&self) -> Result<Option<std::os::fd::OwnedFd>> {
        let Some(dir) = self.unified_dir() else {
            return Ok(None);
        };
        let file = std::fs::File::open(&dir).map_err(|e| Error::io("open", &dir, e))?;
        Ok(Some(file.into()))
    }

    /// Every process in the cgroup or its descendants, in any hierarchy; sorted, no duplicates.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let mut pids = Vec::new();
        for dir in self.all_dirs() {
            collect_procs(&dir, &mut pids)?;
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Removes the cgroup (and any child cgroups) in every hierarchy, deepest first.
    ///
    /// A directory already gone is fine. rmdir fails with EBUSY while the cgroup still has
    /// members; processes just killed take a moment to leave, so EBUSY is retried for about a
    /// second before giving up.
    pub fn destroy(&self) -> Result<()> {
        let mut first_error = None;
        for dir in self.all_dirs() {
            if let Err(e) = remove_tree(&dir) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The host layout, as a shortcut.
    pub(crate) fn layout(&self) -> Layout {
        self.hierarchies.layout()
    }
}

/// Enables, in every ancestor of `rel` below `mount` (the root included), each controller the
/// ancestor offers. Failures are per controller and ignored: see [`Cgroup::create`].
fn enable_v2_controllers(mount: &Path, rel: &str) {
    let components: Vec<&str> = rel.split('/').collect();
    let mut ancestor = mount.to_path_buf();
    for component in &components {
        let offered =
            std::fs::read_to_string(ancestor.join("cgroup.controllers")).unwrap_or_default();
        let enabled =
            std::fs::read_to_string(ancestor.join("cgroup.subtree_control")).unwrap_or_default();
        for controller in offered.split_whitespace() {
            if !enabled.split_whitespace().any(|c| c == controller) {
                let _ = fs::write(
                    &ancestor.join("cgroup.subtree_control"),
                    &format!("+{controller}"),
                );
            }
        }
        ancestor.push(component);
    }
}

fn collect_procs(dir: &Path, pids: &mut Vec<i32>) -> Result<()> {
    let procs = match fs::read_opt(&dir.join("cgroup.procs"))? {
        Some(text) => text,
        None => return Ok(()),
    };
    pids.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == IoKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("read directory", dir, e)),
    };
    for entry in entries.flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            collect_procs(&entry.path(), pids)?;
        }
    }
    Ok(())
}

fn remove_tree(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == IoKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("read directory", dir, e)),
    };
    for entry in entries.flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_tree(&entry.path())?;
        }
    }
    let mut delay = Duration::from_millis(5);
    let mut waited = Duration::ZERO;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == IoKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && waited < Duration::from_secs(1) => {
                std::thread::sleep(delay);
                waited += delay;
                delay = (delay * 2).min(Duration::from_millis(100));
            }
            Err(e) => return Err(Error::io("rmdir", dir, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;

    #[test]
    fn paths_are_validated_and_normalised() {
        let host = FakeHost::hybrid();
        let h = host.hierarchies();
        assert_eq!(Cgroup::new(&h, "berth//abc/").unwrap().path(), "/berth/abc");
        for bad in ["", "/", "//", "/berth/../x", "/./x", "a\0b"] {
            let err = Cgroup::new(&h, bad).unwrap_err();
            assert_eq!(err.kind(), types::ErrorKind::InvalidArgument, "{bad:?}");
        }
    }

    #[test]
    fn create_copies_cpuset_and_enables_v2_controllers() {
        let host = FakeHost::hybrid();
        let cg = Cgroup::new(&host.hierarchies(), "/berth/c1").unwrap();
        assert!(!cg.exists());
        host.mkcg("/berth/c1");
        cg.create().unwrap();
        assert!(cg.exists());
        for ctrl in ["cpu", "memory", "systemd", "unified", "cpuset"] {
            assert!(host.path(&format!("{ctrl}/berth/c1")).is_dir(), "{ctrl}");
        }
        assert_eq!(host.read("cpuset/berth/cpuset.cpus"), "0-1");
        assert_eq!(host.read("cpuset/berth/c1/cpuset.mems"), "0");
        assert_eq!(host.read("unified/cgroup.subtree_control"), "+hugetlb");
        assert_eq!(
            host.read("unified/berth/cgroup.subtree_control"),
            "+hugetlb"
        );
        assert_eq!(
            cg.locate("hugetlb"),
            Some(ControllerDir::V2(host.path("unified/berth/c1")))
        );
        assert_eq!(
            cg.locate("memory"),
            Some(ControllerDir::V1(host.path("memory/berth/c1")))
        );
        assert_eq!(cg.locate("net_cls"), None);
    }

    #[test]
    fn add_process_and_pids_cover_every_hierarchy() {
        let host = FakeHost::hybrid();
        let cg = Cgroup::new(&host.hierarchies(), "/berth/c2").unwrap();
        host.mkcg("/berth/c2");
        cg.create().unwrap();
        cg.add_process(42).unwrap();
        for ctrl in ["cpu", "memory", "systemd", "unified", "freezer"] {
            assert_eq!(host.read(&format!("{ctrl}/berth/c2/cgroup.procs")), "42");
        }
        std::fs::create_dir(host.path("memory/berth/c2/sub")).unwrap();
        std::fs::write(host.path("memory/berth/c2/sub/cgroup.procs"), "7\n9\n").unwrap();
        assert_eq!(cg.pids().unwrap(), vec![7, 9, 42]);
        assert!(cg.add_process(0).is_err());
    }

    #[test]
    fn destroy_of_missing_cgroup_is_ok() {
        let host = FakeHost::hybrid();
        let cg = Cgroup::new(&host.hierarchies(), "/never/made").unwrap();
        cg.destroy().unwrap();
        cg.destroy().unwrap();
    }
}
