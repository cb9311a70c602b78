//! File operations confined beneath a root directory.
//!
//! Extracting an untrusted layer must never write outside its target, even when the layer
//! plants symlinks (CVE-2018-15664, CVE-2019-14271 and the tar "zip-slip" class). Every path
//! here is resolved from a directory file descriptor of the root with openat2(2)
//! `RESOLVE_IN_ROOT`: the kernel treats the root as `/` for the whole walk, so `..` and
//! absolute symlinks cannot climb out of it, as if the walk ran in a chroot at the root (the
//! semantics Docker gets by extracting inside a chroot). Final components are never followed:
//! they are created, linked or removed with the `*at` calls relative to their parent's fd, with
//! `O_NOFOLLOW` / `AT_SYMLINK_NOFOLLOW` where the call has one.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// A directory that paths are resolved beneath.
pub(crate) struct Root {
    fd: OwnedFd,
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC);

impl Root {
    /// Opens `path` (which the caller trusts) as a root.
    pub(crate) fn open(path: &Path) -> rustix::io::Result<Self> {
        let fd = rustix::fs::open(path, DIR_FLAGS, Mode::empty())?;
        Ok(Self { fd })
    }

    /// Takes an open directory as the root.
    pub(crate) fn from_fd(fd: OwnedFd) -> Self {
        Self { fd }
    }

    /// The root's own directory fd.
    #[cfg(test)]
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Resolves `comps` the way a process chrooted at the root would, returning the path
    /// with every symlink replaced by what it points to (Docker's `FollowSymlinkInScope`):
    /// `..` stops at the root, absolute link targets start again at the root. A final
    /// component is followed only with `follow_last`. Components below a missing one are
    /// taken lexically. ELOOP past 255 links, ENOTDIR when a non-directory has children.
    ///
    /// The answer names what was there during the walk; callers still open it with
    /// [`Root::open_dir`] (in-root resolution), so a symlink swapped in afterwards cannot
    /// lead outside either.
    pub(crate) fn resolve(
        &self,
        comps: &[OsString],
        follow_last: bool,
    ) -> rustix::io::Result<Vec<OsString>> {
        let mut queue: std::collections::VecDeque<OsString> = comps.iter().cloned().collect();
        let mut out: Vec<OsString> = Vec::new();
        let mut links = 0;
        let mut missing = false;
        while let Some(comp) = queue.pop_front() {
            match comp.as_bytes() {
                b"" | b"." => continue,
                b".." => {
                    out.pop();
                    continue;
                }
                _ => {}
            }
            if missing || (queue.is_empty() && !follow_last) {
                out.push(comp);
                continue;
            }
            let parent = self.open_dir(&out)?;
            match rustix::fs::statat(&parent, comp.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Err(Errno::NOENT) => {
                    missing = true;
                    out.push(comp);
                }
                Err(e) => return Err(e),
                Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
                    links += 1;
                    if links > 255 {
                        return Err(Errno::LOOP);
                    }
                    let target = rustix::fs::readlinkat(&parent, comp.as_os_str(), Vec::new())?;
                    let target = target.as_bytes();
                    if target.first() == Some(&b'/') {
                        out.clear();
                    }
                    for part in target.split(|&b| b == b'/').rev() {
                        queue.push_front(OsStr::from_bytes(part).to_os_string());
                    }
                }
                Ok(_) => out.push(comp),
            }
        }
        Ok(out)
    }

    /// Opens the directory at `comps` (relative to the root), resolving every component
    /// in-root. ENOENT if a component is missing, ENOTDIR if one is not a directory.
    pub(crate) fn open_dir(&self, comps: &[OsString]) -> rustix::io::Result<OwnedFd> {
        let path = join(comps);
        // openat2(2): with RESOLVE_IN_ROOT the kernel answers EAGAIN when a rename or mount
        // elsewhere raced the walk, so the lookup cannot be proven safe; retrying is the
        // documented remedy. ENOSYS (kernels before 5.6) is reported, not worked around.
        let mut tries = 0;
        loop {
            match rustix::fs::openat2(
                &self.fd,
                path.as_os_str(),
                DIR_FLAGS,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            ) {
                Err(Errno::AGAIN) if tries < 64 => tries += 1,
                other => return other,
            }
        }
    }

    /// Like [`Root::open_dir`], but creates missing directories (mode 0755, owned by the
    /// caller), as tar does for parents that the archive does not list.
    pub(crate) fn mkdir_all(&self, comps: &[OsString]) -> rustix::io::Result<OwnedFd> {
        match self.open_dir(comps) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) => {}
            Err(e) => return Err(e),
        }
        // Walk down: each prefix is resolved in-root again, so a symlink met anywhere is
        // followed only within the root, and each directory is created in the fd of its
        // resolved parent.
        let mut parent = self.open_dir(&[])?;
        for i in 0..comps.len() {
            let prefix = &comps[..=i];
            parent = match self.open_dir(prefix) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => {
                    match rustix::fs::mkdirat(&parent, comps[i].as_os_str(), Mode::from(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(e),
                    }
                    self.open_dir(prefix)?
                }
                Err(e) => return Err(e),
            };
        }
        Ok(parent)
    }
}

