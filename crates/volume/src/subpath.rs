//! `volume-subpath`: mounting a directory inside a volume instead of its root, without letting
//! a symlink in the volume (which containers write) lead the daemon's bind out of it
//! (the class of CVE-2021-30465, where a swapped symlink redirected a bind mount).
//!
//! The subpath is opened with openat2(2) `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS` from the
//! volume's root: the kernel refuses (`EXDEV`) any walk that `..` or a symlink takes out of it,
//! as dockerd's safepath does. The open descriptor is then bind-mounted onto a placeholder
//! through /proc/self/fd, so what was checked is what gets mounted even if the path is
//! swapped afterwards; the placeholder is the source the runtime binds into the container.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::error::{Error, IoContext, Result};

/// Opens `subpath` (relative) beneath `root` as an `O_PATH` descriptor.
pub fn open_beneath(root: &Path, subpath: &str) -> Result<OwnedFd> {
    let root_fd = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io(format!("open {}", root.display()), e.into()))?;
    rustix::fs::openat2(
        &root_fd,
        subpath,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|errno| match errno {
        Errno::XDEV => Error::Subpath(format!(
            "{subpath:?} escapes the path {:?}",
            root.display().to_string()
        )),
        other => Error::Subpath(format!(
            "cannot access path {}: {}",
            root.join(subpath).display(),
            crate::error::errno_text(other)
        )),
    })
}

/// Bind-mounts what `fd` names onto `target`, which is created to match (a directory, or an
/// empty file for a file). The caller unmounts `target` when the container stops.
pub fn bind_fd(fd: &OwnedFd, target: &Path) -> Result<()> {
    let stat = rustix::fs::fstat(fd)
        .map_err(std::io::Error::from)
        .ctx(|| format!("stat the subpath for {}", target.display()))?;
    let is_dir =
        rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Directory;
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).ctx(|| format!("create {}", parent.display()))?;
    }
    if is_dir {
        std::fs::create_dir_all(target).ctx(|| format!("create {}", target.display()))?;
    } else {
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(target)
            .ctx(|| format!("create {}", target.display()))?;
    }
    let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    rustix::mount::mount_bind(proc_path.as_str(), target).map_err(|e| {
        Error::Mount(format!(
            "bind the subpath onto {}: {}",
            target.display(),
            std::io::Error::from(e)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_beneath_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("vol");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("file"), "x").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("out")).unwrap();
        std::os::unix::fs::symlink("../..", root.join("a/up")).unwrap();
        std::os::unix::fs::symlink("b", root.join("a/in")).unwrap();
        assert!(open_beneath(&root, "a/b").is_ok());
        assert!(open_beneath(&root, "a/in").is_ok());
        assert!(open_beneath(&root, "file").is_ok());
        for escaping in ["out", "a/up", "../vol", "out/passwd"] {
            let error = open_beneath(&root, escaping).unwrap_err();
            assert!(
                error.to_string().contains("escapes the path"),
                "{escaping}: {error}"
            );
            assert_eq!(error.kind(), types::ErrorKind::InvalidArgument);
        }
        let missing = open_beneath(&root, "nope").unwrap_err().to_string();
        assert!(missing.starts_with("cannot access path "), "{missing}");
    }
}
