//! Snapshots: the file system trees of applied layer stacks, and the writable trees of
//! containers on top of them, returned as mounts for the caller to perform.
//!
//! Terms (after containerd's snapshotter, `core/snapshots/snapshotter.go`):
//!
//! - A *committed* snapshot is immutable and keyed by the ChainID of the layer stack it holds
//!   ([`crate::chain_id`]). It is created by applying one layer on top of its parent with
//!   [`SnapshotStore::commit_layer`]; the ChainID is computed from the layer's actual DiffID,
//!   so a key always names what is on disk.
//! - An *active* snapshot is a writable tree on top of a committed parent (or empty), keyed
//!   by a caller-chosen name (a container id). [`SnapshotStore::prepare_active`] creates it
//!   and returns the [`Mount`]s that assemble it; the caller performs them wherever it wants
//!   (for a container: on its rootfs path, inside its mount namespace). The library never
//!   mounts.
//!
//! Lifecycle: `commit_layer` for each layer, bottom up → `prepare_active(key, top)` → caller
//! mounts, runs the container, unmounts → `remove_active(key)`. A committed snapshot can be
//! removed once no other snapshot names it as parent (`SnapshotInUse` otherwise).
//!
//! Drivers: with [`SnapshotDriver::Overlay`], a committed snapshot holds only its own layer's
//! changes (overlay whiteouts included) and an active one is an overlayfs of the parent chain
//! (kernel Documentation/filesystems/overlayfs.rst). With [`SnapshotDriver::Copy`], every
//! snapshot holds a full copy of its tree (whiteouts applied as deletions) and an active one is
//! a bind mount: slow and large, but works on any file system (like Docker's `vfs`).
//!
//! Layout under the store's root:
//!
//! ```text
//! driver                      "overlay" or "copy"; a store is never reopened with another
//! snapshots/<n>/fs            the tree (overlay: the layer's diff, or the active upper dir)
//! snapshots/<n>/work          overlay work dir of an active snapshot
//! snapshots/<n>/parent        ChainID of the parent, if any
//! committed/<chain hex>  ->   ../snapshots/<n>
//! active/<key>           ->   ../snapshots/<n>
//! ```
//!
//! Snapshot directories have short numeric names so that overlay's `lowerdir=` option, which
//! must fit in one page with every layer's path (mount(2)), holds deep stacks. A snapshot
//! exists once its symlink does: directories are filled first and linked last, so a crash
//! leaves at worst an unlinked directory, which [`SnapshotStore::open`] removes.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use types::{Algorithm, Digest};

use crate::apply::{ApplyOptions, ApplyStats, WhiteoutMode, apply_layer_with};
use crate::blob_store::sync_dir;
use crate::chain_id::next_chain_id;
use crate::copy::copy_tree;
use crate::diff::{diff_overlay_upper, diff_trees};
use crate::error::{ContentError, IoContext, Result};

/// How snapshots are stored and assembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotDriver {
    /// overlayfs: layers stacked as lower dirs, a per-container upper dir.
    Overlay,
    /// Full copies and bind mounts, for file systems where overlayfs does not work.
    Copy,
}

/// `OVERLAYFS_SUPER_MAGIC` (linux/magic.h): overlayfs cannot use an overlay as upper dir.
const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;

