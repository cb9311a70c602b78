//! Turning an overlayfs upper directory (a container's changes) back into a layer tar, for
//! commit and export: the inverse of [`crate::apply_layer`] in overlay mode.
//!
//! Conversions (overlayfs.rst "whiteouts and opaque directories"; OCI layer.md "Whiteouts"):
//! a character device 0/0 named `<name>` becomes an empty regular entry `.wh.<name>`; a
//! directory with `trusted.overlay.opaque=y` is written, followed by an entry
//! `<dir>/.wh..wh..opq`. overlayfs's own `trusted.overlay.*` xattrs are never exported.
//! Entries are written in sorted order, so the same tree gives the same bytes (and DiffID).
//!
//! [`diff_trees`] does the same for two full trees (the copy driver), by comparing metadata.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::FileType;
use tar::{EntryType, Header};
use types::Digest;

use crate::copy::{get_xattr, list_xattrs};
use crate::error::{ContentError, IoContext, Result};
use crate::hash::HashingWriter;
use crate::whiteout::{OPAQUE_MARKER, OVERLAY_OPAQUE_XATTR, WHITEOUT_PREFIX};

/// Writes the layer tar of overlay upper directory `upper` to `out`; returns its DiffID
/// (sha256 of the bytes written). `out` is not flushed beyond what the tar writer does.
pub fn diff_overlay_upper(upper: &Path, out: impl Write) -> Result<Digest> {
    let mut builder = tar::Builder::new(HashingWriter::new(out));
    builder.follow_symlinks(false);
    let mut state = DiffWriter {
        builder,
        links: HashMap::new(),
    };
    state.walk(upper, Path::new(""))?;
    let hashing = state
        .builder
        .into_inner()
        .ctx(|| "finish layer tar".into())?;
    let (digest, _, _) = hashing.finish();
    Ok(digest)
}

/// Writes the layer tar of the changes from tree `old` to tree `new` (two full trees, as the
/// copy snapshot driver keeps them) to `out`; returns its DiffID. Deleted names become
/// `.wh.` entries; opaque markers are never needed since deletions are listed one by one.
/// With `old` absent, everything in `new` is an addition.
pub fn diff_trees(old: Option<&Path>, new: &Path, out: impl Write) -> Result<Digest> {
    let mut builder = tar::Builder::new(HashingWriter::new(out));
    builder.follow_symlinks(false);
    let mut state = DiffWriter {
        builder,
        links: HashMap::new(),
    };
    state.walk_trees(old, new, Path::new(""))?;
    let hashing = state
        .builder
        .into_inner()
        .ctx(|| "finish layer tar".into())?;
    let (digest, _, _) = hashing.finish();
    Ok(digest)
}

struct DiffWriter<W: Write> {
    builder: tar::Builder<W>,
    /// First archive path of each multiply-linked inode, for hard link entries.
    links: HashMap<(u64, u64), PathBuf>,
}

impl<W: Write> DiffWriter<W> {
    /// Overlay upper walk: everything present is a change; 0/0 devices are whiteouts.
    fn walk(&mut self, dir: &Path, rel: &Path) -> Result<()> {
        for name in sorted_names(dir)? {
            let path = dir.join(&name);
            let arch = rel.join(&name);
            let meta = stat(&path)?;
            let ft = FileType::from_raw_mode(meta.mode());
            if ft == FileType::CharacterDevice && meta.rdev() == 0 {
                self.append_whiteout(rel, &name, &meta)?;
                continue;
            }
            self.append_entry(&path, &arch, &meta)?;
            if ft == FileType::Directory {
                if get_xattr(&path, OVERLAY_OPAQUE_XATTR.as_ref())
                    .ctx(|| format!("read xattrs of {}", path.display()))?
                    .is_some_and(|v| v == b"y")
                {
                    let mut h = header(&meta, EntryType::Regular);
                    h.set_mode(0o644);
                    self.builder
                        .append_data(&mut h, arch.join(OPAQUE_MARKER), std::io::empty())
                        .ctx(|| format!("add {} to layer", path.display()))?;
                }
                self.walk(&path, &arch)?;
            }
        }
        Ok(())
    }

