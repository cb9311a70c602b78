//! Copying a whole tree with everything a root filesystem needs preserved: file types
//! (regular, directory, symlink, character and block devices, fifos), owners, modes
//! (set-user-ID included), mtimes, xattrs and hard links. Used by the copy snapshot driver,
//! where overlayfs is not available (like Docker's `vfs` driver).
//!
//! The source is a directory of our own store, never a path chosen by an image; symlinks in
//! it are copied as symlinks and never followed.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Gid, Mode, Timespec, Timestamps, Uid, XattrFlags};

use crate::error::{IoContext, Result};

/// Copies the contents of directory `src` into the existing directory `dst`, then gives
/// `dst` the owner, mode, xattrs and times of `src`.
pub fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let mut links = HashMap::new();
    copy_dir_contents(src, dst, &mut links)?;
    copy_meta(src, dst, &fs::symlink_metadata(src).ctx(|| stat_ctx(src))?)
}

/// Sum of the sizes of the regular files under `dir`, not following symlinks (what `docker
/// ps --size` and `docker system df` count).
pub fn tree_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).ctx(|| format!("read {}", d.display()))? {
            let entry = entry.ctx(|| format!("read {}", d.display()))?;
            let meta = entry
                .metadata()
                .ctx(|| format!("stat {}", entry.path().display()))?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    Ok(total)
}

fn stat_ctx(p: &Path) -> String {
    format!("stat {}", p.display())
}

fn copy_dir_contents(
    src: &Path,
    dst: &Path,
    links: &mut HashMap<(u64, u64), std::path::PathBuf>,
) -> Result<()> {
    let mut names: Vec<OsString> = fs::read_dir(src)
        .ctx(|| format!("read {}", src.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .ctx(|| format!("read {}", src.display()))?;
    names.sort();
    for name in names {
        let s = src.join(&name);
        let d = dst.join(&name);
        let meta = fs::symlink_metadata(&s).ctx(|| stat_ctx(&s))?;
        let ft = FileType::from_raw_mode(meta.mode());
        let ctx = || format!("copy {} to {}", s.display(), d.display());
        if ft != FileType::Directory && meta.nlink() > 1 {
            if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                fs::hard_link(first, &d).ctx(ctx)?;
                continue;
            }
            links.insert((meta.dev(), meta.ino()), d.clone());
        }
        match ft {
            FileType::Directory => {
                fs::create_dir(&d).ctx(ctx)?;
                copy_dir_contents(&s, &d, links)?;
            }
            FileType::RegularFile => {
                fs::copy(&s, &d).ctx(ctx)?;
            }
            FileType::Symlink => {
                symlink(fs::read_link(&s).ctx(ctx)?, &d).ctx(ctx)?;
            }
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                rustix::fs::mknodat(
                    rustix::fs::CWD,
                    &d,
                    ft,
                    Mode::from(meta.mode() & 0o777),
                    meta.rdev(),
                )
                .ctx(ctx)?;
            }
            // Sockets are not part of images (tar cannot carry them either).
            _ => continue,
        }
        copy_meta(&s, &d, &meta)?;
    }
    Ok(())
}