impl SnapshotDriver {
    /// The driver's name as stored on disk.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Overlay => "overlay",
            Self::Copy => "copy",
        }
    }

    /// The name Docker gives this kind of storage in `info`, inspect's `Driver` and
    /// `GraphDriver.Name`: `overlay2`, or `vfs` for full copies.
    pub fn docker_name(self) -> &'static str {
        match self {
            Self::Overlay => "overlay2",
            Self::Copy => "vfs",
        }
    }

    /// Picks overlay when it works at `root` (an existing directory), else copy. Overlay
    /// works when the kernel has it (`/proc/filesystems`), `root` is not itself on an overlay
    /// (an upper dir cannot live on overlayfs), its file system reports entry types in
    /// readdir (d_type: without it overlay shows whiteouts and opaque directories wrongly,
    /// which is why dockerd refuses overlay2 there, e.g. xfs with ftype=0 or ext4 without
    /// `filetype`), and a trial overlay mount in a scratch directory under `root` succeeds
    /// (NFS, FUSE and other file systems overlay refuses as upper). Needs the privilege to
    /// mount, as the daemon has; without it the answer is copy.
    pub fn detect(root: &Path) -> Self {
        let has_overlay = fs::read_to_string("/proc/filesystems")
            .map(|s| {
                s.lines()
                    .any(|l| l.split_whitespace().last() == Some("overlay"))
            })
            .unwrap_or(false);
        // `f_type`'s integer type differs between architectures.
        #[allow(clippy::unnecessary_cast)]
        let on_overlay = rustix::fs::statfs(root)
            .map(|s| s.f_type as i64 == OVERLAYFS_SUPER_MAGIC)
            .unwrap_or(false);
        if has_overlay && !on_overlay && overlay_works(root) {
            Self::Overlay
        } else {
            Self::Copy
        }
    }
}

/// Whether readdir on `root`'s file system reports entry types, and an overlay with an upper
/// and work dir there mounts. Everything is made in, and removed with, a scratch directory.
fn overlay_works(root: &Path) -> bool {
    let probe = root.join(format!(".overlay-probe-{}", std::process::id()));
    let _ = fs::remove_dir_all(&probe);
    let works = (|| -> io::Result<bool> {
        for sub in ["lower/dir", "upper", "work", "merged"] {
            fs::create_dir_all(probe.join(sub))?;
        }
        if !supports_d_type(&probe.join("lower"))? {
            return Ok(false);
        }
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            probe.join("lower").display(),
            probe.join("upper").display(),
            probe.join("work").display()
        );
        let data = std::ffi::CString::new(data).map_err(io::Error::other)?;
        let merged = probe.join("merged");
        if rustix::mount::mount(
            "overlay",
            &merged,
            "overlay",
            rustix::mount::MountFlags::empty(),
            Some(data.as_c_str()),
        )
        .is_err()
        {
            return Ok(false);
        }
        let _ = rustix::mount::unmount(&merged, rustix::mount::UnmountFlags::DETACH);
        Ok(true)
    })()
    .unwrap_or(false);
    let _ = fs::remove_dir_all(&probe);
    works
}

/// Whether entries of `dir` (which holds a directory) come back from getdents with their type
/// rather than `DT_UNKNOWN`.
fn supports_d_type(dir: &Path) -> io::Result<bool> {
    let fd = rustix::fs::open(
        dir,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    let entries = rustix::fs::Dir::read_from(&fd)?;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        return Ok(entry.file_type() != rustix::fs::FileType::Unknown);
    }
    Ok(false)
}

/// One mount, as data: what `mount(2)` (or `mount -t <kind> -o <options> <source> <dir>`)
/// needs. `target` is relative to the caller's mount point; empty means the mount point
/// itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// File system type: `overlay` or `bind`.
    pub kind: String,
    /// Source: `overlay`, or the directory to bind.
    pub source: PathBuf,
    /// Where to mount, relative to the caller's mount point.
    pub target: PathBuf,
    /// Options as `mount -o` takes them: flags (`rbind`, `ro`, `rw`) and data
    /// (`lowerdir=...,upperdir=...,workdir=...`).
    pub options: Vec<String>,
}

impl Mount {
    /// Splits the options into mount(2) flags and the data string. `bind` mounts get
    /// `MS_BIND` (and `MS_REC` for `rbind`).
    pub fn flags_and_data(&self) -> (rustix::mount::MountFlags, String) {
        use rustix::mount::MountFlags;
        let mut flags = MountFlags::empty();
        let mut data = Vec::new();
        if self.kind == "bind" {
            flags |= MountFlags::BIND;
        }
        for option in &self.options {
            match option.as_str() {
                "bind" => flags |= MountFlags::BIND,
                "rbind" => flags |= MountFlags::BIND | MountFlags::REC,
                "ro" => flags |= MountFlags::RDONLY,
                "rw" => {}
                "nosuid" => flags |= MountFlags::NOSUID,
                "nodev" => flags |= MountFlags::NODEV,
                "noexec" => flags |= MountFlags::NOEXEC,
                other => data.push(other),
            }
        }
        (flags, data.join(","))
    }
}

