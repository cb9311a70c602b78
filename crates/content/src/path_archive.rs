//! Paths inside a container's root file system as `docker cp` and `docker export` see them:
//! stat a path, archive it as a tar, extract a tar into it, archive the whole tree.
//!
//! Docker's path rules (moby `container.ResolvePath`, `StatPath`, `daemon/archive.go`;
//! Engine API `ContainerArchive`, `ContainerArchiveInfo`, `PutContainerArchive`):
//!
//! - A path is absolute in the container (`etc/hosts` is `/etc/hosts`); `..` stops at `/`.
//! - Every directory above the last element is resolved with symlinks followed *inside* the
//!   container root (an absolute link target starts again at the container's `/`). The last
//!   element is not followed by stat and GET (a symlink is reported and archived as a
//!   symlink, with its in-root resolution as `linkTarget`; `-L` is the client's business),
//!   but is followed by PUT (the extraction point).
//! - A trailing `/` or `/.` makes the last element a directory to resolve; `/.` archives
//!   the directory's content (entries named `./...`), anything else archives the element
//!   itself under its base name.
//!
//! Containment: the root is held as a directory fd and every lookup goes through
//! [`crate::beneath`] (openat2 `RESOLVE_IN_ROOT`, `O_NOFOLLOW` on final components), so no
//! symlink planted in the container (CVE-2018-15664, CVE-2019-14271) can make the daemon
//! read or write host files. Extraction is confined to the extraction directory itself.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;
use tar::{EntryType, Header};

use crate::apply::{ApplyOptions, apply_at};
use crate::beneath::{self, Root};
use crate::error::{ContentError, IoContext, Result};

/// Go's `os.FileMode` type bits, which the `mode` of Docker's path stat carries.
mod go_mode {
    pub const DIR: u32 = 1 << 31;
    pub const SYMLINK: u32 = 1 << 27;
    pub const DEVICE: u32 = 1 << 26;
    pub const NAMED_PIPE: u32 = 1 << 25;
    pub const SOCKET: u32 = 1 << 24;
    pub const SETUID: u32 = 1 << 23;
    pub const SETGID: u32 = 1 << 22;
    pub const CHAR_DEVICE: u32 = 1 << 21;
    pub const STICKY: u32 = 1 << 20;
}

/// What `HEAD /containers/{id}/archive` reports in `X-Docker-Container-Path-Stat`
/// (Docker's `container.PathStat`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathStat {
    /// Base name of the path as asked (`.` for a trailing `/.`, `/` for the root).
    pub name: String,
    /// Size in bytes (`st_size`).
    pub size: u64,
    /// Go `os.FileMode`: permission bits plus Go's type and special bits.
    pub mode: u32,
    /// Modification time, seconds since the epoch.
    pub mtime_sec: i64,
    /// Nanoseconds of the modification time.
    pub mtime_nsec: u32,
    /// For a symlink: its target resolved inside the root, as an absolute path; else empty.
    pub link_target: String,
}

impl PathStat {
    /// Whether the path is a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & go_mode::DIR != 0
    }
}

/// Converts `st_mode` to Go's `os.FileMode` (Go `os/stat_linux.go` `fillFileStatFromSys`).
pub fn go_file_mode(st_mode: u32) -> u32 {
    let mut mode = st_mode & 0o777;
    mode |= match FileType::from_raw_mode(st_mode) {
        FileType::Directory => go_mode::DIR,
        FileType::Symlink => go_mode::SYMLINK,
        FileType::Fifo => go_mode::NAMED_PIPE,
        FileType::Socket => go_mode::SOCKET,
        FileType::CharacterDevice => go_mode::DEVICE | go_mode::CHAR_DEVICE,
        FileType::BlockDevice => go_mode::DEVICE,
        _ => 0,
    };
    if st_mode & 0o4000 != 0 {
        mode |= go_mode::SETUID;
    }
    if st_mode & 0o2000 != 0 {
        mode |= go_mode::SETGID;
    }
    if st_mode & 0o1000 != 0 {
        mode |= go_mode::STICKY;
    }
    mode
}

