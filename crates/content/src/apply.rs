//! Applying a layer (a possibly compressed tar stream) to a directory.
//!
//! What a layer is and how its whiteouts read: OCI image spec, layer.md ("Representing
//! Changes", "Whiteouts", "Opaque Whiteout"). How the result is laid out depends on who will
//! read it:
//!
//! - [`WhiteoutMode::Overlay`]: the directory will be an overlayfs lower layer, so whiteouts
//!   are written in overlayfs's own format (Documentation/filesystems/overlayfs.rst,
//!   "whiteouts and opaque directories"): `.wh.<name>` becomes a character device 0/0 named
//!   `<name>`, and `.wh..wh..opq` sets the xattr `trusted.overlay.opaque=y` on its directory.
//! - [`WhiteoutMode::Delete`]: the layer is applied on top of a full copy of its parent, so a
//!   whiteout deletes `<name>` and an opaque marker deletes every child of its directory that
//!   this layer did not itself create (what Docker's `vfs` driver and containerd's `native`
//!   snapshotter do).
//!
//! In both modes a whiteout hides only what lower layers put there (layer.md: "Whiteout files
//! MUST only apply to resources in lower/parent layers"): an entry of the same layer under the
//! whited-out name stays, and a directory deleted and recreated in one layer becomes opaque.
//!
//! Containment: entry names are cleaned lexically like Go's `filepath.Clean`; an absolute
//! name is taken relative to the target (as Docker does), a relative name that climbs out
//! with `..` is refused, and all file system work goes through [`crate::beneath`], which never
//! follows a symlink out of the target. Hard links may only name entries inside the target.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;
use tar::EntryType;
use types::Digest;

use crate::beneath::{self, Root, file_type_at, remove_all_at};
use crate::compression::{self, Compression};
use crate::error::{ContentError, IoContext, Result};
use crate::hash::HashingReader;
use crate::whiteout::{OPAQUE_MARKER, OVERLAY_OPAQUE_XATTR, WHITEOUT_META_PREFIX, WHITEOUT_PREFIX};

/// How whiteout entries of a layer are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhiteoutMode {
    /// As overlayfs whiteouts (char device 0/0, `trusted.overlay.opaque` xattr).
    #[default]
    Overlay,
    /// By deleting what they hide, for a layer applied onto a copy of its parent.
    Delete,
    /// Not at all: `.wh.` entries are ordinary files. For archives that are not layers
    /// (`docker cp` uploads), which Docker extracts with plain untar semantics.
    Keep,
}

/// Options of [`apply_layer_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOptions {
    /// How whiteouts are written.
    pub whiteouts: WhiteoutMode,
    /// Whether to set owners from the archive (needs CAP_CHOWN; off for rootless use, where
    /// everything is owned by the caller).
    pub chown: bool,
    /// With `chown`: this uid/gid for every entry instead of the archive's (`docker cp -a`,
    /// whose files take the container user's ids).
    pub owner: Option<(u32, u32)>,
    /// Refuse to replace an existing directory with a non-directory or the other way round
    /// (Docker's `noOverwriteDirNonDir` of `PUT /containers/{id}/archive`).
    pub no_overwrite_dir_non_dir: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            whiteouts: WhiteoutMode::Overlay,
            chown: true,
            owner: None,
            no_overwrite_dir_non_dir: false,
        }
    }
}

/// What applying a layer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyStats {
    /// sha256 of the uncompressed tar stream: the layer's DiffID (OCI image spec, config.md,
    /// `rootfs.diff_ids`), to be checked against the image config by the caller.
    pub diff_id: Digest,
    /// Size of the uncompressed tar stream in bytes.
    pub tar_size: u64,
    /// The compression detected on the input.
    pub compression: Compression,
    /// Number of entries applied (including whiteouts).
    pub entries: u64,
    /// Bytes of regular file content written.
    pub content_bytes: u64,
    /// Number of whiteouts and opaque markers among the entries.
    pub whiteouts: u64,
}

/// Applies a layer to `target` (an existing directory) with the default options: overlay
/// whiteouts, owners from the archive. On error `target` is left half-applied: use
/// [`apply_layer_atomic`] to get all or nothing.
pub fn apply_layer(target: &Path, reader: impl Read) -> Result<ApplyStats> {
    apply_layer_with(target, reader, &ApplyOptions::default())
}

