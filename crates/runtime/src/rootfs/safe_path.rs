//! Resolving container paths inside the rootfs without ever leaving it.
//!
//! Mount destinations and device paths come from the spec, but the directories they traverse
//! come from the image, which is untrusted: a `/var/run -> /run` style symlink, or a hostile
//! `/etc -> ../../../../etc`, must resolve as it would inside the container, never to the host.
//! Joining `rootfs` and the destination and letting the kernel follow symlinks from the host's
//! "/" is the bug class of CVE-2021-30465 (runc mount destination swapped by a symlink) and
//! CVE-2018-15664 (docker cp). The kernel does the right thing with `openat2(2)`'s
//! `RESOLVE_IN_ROOT` ("as though dirfd were the root": absolute symlinks and ".." are clamped to
//! it), available since Linux 5.6; we use it when the whole path exists and fall back to the
//! same algorithm in user space, which also handles the not-yet-existing tail of a destination
//! that we are about to create.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::{Error, Result};

/// Linux gives up after this many symlinks in one resolution (`MAXSYMLINKS`, path_resolution(7)).
const MAX_SYMLINKS: usize = 40;

/// Resolves `unsafe_path` inside `root` as if `root` were "/": absolute and relative symlinks
/// and ".." are followed but clamped to `root`, so the result always lies under (the
/// canonical form of) `root`. Components that do not exist yet are appended as they are
/// (after a missing component nothing can be a symlink). Returns the host path.
///
/// A symlink loop fails with `ELOOP` instead of hanging.
///
/// The answer is only as good as the moment it was computed: a process that can rename
/// directories inside `root` concurrently can still redirect a later operation on the returned
/// path. The container's own processes do not run yet while the rootfs is prepared.
pub fn resolve_in_root(root: &Path, unsafe_path: &Path) -> Result<PathBuf> {
    let root = std::fs::canonicalize(root).map_err(crate::error::sys(format!(
        "canonicalize rootfs {}",
        root.display()
    )))?;
    match resolve_with_openat2(&root, unsafe_path) {
        Ok(Some(path)) => return Ok(path),
        Ok(None) => {}
        Err(e) => return Err(e),
    }
    resolve_by_hand(&root, unsafe_path)
}

/// The kernel's answer, or `None` when it cannot give one: a component is missing (we then
/// need the by-hand walk to place the missing tail), openat2 is unavailable (ENOSYS before
/// 5.6, EPERM under a seccomp filter), or /proc is not there to read the answer back.
fn resolve_with_openat2(root: &Path, unsafe_path: &Path) -> Result<Option<PathBuf>> {
    let root_dir = match rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e) => {
            return Err(Error::sys(
                format!("open rootfs {}", root.display()),
                io::Error::from(e),
            ));
        }
    };
    let relative = unsafe_path.strip_prefix("/").unwrap_or(unsafe_path);
    let relative = if relative.as_os_str().is_empty() {
        Path::new(".")
    } else {
        relative
    };
    // EAGAIN: a concurrent rename raced the lookup (openat2(2)); retry a few times.
    let mut attempts = 0;
    let fd = loop {
        match rustix::fs::openat2(
            &root_dir,
            relative,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(fd) => break fd,
            Err(rustix::io::Errno::AGAIN) if attempts < 8 => attempts += 1,
            Err(rustix::io::Errno::LOOP) => {
                return Err(Error::sys(
                    format!("resolve {} in {}", unsafe_path.display(), root.display()),
                    io::Error::from_raw_os_error(libc::ELOOP),
                ));
            }
            Err(_) => return Ok(None),
        }
    };
    let Ok(path) = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())) else {
        return Ok(None);
    };
    Ok(path.starts_with(root).then_some(path))
}