/// A container's root directory, opened once; all paths are resolved beneath it.
pub struct ContainerRoot {
    root: Root,
}

/// A path split as Docker splits it.
struct Located {
    /// The directory holding the element, resolved in-root.
    dir: Vec<OsString>,
    /// The last element, not followed; `None` when the path names `dir` itself (a trailing
    /// `/` or `/.`, or the root).
    name: Option<OsString>,
    /// `filepath.Base` of the absolute path: the stat name and the archive's rebase name.
    base: String,
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Maps a lookup failure of `path` to "not found" where Docker says so.
fn lookup_error(path: &str, e: Errno) -> ContentError {
    match e {
        Errno::NOENT | Errno::NOTDIR => ContentError::PathNotFound(path.to_owned()),
        e => ContentError::io(format!("resolve {path}"), e.into()),
    }
}

impl ContainerRoot {
    /// Opens the directory at `path` (trusted: the daemon's own mount of the container's
    /// root file system) as a root.
    pub fn open(path: &Path) -> Result<Self> {
        let root = Root::open(path).ctx(|| format!("open {}", path.display()))?;
        Ok(Self { root })
    }

    fn locate(&self, path: &str) -> Result<Located> {
        let comps = clean_abs(path);
        let trailing_dot = path == "." || path.ends_with("/.");
        let trailing_slash = path.ends_with('/');
        if comps.is_empty() {
            let dir = Vec::new();
            let base = if trailing_dot { "." } else { "/" };
            return Ok(Located {
                dir,
                name: None,
                base: base.to_owned(),
            });
        }
        if trailing_dot || trailing_slash {
            let dir = self
                .root
                .resolve(&comps, true)
                .map_err(|e| lookup_error(path, e))?;
            let base = if trailing_dot {
                ".".to_owned()
            } else {
                comps
                    .last()
                    .expect("non-empty")
                    .to_string_lossy()
                    .into_owned()
            };
            return Ok(Located {
                dir,
                name: None,
                base,
            });
        }
        let (name, parent) = comps.split_last().expect("non-empty");
        let dir = self
            .root
            .resolve(parent, true)
            .map_err(|e| lookup_error(path, e))?;
        Ok(Located {
            dir,
            name: Some(name.clone()),
            base: name.to_string_lossy().into_owned(),
        })
    }

    /// The stat of `located`, with the fd of its directory (or of itself when it is one
    /// named by a trailing `/`).
    fn stat_located(&self, path: &str, located: &Located) -> Result<(Stat, OwnedFd)> {
        let dir = self
            .root
            .open_dir(&located.dir)
            .map_err(|e| lookup_error(path, e))?;
        let st = match &located.name {
            Some(name) => rustix::fs::statat(&dir, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| lookup_error(path, e))?,
            None => rustix::fs::fstat(&dir).ctx(|| format!("stat {path}"))?,
        };
        Ok((st, dir))
    }

    /// `HEAD /containers/{id}/archive?path=`: the stat of `path` (the last element not
    /// followed). `PathNotFound` if it does not exist.
    pub fn stat(&self, path: &str) -> Result<PathStat> {
        let located = self.locate(path)?;
        let (st, _) = self.stat_located(path, &located)?;
        self.to_path_stat(path, &located, &st)
    }

    fn to_path_stat(&self, path: &str, located: &Located, st: &Stat) -> Result<PathStat> {
        let mut link_target = String::new();
        if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
            let mut comps = located.dir.clone();
            comps.extend(located.name.clone());
            let resolved = self
                .root
                .resolve(&comps, true)
                .map_err(|e| lookup_error(path, e))?;
            link_target = abs_display(&resolved);
        }
        Ok(PathStat {
            name: located.base.clone(),
            size: st.st_size as u64,
            mode: go_file_mode(st.st_mode),
            mtime_sec: st.st_mtime,
            mtime_nsec: st.st_mtime_nsec as u32,
            link_target,
        })
    }

