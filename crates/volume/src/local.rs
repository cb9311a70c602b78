//! The `local` volume driver: one directory per volume under the volumes root, as dockerd lays
//! them out, so that tools that know Docker's layout find the data:
//!
//! ```text
//! <root>/<name>/_data       the volume's content (or the mount point of its options' mount)
//! <root>/<name>/opts.json   the `-o` options, when given (written atomically)
//! ```
//!
//! A volume created with options (`-o type=tmpfs -o device=tmpfs -o o=size=64m`, a bind with
//! `-o type=none -o o=bind -o device=/srv`, any file system with a device) is mounted on its
//! `_data` when the first container using it starts and unmounted when the last one stops: the
//! driver counts the users by id. Plain volumes are directories and are never mounted.

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rustix::mount::{MountFlags, UnmountFlags};

use crate::error::{Error, IoContext, Result, errno_text};
use crate::mountinfo;
use crate::options::{self, LocalMount};

const DATA_DIR: &str = "_data";
const OPTIONS_FILE: &str = "opts.json";

/// The local driver over its root directory.
#[derive(Debug)]
pub struct LocalDriver {
    root: PathBuf,
    /// Volumes with a mount that is mounted, with the ids of their users.
    active: Mutex<HashMap<String, HashSet<String>>>,
}

impl LocalDriver {
    /// Opens (creating) the root. Only root may list it (0701, as dockerd's).
    pub fn open(root: &Path) -> Result<Self> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o701)
            .create(root)
            .ctx(|| format!("create {}", root.display()))?;
        Ok(Self {
            root: root.to_path_buf(),
            active: Mutex::new(HashMap::new()),
        })
    }

    fn volume_dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Where the volume's content is: what containers bind.
    pub fn path(&self, name: &str) -> PathBuf {
        self.volume_dir(name).join(DATA_DIR)
    }

    /// Whether the volume's directory exists.
    pub fn exists(&self, name: &str) -> bool {
        self.path(name).is_dir()
    }

    /// The names of the volumes on disk (directories holding `_data`).
    pub fn names(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.root).ctx(|| format!("read {}", self.root.display()))? {
            let entry = entry.ctx(|| format!("read {}", self.root.display()))?;
            if let Ok(name) = entry.file_name().into_string()
                && crate::name::validate("get", &name).is_ok()
                && entry.path().join(DATA_DIR).is_dir()
            {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Creates the volume's directories and records its options. An existing volume is left
    /// as it is. Nothing stays behind on failure.
    pub fn create(&self, name: &str, options: &HashMap<String, String>) -> Result<()> {
        options::validate(options).map_err(|reason| Error::InvalidOption {
            op: "create",
            name: name.to_string(),
            reason,
        })?;
        if self.exists(name) {
            return Ok(());
        }
        let dir = self.volume_dir(name);
        let result = (|| {
            fs::DirBuilder::new()
                .mode(0o701)
                .create(&dir)
                .ctx(|| format!("create {}", dir.display()))?;
            let data = dir.join(DATA_DIR);
            fs::DirBuilder::new()
                .mode(0o755)
                .create(&data)
                .ctx(|| format!("create {}", data.display()))?;
            // The umask may have narrowed it.
            fs::set_permissions(&data, fs::Permissions::from_mode(0o755))
                .ctx(|| format!("chmod {}", data.display()))?;
            if !options.is_empty() {
                write_atomically(
                    &dir.join(OPTIONS_FILE),
                    &serde_json::to_vec(options).expect("map"),
                )?;
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_dir_all(&dir);
        }
        result
    }

    /// The options the volume was created with.
    pub fn options(&self, name: &str) -> Result<HashMap<String, String>> {
        let path = self.volume_dir(name).join(OPTIONS_FILE);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::io(
                    format!("read {}", path.display()),
                    io::Error::new(io::ErrorKind::InvalidData, e),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(HashMap::new()),
            Err(e) => Err(Error::io(format!("read {}", path.display()), e)),
        }
    }

    /// Removes the volume. Refused while it is mounted for a container; a leftover mount (a
    /// crash) is detached first, so that removing the directory never deletes what a bind
    /// or device mount shows.
    pub fn remove(&self, name: &str) -> Result<()> {
        if self
            .active
            .lock()
            .expect("active lock")
            .get(name)
            .is_some_and(|users| !users.is_empty())
        {
            return Err(Error::Mount(format!(
                "remove {name}: volume has active mounts"
            )));
        }
        let data = self.path(name);
        while mountinfo::is_mount_point(&data) {
            rustix::mount::unmount(&data, UnmountFlags::DETACH).map_err(|e| {
                Error::Mount(format!(
                    "remove {name}: unmount {}: {}",
                    data.display(),
                    errno_text(e)
                ))
            })?;
        }
        let dir = self.volume_dir(name);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("remove {}", dir.display()), e)),
        }
    }

    /// Makes the volume ready for user `id` and returns its path: mounts it on its first user
    /// when it has a mount.
    pub fn mount(&self, name: &str, id: &str) -> Result<PathBuf> {
        let path = self.path(name);
        let Some(plan) = options::plan(&self.options(name)?) else {
            return Ok(path);
        };
        let mut active = self.active.lock().expect("active lock");
        let users = active.entry(name.to_string()).or_default();
        if users.is_empty()
            && !mountinfo::is_mount_point(&path)
            && let Err(cause) = perform(&plan, &path)
        {
            active.remove(name);
            return Err(Error::Mount(format!(
                "error while mounting volume '{}': {}",
                path.display(),
                plan.describe_failure(&path.display().to_string(), &cause)
            )));
        }
        users.insert(id.to_string());
        Ok(path)
    }

    /// Notes that user `id` no longer needs the volume; the last one unmounts it.
    pub fn unmount(&self, name: &str, id: &str) -> Result<()> {
        let mut active = self.active.lock().expect("active lock");
        let Some(users) = active.get_mut(name) else {
            return Ok(());
        };
        users.remove(id);
        if !users.is_empty() {
            return Ok(());
        }
        active.remove(name);
        let path = self.path(name);
        while mountinfo::is_mount_point(&path) {
            rustix::mount::unmount(&path, UnmountFlags::DETACH).map_err(|e| {
                Error::Mount(format!("unmount {}: {}", path.display(), errno_text(e)))
            })?;
        }
        Ok(())
    }

    /// Unmounts the volumes that are mounted but have no user (after a restart of the
    /// daemon has re-registered the users of running containers).
    pub fn unmount_idle(&self) {
        // One read of the mount table for all volumes (this runs at every daemon start).
        let mounted: HashSet<PathBuf> = mountinfo::current()
            .into_iter()
            .map(|m| m.mount_point)
            .filter(|m| m.starts_with(&self.root))
            .collect();
        if mounted.is_empty() {
            return;
        }
        let active = self.active.lock().expect("active lock");
        for name in self.names().unwrap_or_default() {
            if active.get(&name).is_some_and(|users| !users.is_empty()) {
                continue;
            }
            let path = self.path(&name);
            if !mounted.contains(&path) {
                continue;
            }
            while mountinfo::is_mount_point(&path) {
                if rustix::mount::unmount(&path, UnmountFlags::DETACH).is_err() {
                    break;
                }
            }
        }
    }

    /// Bytes of the files in the volume.
    pub fn size(&self, name: &str) -> u64 {
        content::tree_size(&self.path(name)).unwrap_or(0)
    }

    /// When the volume was created (its directory's modification time, as dockerd reads it).
    pub fn created_at(&self, name: &str) -> Option<std::time::SystemTime> {
        fs::metadata(self.volume_dir(name))
            .and_then(|m| m.modified())
            .ok()
    }
}