    /// Tree comparison walk (Docker's `ChangesDirs`): `new` is compared with `old` (absent
    /// when the whole directory is new). Names only in `old` become whiteouts, names only in
    /// `new` or changed become entries; unchanged directories are descended into without an
    /// entry of their own.
    fn walk_trees(&mut self, old: Option<&Path>, new: &Path, rel: &Path) -> Result<()> {
        let new_names = sorted_names(new)?;
        let old_names = match old {
            Some(old) => sorted_names(old)?,
            None => Vec::new(),
        };
        let mut all: Vec<(&OsString, bool)> = new_names.iter().map(|n| (n, true)).collect();
        all.extend(
            old_names
                .iter()
                .filter(|n| new_names.binary_search(n).is_err())
                .map(|n| (n, false)),
        );
        all.sort();
        let new_meta = stat(new)?;
        for (name, in_new) in all {
            let arch = rel.join(name);
            if !in_new {
                self.append_whiteout(rel, name, &new_meta)?;
                continue;
            }
            let path = new.join(name);
            let meta = stat(&path)?;
            let is_dir = meta.file_type().is_dir();
            let old_path = old.map(|o| o.join(name));
            let old_meta = match &old_path {
                Some(p) => match fs::symlink_metadata(p) {
                    Ok(m) => Some(m),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(e) => return Err(ContentError::io(format!("stat {}", p.display()), e)),
                },
                None => None,
            };
            let changed = match (&old_meta, &old_path) {
                (Some(om), Some(op)) => differs(op, om, &path, &meta)?,
                _ => true,
            };
            if changed {
                self.append_entry(&path, &arch, &meta)?;
            }
            if is_dir {
                let old_dir = old_path
                    .as_deref()
                    .filter(|_| old_meta.as_ref().is_some_and(|m| m.file_type().is_dir()));
                self.walk_trees(old_dir, &path, &arch)?;
            }
        }
        Ok(())
    }

    /// An empty `.wh.<name>` entry in directory `rel`.
    fn append_whiteout(&mut self, rel: &Path, name: &OsStr, meta: &fs::Metadata) -> Result<()> {
        let mut marker = OsString::from(WHITEOUT_PREFIX);
        marker.push(name);
        let mut h = header(meta, EntryType::Regular);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        self.builder
            .append_data(&mut h, rel.join(&marker), std::io::empty())
            .ctx(|| format!("add whiteout of {} to layer", rel.join(name).display()))
    }

    /// One entry (not a whiteout) with its xattrs; directories are not descended into.
    fn append_entry(&mut self, path: &Path, arch: &Path, meta: &fs::Metadata) -> Result<()> {
        let what = || format!("add {} to layer", path.display());
        let ft = FileType::from_raw_mode(meta.mode());
        // Sockets cannot be carried by tar and are not part of images. Checked before the
        // xattrs are written, as a PAX header applies to whatever entry follows it.
        if !matches!(
            ft,
            FileType::Directory
                | FileType::RegularFile
                | FileType::Symlink
                | FileType::CharacterDevice
                | FileType::BlockDevice
                | FileType::Fifo
        ) {
            return Ok(());
        }
        self.append_xattrs(path)?;
        match ft {
            FileType::Directory => {
                let mut h = header(meta, EntryType::Directory);
                self.builder
                    .append_data(&mut h, arch, std::io::empty())
                    .ctx(what)?;
            }
            FileType::RegularFile => {
                if meta.nlink() > 1 {
                    let key = (meta.dev(), meta.ino());
                    if let Some(first) = self.links.get(&key) {
                        let mut h = header(meta, EntryType::Link);
                        let first = first.clone();
                        self.builder.append_link(&mut h, arch, &first).ctx(what)?;
                        return Ok(());
                    }
                    self.links.insert(key, arch.to_path_buf());
                }
                let mut h = header(meta, EntryType::Regular);
                h.set_size(meta.len());
                let file = fs::File::open(path).ctx(what)?;
                // A file that changes size while being read would corrupt the archive; the
                // tar writer fails rather than pad, and the caller sees an error.
                self.builder.append_data(&mut h, arch, file).ctx(what)?;
            }
            FileType::Symlink => {
                let target = fs::read_link(path).ctx(what)?;
                let mut h = header(meta, EntryType::Symlink);
                self.builder.append_link(&mut h, arch, &target).ctx(what)?;
            }
            _ => {
                let kind = match ft {
                    FileType::CharacterDevice => EntryType::Char,
                    FileType::BlockDevice => EntryType::Block,
                    _ => EntryType::Fifo,
                };
                let mut h = header(meta, kind);
                if kind != EntryType::Fifo {
                    let dev = meta.rdev();
                    h.set_device_major(rustix::fs::major(dev)).ctx(what)?;
                    h.set_device_minor(rustix::fs::minor(dev)).ctx(what)?;
                }
                self.builder
                    .append_data(&mut h, arch, std::io::empty())
                    .ctx(what)?;
            }
        }
        Ok(())
    }