    /// `GET /containers/{id}/archive?path=`: writes a tar of `path` to `out` and returns its
    /// stat. A directory's entries are named `<base>/...` (`./...` for a trailing `/.`), a
    /// file or symlink is one entry named `<base>`.
    pub fn archive(&self, path: &str, out: impl Write) -> Result<PathStat> {
        let located = self.locate(path)?;
        let (st, dir) = self.stat_located(path, &located)?;
        let stat = self.to_path_stat(path, &located, &st)?;
        let mut writer = TreeWriter::new(out);
        match &located.name {
            Some(name) => {
                writer.node(dir.as_fd(), name, located.base.as_bytes().to_vec())?;
            }
            None if located.base == "/" => writer.dir_children(dir, b"")?,
            None => {
                let mut own = located.base.as_bytes().to_vec();
                own.push(b'/');
                writer.append(
                    &header_of(&st, EntryType::Directory),
                    &own,
                    None,
                    io::empty(),
                )?;
                writer.dir_children(dir, &own)?;
            }
        }
        writer.finish()?;
        Ok(stat)
    }

    /// `GET /containers/{id}/export`: writes a tar of the whole tree (entries relative to
    /// the root, without an entry for the root itself) to `out`.
    pub fn export(&self, out: impl Write) -> Result<()> {
        let dir = self.root.open_dir(&[]).ctx(|| "open root".into())?;
        let mut writer = TreeWriter::new(out);
        writer.dir_children(dir, b"")?;
        writer.finish()
    }

    /// Opens the directory at `path` (every symlink resolved in-root, the last one too);
    /// `None` if there is no directory there. For copying an image's content into a new
    /// volume, which must not follow a link of the image out of its root.
    pub fn open_dir(&self, path: &str) -> Result<Option<OwnedFd>> {
        let comps = clean_abs(path);
        let missing = |e: Errno| matches!(e, Errno::NOENT | Errno::NOTDIR | Errno::LOOP);
        let resolved = match self.root.resolve(&comps, true) {
            Ok(r) => r,
            Err(e) if missing(e) => return Ok(None),
            Err(e) => return Err(e).ctx(|| format!("resolve {path}")),
        };
        match self.root.open_dir(&resolved) {
            Ok(fd) => Ok(Some(fd)),
            Err(e) if missing(e) => Ok(None),
            Err(e) => Err(e).ctx(|| format!("open {path}")),
        }
    }

    /// Reads the regular file at `path` (every symlink resolved in-root), at most `limit`
    /// bytes; `None` if there is no regular file there.
    pub fn read_file(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        let comps = clean_abs(path);
        let missing = |e: Errno| matches!(e, Errno::NOENT | Errno::NOTDIR | Errno::LOOP);
        let resolved = match self.root.resolve(&comps, true) {
            Ok(r) => r,
            Err(e) if missing(e) => return Ok(None),
            Err(e) => return Err(e).ctx(|| format!("resolve {path}")),
        };
        let Some((name, parent)) = resolved.split_last() else {
            return Ok(None);
        };
        let dir = match self.root.open_dir(parent) {
            Ok(fd) => fd,
            Err(e) if missing(e) => return Ok(None),
            Err(e) => return Err(e).ctx(|| format!("resolve {path}")),
        };
        let fd = match rustix::fs::openat(
            &dir,
            name.as_os_str(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(e) if missing(e) => return Ok(None),
            Err(e) => return Err(e).ctx(|| format!("open {path}")),
        };
        let st = rustix::fs::fstat(&fd).ctx(|| format!("stat {path}"))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Ok(None);
        }
        let mut out = Vec::new();
        File::from(fd)
            .take(limit)
            .read_to_end(&mut out)
            .ctx(|| format!("read {path}"))?;
        Ok(Some(out))
    }