/// Performs a volume's mount on `target`; the error is the errno's text.
fn perform(plan: &LocalMount, target: &Path) -> std::result::Result<(), String> {
    let flags = MountFlags::from_bits_retain(plan.flags as _);
    if plan.is_bind() {
        rustix::mount::mount(
            plan.source.as_str(),
            target,
            "",
            flags & (MountFlags::BIND | MountFlags::REC),
            None,
        )
        .map_err(errno_text)?;
        let remount = plan.bind_remount_flags();
        if remount != 0 {
            let result = rustix::mount::mount_remount(
                target,
                MountFlags::BIND | MountFlags::from_bits_retain(remount as _),
                "",
            );
            if let Err(e) = result {
                let _ = rustix::mount::unmount(target, UnmountFlags::DETACH);
                return Err(errno_text(e));
            }
        }
        return Ok(());
    }
    let data = CString::new(plan.data.clone()).map_err(|e| e.to_string())?;
    rustix::mount::mount(
        plan.source.as_str(),
        target,
        plan.fs_type.as_str(),
        flags,
        (!plan.data.is_empty()).then_some(data.as_c_str()),
    )
    .map_err(errno_text)
}

/// Writes `path` through a temporary file, fsync and rename, then syncs the directory.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().expect("a file in a directory");
    let temporary = dir.join(format!(
        ".{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    let result = (|| {
        let mut file = fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temporary, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result.ctx(|| format!("write {}", path.display()))
}
