//! A container's file system changes as `docker diff` lists them (`GET
//! /containers/{id}/changes`): paths added, modified or deleted relative to its image.
//!
//! The rules are moby's `pkg/archive/changes.go`: with overlay, every name in the upper dir
//! is a change; a whiteout (character device 0/0) or an opaque directory is a deletion; a
//! name also present in a lower layer is a modification, else an addition — except a
//! directory whose size, mode and mtime equal the lower one's (only copied up because a
//! child changed). The parent of an added or deleted name is listed as modified if it is not
//! listed already. With full trees (the copy driver) the two trees are compared instead.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::copy::get_xattr;
use crate::diff::differs;
use crate::error::{ContentError, IoContext, Result};
use crate::whiteout::OVERLAY_OPAQUE_XATTR;

/// What happened to a path. The numbers are the Engine API's `Kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// `C`, Kind 0.
    Modified = 0,
    /// `A`, Kind 1.
    Added = 1,
    /// `D`, Kind 2.
    Deleted = 2,
}

/// One change: an absolute path in the container and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Absolute path in the container (`/etc/hosts`).
    pub path: String,
    /// What happened.
    pub kind: ChangeKind,
}

/// The changes in overlay upper dir `upper` over the lower dirs `lowers` (top first).
pub fn overlay_changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>> {
    let mut out = Changes::default();
    walk_upper(upper, Path::new("/"), lowers, &mut out)?;
    Ok(out.list)
}

/// The changes from full tree `old` (absent: empty) to full tree `new`.
pub fn tree_changes(old: Option<&Path>, new: &Path) -> Result<Vec<Change>> {
    let mut out = Changes::default();
    walk_trees(old, new, Path::new("/"), &mut out)?;
    Ok(out.list)
}

#[derive(Default)]
struct Changes {
    list: Vec<Change>,
    /// Directories already listed.
    listed_dirs: std::collections::HashSet<PathBuf>,
}