    /// `PUT /containers/{id}/archive?path=`: extracts the tar (plain or compressed) read from
    /// `reader` into the directory at `path` (followed, also when it is a symlink).
    /// `PathNotFound` if it does not exist, `NotADirectory` if it is not a directory; a
    /// stream that is not a tar fails before anything is written. `.wh.` names are not
    /// whiteouts here unless `options` say so.
    pub fn extract(&self, path: &str, reader: impl Read, options: &ApplyOptions) -> Result<()> {
        let comps = clean_abs(path);
        let resolved = self
            .root
            .resolve(&comps, true)
            .map_err(|e| lookup_error(path, e))?;
        let fd = match resolved.split_last() {
            None => self.root.open_dir(&[]).ctx(|| "open root".into())?,
            Some((name, parent)) => {
                let parent = self
                    .root
                    .open_dir(parent)
                    .map_err(|e| lookup_error(path, e))?;
                let st = rustix::fs::statat(&parent, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| lookup_error(path, e))?;
                if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                    return Err(ContentError::NotADirectory(path.to_owned()));
                }
                rustix::fs::openat(&parent, name.as_os_str(), DIR_FLAGS, Mode::empty())
                    .map_err(|e| lookup_error(path, e))?
            }
        };
        apply_at(Root::from_fd(fd), reader, options)?;
        Ok(())
    }
}

/// An absolute path for components (`/` for none).
fn abs_display(comps: &[OsString]) -> String {
    let mut out = String::new();
    for comp in comps {
        out.push('/');
        out.push_str(&comp.to_string_lossy());
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// `filepath.Join("/", path)` as components: `.` and empty ones dropped, `..` stopping at
/// the root.
fn clean_abs(path: &str) -> Vec<OsString> {
    let mut out: Vec<OsString> = Vec::new();
    for comp in path.as_bytes().split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            c => out.push(OsString::from_vec(c.to_vec())),
        }
    }
    out
}

/// A GNU header with the owner, mode and mtime of `st`.
fn header_of(st: &Stat, kind: EntryType) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
    h.set_size(0);
    h
}

/// Writes a tree read through directory fds (never following a symlink) as tar entries
/// whose names are given verbatim: `./x` stays `./x`, which the docker CLI relies on when
/// it rebases the entries of a `/.` copy.
struct TreeWriter<W: Write> {
    builder: tar::Builder<W>,
    /// First archive name of each multiply-linked inode, for hard link entries.
    links: HashMap<(u64, u64), Vec<u8>>,
}

impl<W: Write> TreeWriter<W> {
    fn new(out: W) -> Self {
        Self {
            builder: tar::Builder::new(out),
            links: HashMap::new(),
        }
    }

    fn finish(self) -> Result<()> {
        self.builder
            .into_inner()
            .ctx(|| "finish archive".into())?
            .flush()
            .ctx(|| "finish archive".into())
    }

    /// Appends one entry with a raw name (and link name), using GNU long-name records
    /// when they do not fit in the header.
    fn append(
        &mut self,
        header: &Header,
        name: &[u8],
        link: Option<&[u8]>,
        data: impl Read,
    ) -> Result<()> {
        let what = || format!("archive {}", String::from_utf8_lossy(name));
        let mut h = header.clone();
        if name.len() > 100 {
            self.long_record(b'L', name).ctx(what)?;
        }
        if let Some(link) = link.filter(|l| l.len() > 100) {
            self.long_record(b'K', link).ctx(what)?;
        }
        {
            let old = h.as_old_mut();
            old.name = [0; 100];
            let n = name.len().min(100);
            old.name[..n].copy_from_slice(&name[..n]);
            if let Some(link) = link {
                old.linkname = [0; 100];
                let n = link.len().min(100);
                old.linkname[..n].copy_from_slice(&link[..n]);
            }
        }
        h.set_cksum();
        self.builder.append(&h, data).ctx(what)
    }

    /// A GNU `././@LongLink` record of type `kind` (`L` name, `K` link name).
    fn long_record(&mut self, kind: u8, value: &[u8]) -> io::Result<()> {
        let mut h = Header::new_gnu();
        let marker = b"././@LongLink";
        h.as_old_mut().name[..marker.len()].copy_from_slice(marker);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(EntryType::new(kind));
        h.set_size(value.len() as u64 + 1);
        h.set_cksum();
        self.builder.append(&h, value.chain(&[0u8][..]))
    }

