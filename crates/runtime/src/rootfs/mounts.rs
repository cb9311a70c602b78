//! Performing the spec's `mounts` inside the rootfs (runtime-spec config.md "Mounts").
//!
//! Every destination is resolved with [`resolve_in_root`] first, so an image symlink on the
//! way (`/var/run -> /run`, or a hostile `/x -> /etc`) is followed the way the container would
//! see it and never leads out of the rootfs.

use std::cell::OnceCell;
use std::fs;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sys::statvfs::{FsFlags, statvfs};
use oci_spec::runtime::Mount;

use super::copyup;
use super::mountinfo::{
    CgroupSource, MountInfo, cgroup_hierarchies, parse_mountinfo, parse_proc_cgroup, plan_cgroups,
};
use super::options::MountOptions;
use super::safe_path::{Create, PinnedPath, open_in_root};
use crate::error::sys;
use crate::{Error, Result};

/// The access-time flags, of which a mount has one mode (mount(2), "MS_NOATIME"...).
const ATIME_FLAGS: MsFlags = MsFlags::MS_NOATIME
    .union(MsFlags::MS_NODIRATIME)
    .union(MsFlags::MS_RELATIME)
    .union(MsFlags::MS_STRICTATIME);

/// `mount(2)` with paths; returns the bare errno so callers can pick a fallback.
pub(super) fn mount_raw(
    source: Option<&Path>,
    target: &Path,
    fs_type: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> nix::Result<()> {
    nix::mount::mount(source, target, fs_type, flags, data)
}

/// `mount(2)` with the step named in the error.
pub(super) fn mount_at(
    source: Option<&Path>,
    target: &Path,
    fs_type: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    mount_raw(source, target, fs_type, flags, data)
        .map_err(|errno| mount_error(source, target, fs_type, errno))
}

fn mount_error(source: Option<&Path>, target: &Path, fs_type: Option<&str>, errno: Errno) -> Error {
    let what = match (fs_type, source) {
        (Some(fs_type), _) => format!("mount {fs_type} on {}", target.display()),
        (None, Some(source)) => format!("bind mount {} on {}", source.display(), target.display()),
        (None, None) => format!("change mount {}", target.display()),
    };
    Error::sys(what, errno)
}

/// Error messages name the container destination rather than the `/proc/self/fd/N` alias
/// the system call was given.
fn name_destination(error: Error, destination: &Path) -> Error {
    const PROC_FD: &str = "/proc/self/fd/";
    match error {
        Error::Sys { mut what, source } => {
            while let Some(start) = what.find(PROC_FD) {
                let digits = what[start + PROC_FD.len()..]
                    .bytes()
                    .take_while(u8::is_ascii_digit)
                    .count();
                what.replace_range(
                    start..start + PROC_FD.len() + digits,
                    &destination.display().to_string(),
                );
            }
            Error::Sys { what, source }
        }
        other => other,
    }
}

/// The flags a mount has now (statvfs(3) `f_flag`), as `MS_*` flags.
pub(super) fn current_mount_flags(path: &Path) -> Result<MsFlags> {
    let stat = statvfs(path).map_err(sys(format!("statvfs {}", path.display())))?;
    let table = [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ];
    Ok(table
        .into_iter()
        .filter(|(st, _)| stat.flags().contains(*st))
        .fold(MsFlags::empty(), |acc, (_, ms)| acc | ms))
}

/// Changes the per-mount flags of the bind mount at `path`: `set` is added, the mount's
/// current flags are kept except those in `cleared`. Keeping them matters in a user namespace,
/// where the kernel refuses to drop nosuid/nodev/noexec/ro/atime flags that the mount inherited
/// from a more privileged namespace ("locked" flags, mount_namespaces(7)) and fails the whole
/// remount with EPERM.
pub(super) fn remount_bind(path: &Path, set: MsFlags, cleared: MsFlags) -> Result<()> {
    let mut keep = current_mount_flags(path)? - cleared;
    if set.intersects(ATIME_FLAGS) {
        keep -= ATIME_FLAGS;
    }
    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | set | keep;
    mount_at(None, path, None, flags, None)
}

/// True when `path` is exactly `/<name>` (after dropping "." and extra slashes).
pub(super) fn is_path(path: &Path, expected: &str) -> bool {
    let normal: Vec<_> = path
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    normal == Path::new(expected).components().collect::<Vec<_>>()
}

/// True when the spec mounts a fresh tmpfs on /dev, so that the runtime must populate it
/// (config-linux.md "Default Devices").
pub(super) fn mounts_dev_tmpfs(mount: &Mount) -> bool {
    let options = MountOptions::parse(mount.options().as_deref().unwrap_or_default());
    is_path(mount.destination(), "/dev")
        && mount.typ().as_deref() == Some("tmpfs")
        && !options.is_bind()
}

/// Performs the spec's mounts in order; one per call of [`Mounter::mount`].
pub(super) struct Mounter<'a> {
    rootfs: &'a Path,
    in_user_namespace: bool,
    /// The host's mount table, read on first need (cgroup mounts), before the pivot.
    host_mounts: OnceCell<Vec<MountInfo>>,
}

