//! Turning an overlayfs upper directory (a container's changes) back into a layer tar, for
//! commit and export: the inverse of [`crate::apply_layer`] in overlay mode.
//!
//! Conversions (overlayfs.rst "whiteouts and opaque directories"; OCI layer.md "Whiteouts"):
//! a character device 0/0 named `<name>` becomes an empty regular entry `.wh.<name>`; a
//! directory with `trusted.overlay.opaque=y` is written, followed by an entry
//! `<dir>/.wh..wh..opq`. overlayfs's own `trusted.overlay.*` xattrs are never exported.
//! Entries are written in sorted order, so the same tree gives the same bytes (and DiffID).

use std::collections::HashMap;
use std::ffi::OsString;
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

struct DiffWriter<W: Write> {
    builder: tar::Builder<W>,
    /// First archive path of each multiply-linked inode, for hard link entries.
    links: HashMap<(u64, u64), PathBuf>,
}

impl<W: Write> DiffWriter<W> {
    fn walk(&mut self, dir: &Path, rel: &Path) -> Result<()> {
        let mut names: Vec<OsString> = fs::read_dir(dir)
            .ctx(|| format!("read {}", dir.display()))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()
            .ctx(|| format!("read {}", dir.display()))?;
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let arch = rel.join(&name);
            let meta = fs::symlink_metadata(&path).ctx(|| format!("stat {}", path.display()))?;
            let ft = FileType::from_raw_mode(meta.mode());
            let what = || format!("add {} to layer", path.display());

            if ft == FileType::CharacterDevice && meta.rdev() == 0 {
                let mut marker = OsString::from(WHITEOUT_PREFIX);
                marker.push(&name);
                let mut h = header(&meta, EntryType::Regular);
                h.set_mode(0o644);
                self.builder
                    .append_data(&mut h, rel.join(marker), std::io::empty())
                    .ctx(what)?;
                continue;
            }

            self.append_xattrs(&path)?;
            match ft {
                FileType::Directory => {
                    let mut h = header(&meta, EntryType::Directory);
                    self.builder
                        .append_data(&mut h, &arch, std::io::empty())
                        .ctx(what)?;
                    if get_xattr(&path, OVERLAY_OPAQUE_XATTR.as_ref())
                        .ctx(what)?
                        .is_some_and(|v| v == b"y")
                    {
                        let mut h = header(&meta, EntryType::Regular);
                        h.set_mode(0o644);
                        self.builder
                            .append_data(&mut h, arch.join(OPAQUE_MARKER), std::io::empty())
                            .ctx(what)?;
                    }
                    self.walk(&path, &arch)?;
                }
                FileType::RegularFile => {
                    if meta.nlink() > 1 {
                        let key = (meta.dev(), meta.ino());
                        if let Some(first) = self.links.get(&key) {
                            let mut h = header(&meta, EntryType::Link);
                            let first = first.clone();
                            self.builder.append_link(&mut h, &arch, &first).ctx(what)?;
                            continue;
                        }
                        self.links.insert(key, arch.clone());
                    }
                    let mut h = header(&meta, EntryType::Regular);
                    h.set_size(meta.len());
                    let file = fs::File::open(&path).ctx(what)?;
                    self.builder.append_data(&mut h, &arch, file).ctx(what)?;
                }
                FileType::Symlink => {
                    let target = fs::read_link(&path).ctx(what)?;
                    let mut h = header(&meta, EntryType::Symlink);
                    self.builder.append_link(&mut h, &arch, &target).ctx(what)?;
                }
                FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                    let kind = match ft {
                        FileType::CharacterDevice => EntryType::Char,
                        FileType::BlockDevice => EntryType::Block,
                        _ => EntryType::Fifo,
                    };
                    let mut h = header(&meta, kind);
                    if kind != EntryType::Fifo {
                        let dev = meta.rdev();
                        h.set_device_major(rustix::fs::major(dev)).ctx(what)?;
                        h.set_device_minor(rustix::fs::minor(dev)).ctx(what)?;
                    }
                    self.builder
                        .append_data(&mut h, &arch, std::io::empty())
                        .ctx(what)?;
                }
                // Sockets cannot be carried by tar and are not part of images.
                _ => {}
            }
        }
        Ok(())
    }

    /// Writes a PAX header with the entry's xattrs (as `SCHILY.xattr.<name>`), if any.
    fn append_xattrs(&mut self, path: &Path) -> Result<()> {
        let what = || format!("read xattrs of {}", path.display());
        let mut records: Vec<(String, Vec<u8>)> = Vec::new();
        for name in list_xattrs(path).ctx(what)? {
            let bytes = name.as_bytes();
            if bytes.starts_with(b"trusted.overlay.") {
                continue;
            }
            let Ok(name_str) = std::str::from_utf8(bytes) else {
                return Err(ContentError::io(
                    what(),
                    std::io::Error::new(std::io::ErrorKind::InvalidData, "xattr name not utf-8"),
                ));
            };
            if let Some(value) = get_xattr(path, &name).ctx(what)? {
                records.push((format!("SCHILY.xattr.{name_str}"), value));
            }
        }
        if records.is_empty() {
            return Ok(());
        }
        records.sort();
        self.builder
            .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
            .ctx(what)
    }
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