    /// Writes a PAX header with the entry's xattrs (as `SCHILY.xattr.<name>`), if any.
    fn append_xattrs(&mut self, path: &Path) -> Result<()> {
        let what = || format!("read xattrs of {}", path.display());
        let mut records: Vec<(String, Vec<u8>)> = Vec::new();
        for (name, value) in exported_xattrs(path)? {
            let Some(name) = name.to_str() else {
                return Err(ContentError::io(
                    what(),
                    std::io::Error::new(std::io::ErrorKind::InvalidData, "xattr name not utf-8"),
                ));
            };
            records.push((format!("SCHILY.xattr.{name}"), value));
        }
        if records.is_empty() {
            return Ok(());
        }
        self.builder
            .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
            .ctx(what)
    }
}

fn sorted_names(dir: &Path) -> Result<Vec<OsString>> {
    let mut names: Vec<OsString> = fs::read_dir(dir)
        .ctx(|| format!("read {}", dir.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .ctx(|| format!("read {}", dir.display()))?;
    names.sort();
    Ok(names)
}

fn stat(path: &Path) -> Result<fs::Metadata> {
    fs::symlink_metadata(path).ctx(|| format!("stat {}", path.display()))
}

/// Whether `new` differs from `old` the way Docker's change detection sees it (moby
/// pkg/archive changes.go): type, mode, owner, device number, size (not for directories),
/// mtime to the nanosecond, symlink target, and xattrs.
pub(crate) fn differs(
    old_path: &Path,
    old: &fs::Metadata,
    new_path: &Path,
    new: &fs::Metadata,
) -> Result<bool> {
    let is_dir = new.file_type().is_dir();
    if old.mode() != new.mode()
        || old.uid() != new.uid()
        || old.gid() != new.gid()
        || old.rdev() != new.rdev()
        || (!is_dir && old.len() != new.len())
        || old.mtime() != new.mtime()
        || old.mtime_nsec() != new.mtime_nsec()
    {
        return Ok(true);
    }
    if new.file_type().is_symlink()
        && fs::read_link(old_path).ctx(|| format!("read {}", old_path.display()))?
            != fs::read_link(new_path).ctx(|| format!("read {}", new_path.display()))?
    {
        return Ok(true);
    }
    Ok(exported_xattrs(old_path)? != exported_xattrs(new_path)?)
}

/// The xattrs of `path` that go into a layer, sorted by name.
fn exported_xattrs(path: &Path) -> Result<Vec<(OsString, Vec<u8>)>> {
    let what = || format!("read xattrs of {}", path.display());
    let mut out = Vec::new();
    for name in list_xattrs(path).ctx(what)? {
        if name.as_bytes().starts_with(b"trusted.overlay.") {
            continue;
        }
        if let Some(value) = get_xattr(path, &name).ctx(what)? {
            out.push((name, value));
        }
    }
    out.sort();
    Ok(out)
}

/// A GNU header with the owner, mode and mtime of `meta`.
fn header(meta: &fs::Metadata, kind: EntryType) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(meta.mode() & 0o7777);
    h.set_uid(u64::from(meta.uid()));
    h.set_gid(u64::from(meta.gid()));
    h.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
    h.set_size(0);
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::{ApplyOptions, WhiteoutMode, apply_layer_with};

    #[test]
    fn round_trips_through_apply() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let upper = dir.path().join("upper");
        fs::create_dir_all(upper.join("opq/sub")).unwrap();
        fs::write(upper.join("opq/sub/f"), b"f").unwrap();
        fs::write(upper.join("file"), b"data").unwrap();
        fs::hard_link(upper.join("file"), upper.join("hard")).unwrap();
        std::os::unix::fs::symlink("file", upper.join("sym")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            upper.join("deleted"),
            FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            0,
        )
        .unwrap();
        rustix::fs::lsetxattr(
            upper.join("opq"),
            OVERLAY_OPAQUE_XATTR,
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        rustix::fs::lsetxattr(
            upper.join("opq"),
            "trusted.overlay.origin",
            b"junk",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        rustix::fs::lsetxattr(
            upper.join("file"),
            "user.note",
            b"kept",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();

        let mut tar_bytes = Vec::new();
        let diff_id = diff_overlay_upper(&upper, &mut tar_bytes).unwrap();
        assert_eq!(diff_id, crate::sha256_digest(&tar_bytes));
        // Deterministic.
        let mut again = Vec::new();
        assert_eq!(diff_overlay_upper(&upper, &mut again).unwrap(), diff_id);

        let mut names = Vec::new();
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        for e in archive.entries().unwrap() {
            let e = e.unwrap();
            names.push((
                e.path().unwrap().display().to_string(),
                e.header().entry_type(),
            ));
        }
        let has = |n: &str, k: EntryType| {
            names
                .iter()
                .any(|(p, t)| p.trim_end_matches('/') == n && *t == k)
        };
        assert!(has(".wh.deleted", EntryType::Regular), "{names:?}");
        assert!(has("opq", EntryType::Directory), "{names:?}");
        assert!(has("opq/.wh..wh..opq", EntryType::Regular), "{names:?}");
        assert!(has("sym", EntryType::Symlink), "{names:?}");
        assert!(
            has("file", EntryType::Link) || has("hard", EntryType::Link),
            "{names:?}"
        );

        // Applying the diff in overlay mode reproduces the upper dir's forms.
        let back = dir.path().join("back");
        fs::create_dir(&back).unwrap();
        let options = ApplyOptions {
            whiteouts: WhiteoutMode::Overlay,
            ..ApplyOptions::default()
        };
        let stats = apply_layer_with(&back, &tar_bytes[..], &options).unwrap();
        assert_eq!(stats.diff_id, diff_id);
        let deleted = fs::symlink_metadata(back.join("deleted")).unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_char_device(
            &deleted.file_type()
        ));
        assert_eq!(
            get_xattr(&back.join("opq"), OVERLAY_OPAQUE_XATTR.as_ref()).unwrap(),
            Some(b"y".to_vec())
        );
        assert_eq!(
            get_xattr(&back.join("opq"), "trusted.overlay.origin".as_ref()).unwrap(),
            None
        );
        assert_eq!(
            get_xattr(&back.join("file"), "user.note".as_ref()).unwrap(),
            Some(b"kept".to_vec())
        );
        assert_eq!(fs::read(back.join("opq/sub/f")).unwrap(), b"f");
        assert_eq!(
            fs::metadata(back.join("file")).unwrap().ino(),
            fs::metadata(back.join("hard")).unwrap().ino()
        );
    }
}