/// Joins components into a relative path (`.` for none).
pub(crate) fn join(comps: &[OsString]) -> PathBuf {
    if comps.is_empty() {
        return PathBuf::from(".");
    }
    comps.iter().collect()
}

/// The type of `name` in `dir`, not following a symlink; `None` if it does not exist.
pub(crate) fn file_type_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
) -> rustix::io::Result<Option<FileType>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(FileType::from_raw_mode(st.st_mode))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes `name` in `dir` and, if it is a directory, everything below it. Never follows a
/// symlink. ENOENT if `name` does not exist.
pub(crate) fn remove_all_at(dir: BorrowedFd<'_>, name: &OsStr) -> rustix::io::Result<()> {
    match file_type_at(dir, name)? {
        None => Err(Errno::NOENT),
        Some(FileType::Directory) => {
            let sub = rustix::fs::openat(dir, name, DIR_FLAGS | OFlags::NOFOLLOW, Mode::empty())?;
            for child in list_dir(sub.as_fd())? {
                remove_all_at(sub.as_fd(), &child)?;
            }
            rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)
        }
        Some(_) => rustix::fs::unlinkat(dir, name, AtFlags::empty()),
    }
}

/// Names in a directory, without `.` and `..`.
pub(crate) fn list_dir(dir: BorrowedFd<'_>) -> rustix::io::Result<Vec<OsString>> {
    let mut reader = Dir::read_from(dir)?;
    let mut names = Vec::new();
    while let Some(entry) = reader.read() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    Ok(names)
}

/// A path naming `name` inside the directory open as `dir`, through /proc/self/fd, for calls
/// that have only a path form (lsetxattr, lgetxattr). The directory is reached through its
/// fd (a magic link, followed as an intermediate component) and `name` is the final
/// component, which the `l*` calls do not follow.
pub(crate) fn proc_path(dir: BorrowedFd<'_>, name: &OsStr) -> PathBuf {
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    p.push(name);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comps(s: &str) -> Vec<OsString> {
        s.split('/').map(OsString::from).collect()
    }

    #[test]
    fn mkdir_all_stays_inside_through_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root_path = dir.path().join("root");
        std::fs::create_dir(&root_path).unwrap();
        // An absolute symlink to a real host directory, and a relative one climbing out.
        std::os::unix::fs::symlink(outside.path(), root_path.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../..", root_path.join("up")).unwrap();
        let root = Root::open(&root_path).unwrap();
        // `abs` resolves to <root>/<outside path>, which does not exist inside: the walk
        // creates nothing outside and fails on the dangling symlink.
        assert!(root.mkdir_all(&comps("abs/sub")).is_err());
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        // `up` resolves to the root itself.
        let fd = root.mkdir_all(&comps("up/made")).unwrap();
        drop(fd);
        assert!(root_path.join("made").is_dir());
        root.mkdir_all(&comps("a/b/c")).unwrap();
        assert!(root_path.join("a/b/c").is_dir());
    }

    #[test]
    fn remove_all_does_not_follow() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep"), b"x").unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("d/e")).unwrap();
        std::fs::write(tree.join("d/e/f"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.path(), tree.join("d/link")).unwrap();
        let root = Root::open(dir.path()).unwrap();
        remove_all_at(root.fd(), OsStr::new("tree")).unwrap();
        assert!(!tree.exists());
        assert!(outside.path().join("keep").exists());
        assert_eq!(
            remove_all_at(root.fd(), OsStr::new("tree")),
            Err(Errno::NOENT)
        );
    }
}