/// Applies a layer to `target` (an existing directory). The whole input is read, so the
/// returned `diff_id` covers the entire tar stream including its end-of-archive padding.
pub fn apply_layer_with(
    target: &Path,
    reader: impl Read,
    options: &ApplyOptions,
) -> Result<ApplyStats> {
    let root = Root::open(target).ctx(|| format!("open {}", target.display()))?;
    apply_at(root, reader, options)
}

/// Applies an archive beneath an already opened root (see [`apply_layer_with`]).
pub(crate) fn apply_at(
    root: Root,
    reader: impl Read,
    options: &ApplyOptions,
) -> Result<ApplyStats> {
    let (compression, decompressed) = compression::decompress(reader)?;
    let mut hashing = HashingReader::new(decompressed);
    let mut applier = Applier {
        root,
        options,
        unpacked: HashSet::new(),
        parents: HashSet::new(),
        whited_out: HashSet::new(),
        dir_times: Vec::new(),
        entries: 0,
        content_bytes: 0,
        whiteouts: 0,
    };
    {
        let mut archive = tar::Archive::new(&mut hashing);
        for entry in archive.entries().map_err(tar_error)? {
            let mut entry = entry.map_err(tar_error)?;
            applier.apply_entry(&mut entry)?;
        }
    }
    applier.restore_dir_times()?;
    let (diff_id, tar_size) = hashing.finish().map_err(tar_error)?;
    Ok(ApplyStats {
        diff_id,
        tar_size,
        compression,
        entries: applier.entries,
        content_bytes: applier.content_bytes,
        whiteouts: applier.whiteouts,
    })
}

/// Applies a layer into a new directory `target`, all or nothing: the layer is extracted into
/// a sibling `<target>.tmp-<pid>-<n>`, which is renamed to `target` only on success and removed
/// on failure. `target` must not exist (`TargetExists`).
///
/// `seed`, if given, is called on the empty temporary directory first (the copy snapshotter
/// uses it to copy the parent's tree in).
pub fn apply_layer_atomic(
    target: &Path,
    reader: impl Read,
    options: &ApplyOptions,
) -> Result<ApplyStats> {
    build_dir_atomic(target, |tmp| apply_layer_with(tmp, reader, options))
}

/// Builds a directory at `target` all or nothing: `build` fills a fresh sibling temporary
/// directory, which is renamed to `target` on success and removed on failure.
pub fn build_dir_atomic<T>(target: &Path, build: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);

    if target.symlink_metadata().is_ok() {
        return Err(ContentError::TargetExists(target.to_path_buf()));
    }
    let mut tmp_name = target
        .file_name()
        .map(OsStr::to_os_string)
        .unwrap_or_default();
    tmp_name.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = target.with_file_name(tmp_name);
    std::fs::create_dir(&tmp).ctx(|| format!("create {}", tmp.display()))?;
    let cleanup = |primary: ContentError| match std::fs::remove_dir_all(&tmp) {
        Ok(()) => primary,
        Err(e) => primary.with_cleanup(ContentError::io(format!("remove {}", tmp.display()), e)),
    };
    let value = match build(&tmp) {
        Ok(v) => v,
        Err(e) => return Err(cleanup(e)),
    };
    let parent = target.parent().unwrap_or(Path::new("."));
    if let Err(e) = rustix::fs::renameat_with(
        rustix::fs::CWD,
        &tmp,
        rustix::fs::CWD,
        target,
        rustix::fs::RenameFlags::NOREPLACE,
    ) {
        let err = if e == Errno::EXIST {
            ContentError::TargetExists(target.to_path_buf())
        } else {
            ContentError::io(
                format!("rename {} to {}", tmp.display(), target.display()),
                e.into(),
            )
        };
        return Err(cleanup(err));
    }
    crate::blob_store::sync_dir(parent)?;
    Ok(value)
}

fn tar_error(e: io::Error) -> ContentError {
    ContentError::InvalidTar(e.to_string())
}

