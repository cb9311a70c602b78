//! Device nodes and the standard /dev links (runtime-spec config-linux.md "Devices" and
//! "Default Devices"; the links are the ones of the kernel's devices.txt "Compulsory links").

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, symlink};
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sys::stat::{Mode, SFlag, makedev, mknod, umask};
use nix::unistd::{Gid, Uid, chown};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::mounts::mount_at;
use super::safe_path::resolve_in_root;
use crate::error::sys;
use crate::{Error, Result};

/// A device node to create in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DeviceNode {
    /// Absolute path inside the container.
    pub path: PathBuf,
    /// `S_IFCHR`, `S_IFBLK` or `S_IFIFO`.
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    /// Permission bits.
    pub mode: u32,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// The devices every Linux container gets (config-linux.md "Default Devices"), mode 0666.
pub(super) fn default_devices() -> Vec<DeviceNode> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .into_iter()
    .map(|(name, major, minor)| DeviceNode {
        path: Path::new("/dev").join(name),
        kind: SFlag::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: None,
        gid: None,
    })
    .collect()
}

impl DeviceNode {
    /// The node a `linux.devices` entry asks for. The spec's `fileMode` has no default; 0666
    /// matches the default devices. Type bits that some configs include in it are dropped.
    pub(super) fn from_spec(device: &LinuxDevice) -> Result<Self> {
        let kind = match device.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(Error::InvalidArgument(format!(
                    "device {} has type \"a\", which only device cgroup rules may use",
                    device.path().display()
                )));
            }
        };
        let number = |n: i64, what: &str| {
            u64::try_from(n).map_err(|_| {
                Error::InvalidArgument(format!(
                    "device {} has a negative {what} number",
                    device.path().display()
                ))
            })
        };
        if !device.path().is_absolute() {
            return Err(Error::InvalidArgument(format!(
                "device path {} is not absolute",
                device.path().display()
            )));
        }
        Ok(Self {
            path: device.path().clone(),
            kind,
            major: number(device.major(), "major")?,
            minor: number(device.minor(), "minor")?,
            mode: device.file_mode().unwrap_or(0o666) & 0o7777,
            uid: device.uid(),
            gid: device.gid(),
        })
    }
}

/// Sets the umask for the life of the guard, so that node and link modes are exactly the
/// requested ones, and restores the old one on drop.
pub(super) struct UmaskGuard(Mode);

impl UmaskGuard {
    pub(super) fn set(mask: Mode) -> Self {
        Self(umask(mask))
    }
}

impl Drop for UmaskGuard {
    fn drop(&mut self) {
        umask(self.0);
    }
}

/// The host path of `container_path`'s parent, resolved safely and created, joined with the
/// last component unresolved: the caller must not follow a symlink planted at the node's own
/// name.
fn prepare_parent(rootfs: &Path, container_path: &Path) -> Result<PathBuf> {
    let name = container_path.file_name().ok_or_else(|| {
        Error::InvalidArgument(format!(
            "device path {} has no file name",
            container_path.display()
        ))
    })?;
    let parent = container_path.parent().unwrap_or(Path::new("/"));
    let parent = resolve_in_root(rootfs, parent)?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&parent)
        .map_err(sys(format!("create directory {}", parent.display())))?;
    Ok(parent.join(name))
}

/// Creates `device` in the rootfs. Without a user namespace: mknod(2). In one, mknod of
/// char and block devices is refused, so the host's node at the same path is bind-mounted
/// over an empty file (as runc and crun do). An existing node is left alone; a symlink planted
/// at the path is replaced.
pub(super) fn create_device(
    rootfs: &Path,
    device: &DeviceNode,
    in_user_namespace: bool,
) -> Result<()> {
    let target = prepare_parent(rootfs, &device.path)?;
    match fs::symlink_metadata(&target) {
        Ok(metadata) if metadata.file_type().is_symlink() => {
            fs::remove_file(&target).map_err(sys(format!("remove {}", target.display())))?;
        }
        Ok(_) if !in_user_namespace => return Ok(()),
        Ok(metadata) if metadata.is_dir() => {
            return Err(Error::InvalidArgument(format!(
                "device path {} is a directory",
                device.path.display()
            )));
        }
        Ok(_) | Err(_) => {}
    }
    if in_user_namespace && device.kind != SFlag::S_IFIFO {
        fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o644)
            .open(&target)
            .map_err(sys(format!("create {}", target.display())))?;
        return mount_at(Some(&device.path), &target, None, MsFlags::MS_BIND, None);
    }
    let mode = Mode::from_bits_truncate(device.mode);
    let dev = makedev(device.major, device.minor);
    mknod(&target, device.kind, mode, dev).map_err(sys(format!("mknod {}", target.display())))?;
    if device.uid.is_some() || device.gid.is_some() {
        chown(
            &target,
            device.uid.map(Uid::from_raw),
            device.gid.map(Gid::from_raw),
        )
        .map_err(sys(format!("chown {}", target.display())))?;
    }
    Ok(())
}