/// A store of committed and active snapshots in a directory.
#[derive(Debug)]
pub struct SnapshotStore {
    root: PathBuf,
    driver: SnapshotDriver,
    next_id: AtomicU64,
}

/// Deepest parent chain followed before assuming a corrupt store (Docker caps images at 125
/// layers; overlay at 500 lower dirs).
const MAX_DEPTH: usize = 500;

impl SnapshotStore {
    /// Opens (creating if needed) a store at `root` using `driver`. A store created with one
    /// driver cannot be opened with the other (an `Io` error of kind `InvalidInput`).
    /// Removes snapshot directories that no key links to (left by a crash): call it once per
    /// process, before using the store.
    pub fn open(root: impl AsRef<Path>, driver: SnapshotDriver) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        for sub in ["snapshots", "committed", "active"] {
            let p = root.join(sub);
            fs::create_dir_all(&p).ctx(|| format!("create {}", p.display()))?;
        }
        let driver_file = root.join("driver");
        match fs::read_to_string(&driver_file) {
            Ok(s) if s.trim() == driver.as_str() => {}
            Ok(s) => {
                return Err(ContentError::io(
                    format!("open snapshot store {}", root.display()),
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("store uses driver {:?}, not {}", s.trim(), driver.as_str()),
                    ),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::write(&driver_file, driver.as_str())
                    .ctx(|| format!("write {}", driver_file.display()))?;
            }
            Err(e) => {
                return Err(ContentError::io(
                    format!("read {}", driver_file.display()),
                    e,
                ));
            }
        }
        let store = Self {
            root,
            driver,
            next_id: AtomicU64::new(0),
        };
        store.remove_orphans()?;
        Ok(store)
    }

    /// The driver of this store.
    pub fn driver(&self) -> SnapshotDriver {
        self.driver
    }

    /// Whether a committed snapshot with this ChainID exists.
    pub fn has_committed(&self, chain_id: &Digest) -> Result<bool> {
        let link = self.committed_link(chain_id)?;
        Ok(link.symlink_metadata().is_ok())
    }

    /// ChainIDs of all committed snapshots, sorted.
    pub fn list_committed(&self) -> Result<Vec<Digest>> {
        let mut out: Vec<Digest> = self
            .names_in("committed")?
            .iter()
            .filter_map(|n| Digest::from_parts(Algorithm::Sha256, n).ok())
            .collect();
        out.sort();
        Ok(out)
    }

    /// Keys of all active snapshots, sorted.
    pub fn list_active(&self) -> Result<Vec<String>> {
        let mut out = self.names_in("active")?;
        out.sort();
        Ok(out)
    }