/// The same walk as the kernel's RESOLVE_IN_ROOT, one component at a time with lstat(2) and
/// readlink(2). `root` must be canonical.
fn resolve_by_hand(root: &Path, unsafe_path: &Path) -> Result<PathBuf> {
    let fail = |e: io::Error| {
        Error::sys(
            format!("resolve {} in {}", unsafe_path.display(), root.display()),
            e,
        )
    };
    // Components still to walk, in reverse so that the next one is popped from the end.
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, unsafe_path);
    // The resolved components below root, none of them a symlink.
    let mut resolved: Vec<OsString> = Vec::new();
    let mut symlinks = 0;
    // Once a component is missing, the rest is lexical: nothing below it exists.
    let mut missing = false;
    while let Some(name) = pending.pop() {
        if name == ".." {
            resolved.pop();
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&resolved);
        candidate.push(&name);
        if missing {
            resolved.push(name);
            continue;
        }
        let metadata = match std::fs::symlink_metadata(&candidate) {
            Ok(metadata) => metadata,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => {
                missing = true;
                resolved.push(name);
                continue;
            }
            Err(e) => return Err(fail(e)),
        };
        if !metadata.file_type().is_symlink() {
            resolved.push(name);
            continue;
        }
        symlinks += 1;
        if symlinks > MAX_SYMLINKS {
            return Err(fail(io::Error::from_raw_os_error(libc::ELOOP)));
        }
        let target = std::fs::read_link(&candidate).map_err(fail)?;
        if target.is_absolute() {
            // An absolute link restarts from the container's root, which is `root`.
            resolved.clear();
        }
        push_components(&mut pending, &target);
    }
    let mut path = root.to_path_buf();
    path.extend(&resolved);
    Ok(path)
}

/// Pushes the components of `path` onto the `pending` stack so that the first one is popped
/// first. "/" and "." vanish; ".." is kept for the walk to clamp.
fn push_components(pending: &mut Vec<OsString>, path: &Path) {
    let start = pending.len();
    for component in path.components() {
        match component {
            Component::Normal(name) => pending.push(name.to_os_string()),
            Component::ParentDir => pending.push(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    pending[start..].reverse();
}

/// What [`open_in_root`] creates when the path does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Create {
    /// A directory, with its missing parents (mode 0755).
    Directory,
    /// An empty regular file (mode 0644), with its missing parent directories.
    File,
}

/// An `O_PATH` descriptor of a path inside the rootfs, and the `/proc/self/fd/N` name through
/// which path-only system calls (mount(2), statvfs(3)) reach exactly that inode: the kernel
/// jumps to the descriptor's file instead of walking the path again, so a directory swapped
/// for a symlink after the lookup cannot redirect the call (the fix pattern for
/// CVE-2021-30465).
#[derive(Debug)]
pub(crate) struct PinnedPath {
    fd: OwnedFd,
    proc_path: PathBuf,
}

impl PinnedPath {
    /// Pins an already opened descriptor (best opened with `O_PATH | O_NOFOLLOW`).
    pub(crate) fn from_fd(fd: OwnedFd) -> Self {
        Self::new(fd)
    }

    fn new(fd: OwnedFd) -> Self {
        let proc_path = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        Self { fd, proc_path }
    }

    /// The `/proc/self/fd/N` path of the descriptor.
    pub(crate) fn path(&self) -> &Path {
        &self.proc_path
    }

    /// The descriptor, for `*at` system calls.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn open_root(root: &Path) -> Result<OwnedFd> {
    rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        Error::sys(
            format!("open rootfs {}", root.display()),
            io::Error::from(e),
        )
    })
}

/// One step below `dir` that must be exactly `name`: no symlink, no "..", no magic link.
fn open_child(dir: BorrowedFd<'_>, name: &std::ffi::OsStr) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat2(
        dir,
        name,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
}

