//! The container's root filesystem: mounts, devices, the pivot, and the final hardening.
//!
//! The container's init process calls, in a fresh mount namespace and in this order:
//! 1. [`prepare_rootfs`] — propagation of "/", the rootfs bind mount, the spec's mounts, /dev;
//! 2. [`enter_rootfs`] — `pivot_root(2)` (or `MS_MOVE` + `chroot(2)`) into the rootfs;
//! 3. [`finalize_rootfs`] — masked paths, read-only paths, a read-only root.
//!
//! Sources: OCI runtime-spec config.md "Root" and "Mounts", config-linux.md "Default Devices",
//! "Devices", "Rootfs Mount Propagation", "Masked Paths", "Readonly Paths"; mount(2),
//! pivot_root(2), mount_namespaces(7).

mod copyup;
mod devices;
mod mountinfo;
mod mounts;
pub mod options;
mod safe_path;

use std::fs;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, umount2};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, pivot_root};
use oci_spec::runtime::Spec;

use self::devices::{
    DeviceNode, UmaskGuard, create_dev_symlinks, create_device, default_devices, setup_ptmx,
};
use self::mountinfo::{mount_containing, parse_mountinfo};
use self::mounts::{Mounter, mount_at, mount_raw, mounts_dev_tmpfs, remount_bind};
pub use self::safe_path::resolve_in_root;
use crate::error::sys;
use crate::{Error, Result};

/// Builds the rootfs before the pivot. Runs in the container's new mount namespace, as root
/// (of the user namespace when `in_user_namespace`).
///
/// Makes "/" recursively slave (or applies `linux.rootfsPropagation`), bind-mounts the rootfs
/// onto itself (so that it is a mount point, which pivot_root(2) requires), performs
/// `spec.mounts` in order, creates the default devices and /dev links when the spec mounts a
/// tmpfs on /dev, creates `linux.devices`, and points /dev/ptmx at pts/ptmx.
pub fn prepare_rootfs(spec: &Spec, rootfs: &Path, in_user_namespace: bool) -> Result<()> {
    let rootfs = fs::canonicalize(rootfs)
        .map_err(sys(format!("canonicalize rootfs {}", rootfs.display())))?;
    let linux = spec.linux().as_ref();

    // Without this, mounts made below would propagate back to the host's namespace when "/"
    // is shared (the default under systemd); slave still lets host unmounts reach us
    // (mount_namespaces(7), "MS_SLAVE").
    let propagation = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        None | Some("") => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        Some(word) => options::propagation_flags(word)
            .ok_or_else(|| Error::InvalidArgument(format!("invalid rootfsPropagation {word:?}")))?,
    };
    mount_at(None, Path::new("/"), None, propagation, None)?;
    make_parent_mount_private(&rootfs)?;
    mount_at(
        Some(&rootfs),
        &rootfs,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;

    let mounter = Mounter::new(&rootfs, in_user_namespace);
    let spec_mounts = spec.mounts().as_deref().unwrap_or_default();
    for mount in spec_mounts {
        mounter.mount(mount)?;
    }

    let spec_devices = linux
        .and_then(|l| l.devices().as_deref())
        .unwrap_or_default()
        .iter()
        .map(DeviceNode::from_spec)
        .collect::<Result<Vec<_>>>()?;
    let populate_dev = spec_mounts.iter().any(mounts_dev_tmpfs);
    let _umask = UmaskGuard::set(Mode::empty());
    if populate_dev {
        for device in default_devices() {
            // A spec entry for the same path wins over the default.
            if !spec_devices
                .iter()
                .any(|d| same_container_path(&d.path, &device.path))
            {
                create_device(&rootfs, &device, in_user_namespace)?;
            }
        }
        create_dev_symlinks(&rootfs)?;
    }
    for device in &spec_devices {
        create_device(&rootfs, device, in_user_namespace)?;
    }
    if populate_dev {
        setup_ptmx(&rootfs)?;
    }
    Ok(())
}

fn same_container_path(a: &Path, b: &Path) -> bool {
    a.components().eq(b.components())
}

/// pivot_root(2) refuses (EINVAL) when the parent mount of the new root is shared, which is the
/// case when "/" was made rshared by `rootfsPropagation`; a private parent also keeps the
/// rootfs bind from propagating to the host.
fn make_parent_mount_private(rootfs: &Path) -> Result<()> {
    let text =
        fs::read_to_string("/proc/self/mountinfo").map_err(sys("read /proc/self/mountinfo"))?;
    let mounts = parse_mountinfo(&text);
    if let Some(parent) = mount_containing(&mounts, rootfs)
        && parent
            .optional
            .iter()
            .any(|field| field.starts_with("shared:"))
    {
        mount_at(None, &parent.mount_point, None, MsFlags::MS_PRIVATE, None)?;
    }
    Ok(())
}