    /// Applies one layer on top of the committed snapshot `parent` (or on nothing) and
    /// commits the result under its ChainID, which is returned with the apply statistics.
    ///
    /// If `expected_diff_id` is given and the layer's uncompressed stream hashes otherwise,
    /// nothing is committed and `DigestMismatch` is returned. If the resulting ChainID is
    /// already committed (another pull raced us), the new copy is discarded and the existing
    /// one kept.
    pub fn commit_layer(
        &self,
        parent: Option<&Digest>,
        expected_diff_id: Option<&Digest>,
        layer: impl Read,
    ) -> Result<(Digest, ApplyStats)> {
        let parent_dir = parent.map(|p| self.committed_dir(p)).transpose()?;
        let (id, dir) = self.new_snapshot_dir()?;
        let result = (|| {
            let fs_dir = dir.join("fs");
            fs::create_dir(&fs_dir).ctx(|| format!("create {}", fs_dir.display()))?;
            let whiteouts = match self.driver {
                SnapshotDriver::Overlay => WhiteoutMode::Overlay,
                SnapshotDriver::Copy => {
                    if let Some(parent_dir) = &parent_dir {
                        copy_tree(&parent_dir.join("fs"), &fs_dir)?;
                    }
                    WhiteoutMode::Delete
                }
            };
            let options = ApplyOptions {
                whiteouts,
                ..ApplyOptions::default()
            };
            let stats = apply_layer_with(&fs_dir, layer, &options)?;
            if let Some(expected) = expected_diff_id
                && *expected != stats.diff_id
            {
                return Err(ContentError::DigestMismatch {
                    expected: expected.clone(),
                    actual: stats.diff_id,
                });
            }
            if let Some(parent) = parent {
                write_file(&dir.join("parent"), parent.to_string().as_bytes())?;
            }
            sync_dir(&dir)?;
            let chain = next_chain_id(parent, &stats.diff_id);
            Ok((chain, stats))
        })();
        let (chain, stats) = match result {
            Ok(v) => v,
            Err(e) => return Err(self.discard(&dir, e)),
        };
        let link = self.committed_link(&chain)?;
        match std::os::unix::fs::symlink(format!("../snapshots/{id}"), &link) {
            Ok(()) => {
                sync_dir(&self.root.join("committed"))?;
                Ok((chain, stats))
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                remove_tree(&dir)?;
                Ok((chain, stats))
            }
            Err(e) => Err(self.discard(
                &dir,
                ContentError::io(format!("link {}", link.display()), e),
            )),
        }
    }

    /// Creates the active snapshot `key` on top of the committed snapshot `parent` (or
    /// empty), and returns the mounts that assemble it. `SnapshotExists` if `key` is taken,
    /// `SnapshotNotFound` if `parent` is not committed.
    pub fn prepare_active(&self, key: &str, parent: Option<&Digest>) -> Result<Vec<Mount>> {
        let link = self.active_link(key)?;
        if link.symlink_metadata().is_ok() {
            return Err(ContentError::SnapshotExists(key.to_owned()));
        }
        let parent_dir = parent.map(|p| self.committed_dir(p)).transpose()?;
        let (id, dir) = self.new_snapshot_dir()?;
        let result = (|| {
            let fs_dir = dir.join("fs");
            fs::create_dir(&fs_dir).ctx(|| format!("create {}", fs_dir.display()))?;
            match self.driver {
                SnapshotDriver::Overlay => {
                    let work = dir.join("work");
                    fs::create_dir(&work).ctx(|| format!("create {}", work.display()))?;
                }
                SnapshotDriver::Copy => {
                    if let Some(parent_dir) = &parent_dir {
                        copy_tree(&parent_dir.join("fs"), &fs_dir)?;
                    }
                }
            }
            if let Some(parent) = parent {
                write_file(&dir.join("parent"), parent.to_string().as_bytes())?;
            }
            sync_dir(&dir)
        })();
        if let Err(e) = result {
            return Err(self.discard(&dir, e));
        }
        match std::os::unix::fs::symlink(format!("../snapshots/{id}"), &link) {
            Ok(()) => sync_dir(&self.root.join("active"))?,
            Err(e) => {
                let err = if e.kind() == io::ErrorKind::AlreadyExists {
                    ContentError::SnapshotExists(key.to_owned())
                } else {
                    ContentError::io(format!("link {}", link.display()), e)
                };
                return Err(self.discard(&dir, err));
            }
        }
        self.mounts(key)
    }