/// Opens `unsafe_path` inside `root` the way [`resolve_in_root`] resolves it, creating what is
/// missing when `create` says so, and returns it pinned by an `O_PATH` descriptor. With
/// openat2(2), every step is a descriptor-relative lookup that cannot leave `root`: the
/// existing part is looked up with `RESOLVE_IN_ROOT`, and missing components are created with
/// mkdirat(2)/openat(2) under the descriptor of their parent, refusing symlinks that appear in
/// the meantime. Without openat2 (Linux < 5.6) it falls back to path operations on the
/// resolved path, which are only as safe as the moment of resolution.
pub(crate) fn open_in_root(
    root: &Path,
    unsafe_path: &Path,
    create: Option<Create>,
) -> Result<PinnedPath> {
    let root = std::fs::canonicalize(root).map_err(crate::error::sys(format!(
        "canonicalize rootfs {}",
        root.display()
    )))?;
    let fail = |e: rustix::io::Errno| {
        Error::sys(
            format!("open {} in {}", unsafe_path.display(), root.display()),
            io::Error::from(e),
        )
    };
    let root_fd = open_root(&root)?;
    let relative = unsafe_path.strip_prefix("/").unwrap_or(unsafe_path);
    let relative = if relative.as_os_str().is_empty() {
        Path::new(".")
    } else {
        relative
    };
    // EAGAIN: a rename or mount anywhere on the system raced a ".." lookup, and the kernel
    // could not prove it stayed inside (openat2(2)). Retry, then walk without "..".
    let mut attempts = 0;
    loop {
        let lookup = rustix::fs::openat2(
            &root_fd,
            relative,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        );
        match lookup {
            Ok(fd) => return Ok(PinnedPath::new(fd)),
            Err(rustix::io::Errno::AGAIN) if attempts < 16 => attempts += 1,
            Err(rustix::io::Errno::AGAIN) => break,
            Err(rustix::io::Errno::NOENT) if create.is_some() => break,
            Err(rustix::io::Errno::NOSYS) => return open_by_path(&root, unsafe_path, create),
            Err(e) => return Err(fail(e)),
        }
    }
    // Walk the resolved path (no symlink, no "..") from the root, one descriptor-relative
    // step at a time, creating the missing components if asked to.
    let resolved = resolve_by_hand(&root, unsafe_path)?;
    let below: Vec<_> = resolved
        .strip_prefix(&root)
        .unwrap_or(Path::new(""))
        .components()
        .collect();
    let mut dir = root_fd;
    for (index, component) in below.iter().enumerate() {
        let name = component.as_os_str();
        let last = index + 1 == below.len();
        match open_child(dir.as_fd(), name) {
            Ok(fd) => {
                dir = fd;
                continue;
            }
            Err(rustix::io::Errno::NOENT) if create.is_some() => {}
            Err(e) => return Err(fail(e)),
        }
        let created = if last && create == Some(Create::File) {
            rustix::fs::openat(
                &dir,
                name,
                OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            )
            .map(drop)
        } else {
            rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o755))
        };
        match created {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(fail(e)),
        }
        dir = open_child(dir.as_fd(), name).map_err(fail)?;
    }
    Ok(PinnedPath::new(dir))
}

