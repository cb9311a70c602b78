//! Device nodes and the standard /dev links (runtime-spec config-linux.md "Devices" and
//! "Default Devices"; the links are the ones of the kernel's devices.txt "Compulsory links").

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sys::stat::umask;
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Uid};

use super::mounts::mount_at;
use super::safe_path::{Create, PinnedPath, open_in_root};
use crate::{Error, Result};

/// A device node to create in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DeviceNode {
    /// Absolute path inside the container.
    pub path: PathBuf,
    /// `S_IFCHR`, `S_IFBLK` or `S_IFIFO`.
    pub kind: FileType,
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
        kind: FileType::CharacterDevice,
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
            LinuxDeviceType::C | LinuxDeviceType::U => FileType::CharacterDevice,
            LinuxDeviceType::B => FileType::BlockDevice,
            LinuxDeviceType::P => FileType::Fifo,
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
pub(super) struct UmaskGuard(nix::sys::stat::Mode);

impl UmaskGuard {
    pub(super) fn set(mask: nix::sys::stat::Mode) -> Self {
        Self(umask(mask))
    }
}

impl Drop for UmaskGuard {
    fn drop(&mut self) {
        umask(self.0);
    }
}

/// The parent directory of `container_path`, opened safely inside the rootfs (and created),
/// with the last component left unresolved: the node itself is then handled with `*at` calls
/// on the parent's descriptor, so a symlink planted at its name is never followed.
fn open_parent(rootfs: &Path, container_path: &Path) -> Result<(PinnedPath, OsString)> {
    let name = container_path.file_name().ok_or_else(|| {
        Error::InvalidArgument(format!(
            "device path {} has no file name",
            container_path.display()
        ))
    })?;
    let parent = container_path.parent().unwrap_or(Path::new("/"));
    let directory = open_in_root(rootfs, parent, Some(Create::Directory))?;
    Ok((directory, name.to_os_string()))
}

fn at_error(what: &str, path: &Path) -> impl FnOnce(rustix::io::Errno) -> Error {
    let what = format!("{what} {}", path.display());
    move |errno| Error::sys(what, io::Error::from(errno))
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
    let path = device.path.as_path();
    let (directory, name) = open_parent(rootfs, path)?;
    match rustix::fs::statat(directory.fd(), &name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => match FileType::from_raw_mode(stat.st_mode) {
            FileType::Symlink => rustix::fs::unlinkat(directory.fd(), &name, AtFlags::empty())
                .map_err(at_error("remove", path))?,
            FileType::Directory => {
                return Err(Error::InvalidArgument(format!(
                    "device path {} is a directory",
                    path.display()
                )));
            }
            _ if !in_user_namespace => return Ok(()),
            _ => {}
        },
        Err(rustix::io::Errno::NOENT) => {}
        Err(errno) => return Err(at_error("stat", path)(errno)),
    }
    if in_user_namespace && device.kind != FileType::Fifo {
        return bind_host_device(&directory, &name, path);
    }
    let number = |n: u64| {
        u32::try_from(n).map_err(|_| {
            Error::InvalidArgument(format!("device {} number {n} is too large", path.display()))
        })
    };
    let dev = rustix::fs::makedev(number(device.major)?, number(device.minor)?);
    match rustix::fs::mknodat(
        directory.fd(),
        &name,
        device.kind,
        Mode::from_raw_mode(device.mode),
        dev,
    ) {
        Ok(()) => {}
        // No CAP_MKNOD (a nested or restricted runtime) or a device cgroup without "m" for
        // this device: fall back to the host's node, as runc does.
        Err(rustix::io::Errno::PERM) if device.kind != FileType::Fifo => {
            tracing::debug!(device = %path.display(), "mknod refused; bind-mounting the host's node");
            return bind_host_device(&directory, &name, path);
        }
        Err(errno) => return Err(at_error("mknod", path)(errno)),
    }
    if device.uid.is_some() || device.gid.is_some() {
        rustix::fs::chownat(
            directory.fd(),
            &name,
            device.uid.map(Uid::from_raw),
            device.gid.map(Gid::from_raw),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(at_error("chown", path))?;
    }
    Ok(())
}

/// Bind-mounts the host's node at `path` over an empty file `name` in `directory`.
fn bind_host_device(directory: &PinnedPath, name: &OsString, path: &Path) -> Result<()> {
    let flags = OFlags::CREATE | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    drop(
        rustix::fs::openat(directory.fd(), name, flags, Mode::from_raw_mode(0o644))
            .map_err(at_error("create", path))?,
    );
    let node = rustix::fs::openat(
        directory.fd(),
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(at_error("open", path))?;
    let node = PinnedPath::from_fd(node);
    mount_at(Some(path), node.path(), None, MsFlags::MS_BIND, None).map_err(|e| match e {
        Error::Sys { source, .. } => {
            Error::sys(format!("bind mount host device {}", path.display()), source)
        }
        other => other,
    })
}

/// Creates the symlink `link -> pointee` in the rootfs unless something is there already.
fn symlink_in_root(rootfs: &Path, pointee: &str, link: &str) -> Result<()> {
    let (directory, name) = open_parent(rootfs, Path::new(link))?;
    match rustix::fs::symlinkat(pointee, directory.fd(), &name) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => Ok(()),
        Err(errno) => Err(at_error("symlink", Path::new(link))(errno)),
    }
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
        symlink_in_root(rootfs, pointee, link)?;
    }
    Ok(())
}

/// /dev/ptmx -> pts/ptmx, so that the container's ptys come from its own devpts instance
/// (Documentation/filesystems/devpts.rst: with `newinstance`, /dev/ptmx must point at it).
pub(super) fn setup_ptmx(rootfs: &Path) -> Result<()> {
    let (directory, name) = open_parent(rootfs, Path::new("/dev/ptmx"))?;
    match rustix::fs::unlinkat(directory.fd(), &name, AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => {}
        Err(errno) => return Err(at_error("remove", Path::new("/dev/ptmx"))(errno)),
    }
    rustix::fs::symlinkat("pts/ptmx", directory.fd(), &name)
        .map_err(at_error("symlink", Path::new("/dev/ptmx")))
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
                .all(|d| d.mode == 0o666 && d.kind == FileType::CharacterDevice)
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
        assert_eq!(node.kind, FileType::CharacterDevice);
        assert_eq!((node.major, node.minor, node.mode), (10, 229, 0o660));
        assert_eq!((node.uid, node.gid), (Some(0), Some(5)));

        let fifo = LinuxDeviceBuilder::default()
            .path("/dev/fifo")
            .typ(LinuxDeviceType::P)
            .build()
            .unwrap();
        assert_eq!(DeviceNode::from_spec(&fifo).unwrap().kind, FileType::Fifo);
        let block = LinuxDeviceBuilder::default()
            .path("/dev/sda")
            .typ(LinuxDeviceType::B)
            .major(8)
            .build()
            .unwrap();
        assert_eq!(
            DeviceNode::from_spec(&block).unwrap().kind,
            FileType::BlockDevice
        );

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
            kind: FileType::Fifo,
            major: 0,
            minor: 0,
            mode: 0o640,
            uid: None,
            gid: None,
        };
        {
            let _umask = UmaskGuard::set(nix::sys::stat::Mode::empty());
            create_device(root.path(), &fifo, false).unwrap();
            create_dev_symlinks(root.path()).unwrap();
            create_dev_symlinks(root.path()).unwrap();
            setup_ptmx(root.path()).unwrap();
            setup_ptmx(root.path()).unwrap();
        }
        use std::fs;
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