    /// The mounts that assemble the active snapshot `key` (the same as `prepare_active`
    /// returned).
    pub fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        let link = self.active_dir(key)?;
        let parent = read_parent(&link)?;
        let dir = fs::canonicalize(&link).ctx(|| format!("resolve {}", link.display()))?;
        let bind = |source: PathBuf| Mount {
            kind: "bind".into(),
            source,
            target: PathBuf::new(),
            options: vec!["rbind".into(), "rw".into()],
        };
        match (self.driver, parent) {
            (SnapshotDriver::Copy, _) | (SnapshotDriver::Overlay, None) => {
                Ok(vec![bind(dir.join("fs"))])
            }
            (SnapshotDriver::Overlay, Some(parent)) => {
                let lowers = self.lower_dirs(&parent)?;
                let lowerdir = lowers
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":");
                Ok(vec![Mount {
                    kind: "overlay".into(),
                    source: PathBuf::from("overlay"),
                    target: PathBuf::new(),
                    options: vec![
                        format!("lowerdir={lowerdir}"),
                        format!("upperdir={}", dir.join("fs").display()),
                        format!("workdir={}", dir.join("work").display()),
                    ],
                }])
            }
        }
    }

    /// The directory holding the changes of active snapshot `key` (overlay: the upper dir,
    /// whose diff is the container's changes; copy: the whole tree).
    pub fn active_fs(&self, key: &str) -> Result<PathBuf> {
        Ok(self.active_dir(key)?.join("fs"))
    }

    /// The tree of committed snapshot `chain_id` (overlay: that layer's own changes only).
    pub fn committed_fs(&self, chain_id: &Digest) -> Result<PathBuf> {
        Ok(self.committed_dir(chain_id)?.join("fs"))
    }

    /// Writes the changes made in active snapshot `key` as a layer tar to `out` and returns
    /// its DiffID. The caller must have unmounted it, or at least stopped writing to it.
    pub fn diff_active(&self, key: &str, out: impl std::io::Write) -> Result<Digest> {
        let link = self.active_dir(key)?;
        let fs_dir = link.join("fs");
        match self.driver {
            SnapshotDriver::Overlay => diff_overlay_upper(&fs_dir, out),
            SnapshotDriver::Copy => {
                let parent_fs = read_parent(&link)?
                    .map(|p| self.committed_fs(&p))
                    .transpose()?;
                diff_trees(parent_fs.as_deref(), &fs_dir, out)
            }
        }
    }

    /// The file system changes of active snapshot `key` over its parent, as `docker diff`
    /// lists them ([`crate::overlay_changes`], [`crate::tree_changes`]).
    pub fn changes_active(&self, key: &str) -> Result<Vec<crate::Change>> {
        let link = self.active_dir(key)?;
        let fs_dir = link.join("fs");
        let parent = read_parent(&link)?;
        match self.driver {
            SnapshotDriver::Overlay => {
                let lowers = match &parent {
                    Some(p) => self.lower_dirs(p)?,
                    None => Vec::new(),
                };
                crate::changes::overlay_changes(&fs_dir, &lowers)
            }
            SnapshotDriver::Copy => {
                let parent_fs = parent.map(|p| self.committed_fs(&p)).transpose()?;
                crate::changes::tree_changes(parent_fs.as_deref(), &fs_dir)
            }
        }
    }

    /// Turns active snapshot `key` into a committed one (containerd's `Commit`), keyed by
    /// the ChainID of its parent and the DiffID of its changes, which is returned. The
    /// active key is gone afterwards.
    ///
    /// `diff_id` is the DiffID [`SnapshotStore::diff_active`] returned for this key with no
    /// write since; when `None` it is computed (one more read of the changes). The caller
    /// must have unmounted the snapshot. If that ChainID is already committed, the active
    /// snapshot is simply removed.
    pub fn commit_active(&self, key: &str, diff_id: Option<&Digest>) -> Result<Digest> {
        let link = self.active_dir(key)?;
        let parent = read_parent(&link)?;
        let diff_id = match diff_id {
            Some(d) => d.clone(),
            None => self.diff_active(key, io::sink())?,
        };
        let chain = next_chain_id(parent.as_ref(), &diff_id);
        let dir = self.snapshot_dir_of(&link)?;
        let committed = self.committed_link(&chain)?;
        if committed.symlink_metadata().is_ok() {
            self.remove_active(key)?;
            return Ok(chain);
        }
        // The overlay work dir is scratch space of a mounted overlay only.
        remove_tree(&dir.join("work"))?;
        let id = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        // Unlink the active key first: a crash in between leaves an unlinked directory that
        // `open` removes, never one directory reachable under two keys.
        fs::remove_file(&link).ctx(|| format!("remove {}", link.display()))?;
        sync_dir(&self.root.join("active"))?;
        match std::os::unix::fs::symlink(format!("../snapshots/{id}"), &committed) {
            Ok(()) => sync_dir(&self.root.join("committed"))?,
            // Committed meanwhile by someone else: ours is redundant.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => remove_tree(&dir)?,
            Err(e) => {
                let err = ContentError::io(format!("link {}", committed.display()), e);
                return Err(self.discard(&dir, err));
            }
        }
        Ok(chain)
    }

    /// Removes active snapshot `key`. The caller must have unmounted it.
    pub fn remove_active(&self, key: &str) -> Result<()> {
        let link = self.active_dir(key)?;
        let dir = self.snapshot_dir_of(&link)?;
        // Unlink first: the snapshot is gone as soon as its key is, and a crash before the
        // directory is removed leaves an orphan that `open` cleans up.
        fs::remove_file(&link).ctx(|| format!("remove {}", link.display()))?;
        sync_dir(&self.root.join("active"))?;
        remove_tree(&dir)
    }

    /// Removes committed snapshot `chain_id`. `SnapshotInUse` while another committed or
    /// active snapshot has it as parent.
    pub fn remove_committed(&self, chain_id: &Digest) -> Result<()> {
        let dir = self.committed_dir(chain_id)?;
        for (kind, names) in [
            ("committed", self.names_in("committed")?),
            ("active", self.names_in("active")?),
        ] {
            for name in names {
                let child = self.root.join(kind).join(&name);
                if read_parent(&child)?.as_ref() == Some(chain_id) {
                    return Err(ContentError::SnapshotInUse(
                        chain_id.to_string(),
                        format!("{kind} snapshot {name}"),
                    ));
                }
            }
        }
        let real = self.snapshot_dir_of(&dir)?;
        fs::remove_file(&dir).ctx(|| format!("remove {}", dir.display()))?;
        sync_dir(&self.root.join("committed"))?;
        remove_tree(&real)
    }

    /// The fs dirs of `top` and its ancestors, top first (overlay's lowerdir order: the
    /// leftmost is the uppermost lower layer).
    fn lower_dirs(&self, top: &Digest) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        let mut next = Some(top.clone());
        while let Some(chain) = next {
            if out.len() >= MAX_DEPTH {
                return Err(ContentError::io(
                    format!("resolve parents of {top}"),
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("snapshot chain deeper than {MAX_DEPTH} layers"),
                    ),
                ));
            }
            let dir = self.committed_dir(&chain)?;
            // Resolve the symlink so the option holds the short numeric path.
            let real = fs::canonicalize(&dir).ctx(|| format!("resolve {}", dir.display()))?;
            out.push(real.join("fs"));
            next = read_parent(&dir)?;
        }
        Ok(out)
    }

    /// The `snapshots/<n>` directory a committed or active symlink points to. Only the
    /// link's final name is trusted: the directory is rebuilt from it under our own root.
    fn snapshot_dir_of(&self, link: &Path) -> Result<PathBuf> {
        let target = fs::read_link(link).ctx(|| format!("read {}", link.display()))?;
        let id = target
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| n.parse::<u64>().is_ok())
            .ok_or_else(|| {
                ContentError::io(
                    format!("read {}", link.display()),
                    io::Error::new(io::ErrorKind::InvalidData, "not a snapshot link"),
                )
            })?;
        Ok(self.root.join("snapshots").join(id))
    }

    fn committed_link(&self, chain_id: &Digest) -> Result<PathBuf> {
        if chain_id.algorithm() != Algorithm::Sha256 {
            return Err(ContentError::UnsupportedAlgorithm(
                chain_id.algorithm().to_string(),
            ));
        }
        Ok(self.root.join("committed").join(chain_id.encoded()))
    }

    fn committed_dir(&self, chain_id: &Digest) -> Result<PathBuf> {
        let link = self.committed_link(chain_id)?;
        if link.symlink_metadata().is_err() {
            return Err(ContentError::SnapshotNotFound(chain_id.to_string()));
        }
        Ok(link)
    }

    fn active_link(&self, key: &str) -> Result<PathBuf> {
        validate_key(key)?;
        Ok(self.root.join("active").join(key))
    }

    fn active_dir(&self, key: &str) -> Result<PathBuf> {
        let link = self.active_link(key)?;
        if link.symlink_metadata().is_err() {
            return Err(ContentError::SnapshotNotFound(key.to_owned()));
        }
        Ok(link)
    }

    fn names_in(&self, sub: &str) -> Result<Vec<String>> {
        let dir = self.root.join(sub);
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).ctx(|| format!("read {}", dir.display()))? {
            let entry = entry.ctx(|| format!("read {}", dir.display()))?;
            if let Ok(name) = entry.file_name().into_string() {
                out.push(name);
            }
        }
        Ok(out)
    }

    /// Allocates `snapshots/<n>` with a fresh number (mkdir is the lock: EEXIST means
    /// another process took it).
    fn new_snapshot_dir(&self) -> Result<(u64, PathBuf)> {
        loop {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
            let dir = self.root.join("snapshots").join(id.to_string());
            match fs::create_dir(&dir) {
                Ok(()) => return Ok((id, dir)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(ContentError::io(format!("create {}", dir.display()), e)),
            }
        }
    }

    fn discard(&self, dir: &Path, primary: ContentError) -> ContentError {
        match remove_tree(dir) {
            Ok(()) => primary,
            Err(cleanup) => primary.with_cleanup(cleanup),
        }
    }

    /// Removes snapshot directories that no committed or active symlink points to, and sets
    /// the id counter past the highest id in use.
    fn remove_orphans(&self) -> Result<()> {
        let mut linked = std::collections::HashSet::new();
        for sub in ["committed", "active"] {
            for name in self.names_in(sub)? {
                let link = self.root.join(sub).join(&name);
                if let Ok(target) = fs::read_link(&link)
                    && let Some(id) = target.file_name()
                {
                    linked.insert(id.to_os_string());
                }
            }
        }
        let mut max = 0;
        for name in self.names_in("snapshots")? {
            if let Ok(n) = name.parse::<u64>() {
                max = max.max(n);
            }
            if !linked.contains(std::ffi::OsStr::new(&name)) {
                remove_tree(&self.root.join("snapshots").join(&name))?;
            }
        }
        self.next_id.store(max, Ordering::Relaxed);
        Ok(())
    }
}