/// The pre-openat2 fallback of [`open_in_root`].
fn open_by_path(root: &Path, unsafe_path: &Path, create: Option<Create>) -> Result<PinnedPath> {
    let resolved = resolve_by_hand(root, unsafe_path)?;
    let fail = |e: io::Error| Error::sys(format!("create {}", resolved.display()), e);
    match create {
        Some(Create::Directory) => std::fs::create_dir_all(&resolved).map_err(fail)?,
        Some(Create::File) => {
            if let Some(parent) = resolved.parent() {
                std::fs::create_dir_all(parent).map_err(fail)?;
            }
            if std::fs::symlink_metadata(&resolved).is_err() {
                std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(&resolved)
                    .map_err(fail)?;
            }
        }
        None => {}
    }
    let fd = rustix::fs::open(
        &resolved,
        OFlags::PATH | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
    .map_err(|e| Error::sys(format!("open {}", resolved.display()), io::Error::from(e)))?;
    Ok(PinnedPath::new(fd))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    /// A rootfs with the nasty links of CVE-2021-30465-style attacks.
    fn nasty_root() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::fs::write(root.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        symlink("/etc", root.join("abs-etc")).unwrap();
        symlink("../../../../../../etc", root.join("usr/lib/up-etc")).unwrap();
        symlink("../../../../../../", root.join("up-root")).unwrap();
        symlink("lib", root.join("usr/lib64")).unwrap();
        symlink("/usr/lib64/../lib/../../etc/passwd", root.join("twisty")).unwrap();
        symlink("loop-b", root.join("loop-a")).unwrap();
        symlink("loop-a", root.join("loop-b")).unwrap();
        symlink("self", root.join("self")).unwrap();
        symlink("/nonexistent/deeper", root.join("dangling")).unwrap();
        (dir, root)
    }

    fn both(root: &Path, path: &str) -> Vec<Result<PathBuf>> {
        vec![
            resolve_in_root(root, Path::new(path)),
            resolve_by_hand(root, Path::new(path)),
        ]
    }

    fn assert_resolves(root: &Path, path: &str, expected: &str) {
        for got in both(root, path) {
            assert_eq!(got.unwrap(), root.join(expected), "{path}");
        }
    }

    #[test]
    fn plain_paths() {
        let (_dir, root) = nasty_root();
        assert_resolves(&root, "/", "");
        assert_resolves(&root, "", "");
        assert_resolves(&root, "/etc/passwd", "etc/passwd");
        assert_resolves(&root, "etc/./passwd", "etc/passwd");
        assert_resolves(&root, "/../../etc", "etc");
        assert_resolves(&root, "/usr/../etc/passwd", "etc/passwd");
    }

    #[test]
    fn absolute_symlink_stays_inside() {
        let (_dir, root) = nasty_root();
        assert_resolves(&root, "/abs-etc/passwd", "etc/passwd");
        assert_resolves(&root, "/abs-etc/new-file", "etc/new-file");
        assert_resolves(&root, "/abs-etc", "etc");
    }

    #[test]
    fn relative_dotdot_symlinks_stay_inside() {
        let (_dir, root) = nasty_root();
        assert_resolves(&root, "/usr/lib/up-etc/passwd", "etc/passwd");
        assert_resolves(&root, "/up-root/etc", "etc");
        assert_resolves(&root, "/up-root/up-root/usr/lib64", "usr/lib");
        assert_resolves(&root, "/twisty", "etc/passwd");
    }

    #[test]
    fn missing_tail_is_appended() {
        let (_dir, root) = nasty_root();
        assert_resolves(&root, "/new/dir/../file", "new/file");
        assert_resolves(&root, "/dangling", "nonexistent/deeper");
        assert_resolves(&root, "/dangling/more", "nonexistent/deeper/more");
        assert_resolves(&root, "/etc/passwd/below", "etc/passwd/below");
    }

    #[test]
    fn loops_fail_instead_of_hanging() {
        let (_dir, root) = nasty_root();
        for path in ["/loop-a", "/self", "/loop-b/x", "/etc/../loop-a/y"] {
            for got in both(&root, path) {
                let err = got.unwrap_err();
                match err {
                    Error::Sys { source, .. } => {
                        assert_eq!(source.raw_os_error(), Some(libc::ELOOP), "{path}")
                    }
                    other => panic!("{path}: unexpected error {other}"),
                }
            }
        }
    }

    #[test]
    fn root_given_through_a_symlink_is_canonicalised() {
        let (dir, root) = nasty_root();
        let alias = dir.path().join("alias");
        std::fs::create_dir(&alias).unwrap();
        let link = alias.join("rootfs");
        symlink(&root, &link).unwrap();
        assert_eq!(
            resolve_in_root(&link, Path::new("/abs-etc/passwd")).unwrap(),
            root.join("etc/passwd")
        );
    }

    #[test]
    fn open_in_root_creates_inside_through_symlinks() {
        let (_dir, root) = nasty_root();
        for (path, create, expected) in [
            ("/abs-etc/sub/dir", Create::Directory, "etc/sub/dir"),
            ("/usr/lib/up-etc/file", Create::File, "etc/file"),
            ("/dangling", Create::Directory, "nonexistent/deeper"),
            ("/up-root/up-root/new/x/../y", Create::Directory, "new/y"),
        ] {
            let pinned = open_in_root(&root, Path::new(path), Some(create)).unwrap();
            let target = std::fs::read_link(pinned.path()).unwrap();
            assert_eq!(target, root.join(expected), "{path}");
            assert_eq!(target.is_dir(), create == Create::Directory, "{path}");
        }
        // Existing paths open without creating; missing ones without `create` fail.
        let pinned = open_in_root(&root, Path::new("/twisty"), None).unwrap();
        assert_eq!(
            std::fs::read_link(pinned.path()).unwrap(),
            root.join("etc/passwd")
        );
        assert!(open_in_root(&root, Path::new("/missing"), None).is_err());
        assert!(open_in_root(&root, Path::new("/loop-a"), Some(Create::Directory)).is_err());
        assert!(open_in_root(&root, Path::new("/etc/passwd/below"), Some(Create::File)).is_err());
        assert!(!Path::new("/etc/sub/dir").exists());
    }

    #[test]
    fn fallback_by_path_creates_the_same() {
        let (_dir, root) = nasty_root();
        let pinned =
            open_by_path(&root, Path::new("/abs-etc/fb/dir"), Some(Create::Directory)).unwrap();
        assert_eq!(
            std::fs::read_link(pinned.path()).unwrap(),
            root.join("etc/fb/dir")
        );
        let pinned = open_by_path(
            &root,
            Path::new("/usr/lib/up-etc/fb-file"),
            Some(Create::File),
        )
        .unwrap();
        assert_eq!(
            std::fs::read_link(pinned.path()).unwrap(),
            root.join("etc/fb-file")
        );
        assert!(root.join("etc/fb-file").is_file());
    }
}