/// Makes the rootfs the process's root and cwd.
///
/// Uses pivot_root(2) with the trick from its man page: `pivot_root(".", ".")` stacks the old
/// root on top of the new one, and `umount2(".", MNT_DETACH)` then removes it, so that no
/// put_old directory is needed in the image. With `no_pivot`, or when pivot_root fails with
/// EINVAL (a rootfs on the initramfs, which cannot be pivoted away from), it falls back to
/// moving the rootfs mount onto "/" and chroot(2), after detaching the host's other mounts.
pub fn enter_rootfs(rootfs: &Path, no_pivot: bool) -> Result<()> {
    let rootfs = fs::canonicalize(rootfs)
        .map_err(sys(format!("canonicalize rootfs {}", rootfs.display())))?;
    chdir(&rootfs).map_err(sys(format!("chdir {}", rootfs.display())))?;
    if !no_pivot {
        // The old root, held open: after the pivot, "." is still the new root's directory
        // (pivot_root(2) moves cwd only of processes whose cwd was the old root), and a
        // path lookup of "." does not cross into the old root stacked on it. Changing the
        // propagation of "." would then make every mount of the container a slave, cutting
        // rshared binds off their host peers.
        let old_root = nix::fcntl::open(
            "/",
            nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_RDONLY
                | nix::fcntl::OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(sys("open the old root"))?;
        match pivot_root(".", ".") {
            Ok(()) => {
                nix::unistd::fchdir(&old_root).map_err(sys("fchdir to the old root"))?;
                drop(old_root);
                // The old root is on top now. Make it slave first so that detaching it cannot
                // propagate an unmount to the host's mounts (when "/" was shared).
                mount_at(
                    None,
                    Path::new("."),
                    None,
                    MsFlags::MS_SLAVE | MsFlags::MS_REC,
                    None,
                )?;
                umount2(".", MntFlags::MNT_DETACH).map_err(sys("detach the old root"))?;
                return chdir("/").map_err(sys("chdir /"));
            }
            Err(Errno::EINVAL) => {
                tracing::debug!(
                    "pivot_root refused (initramfs?); moving the rootfs onto / instead"
                );
            }
            Err(errno) => {
                return Err(Error::sys(
                    format!("pivot_root {}", rootfs.display()),
                    errno,
                ));
            }
        }
    }
    detach_host_mounts(&rootfs)?;
    mount_at(Some(&rootfs), Path::new("/"), None, MsFlags::MS_MOVE, None)?;
    chroot(".").map_err(sys("chroot ."))?;
    chdir("/").map_err(sys("chdir /"))
}

/// Before MS_MOVE + chroot, which leaves the old root reachable underneath: detach every mount
/// that is neither the rootfs (or inside it) nor one of its ancestors, so that host mounts are
/// not kept busy by the container and cannot be reached through it. Each is made slave first
/// so that the detach does not propagate to the host.
fn detach_host_mounts(rootfs: &Path) -> Result<()> {
    let text =
        fs::read_to_string("/proc/self/mountinfo").map_err(sys("read /proc/self/mountinfo"))?;
    let mounts = parse_mountinfo(&text);
    // Reverse table order unmounts children before parents.
    for mount in mounts.iter().rev() {
        let point = &mount.mount_point;
        if rootfs.starts_with(point) || point.starts_with(rootfs) {
            continue;
        }
        // Errors are expected (a parent already detached took this one with it).
        let _ = mount_raw(None, point, None, MsFlags::MS_SLAVE | MsFlags::MS_REC, None);
        let _ = umount2(point, MntFlags::MNT_DETACH);
    }
    Ok(())
}

/// Hardens the container's view after the pivot: masked paths, read-only paths, /dev
/// read-only when the spec's /dev tmpfs asks for it, and a read-only root when
/// `root.readonly` is set. Paths are container paths ("/" is the rootfs now).
pub fn finalize_rootfs(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    for path in linux
        .and_then(|l| l.readonly_paths().as_deref())
        .unwrap_or_default()
    {
        readonly_path(Path::new(path))?;
    }
    for path in linux
        .and_then(|l| l.masked_paths().as_deref())
        .unwrap_or_default()
    {
        mask_path(Path::new(path))?;
    }
    let dev_read_only = spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|m| {
            mounts_dev_tmpfs(m)
                && options::MountOptions::parse(m.options().as_deref().unwrap_or_default())
                    .flags
                    .contains(MsFlags::MS_RDONLY)
        });
    if dev_read_only {
        remount_bind(Path::new("/dev"), MsFlags::MS_RDONLY, MsFlags::empty())?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        remount_bind(Path::new("/"), MsFlags::MS_RDONLY, MsFlags::empty())?;
    }
    Ok(())
}

/// `Ok(None)` for a path that does not exist: the spec's lists name paths that not every
/// kernel has (/proc/timer_stats), and missing ones are skipped.
fn metadata_if_present(path: &Path) -> Result<Option<fs::Metadata>> {
    if !path.is_absolute() {
        return Err(Error::InvalidArgument(format!(
            "path {} is not absolute",
            path.display()
        )));
    }
    match fs::metadata(path) {
        Ok(metadata) => Ok(Some(metadata)),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => Ok(None),
        Err(e) => Err(Error::sys(format!("stat {}", path.display()), e)),
    }
}

/// config-linux.md "Masked Paths": files get /dev/null bound over them, directories an empty
/// read-only tmpfs, so that reads find nothing.
fn mask_path(path: &Path) -> Result<()> {
    let Some(metadata) = metadata_if_present(path)? else {
        return Ok(());
    };
    if metadata.is_dir() {
        mount_at(
            Some(Path::new("tmpfs")),
            path,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None,
        )
    } else {
        mount_at(
            Some(Path::new("/dev/null")),
            path,
            None,
            MsFlags::MS_BIND,
            None,
        )
    }
}

/// config-linux.md "Readonly Paths": a recursive bind of the path onto itself, remounted
/// read-only with its nosuid/nodev/noexec flags kept.
fn readonly_path(path: &Path) -> Result<()> {
    if metadata_if_present(path)?.is_none() {
        return Ok(());
    }
    mount_at(
        Some(path),
        path,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    remount_bind(path, MsFlags::MS_RDONLY, MsFlags::empty())
}