/// Cleans an entry name lexically (Go's `filepath.Clean` semantics): empty and `.`
/// components vanish, `..` removes the previous component. A leading `/` makes the name
/// relative to the root, where `..` stays at the root; a relative name that climbs above the
/// root is refused, as Docker refuses it ("breakout").
pub(crate) fn clean_name(raw: &[u8]) -> std::result::Result<Vec<OsString>, &'static str> {
    let absolute = raw.first() == Some(&b'/');
    let mut out: Vec<OsString> = Vec::new();
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() && !absolute {
                    return Err("path climbs above the root with '..'");
                }
            }
            c => {
                if c.contains(&0) {
                    return Err("path contains a NUL byte");
                }
                out.push(OsString::from_vec(c.to_vec()));
            }
        }
    }
    Ok(out)
}

fn display(comps: &[OsString]) -> String {
    beneath::join(comps).display().to_string()
}

/// Metadata of one entry, from its header and PAX records.
struct EntryMeta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: Timespec,
    xattrs: Vec<(OsString, Vec<u8>)>,
}

struct Applier<'o> {
    root: Root,
    options: &'o ApplyOptions,
    /// Paths this layer created, so an opaque marker in Delete mode spares them.
    unpacked: HashSet<Vec<OsString>>,
    /// Directories above the entries of this layer (its implicit parents).
    parents: HashSet<Vec<OsString>>,
    /// Overlay whiteouts this layer wrote, so a directory of the same name that follows in
    /// the same layer is made opaque instead of merging with the lower one.
    whited_out: HashSet<Vec<OsString>>,
    /// Directory mtimes, restored at the end since later entries change them.
    dir_times: Vec<(Vec<OsString>, Timespec)>,
    entries: u64,
    content_bytes: u64,
    whiteouts: u64,
}