impl<'a> Mounter<'a> {
    /// `rootfs` must be canonical.
    pub(super) fn new(rootfs: &'a Path, in_user_namespace: bool) -> Self {
        Self {
            rootfs,
            in_user_namespace,
            host_mounts: OnceCell::new(),
        }
    }

    fn host_mounts(&self) -> Result<&[MountInfo]> {
        if let Some(mounts) = self.host_mounts.get() {
            return Ok(mounts);
        }
        let text =
            fs::read_to_string("/proc/self/mountinfo").map_err(sys("read /proc/self/mountinfo"))?;
        Ok(self.host_mounts.get_or_init(|| parse_mountinfo(&text)))
    }

    /// Performs one spec mount.
    pub(super) fn mount(&self, mount: &Mount) -> Result<()> {
        let destination = mount.destination();
        if !destination.is_absolute() {
            return Err(Error::InvalidArgument(format!(
                "mount destination {} is not absolute",
                destination.display()
            )));
        }
        let mut options = MountOptions::parse(mount.options().as_deref().unwrap_or_default());
        if options.idmap || mount.uid_mappings().is_some() || mount.gid_mappings().is_some() {
            return Err(Error::InvalidArgument(format!(
                "id-mapped mount on {} is not supported",
                destination.display()
            )));
        }
        if mounts_dev_tmpfs(mount) && options.flags.contains(MsFlags::MS_RDONLY) {
            // Devices are created in it after the mounts; finalize_rootfs makes it read-only.
            options.flags.remove(MsFlags::MS_RDONLY);
        }
        let fs_type = mount.typ().as_deref().unwrap_or_default();
        let source = mount.source().as_deref();
        let bind_source = if options.is_bind() || fs_type == "bind" {
            Some(source.ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "bind mount on {} has no source",
                    destination.display()
                ))
            })?)
        } else if matches!(fs_type, "" | "none") {
            return Err(Error::InvalidArgument(format!(
                "mount on {} has no type",
                destination.display()
            )));
        } else {
            None
        };
        self.perform(destination, fs_type, source, bind_source, &options)
            .map_err(|e| name_destination(e, destination))
    }

    /// The mount itself, on the destination pinned by a descriptor.
    fn perform(
        &self,
        destination: &Path,
        fs_type: &str,
        source: Option<&Path>,
        bind_source: Option<&Path>,
        options: &MountOptions,
    ) -> Result<()> {
        // The mount point matches the source: a file is bind-mounted onto a file.
        let create = match bind_source {
            Some(source)
                if !fs::metadata(source)
                    .map_err(sys(format!("stat bind source {}", source.display())))?
                    .is_dir() =>
            {
                Create::File
            }
            _ => Create::Directory,
        };
        let pinned = open_in_root(self.rootfs, destination, Some(create))?;
        let target = pinned.path();
        if let Some(source) = bind_source {
            self.bind(source, destination, target, options)?;
        } else {
            match fs_type {
                "cgroup" => self.cgroup(destination, target, options, false)?,
                "cgroup2" => self.cgroup(destination, target, options, true)?,
                "sysfs" => {
                    self.namespaced_fs("sysfs", "/sys", source, destination, target, options)?
                }
                "mqueue" => self.namespaced_fs(
                    "mqueue",
                    "/dev/mqueue",
                    source,
                    destination,
                    target,
                    options,
                )?,
                "devpts" => self.devpts(source, target, options)?,
                // Some configs name the /dev/shm filesystem "shm"; it is a tmpfs.
                "shm" | "tmpfs" if options.tmpcopyup => {
                    self.tmpfs_copy_up(source, destination, &pinned, options)?
                }
                "shm" => self.filesystem(source, target, "tmpfs", options)?,
                other => self.filesystem(source, target, other, options)?,
            }
        }
        if !options.propagation.is_empty() {
            let mounted = self.reopen(destination)?;
            for propagation in &options.propagation {
                mount_at(None, mounted.path(), None, *propagation, None)?;
            }
        }
        Ok(())
    }

    /// The destination opened again after the mount: the first descriptor still names the
    /// directory underneath, while a new lookup crosses into the new mount, which is what
    /// remounts and propagation changes must act on.
    fn reopen(&self, destination: &Path) -> Result<PinnedPath> {
        open_in_root(self.rootfs, destination, None)
    }

    /// A bind mount: MS_BIND ignores every other flag, so ro/nosuid/... need a second
    /// `MS_BIND | MS_REMOUNT` call (mount(2), "Creating a bind mount").
    fn bind(
        &self,
        source: &Path,
        destination: &Path,
        target: &Path,
        options: &MountOptions,
    ) -> Result<()> {
        let recursive = options.flags & MsFlags::MS_REC;
        mount_at(
            Some(source),
            target,
            None,
            MsFlags::MS_BIND | recursive,
            None,
        )?;
        let extra = options.bind_remount_flags();
        if !extra.is_empty() {
            remount_bind(self.reopen(destination)?.path(), extra, options.cleared)?;
        }
        Ok(())
    }

    /// A filesystem mount (proc, tmpfs, ...) on a directory.
    fn filesystem(
        &self,
        source: Option<&Path>,
        target: &Path,
        fs_type: &str,
        options: &MountOptions,
    ) -> Result<()> {
        let source = source.unwrap_or(Path::new(fs_type));
        mount_at(
            Some(source),
            target,
            Some(fs_type),
            options.flags,
            options.data_string().as_deref(),
        )
    }

    /// A tmpfs that starts with a copy of the directory it hides (`tmpcopyup`). It is mounted
    /// writable for the copy and made read-only afterwards if asked.
    fn tmpfs_copy_up(
        &self,
        source: Option<&Path>,
        destination: &Path,
        pinned: &PinnedPath,
        options: &MountOptions,
    ) -> Result<()> {
        let copy_error =
            |e: io::Error| Error::sys(format!("tmpcopyup {}", destination.display()), e);
        let hidden = copyup::open_readable(pinned.fd()).map_err(copy_error)?;
        let read_only = options.flags.contains(MsFlags::MS_RDONLY);
        let mut writable = options.clone();
        writable.flags.remove(MsFlags::MS_RDONLY);
        self.filesystem(source, pinned.path(), "tmpfs", &writable)?;
        let mounted = self.reopen(destination)?;
        let root = copyup::open_readable(mounted.fd()).map_err(copy_error)?;
        let mode_given = options.data.iter().any(|d| d.starts_with("mode="));
        copyup::copy_root_attributes(hidden.as_fd(), root.as_fd(), mode_given)
            .map_err(copy_error)?;
        copyup::copy_tree(hidden.as_fd(), root.as_fd()).map_err(copy_error)?;
        if read_only {
            remount_bind(mounted.path(), MsFlags::MS_RDONLY, MsFlags::empty())?;
        }
        Ok(())
    }

    /// sysfs belongs to the network namespace and mqueue to the IPC namespace: in a new user
    /// namespace that shares the host's one, the kernel refuses a fresh mount (EPERM), so the
    /// host's instance (`host_path`) is bound instead — sysfs read-only, as runc does.
    fn namespaced_fs(
        &self,
        kind: &'static str,
        host_path: &'static str,
        source: Option<&Path>,
        destination: &Path,
        target: &Path,
        options: &MountOptions,
    ) -> Result<()> {
        let source = source.unwrap_or(Path::new(kind));
        let data = options.data_string();
        match mount_raw(
            Some(source),
            target,
            Some(kind),
            options.flags,
            data.as_deref(),
        ) {
            Ok(()) => Ok(()),
            Err(Errno::EPERM) if self.in_user_namespace => {
                tracing::debug!("{kind} mount refused in the user namespace; binding {host_path}");
                let sysfs = kind == "sysfs";
                let recursive = if sysfs {
                    MsFlags::MS_REC
                } else {
                    MsFlags::empty()
                };
                mount_at(
                    Some(Path::new(host_path)),
                    target,
                    None,
                    MsFlags::MS_BIND | recursive,
                    None,
                )?;
                let read_only = if sysfs {
                    MsFlags::MS_RDONLY
                } else {
                    MsFlags::empty()
                };
                let extra = options.bind_remount_flags() | read_only;
                if extra.is_empty() {
                    return Ok(());
                }
                remount_bind(
                    self.reopen(destination)?.path(),
                    extra,
                    options.cleared - read_only,
                )
            }
            Err(errno) => Err(mount_error(Some(source), target, Some(kind), errno)),
        }
    }

    /// devpts with `gid=5` fails with EINVAL in a user namespace where gid 5 is not mapped;
    /// retry without the gid (the ptys are then owned by the mapped root group).
    fn devpts(&self, source: Option<&Path>, target: &Path, options: &MountOptions) -> Result<()> {
        let source = source.unwrap_or(Path::new("devpts"));
        let data = options.data_string();
        match mount_raw(
            Some(source),
            target,
            Some("devpts"),
            options.flags,
            data.as_deref(),
        ) {
            Ok(()) => Ok(()),
            Err(Errno::EINVAL)
                if self.in_user_namespace && options.data.iter().any(|d| d.starts_with("gid=")) =>
            {
                let data: Vec<&str> = options
                    .data
                    .iter()
                    .map(String::as_str)
                    .filter(|d| !d.starts_with("gid="))
                    .collect();
                let data = data.join(",");
                mount_at(
                    Some(source),
                    target,
                    Some("devpts"),
                    options.flags,
                    Some(&data),
                )
            }
            Err(errno) => Err(mount_error(Some(source), target, Some("devpts"), errno)),
        }
    }

    /// `cgroup` / `cgroup2` mounts. On a cgroup v1 or hybrid host a `cgroup` mount becomes a
    /// tmpfs holding one directory per host hierarchy, each showing the process's own cgroup;
    /// on a v2-only host (or for an explicit `cgroup2`) it is a cgroup2 mount.
    fn cgroup(
        &self,
        destination: &Path,
        target: &Path,
        options: &MountOptions,
        version2: bool,
    ) -> Result<()> {
        let hierarchies = cgroup_hierarchies(self.host_mounts()?);
        let has_v1 = hierarchies.iter().any(|h| !h.version2);
        let memberships = parse_proc_cgroup(
            &fs::read_to_string("/proc/self/cgroup").map_err(sys("read /proc/self/cgroup"))?,
        );
        let plans = plan_cgroups(&hierarchies, &memberships);
        if version2 || !has_v1 {
            let data = options.data_string();
            return match mount_raw(
                Some(Path::new("cgroup2")),
                target,
                Some("cgroup2"),
                options.flags,
                data.as_deref(),
            ) {
                Ok(()) => Ok(()),
                // EPERM: a user namespace without its own cgroup namespace; EBUSY: v2 controllers
                // bound to v1 hierarchies. Show the process's own cgroup2 directory instead.
                Err(errno @ (Errno::EPERM | Errno::EBUSY)) => {
                    let own = plans.iter().find_map(|plan| match &plan.source {
                        CgroupSource::Bind(source) if plan.version2 => Some(source.clone()),
                        _ => None,
                    });
                    let Some(own) = own else {
                        return Err(mount_error(None, target, Some("cgroup2"), errno));
                    };
                    mount_at(Some(&own), target, None, MsFlags::MS_BIND, None)?;
                    let mounted = self.reopen(destination)?;
                    remount_bind(
                        mounted.path(),
                        options.bind_remount_flags(),
                        options.cleared,
                    )
                }
                Err(errno) => Err(mount_error(None, target, Some("cgroup2"), errno)),
            };
        }

        let read_only = options.flags.contains(MsFlags::MS_RDONLY);
        let tmpfs_flags = options.flags - MsFlags::MS_RDONLY - MsFlags::MS_REMOUNT;
        mount_at(
            Some(Path::new("tmpfs")),
            target,
            Some("tmpfs"),
            tmpfs_flags,
            Some("mode=755"),
        )?;
        // Below this point everything happens in our own new tmpfs, reached through the
        // descriptor of its root: nothing in it comes from the image.
        let mounted = self.reopen(destination)?;
        let base = mounted.path();
        for plan in &plans {
            let directory = base.join(&plan.name);
            fs::DirBuilder::new()
                .mode(0o755)
                .create(&directory)
                .map_err(sys(format!("create {}", directory.display())))?;
            match &plan.source {
                CgroupSource::Bind(source) => {
                    mount_at(
                        Some(source),
                        &directory,
                        None,
                        MsFlags::MS_BIND | MsFlags::MS_REC,
                        None,
                    )?;
                    remount_bind(&directory, options.bind_remount_flags(), options.cleared)?;
                }
                CgroupSource::Mount { fs_type, data } => {
                    mount_at(
                        Some(Path::new(fs_type)),
                        &directory,
                        Some(fs_type),
                        options.flags,
                        data.as_deref(),
                    )?;
                }
            }
        }
        self.copy_cgroup_symlinks(base, &hierarchies, &plans)?;
        if read_only {
            remount_bind(
                base,
                MsFlags::MS_RDONLY | (tmpfs_flags & ATIME_FLAGS),
                MsFlags::empty(),
            )?;
        }
        Ok(())
    }

    /// Recreates the host's `cpu -> cpu,cpuacct` style links next to the hierarchies.
    fn copy_cgroup_symlinks(
        &self,
        target: &Path,
        hierarchies: &[super::mountinfo::CgroupHierarchy],
        plans: &[super::mountinfo::CgroupPlan],
    ) -> Result<()> {
        let mut parents: Vec<PathBuf> = hierarchies
            .iter()
            .filter_map(|h| h.mount.mount_point.parent().map(Path::to_path_buf))
            .collect();
        parents.dedup();
        for parent in parents {
            let Ok(entries) = fs::read_dir(&parent) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Ok(link) = fs::read_link(entry.path()) else {
                    continue;
                };
                let pointee = link.to_string_lossy();
                let known = |n: &str| plans.iter().any(|p| p.name == n);
                if !known(&pointee) || known(&name.to_string_lossy()) {
                    continue;
                }
                match std::os::unix::fs::symlink(&link, target.join(&name)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => {
                        return Err(Error::sys(
                            format!("symlink {}", target.join(&name).display()),
                            e,
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::MountBuilder;

    use super::*;

    #[test]
    fn dev_tmpfs_is_recognised() {
        let dev = MountBuilder::default()
            .destination("/dev")
            .typ("tmpfs")
            .source("tmpfs")
            .options(vec!["nosuid".to_string()])
            .build()
            .unwrap();
        assert!(mounts_dev_tmpfs(&dev));
        let bound = MountBuilder::default()
            .destination("/dev/")
            .typ("bind")
            .source("/dev")
            .options(vec!["rbind".to_string()])
            .build()
            .unwrap();
        assert!(!mounts_dev_tmpfs(&bound));
        assert!(is_path(Path::new("/dev/"), "/dev"));
        assert!(is_path(Path::new("//dev/."), "/dev"));
        assert!(!is_path(Path::new("/dev/pts"), "/dev"));
    }

    #[test]
    fn relative_destination_is_rejected_with_its_name() {
        let root = tempfile::tempdir().unwrap();
        let mount = MountBuilder::default()
            .destination("proc")
            .typ("proc")
            .source("proc")
            .build()
            .unwrap();
        let err = Mounter::new(root.path(), false).mount(&mount).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)));
        assert!(err.to_string().contains("proc"), "{err}");
    }

    #[test]
    fn errors_name_the_destination_not_the_descriptor() {
        let error = Error::sys(
            "bind mount /src on /proc/self/fd/17",
            io::Error::from_raw_os_error(libc::ENOENT),
        );
        let named = name_destination(error, Path::new("/data"));
        assert_eq!(
            named.to_string(),
            "bind mount /src on /data: No such file or directory (os error 2)"
        );
        let error = Error::sys(
            "mount cgroup on /proc/self/fd/3/cpu",
            io::Error::from_raw_os_error(libc::EPERM),
        );
        let named = name_destination(error, Path::new("/sys/fs/cgroup"));
        assert!(
            named
                .to_string()
                .starts_with("mount cgroup on /sys/fs/cgroup/cpu: "),
            "{named}"
        );
    }

    #[test]
    fn idmap_is_rejected() {
        let root = tempfile::tempdir().unwrap();
        let mount = MountBuilder::default()
            .destination("/data")
            .typ("bind")
            .source("/tmp")
            .options(vec!["rbind".to_string(), "idmap".to_string()])
            .build()
            .unwrap();
        let err = Mounter::new(root.path(), false).mount(&mount).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    }
}