/// Keys name directories: 1 to 128 of `[A-Za-z0-9_.-]`, not starting with `.`.
fn validate_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 128
        && !key.starts_with('.')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ContentError::InvalidKey(key.to_owned()))
    }
}

fn read_parent(dir: &Path) -> Result<Option<Digest>> {
    let path = dir.join("parent");
    match fs::read_to_string(&path) {
        Ok(s) => s.trim().parse().map(Some).map_err(|e| {
            ContentError::io(
                format!("read {}", path.display()),
                io::Error::new(io::ErrorKind::InvalidData, e),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ContentError::io(format!("read {}", path.display()), e)),
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = fs::File::create(path).ctx(|| format!("create {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .ctx(|| format!("write {}", path.display()))
}

fn remove_tree(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ContentError::io(format!("remove {}", dir.display()), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for ok in ["abc", "a.b-c_d", &"x".repeat(128)] {
            assert!(validate_key(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".hidden", "a/b", "..", "a b", &"x".repeat(129)] {
            assert!(validate_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mount_flags_and_data() {
        let m = Mount {
            kind: "overlay".into(),
            source: "overlay".into(),
            target: PathBuf::new(),
            options: vec!["lowerdir=/a:/b".into(), "ro".into(), "upperdir=/u".into()],
        };
        let (flags, data) = m.flags_and_data();
        assert_eq!(flags, rustix::mount::MountFlags::RDONLY);
        assert_eq!(data, "lowerdir=/a:/b,upperdir=/u");
        let b = Mount {
            kind: "bind".into(),
            source: "/x".into(),
            target: PathBuf::new(),
            options: vec!["rbind".into(), "rw".into()],
        };
        let (flags, data) = b.flags_and_data();
        assert_eq!(
            flags,
            rustix::mount::MountFlags::BIND | rustix::mount::MountFlags::REC
        );
        assert_eq!(data, "");
    }
}