/// The links /dev/fd, /dev/stdin, /dev/stdout, /dev/stderr, and /dev/core when the kernel has
/// /proc/kcore (checked on the host, before the pivot).
pub(super) fn create_dev_symlinks(rootfs: &Path) -> Result<()> {
    let mut links = vec![
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "/dev/core"));
    }
    for (pointee, link) in links {
        let target = prepare_parent(rootfs, Path::new(link))?;
        match symlink(pointee, &target) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::sys(format!("symlink {}", target.display()), e)),
        }
    }
    Ok(())
}

/// /dev/ptmx -> pts/ptmx, so that the container's ptys come from its own devpts instance
/// (Documentation/filesystems/devpts.rst: with `newinstance`, /dev/ptmx must point at it).
pub(super) fn setup_ptmx(rootfs: &Path) -> Result<()> {
    let target = prepare_parent(rootfs, Path::new("/dev/ptmx"))?;
    match fs::remove_file(&target) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::sys(format!("remove {}", target.display()), e)),
    }
    symlink("pts/ptmx", &target).map_err(sys(format!("symlink {}", target.display())))
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::LinuxDeviceBuilder;

    use super::*;

    #[test]
    fn default_devices_are_the_spec_ones() {
        let devices = default_devices();
        let names: Vec<_> = devices.iter().map(|d| d.path.to_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "/dev/null",
                "/dev/zero",
                "/dev/full",
                "/dev/random",
                "/dev/urandom",
                "/dev/tty"
            ]
        );
        assert!(
            devices
                .iter()
                .all(|d| d.mode == 0o666 && d.kind == SFlag::S_IFCHR)
        );
        assert_eq!((devices[0].major, devices[0].minor), (1, 3));
        assert_eq!((devices[5].major, devices[5].minor), (5, 0));
    }

    #[test]
    fn spec_devices_convert() {
        let fuse = LinuxDeviceBuilder::default()
            .path("/dev/fuse")
            .typ(LinuxDeviceType::C)
            .major(10)
            .minor(229)
            .file_mode(0o020660u32)
            .uid(0u32)
            .gid(5u32)
            .build()
            .unwrap();
        let node = DeviceNode::from_spec(&fuse).unwrap();
        assert_eq!(node.kind, SFlag::S_IFCHR);
        assert_eq!((node.major, node.minor, node.mode), (10, 229, 0o660));
        assert_eq!((node.uid, node.gid), (Some(0), Some(5)));

        let fifo = LinuxDeviceBuilder::default()
            .path("/dev/fifo")
            .typ(LinuxDeviceType::P)
            .build()
            .unwrap();
        assert_eq!(DeviceNode::from_spec(&fifo).unwrap().kind, SFlag::S_IFIFO);
        let block = LinuxDeviceBuilder::default()
            .path("/dev/sda")
            .typ(LinuxDeviceType::B)
            .major(8)
            .build()
            .unwrap();
        assert_eq!(DeviceNode::from_spec(&block).unwrap().kind, SFlag::S_IFBLK);

        let all = LinuxDeviceBuilder::default()
            .path("/dev/x")
            .typ(LinuxDeviceType::A)
            .build()
            .unwrap();
        assert!(matches!(
            DeviceNode::from_spec(&all),
            Err(Error::InvalidArgument(_))
        ));
        let relative = LinuxDeviceBuilder::default()
            .path("dev/x")
            .typ(LinuxDeviceType::C)
            .build()
            .unwrap();
        assert!(matches!(
            DeviceNode::from_spec(&relative),
            Err(Error::InvalidArgument(_))
        ));
        let negative = LinuxDeviceBuilder::default()
            .path("/dev/x")
            .typ(LinuxDeviceType::C)
            .major(-1)
            .build()
            .unwrap();
        assert!(matches!(
            DeviceNode::from_spec(&negative),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn fifo_and_links_in_a_tempdir() {
        // FIFOs and symlinks need no privilege, so this runs as any user.
        let root = tempfile::tempdir().unwrap();
        let fifo = DeviceNode {
            path: PathBuf::from("/dev/sub/fifo"),
            kind: SFlag::S_IFIFO,
            major: 0,
            minor: 0,
            mode: 0o640,
            uid: None,
            gid: None,
        };
        {
            let _umask = UmaskGuard::set(Mode::empty());
            create_device(root.path(), &fifo, false).unwrap();
            create_dev_symlinks(root.path()).unwrap();
            create_dev_symlinks(root.path()).unwrap();
            setup_ptmx(root.path()).unwrap();
            setup_ptmx(root.path()).unwrap();
        }
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        let metadata = fs::symlink_metadata(root.path().join("dev/sub/fifo")).unwrap();
        assert!(metadata.file_type().is_fifo());
        assert_eq!(metadata.permissions().mode() & 0o7777, 0o640);
        assert_eq!(
            fs::read_link(root.path().join("dev/ptmx")).unwrap(),
            Path::new("pts/ptmx")
        );
        assert_eq!(
            fs::read_link(root.path().join("dev/stderr")).unwrap(),
            Path::new("/proc/self/fd/2")
        );
        assert_eq!(
            fs::read_link(root.path().join("dev/fd")).unwrap(),
            Path::new("/proc/self/fd")
        );
    }
}