    /// Appends the children of the open directory `dir`, named `prefix` + name, sorted.
    fn dir_children(&mut self, dir: OwnedFd, prefix: &[u8]) -> Result<()> {
        let mut names = beneath::list_dir(dir.as_fd()).ctx(|| "read directory".into())?;
        names.sort();
        for name in names {
            let mut arch = prefix.to_vec();
            arch.extend_from_slice(name.as_bytes());
            self.node(dir.as_fd(), &name, arch)?;
        }
        Ok(())
    }

    /// Appends `name` in `parent` (not followed) as `arch`, and a directory's content.
    /// Sockets are skipped (tar cannot carry them; Docker skips them too).
    fn node(&mut self, parent: BorrowedFd<'_>, name: &OsStr, mut arch: Vec<u8>) -> Result<()> {
        let shown = String::from_utf8_lossy(&arch).into_owned();
        let what = || format!("archive {shown}");
        let st = match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            // Removed while we walked: a running container changes its files.
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(e).ctx(what),
        };
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                let dir = match rustix::fs::openat(parent, name, DIR_FLAGS, Mode::empty()) {
                    Ok(fd) => fd,
                    Err(Errno::NOENT) => return Ok(()),
                    Err(e) => return Err(e).ctx(what),
                };
                arch.push(b'/');
                self.append(
                    &header_of(&st, EntryType::Directory),
                    &arch,
                    None,
                    io::empty(),
                )?;
                self.dir_children(dir, &arch)?;
            }
            FileType::RegularFile => {
                if st.st_nlink > 1 {
                    let key = (st.st_dev, st.st_ino);
                    if let Some(first) = self.links.get(&key).cloned() {
                        let h = header_of(&st, EntryType::Link);
                        return self.append(&h, &arch, Some(&first), io::empty());
                    }
                    self.links.insert(key, arch.clone());
                }
                let fd = match rustix::fs::openat(
                    parent,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                ) {
                    Ok(fd) => fd,
                    Err(Errno::NOENT) => return Ok(()),
                    Err(e) => return Err(e).ctx(what),
                };
                let st = rustix::fs::fstat(&fd).ctx(what)?;
                let size = st.st_size as u64;
                let mut h = header_of(&st, EntryType::Regular);
                h.set_size(size);
                // Exactly `size` bytes whatever the file does meanwhile: cut if it grew,
                // zero-padded if it shrank, so the archive stays well-formed.
                let data = File::from(fd).take(size).chain(io::repeat(0)).take(size);
                self.append(&h, &arch, None, data)?;
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(parent, name, Vec::new()).ctx(what)?;
                let h = header_of(&st, EntryType::Symlink);
                self.append(&h, &arch, Some(target.as_bytes()), io::empty())?;
            }
            ft @ (FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo) => {
                let kind = match ft {
                    FileType::CharacterDevice => EntryType::Char,
                    FileType::BlockDevice => EntryType::Block,
                    _ => EntryType::Fifo,
                };
                let mut h = header_of(&st, kind);
                if kind != EntryType::Fifo {
                    h.set_device_major(rustix::fs::major(st.st_rdev))
                        .ctx(what)?;
                    h.set_device_minor(rustix::fs::minor(st.st_rdev))
                        .ctx(what)?;
                }
                self.append(&h, &arch, None, io::empty())?;
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::WhiteoutMode;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn entries(tar_bytes: &[u8]) -> Vec<(String, EntryType, Vec<u8>)> {
        let mut archive = tar::Archive::new(tar_bytes);
        let mut out = Vec::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            let kind = e.header().entry_type();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            out.push((name, kind, data));
        }
        out
    }

    fn file_header(size: u64, mode: u32) -> Header {
        let mut h = Header::new_gnu();
        h.set_size(size);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(EntryType::Regular);
        h
    }

    fn tree() -> (tempfile::TempDir, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let host = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc/sub")).unwrap();
        std::fs::write(root.join("etc/passwd"), b"container passwd").unwrap();
        std::fs::write(root.join("etc/sub/f"), b"f").unwrap();
        std::fs::set_permissions(
            root.join("etc/sub/f"),
            std::fs::Permissions::from_mode(0o751),
        )
        .unwrap();
        std::fs::write(host.path().join("secret"), b"host").unwrap();
        symlink("/etc", root.join("etclink")).unwrap();
        symlink(host.path(), root.join("hostlink")).unwrap();
        symlink("../../../..", root.join("up")).unwrap();
        (dir, host)
    }

    #[test]
    fn go_modes() {
        assert_eq!(go_file_mode(0o040755), (1 << 31) | 0o755);
        assert_eq!(go_file_mode(0o100644), 0o644);
        assert_eq!(go_file_mode(0o120777), (1 << 27) | 0o777);
        assert_eq!(go_file_mode(0o104755), (1 << 23) | 0o755);
        assert_eq!(go_file_mode(0o020666), (1 << 26) | (1 << 21) | 0o666);
    }

    #[test]
    fn stat_follows_parents_in_root_only() {
        let (dir, host) = tree();
        let root = ContainerRoot::open(dir.path()).unwrap();
        let st = root.stat("/etc/passwd").unwrap();
        assert_eq!((st.name.as_str(), st.size), ("passwd", 16));
        // The link itself, and its target resolved inside the root.
        let link = root.stat("etclink").unwrap();
        assert_eq!(link.link_target, "/etc");
        assert!(!link.is_dir());
        // Through the link: the container's /etc, never the host's.
        assert_eq!(root.stat("/etclink/passwd").unwrap().size, 16);
        assert!(root.stat("/etclink/").unwrap().is_dir());
        // A link to a host directory resolves to that path inside the root: missing.
        let secret = "/hostlink/secret";
        assert!(matches!(
            root.stat(secret),
            Err(ContentError::PathNotFound(_))
        ));
        let _ = host;
        // `..` and climbing links stop at the root.
        assert_eq!(root.stat("/../../etc/passwd").unwrap().size, 16);
        assert_eq!(root.stat("/up/etc/passwd").unwrap().size, 16);
        assert_eq!(root.stat("/etc/.").unwrap().name, ".");
        assert_eq!(root.stat("/").unwrap().name, "/");
        assert!(matches!(
            root.stat("/nope"),
            Err(ContentError::PathNotFound(_))
        ));
        assert!(matches!(
            root.stat("/etc/passwd/x"),
            Err(ContentError::PathNotFound(_))
        ));
    }

    #[test]
    fn archive_names_follow_docker() {
        let (dir, _host) = tree();
        let root = ContainerRoot::open(dir.path()).unwrap();
        let mut out = Vec::new();
        root.archive("/etc", &mut out).unwrap();
        let names: Vec<String> = entries(&out).into_iter().map(|e| e.0).collect();
        assert_eq!(
            names,
            ["etc/", "etc/passwd", "etc/sub/", "etc/sub/f"],
            "{names:?}"
        );
        let mut out = Vec::new();
        root.archive("/etc/.", &mut out).unwrap();
        let names: Vec<String> = entries(&out).into_iter().map(|e| e.0).collect();
        assert_eq!(names, ["./", "./passwd", "./sub/", "./sub/f"], "{names:?}");
        let mut out = Vec::new();
        root.archive("/etclink/sub/f", &mut out).unwrap();
        let got = entries(&out);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "f");
        assert_eq!(got[0].2, b"f");
        let mut out = Vec::new();
        root.archive("/etclink", &mut out).unwrap();
        let got = entries(&out);
        assert_eq!(
            (got[0].0.as_str(), got[0].1),
            ("etclink", EntryType::Symlink)
        );
        // Long names survive.
        let long = "d".repeat(150);
        std::fs::write(dir.path().join("etc").join(&long), b"x").unwrap();
        let mut out = Vec::new();
        root.archive("/etc", &mut out).unwrap();
        assert!(entries(&out).iter().any(|e| e.0 == format!("etc/{long}")));
    }

    #[test]
    fn extract_stays_inside() {
        let (dir, host) = tree();
        let root = ContainerRoot::open(dir.path()).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = file_header(3, 0o640);
        b.append_data(&mut h, "new/file", &b"abc"[..]).unwrap();
        let mut h = file_header(0, 0o644);
        b.append_data(&mut h, ".wh.kept", io::empty()).unwrap();
        let tar_bytes = b.into_inner().unwrap();
        let options = ApplyOptions {
            whiteouts: WhiteoutMode::Keep,
            ..ApplyOptions::default()
        };
        // Through a symlink to /etc: the container's /etc.
        root.extract("/etclink", &tar_bytes[..], &options).unwrap();
        let written = dir.path().join("etc/new/file");
        assert_eq!(std::fs::read(&written).unwrap(), b"abc");
        assert_eq!(
            std::fs::metadata(&written).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert!(dir.path().join("etc/.wh.kept").is_file());
        // A link to a host dir is not followed out of the root.
        assert!(matches!(
            root.extract("/hostlink", &tar_bytes[..], &options),
            Err(ContentError::PathNotFound(_))
        ));
        assert_eq!(std::fs::read_dir(host.path()).unwrap().count(), 1);
        assert!(matches!(
            root.extract("/etc/passwd", &tar_bytes[..], &options),
            Err(ContentError::NotADirectory(_))
        ));
        assert!(matches!(
            root.extract("/missing", &tar_bytes[..], &options),
            Err(ContentError::PathNotFound(_))
        ));
        // Not a tar: refused, nothing written.
        let before = std::fs::read_dir(dir.path().join("etc")).unwrap().count();
        let junk = vec![b'x'; 2000];
        assert!(matches!(
            root.extract("/etc", &junk[..], &options),
            Err(ContentError::InvalidTar(_))
        ));
        assert_eq!(
            std::fs::read_dir(dir.path().join("etc")).unwrap().count(),
            before
        );
        // `..` in an entry is refused.
        let mut raw = file_header(0, 0o644);
        raw.as_old_mut().name[..9].copy_from_slice(b"../escape");
        raw.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        b.append(&raw, io::empty()).unwrap();
        let evil = b.into_inner().unwrap();
        assert!(matches!(
            root.extract("/etc", &evil[..], &options),
            Err(ContentError::Breakout { .. })
        ));
        assert!(!dir.path().join("escape").exists());
    }

    #[test]
    fn read_file_in_root() {
        let (dir, _host) = tree();
        let root = ContainerRoot::open(dir.path()).unwrap();
        assert_eq!(
            root.read_file("/etclink/passwd", 100).unwrap().unwrap(),
            b"container passwd"
        );
        assert_eq!(root.read_file("/etc/passwd", 4).unwrap().unwrap(), b"cont");
        assert_eq!(root.read_file("/hostlink/secret", 100).unwrap(), None);
        assert_eq!(root.read_file("/etc", 100).unwrap(), None);
    }

    #[test]
    fn no_overwrite_dir_non_dir() {
        let (dir, _host) = tree();
        let root = ContainerRoot::open(dir.path()).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = file_header(1, 0o644);
        b.append_data(&mut h, "sub", &b"x"[..]).unwrap();
        let tar_bytes = b.into_inner().unwrap();
        let options = ApplyOptions {
            whiteouts: WhiteoutMode::Keep,
            no_overwrite_dir_non_dir: true,
            ..ApplyOptions::default()
        };
        assert!(matches!(
            root.extract("/etc", &tar_bytes[..], &options),
            Err(ContentError::OverwriteDirNonDir(_))
        ));
        assert!(dir.path().join("etc/sub/f").exists());
    }

    #[test]
    fn export_lists_the_tree() {
        let (dir, _host) = tree();
        let root = ContainerRoot::open(dir.path()).unwrap();
        let mut out = Vec::new();
        root.export(&mut out).unwrap();
        let names: Vec<String> = entries(&out).into_iter().map(|e| e.0).collect();
        assert!(names.contains(&"etc/passwd".to_owned()), "{names:?}");
        assert!(names.contains(&"etclink".to_owned()), "{names:?}");
        assert!(
            !names
                .iter()
                .any(|n| n.starts_with('/') || n.starts_with("./"))
        );
    }
}
