//! Helpers shared by the integration tests: tar archives built header by header (so tests can
//! write names the tar crate's safe setters refuse), root detection, xattr reads.

#![allow(dead_code)]

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use tar::{EntryType, Header};

/// The mtime every helper-built entry carries.
pub const MTIME: i64 = 1_600_000_000;

/// Whether the tests run as root (mknod, chown, trusted.* xattrs and mounts need it).
pub fn is_root() -> bool {
    let root = rustix::process::geteuid().is_root();
    if !root {
        eprintln!("skipped: needs root");
    }
    root
}

/// A name no other test or run uses.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("berth-{prefix}-{}-{nanos}", std::process::id())
}

/// A GNU header with `name` written raw (no validation), checksum set.
pub fn raw_header(name: &[u8], kind: EntryType, size: u64) -> Header {
    let mut h = Header::new_gnu();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(MTIME as u64);
    h.set_cksum();
    h
}

/// Reads an xattr without following symlinks; `None` if absent.
pub fn xattr_get(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    match rustix::fs::lgetxattr(path, name, &mut buf[..]) {
        Ok(n) => {
            buf.truncate(n);
            Some(buf)
        }
        Err(rustix::io::Errno::NODATA) => None,
        Err(e) => panic!("lgetxattr {} {name}: {e}", path.display()),
    }
}

/// Builds a tar archive in memory.
pub struct TarBuilder {
    inner: tar::Builder<Vec<u8>>,
}

impl Default for TarBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TarBuilder {
    pub fn new() -> Self {
        Self {
            inner: tar::Builder::new(Vec::new()),
        }
    }

    fn append(&mut self, mut h: Header, data: &[u8]) {
        h.set_cksum();
        self.inner.append(&h, data).unwrap();
    }

    pub fn dir(&mut self, name: &str, mode: u32, uid: u64, gid: u64) {
        let mut h = raw_header(name.as_bytes(), EntryType::Directory, 0);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(gid);
        self.append(h, &[]);
    }

    pub fn dir_with_xattrs(&mut self, name: &str, xattrs: &[(&str, &[u8])]) {
        self.inner
            .append_pax_extensions(xattrs.iter().copied())
            .unwrap();
        self.dir(name, 0o755, 0, 0);
    }

    pub fn file(&mut self, name: &str, data: &[u8], mode: u32, uid: u64, gid: u64) {
        let mut h = raw_header(name.as_bytes(), EntryType::Regular, data.len() as u64);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(gid);
        self.append(h, data);
    }

    pub fn file_with_xattrs(
        &mut self,
        name: &str,
        data: &[u8],
        mode: u32,
        uid: u64,
        gid: u64,
        xattrs: &[(&str, &[u8])],
    ) {
        self.inner
            .append_pax_extensions(xattrs.iter().copied())
            .unwrap();
        self.file(name, data, mode, uid, gid);
    }

    /// A regular file with a raw (unvalidated) name, mode 0644.
    pub fn raw_file(&mut self, name: &[u8], data: &[u8]) {
        let h = raw_header(name, EntryType::Regular, data.len() as u64);
        self.append(h, data);
    }

    pub fn symlink(&mut self, name: &str, target: &str) {
        let mut h = raw_header(name.as_bytes(), EntryType::Symlink, 0);
        h.set_mode(0o777);
        h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
        self.append(h, &[]);
    }

    pub fn hardlink(&mut self, name: &str, target: &str) {
        self.hardlink_raw(name.as_bytes(), target.as_bytes());
    }

    pub fn hardlink_raw(&mut self, name: &[u8], target: &[u8]) {
        let mut h = raw_header(name, EntryType::Link, 0);
        h.as_old_mut().linkname[..target.len()].copy_from_slice(target);
        self.append(h, &[]);
    }

    pub fn node(&mut self, name: &str, kind: EntryType, major: u32, minor: u32, mode: u32) {
        let mut h = raw_header(name.as_bytes(), kind, 0);
        h.set_mode(mode);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.append(h, &[]);
    }

    pub fn finish(self) -> Vec<u8> {
        self.inner.into_inner().unwrap()
    }
}