impl Changes {
    fn push(&mut self, path: &Path, kind: ChangeKind, is_dir: bool) {
        if is_dir {
            self.listed_dirs.insert(path.to_path_buf());
        }
        if matches!(kind, ChangeKind::Added | ChangeKind::Deleted)
            && let Some(parent) = path.parent()
            && parent != Path::new("/")
            && self.listed_dirs.insert(parent.to_path_buf())
        {
            self.list.push(Change {
                path: parent.display().to_string(),
                kind: ChangeKind::Modified,
            });
        }
        self.list.push(Change {
            path: path.display().to_string(),
            kind,
        });
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

fn lstat(path: &Path) -> Result<Option<fs::Metadata>> {
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        // A lower path under a name that is a file in that layer.
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Ok(None),
        Err(e) => Err(ContentError::io(format!("stat {}", path.display()), e)),
    }
}

fn is_whiteout(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// The metadata of `rel` in the lower layers, top first; a whiteout there hides it.
fn in_lowers(lowers: &[PathBuf], rel: &Path) -> Result<Option<fs::Metadata>> {
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    for lower in lowers {
        if let Some(meta) = lstat(&lower.join(rel))? {
            if is_whiteout(&meta) {
                return Ok(None);
            }
            return Ok(Some(meta));
        }
    }
    Ok(None)
}

fn walk_upper(dir: &Path, rel: &Path, lowers: &[PathBuf], out: &mut Changes) -> Result<()> {
    for name in sorted_names(dir)? {
        let path = dir.join(&name);
        let arch = rel.join(&name);
        let Some(meta) = lstat(&path)? else { continue };
        let is_dir = meta.is_dir();
        let opaque = is_dir
            && get_xattr(&path, OVERLAY_OPAQUE_XATTR.as_ref())
                .ctx(|| format!("read xattrs of {}", path.display()))?
                .is_some_and(|v| v == b"y");
        if is_whiteout(&meta) || opaque {
            out.push(&arch, ChangeKind::Deleted, is_dir);
        } else {
            let kind = match in_lowers(lowers, &arch)? {
                None => Some(ChangeKind::Added),
                Some(lower) => {
                    let same_dir = lower.is_dir()
                        && is_dir
                        && lower.len() == meta.len()
                        && lower.mode() == meta.mode()
                        && lower.mtime() == meta.mtime()
                        && lower.mtime_nsec() == meta.mtime_nsec();
                    (!same_dir).then_some(ChangeKind::Modified)
                }
            };
            if let Some(kind) = kind {
                out.push(&arch, kind, is_dir);
            }
        }
        if is_dir {
            walk_upper(&path, &arch, lowers, out)?;
        }
    }
    Ok(())
}

fn walk_trees(old: Option<&Path>, new: &Path, rel: &Path, out: &mut Changes) -> Result<()> {
    let new_names = sorted_names(new)?;
    let old_names = match old {
        Some(old) => sorted_names(old)?,
        None => Vec::new(),
    };
    let mut all: Vec<&OsString> = new_names.iter().chain(old_names.iter()).collect();
    all.sort();
    all.dedup();
    for name in all {
        let arch = rel.join(name);
        let new_path = new.join(name);
        let old_path = old.map(|o| o.join(name));
        let new_meta = lstat(&new_path)?;
        let old_meta = match &old_path {
            Some(p) => lstat(p)?,
            None => None,
        };
        match (old_meta, new_meta) {
            (Some(om), None) => out.push(&arch, ChangeKind::Deleted, om.is_dir()),
            (None, Some(nm)) => {
                out.push(&arch, ChangeKind::Added, nm.is_dir());
                if nm.is_dir() {
                    walk_trees(None, &new_path, &arch, out)?;
                }
            }
            (Some(om), Some(nm)) => {
                let op = old_path.as_deref().expect("old exists");
                if om.is_dir() && nm.is_dir() {
                    // A directory counts only for its own metadata, not its size.
                    if differs(op, &om, &new_path, &nm)? {
                        out.push(&arch, ChangeKind::Modified, true);
                    }
                    walk_trees(Some(op), &new_path, &arch, out)?;
                } else if differs(op, &om, &new_path, &nm)? {
                    out.push(&arch, ChangeKind::Modified, nm.is_dir());
                    if nm.is_dir() {
                        walk_trees(None, &new_path, &arch, out)?;
                    }
                }
            }
            (None, None) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(changes: &[Change]) -> Vec<(String, ChangeKind)> {
        changes.iter().map(|c| (c.path.clone(), c.kind)).collect()
    }

    #[test]
    fn overlay_upper_changes() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let lower = dir.path().join("lower");
        let upper = dir.path().join("upper");
        fs::create_dir_all(lower.join("etc")).unwrap();
        fs::write(lower.join("etc/passwd"), b"x").unwrap();
        fs::write(lower.join("etc/gone"), b"x").unwrap();
        fs::create_dir_all(lower.join("same")).unwrap();
        fs::create_dir_all(upper.join("etc")).unwrap();
        fs::write(upper.join("etc/passwd"), b"changed").unwrap();
        fs::write(upper.join("etc/new"), b"n").unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            upper.join("etc/gone"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            0,
        )
        .unwrap();
        fs::create_dir(upper.join("same")).unwrap();
        let lm = fs::metadata(lower.join("same")).unwrap();
        let t = rustix::fs::Timespec {
            tv_sec: lm.mtime(),
            tv_nsec: lm.mtime_nsec() as _,
        };
        rustix::fs::utimensat(
            rustix::fs::CWD,
            upper.join("same"),
            &rustix::fs::Timestamps {
                last_access: t,
                last_modification: t,
            },
            rustix::fs::AtFlags::empty(),
        )
        .unwrap();
        fs::write(upper.join("top"), b"t").unwrap();
        let got = kinds(&overlay_changes(&upper, &[lower]).unwrap());
        assert_eq!(
            got,
            vec![
                ("/etc".into(), ChangeKind::Modified),
                ("/etc/gone".into(), ChangeKind::Deleted),
                ("/etc/new".into(), ChangeKind::Added),
                ("/etc/passwd".into(), ChangeKind::Modified),
                ("/top".into(), ChangeKind::Added),
            ]
        );
    }

    #[test]
    fn tree_changes_compare_trees() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old");
        let new = dir.path().join("new");
        fs::create_dir_all(old.join("d")).unwrap();
        fs::write(old.join("d/gone"), b"x").unwrap();
        fs::write(old.join("keep"), b"k").unwrap();
        fs::create_dir(&new).unwrap();
        crate::copy::copy_tree(&old, &new).unwrap();
        fs::remove_file(new.join("d/gone")).unwrap();
        fs::write(new.join("d/added"), b"a").unwrap();
        let got = kinds(&tree_changes(Some(&old), &new).unwrap());
        assert!(
            got.contains(&("/d/added".into(), ChangeKind::Added)),
            "{got:?}"
        );
        assert!(
            got.contains(&("/d/gone".into(), ChangeKind::Deleted)),
            "{got:?}"
        );
        assert!(!got.iter().any(|(p, _)| p == "/keep"), "{got:?}");
    }
}