/// Owner, xattrs, mode (after chown, which clears set-user-ID bits), then times; never
/// following a symlink at `d`.
fn copy_meta(s: &Path, d: &Path, meta: &fs::Metadata) -> Result<()> {
    let ctx = || format!("copy metadata of {} to {}", s.display(), d.display());
    let is_symlink = meta.file_type().is_symlink();
    rustix::fs::chownat(
        rustix::fs::CWD,
        d,
        Some(Uid::from_raw(meta.uid())),
        Some(Gid::from_raw(meta.gid())),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .ctx(ctx)?;
    copy_xattrs(s, d).ctx(ctx)?;
    if !is_symlink {
        rustix::fs::chmodat(
            rustix::fs::CWD,
            d,
            Mode::from(meta.mode() & 0o7777),
            AtFlags::empty(),
        )
        .ctx(ctx)?;
    }
    let mtime = Timespec {
        tv_sec: meta.mtime(),
        tv_nsec: meta.mtime_nsec() as _,
    };
    let atime = Timespec {
        tv_sec: meta.atime(),
        tv_nsec: meta.atime_nsec() as _,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        d,
        &Timestamps {
            last_access: atime,
            last_modification: mtime,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .ctx(ctx)
}

/// Copies every xattr of `s` to `d` (l* calls: symlinks are not followed).
pub(crate) fn copy_xattrs(s: &Path, d: &Path) -> rustix::io::Result<()> {
    for name in list_xattrs(s)? {
        if let Some(value) = get_xattr(s, &name)? {
            rustix::fs::lsetxattr(d, name.as_os_str(), &value, XattrFlags::empty())?;
        }
    }
    Ok(())
}

/// Names of the xattrs of `p`, not following a symlink.
pub(crate) fn list_xattrs(p: &Path) -> rustix::io::Result<Vec<OsString>> {
    use std::os::unix::ffi::OsStrExt;
    let mut buf = vec![0u8; 1024];
    loop {
        match rustix::fs::llistxattr(p, &mut buf[..]) {
            Ok(n) => {
                return Ok(buf[..n]
                    .split(|&b| b == 0)
                    .filter(|n| !n.is_empty())
                    .map(|n| std::ffi::OsStr::from_bytes(n).to_os_string())
                    .collect());
            }
            Err(rustix::io::Errno::RANGE) => buf.resize(buf.len() * 4, 0),
            Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        }
    }
}

/// The value of xattr `name` of `p` (not following a symlink); `None` if absent.
pub(crate) fn get_xattr(p: &Path, name: &std::ffi::OsStr) -> rustix::io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 256];
    loop {
        match rustix::fs::lgetxattr(p, name, &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(rustix::io::Errno::RANGE) => buf.resize(buf.len() * 4, 0),
            Err(rustix::io::Errno::NODATA) | Err(rustix::io::Errno::NOTSUP) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn copies_types_links_and_metadata() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        let dst = dir.path().join("dst");
        fs::create_dir_all(src.join("d/e")).unwrap();
        fs::create_dir(&dst).unwrap();
        fs::write(src.join("d/f"), b"data").unwrap();
        fs::hard_link(src.join("d/f"), src.join("hl")).unwrap();
        symlink("/nonexistent/target", src.join("sl")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            src.join("null"),
            FileType::CharacterDevice,
            Mode::from(0o666),
            rustix::fs::makedev(1, 3),
        )
        .unwrap();
        fs::set_permissions(src.join("d/f"), fs::Permissions::from_mode(0o4750)).unwrap();
        rustix::fs::chownat(
            rustix::fs::CWD,
            src.join("d/f"),
            Some(Uid::from_raw(5)),
            Some(Gid::from_raw(6)),
            AtFlags::empty(),
        )
        .unwrap();
        fs::set_permissions(src.join("d/f"), fs::Permissions::from_mode(0o4750)).unwrap();
        rustix::fs::lsetxattr(src.join("d/e"), "user.k", b"v", XattrFlags::empty()).unwrap();

        copy_tree(&src, &dst).unwrap();

        assert_eq!(fs::read(dst.join("d/f")).unwrap(), b"data");
        let f = fs::metadata(dst.join("d/f")).unwrap();
        assert_eq!((f.uid(), f.gid(), f.mode() & 0o7777), (5, 6, 0o4750));
        assert_eq!(f.ino(), fs::metadata(dst.join("hl")).unwrap().ino());
        assert_eq!(
            fs::read_link(dst.join("sl")).unwrap(),
            Path::new("/nonexistent/target")
        );
        assert_eq!(
            fs::metadata(dst.join("null")).unwrap().rdev(),
            rustix::fs::makedev(1, 3)
        );
        assert_eq!(
            get_xattr(&dst.join("d/e"), std::ffi::OsStr::new("user.k")).unwrap(),
            Some(b"v".to_vec())
        );
        assert_eq!(
            fs::metadata(dst.join("d/f")).unwrap().mtime(),
            fs::metadata(src.join("d/f")).unwrap().mtime()
        );
    }
}