impl Applier<'_> {
    fn apply_entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let kind = entry.header().entry_type();
        // A PAX global header carries defaults we do not use (Docker ignores them too).
        if kind == EntryType::XGlobalHeader {
            return Ok(());
        }
        let raw = entry.path_bytes().into_owned();
        let name_for_errors = String::from_utf8_lossy(&raw).into_owned();
        let comps = clean_name(&raw).map_err(|reason| ContentError::Breakout {
            entry: name_for_errors.clone(),
            reason,
        })?;
        let mut meta = read_meta(entry)?;
        if let Some((uid, gid)) = self.options.owner {
            meta.uid = uid;
            meta.gid = gid;
        }
        self.entries += 1;

        if let Some(last) = comps.last()
            && self.options.whiteouts != WhiteoutMode::Keep
            && last.as_bytes().starts_with(WHITEOUT_PREFIX.as_bytes())
        {
            self.whiteouts += 1;
            return self.apply_whiteout(&comps, &meta, &name_for_errors);
        }

        let Some((name, parent_comps)) = comps.split_last() else {
            // The root itself ("./"): only a directory may describe it.
            if kind != EntryType::Directory {
                return Err(ContentError::InvalidTar(format!(
                    "entry {name_for_errors:?} names the root but is not a directory"
                )));
            }
            let fd = self.root.open_dir(&[]).ctx(|| "open root".into())?;
            self.set_meta_fd(&fd, &meta, &name_for_errors)?;
            self.dir_times.push((Vec::new(), meta.mtime));
            return Ok(());
        };
        let parent = self
            .root
            .mkdir_all(parent_comps)
            .ctx(|| format!("create parent directories of {name_for_errors:?}"))?;
        let what = || format!("extract {name_for_errors:?}");
        let existing = file_type_at(parent.as_fd(), name).ctx(what)?;
        if self.options.no_overwrite_dir_non_dir && kind != EntryType::Link {
            let new_is_dir = kind == EntryType::Directory;
            match existing {
                Some(FileType::Directory) if !new_is_dir => {
                    return Err(ContentError::OverwriteDirNonDir(format!(
                        "cannot overwrite directory {:?} with non-directory {name_for_errors:?}",
                        display(&comps)
                    )));
                }
                Some(t) if t != FileType::Directory && new_is_dir => {
                    return Err(ContentError::OverwriteDirNonDir(format!(
                        "cannot overwrite non-directory {:?} with directory {name_for_errors:?}",
                        display(&comps)
                    )));
                }
                _ => {}
            }
        }

        match kind {
            EntryType::Directory => {
                match existing {
                    Some(FileType::Directory) => {}
                    other => {
                        if other.is_some() {
                            remove_all_at(parent.as_fd(), name).ctx(what)?;
                        }
                        rustix::fs::mkdirat(&parent, name.as_os_str(), Mode::from(0o700))
                            .ctx(what)?;
                    }
                }
                let dir = rustix::fs::openat(
                    &parent,
                    name.as_os_str(),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .ctx(what)?;
                self.set_meta_fd(&dir, &meta, &name_for_errors)?;
                if self.whited_out.contains(&comps) {
                    rustix::fs::fsetxattr(&dir, OVERLAY_OPAQUE_XATTR, b"y", XattrFlags::empty())
                        .ctx(what)?;
                }
                self.dir_times.push((comps.clone(), meta.mtime));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                if existing.is_some() {
                    remove_all_at(parent.as_fd(), name).ctx(what)?;
                }
                let fd = rustix::fs::openat(
                    &parent,
                    name.as_os_str(),
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from(0o600),
                )
                .ctx(what)?;
                let mut file = File::from(fd);
                let want = entry.size();
                let copied = io::copy(entry, &mut file).map_err(tar_error)?;
                if copied != want {
                    return Err(ContentError::InvalidTar(format!(
                        "truncated archive: entry {name_for_errors:?} has {copied} of {want} bytes"
                    )));
                }
                self.content_bytes += copied;
                self.set_meta_fd(&file, &meta, &name_for_errors)?;
                rustix::fs::futimens(&file, &times(meta.mtime)).ctx(what)?;
            }
            EntryType::Symlink => {
                let target = entry.link_name_bytes().ok_or_else(|| {
                    ContentError::InvalidTar(format!("symlink {name_for_errors:?} has no target"))
                })?;
                if existing.is_some() {
                    remove_all_at(parent.as_fd(), name).ctx(what)?;
                }
                // The target is stored as-is: a symlink may point anywhere; it is only ever
                // followed later inside the container's root.
                rustix::fs::symlinkat(OsStr::from_bytes(&target), &parent, name.as_os_str())
                    .ctx(what)?;
                self.set_meta_at(parent.as_fd(), name, &meta, false, &name_for_errors)?;
            }
            EntryType::Link => {
                let target_raw = entry.link_name_bytes().ok_or_else(|| {
                    ContentError::InvalidTar(format!("hard link {name_for_errors:?} has no target"))
                })?;
                let breakout = |reason| ContentError::Breakout {
                    entry: name_for_errors.clone(),
                    reason,
                };
                let target_comps = clean_name(&target_raw).map_err(breakout)?;
                let Some((target_name, target_parent)) = target_comps.split_last() else {
                    return Err(breakout("hard link to the root"));
                };
                let target_dir = self.root.open_dir(target_parent).ctx(|| {
                    format!(
                        "hard link {name_for_errors:?}: open directory of target {:?}",
                        display(&target_comps)
                    )
                })?;
                if existing.is_some() && target_comps != comps {
                    remove_all_at(parent.as_fd(), name).ctx(what)?;
                }
                // linkat without AT_SYMLINK_FOLLOW links the target itself, never what a
                // symlink there points to; and the target's directory was resolved in-root.
                rustix::fs::linkat(
                    &target_dir,
                    target_name.as_os_str(),
                    &parent,
                    name.as_os_str(),
                    AtFlags::empty(),
                )
                .ctx(|| {
                    format!(
                        "hard link {name_for_errors:?} to {:?}",
                        display(&target_comps)
                    )
                })?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                if existing.is_some() {
                    remove_all_at(parent.as_fd(), name).ctx(what)?;
                }
                let (file_type, dev) = match kind {
                    EntryType::Fifo => (FileType::Fifo, 0),
                    _ => {
                        let major = entry.header().device_major().map_err(tar_error)?;
                        let minor = entry.header().device_minor().map_err(tar_error)?;
                        let dev = rustix::fs::makedev(major.unwrap_or(0), minor.unwrap_or(0));
                        let ty = if kind == EntryType::Char {
                            FileType::CharacterDevice
                        } else {
                            FileType::BlockDevice
                        };
                        (ty, dev)
                    }
                };
                rustix::fs::mknodat(
                    &parent,
                    name.as_os_str(),
                    file_type,
                    Mode::from(meta.mode & 0o777),
                    dev,
                )
                .ctx(what)?;
                self.set_meta_at(parent.as_fd(), name, &meta, true, &name_for_errors)?;
            }
            other => {
                return Err(ContentError::InvalidTar(format!(
                    "entry {name_for_errors:?} has unsupported type {other:?}"
                )));
            }
        }
        for i in (1..comps.len()).rev() {
            if !self.parents.insert(comps[..i].to_vec()) {
                // Its own parents were inserted with it.
                break;
            }
        }
        self.unpacked.insert(comps);
        Ok(())
    }

    fn apply_whiteout(&mut self, comps: &[OsString], meta: &EntryMeta, entry: &str) -> Result<()> {
        let (marker, dir_comps) = comps.split_last().expect("whiteout has a name");
        let marker = marker.as_bytes();
        let what = || format!("apply whiteout {entry:?}");
        if marker == OPAQUE_MARKER.as_bytes() {
            return self.make_opaque(dir_comps, entry);
        }
        if marker.starts_with(WHITEOUT_META_PREFIX.as_bytes()) {
            // Other `.wh..wh.` names are aufs bookkeeping (`.wh..wh.plnk`, `.wh..wh.aufs`):
            // the OCI spec says they must be ignored.
            return Ok(());
        }
        let hidden = &marker[WHITEOUT_PREFIX.len()..];
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(ContentError::InvalidTar(format!(
                "whiteout {entry:?} names no file"
            )));
        }
        let hidden = OsStr::from_bytes(hidden);
        let mut hidden_comps = dir_comps.to_vec();
        hidden_comps.push(hidden.to_os_string());
        // OCI layer.md: a whiteout applies only to lower layers; what this layer itself put
        // under that name stays. For a directory that means: hide the lower one's contents.
        if self.unpacked.contains(&hidden_comps) || self.parents.contains(&hidden_comps) {
            let dir = self.root.open_dir(dir_comps).ctx(what)?;
            if file_type_at(dir.as_fd(), hidden).ctx(what)? == Some(FileType::Directory) {
                return self.make_opaque(&hidden_comps, entry);
            }
            return Ok(());
        }
        match self.options.whiteouts {
            WhiteoutMode::Overlay => {
                let dir = self.root.mkdir_all(dir_comps).ctx(what)?;
                if file_type_at(dir.as_fd(), hidden).ctx(what)?.is_some() {
                    remove_all_at(dir.as_fd(), hidden).ctx(what)?;
                }
                rustix::fs::mknodat(
                    &dir,
                    hidden,
                    FileType::CharacterDevice,
                    Mode::empty(),
                    rustix::fs::makedev(0, 0),
                )
                .ctx(what)?;
                if self.options.chown {
                    rustix::fs::chownat(
                        &dir,
                        hidden,
                        Some(Uid::from_raw(meta.uid)),
                        Some(Gid::from_raw(meta.gid)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )
                    .ctx(what)?;
                }
                self.whited_out.insert(hidden_comps);
            }
            // Not reached: whiteouts are plain entries in Keep mode.
            WhiteoutMode::Keep => {}
            WhiteoutMode::Delete => match self.root.open_dir(dir_comps) {
                Ok(dir) => match remove_all_at(dir.as_fd(), hidden) {
                    Ok(()) | Err(Errno::NOENT) => {}
                    Err(e) => return Err(e).ctx(what),
                },
                Err(Errno::NOENT) => {}
                Err(e) => return Err(e).ctx(what),
            },
        }
        Ok(())
    }

    /// Makes the directory at `dir_comps` hide the lower layers' contents: the overlay
    /// opaque xattr, or (Delete mode) removal of every child this layer did not create.
    fn make_opaque(&mut self, dir_comps: &[OsString], entry: &str) -> Result<()> {
        let what = || format!("apply opaque whiteout {entry:?}");
        match self.options.whiteouts {
            WhiteoutMode::Overlay => {
                let dir = self.root.mkdir_all(dir_comps).ctx(what)?;
                rustix::fs::fsetxattr(&dir, OVERLAY_OPAQUE_XATTR, b"y", XattrFlags::empty())
                    .ctx(what)?;
            }
            WhiteoutMode::Keep => {}
            WhiteoutMode::Delete => {
                let dir = match self.root.open_dir(dir_comps) {
                    Ok(fd) => fd,
                    Err(Errno::NOENT) => return Ok(()),
                    Err(e) => return Err(e).ctx(what),
                };
                // Everything below that this layer did not write goes; directories this
                // layer wrote or wrote into are cleaned the same way, recursively.
                for child in beneath::list_dir(dir.as_fd()).ctx(what)? {
                    let mut path = dir_comps.to_vec();
                    path.push(child.clone());
                    let ours = self.unpacked.contains(&path) || self.parents.contains(&path);
                    if !ours {
                        remove_all_at(dir.as_fd(), &child).ctx(what)?;
                    } else if file_type_at(dir.as_fd(), &child).ctx(what)?
                        == Some(FileType::Directory)
                    {
                        self.make_opaque(&path, entry)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Owner, xattrs, then mode (in that order: chown(2) clears set-user-ID bits and
    /// `security.capability`) of an open file or directory.
    fn set_meta_fd(&self, fd: &impl AsFd, meta: &EntryMeta, entry: &str) -> Result<()> {
        let what = || format!("set metadata of {entry:?}");
        if self.options.chown {
            rustix::fs::fchown(
                fd,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
            )
            .ctx(what)?;
        }
        for (name, value) in &meta.xattrs {
            rustix::fs::fsetxattr(fd, name.as_os_str(), value, XattrFlags::empty()).ctx(what)?;
        }
        rustix::fs::fchmod(fd, Mode::from(meta.mode & 0o7777)).ctx(what)?;
        Ok(())
    }

    /// The same for a symlink or device node, by name in its parent, never following.
    fn set_meta_at(
        &self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        meta: &EntryMeta,
        chmod: bool,
        entry: &str,
    ) -> Result<()> {
        let what = || format!("set metadata of {entry:?}");
        if self.options.chown {
            rustix::fs::chownat(
                parent,
                name,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .ctx(what)?;
        }
        if !meta.xattrs.is_empty() {
            let path = beneath::proc_path(parent, name);
            for (xname, value) in &meta.xattrs {
                rustix::fs::lsetxattr(&path, xname.as_os_str(), value, XattrFlags::empty())
                    .ctx(what)?;
            }
        }
        // fchmodat cannot refuse to follow a symlink on Linux, so it is only used on the
        // device node or fifo that was just created under this name. Symlink modes are
        // meaningless on Linux anyway (symlink(7)).
        if chmod {
            rustix::fs::chmodat(
                parent,
                name,
                Mode::from(meta.mode & 0o7777),
                AtFlags::empty(),
            )
            .ctx(what)?;
        }
        rustix::fs::utimensat(parent, name, &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)
            .ctx(what)?;
        Ok(())
    }

    fn restore_dir_times(&self) -> Result<()> {
        // Deepest first is not needed: setting a directory's times does not touch its parent.
        for (comps, mtime) in &self.dir_times {
            let fd = match self.root.open_dir(comps) {
                Ok(fd) => fd,
                // Removed or replaced by a later entry of the same layer.
                Err(Errno::NOENT) | Err(Errno::NOTDIR) => continue,
                Err(e) => return Err(e).ctx(|| format!("open {}", display(comps))),
            };
            rustix::fs::futimens(&fd, &times(*mtime))
                .ctx(|| format!("set times of {}", display(comps)))?;
        }
        Ok(())
    }
}

fn times(mtime: Timespec) -> Timestamps {
    Timestamps {
        last_access: mtime,
        last_modification: mtime,
    }
}

/// Reads mode, owner, mtime and xattrs from the header, with PAX records overriding
/// (POSIX.1-2001 pax format: `uid`, `gid`, `mtime`; xattrs as `SCHILY.xattr.<name>`, the
/// form Docker and GNU tar write).
fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<EntryMeta> {
    let header = entry.header();
    let bad =
        |field: &str, e: io::Error| ContentError::InvalidTar(format!("bad {field} in header: {e}"));
    let mode = header.mode().map_err(|e| bad("mode", e))?;
    let mut uid = header.uid().map_err(|e| bad("uid", e))?;
    let mut gid = header.gid().map_err(|e| bad("gid", e))?;
    let mut mtime = Timespec {
        tv_sec: i64::try_from(header.mtime().map_err(|e| bad("mtime", e))?).unwrap_or(i64::MAX),
        tv_nsec: 0,
    };
    let mut xattrs = Vec::new();
    if let Some(pax) = entry.pax_extensions().map_err(tar_error)? {
        for ext in pax {
            let ext = ext.map_err(tar_error)?;
            let key = ext.key_bytes();
            let value = ext.value_bytes();
            let number = |field: &str| -> Result<u64> {
                std::str::from_utf8(value)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| ContentError::InvalidTar(format!("bad pax {field}")))
            };
            match key {
                b"uid" => uid = number("uid")?,
                b"gid" => gid = number("gid")?,
                b"mtime" => {
                    mtime = parse_pax_time(value)
                        .ok_or_else(|| ContentError::InvalidTar("bad pax mtime".into()))?;
                }
                _ => {
                    if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                        // overlayfs reads `trusted.overlay.*` as its own metadata (opaque,
                        // redirect, metacopy): a layer must not be able to forge it.
                        if name.starts_with(b"trusted.overlay.") || name.is_empty() {
                            continue;
                        }
                        xattrs.push((OsString::from_vec(name.to_vec()), value.to_vec()));
                    }
                }
            }
        }
    }
    let id = |v: u64, field: &str| {
        u32::try_from(v)
            .ok()
            .filter(|&v| v != u32::MAX)
            .ok_or_else(|| ContentError::InvalidTar(format!("{field} {v} out of range")))
    };
    Ok(EntryMeta {
        mode,
        uid: id(uid, "uid")?,
        gid: id(gid, "gid")?,
        mtime,
        xattrs,
    })
}

/// Parses a PAX time (`<seconds>[.<fraction>]`, possibly negative).
fn parse_pax_time(value: &[u8]) -> Option<Timespec> {
    let s = std::str::from_utf8(value).ok()?;
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let mut nanos: i64 = 0;
    for (i, b) in frac.bytes().take(9).enumerate() {
        nanos += i64::from(b - b'0') * 10i64.pow(8 - i as u32);
    }
    Some(if negative {
        if nanos == 0 {
            Timespec {
                tv_sec: -secs,
                tv_nsec: 0,
            }
        } else {
            Timespec {
                tv_sec: -secs - 1,
                tv_nsec: (1_000_000_000 - nanos) as _,
            }
        }
    } else {
        Timespec {
            tv_sec: secs,
            tv_nsec: nanos as _,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_path(target: &Path, comps: &[OsString]) -> std::path::PathBuf {
        let mut p = target.to_path_buf();
        p.extend(comps);
        p
    }

    #[test]
    fn clean_name_table() {
        let ok: &[(&str, &str)] = &[
            ("a/b/c", "a/b/c"),
            ("./a//b/./c/", "a/b/c"),
            ("a/../b", "b"),
            ("/abs/evil", "abs/evil"),
            ("/../../x", "x"),
            ("./", ""),
            ("a/b/../..", ""),
        ];
        for (input, want) in ok {
            let got = clean_name(input.as_bytes()).unwrap();
            let got = host_path(Path::new(""), &got);
            assert_eq!(got, Path::new(want), "{input}");
        }
        for bad in ["../evil", "a/../../evil", "..", "./../x"] {
            assert!(clean_name(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn pax_times() {
        let t = parse_pax_time(b"1700000000.5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1_700_000_000, 500_000_000));
        let t = parse_pax_time(b"-1.25").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (-2, 750_000_000));
        let t = parse_pax_time(b"42").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (42, 0));
        assert!(parse_pax_time(b"x").is_none());
        assert!(parse_pax_time(b"1.x").is_none());
    }
}
