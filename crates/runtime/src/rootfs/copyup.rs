//! `tmpcopyup`: a tmpfs mounted over an image directory starts with a copy of what it hides
//! (a runc/crun extension of the mount options; podman and Docker's `--tmpfs` rely on it so
//! that e.g. a tmpfs on /etc keeps the image's files).
//!
//! The copy reads the hidden directory through a descriptor opened before the mount (the
//! mount hides the directory from path lookups, not from an open descriptor) and writes
//! through descriptors of the new tmpfs, never following symlinks on either side.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, Dir, FileType, Gid, Mode, OFlags, Uid};

/// Copies the content of directory `source` into directory `target`: directories, regular
/// files, symlinks and special files, with their modes and owners. Special files that cannot
/// be created (mknod in a user namespace) are skipped.
pub(super) fn copy_tree(source: BorrowedFd<'_>, target: BorrowedFd<'_>) -> io::Result<()> {
    for entry in Dir::read_from(source)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        copy_entry(source, target, name)?;
    }
    Ok(())
}

fn copy_entry(source: BorrowedFd<'_>, target: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    let stat = rustix::fs::statat(source, name, AtFlags::SYMLINK_NOFOLLOW)?;
    let mode = Mode::from_raw_mode(stat.st_mode);
    let file_type = FileType::from_raw_mode(stat.st_mode);
    match file_type {
        FileType::Directory => {
            rustix::fs::mkdirat(target, name, Mode::from_raw_mode(0o700))?;
            let from = open_directory(source, name)?;
            let to = open_directory(target, name)?;
            copy_tree(from.as_fd(), to.as_fd())?;
        }
        FileType::RegularFile => {
            let from = rustix::fs::openat(
                source,
                name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let to = rustix::fs::openat(
                target,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )?;
            io::copy(&mut std::fs::File::from(from), &mut std::fs::File::from(to))?;
        }
        FileType::Symlink => {
            let pointee = rustix::fs::readlinkat(source, name, Vec::new())?;
            rustix::fs::symlinkat(pointee.as_c_str(), target, name)?;
        }
        _ => {
            if let Err(errno) = rustix::fs::mknodat(target, name, file_type, mode, stat.st_rdev) {
                tracing::debug!(?name, %errno, "tmpcopyup: skipping a special file");
                return Ok(());
            }
        }
    }
    // Owner first: chown clears the set-id bits that the chmod then restores.
    let owner = (Uid::from_raw(stat.st_uid), Gid::from_raw(stat.st_gid));
    match rustix::fs::chownat(
        target,
        name,
        Some(owner.0),
        Some(owner.1),
        AtFlags::SYMLINK_NOFOLLOW,
    ) {
        // An owner that the user namespace does not map stays with the creator.
        Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::PERM) => {}
        Err(errno) => return Err(errno.into()),
    }
    if file_type != FileType::Symlink {
        rustix::fs::chmodat(target, name, mode, AtFlags::empty())?;
    }
    Ok(())
}

fn open_directory(parent: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Opens a readable descriptor of the directory an `O_PATH` descriptor names.
pub(super) fn open_readable(directory: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    open_directory(directory, c".")
}

/// Gives the root of the new tmpfs the mode and owner of the directory it hides, unless the
/// mount options chose a mode.
pub(super) fn copy_root_attributes(
    source: BorrowedFd<'_>,
    target: BorrowedFd<'_>,
    keep_mode: bool,
) -> io::Result<()> {
    let stat = rustix::fs::fstat(source)?;
    let _ = rustix::fs::fchown(
        target,
        Some(Uid::from_raw(stat.st_uid)),
        Some(Gid::from_raw(stat.st_gid)),
    );
    if !keep_mode {
        rustix::fs::fchmod(target, Mode::from_raw_mode(stat.st_mode))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;

    #[test]
    fn copies_files_directories_and_links() {
        let from = tempfile::tempdir().unwrap();
        let to = tempfile::tempdir().unwrap();
        fs::create_dir_all(from.path().join("sub/deeper")).unwrap();
        fs::write(from.path().join("a.txt"), "alpha").unwrap();
        fs::write(from.path().join("sub/deeper/b"), "beta").unwrap();
        fs::set_permissions(from.path().join("a.txt"), fs::Permissions::from_mode(0o751)).unwrap();
        fs::set_permissions(from.path().join("sub"), fs::Permissions::from_mode(0o710)).unwrap();
        symlink("/etc/passwd", from.path().join("abs-link")).unwrap();
        symlink("sub/deeper", from.path().join("rel-link")).unwrap();

        let source = fs::File::open(from.path()).unwrap();
        let target = fs::File::open(to.path()).unwrap();
        copy_tree(source.as_fd(), target.as_fd()).unwrap();

        let t = to.path();
        assert_eq!(fs::read_to_string(t.join("a.txt")).unwrap(), "alpha");
        assert_eq!(fs::read_to_string(t.join("sub/deeper/b")).unwrap(), "beta");
        let mode = |p: &str| {
            fs::symlink_metadata(t.join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode("a.txt"), 0o751);
        assert_eq!(mode("sub"), 0o710);
        assert_eq!(
            fs::read_link(t.join("abs-link")).unwrap(),
            std::path::Path::new("/etc/passwd")
        );
        assert_eq!(
            fs::read_link(t.join("rel-link")).unwrap(),
            std::path::Path::new("sub/deeper")
        );
    }
}
