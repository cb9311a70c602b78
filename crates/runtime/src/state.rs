//! The runtime's record of a container, one directory per container under the state root
//! (`--root`, default /run/berth-runtime): `state.json` (written atomically) and, until
//! `start`, the `exec.fifo` that holds the container's init before it execs the user program.
//!
//! The status is never stored: it is derived from the init process (alive and the same process,
//! checked by its start time), the fifo and the freezer, so it cannot go stale after a crash.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, sys};

/// Default state root, like runc's /run/runc.
pub const DEFAULT_ROOT: &str = "/run/berth-runtime";
const STATE_FILE: &str = "state.json";
/// Name of the fifo in the container's state directory.
pub const EXEC_FIFO: &str = "exec.fifo";

/// Lifecycle status (OCI runtime.md "State"), plus runc's `paused`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Creating => "creating",
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Stopped => "stopped",
        })
    }
}

/// What the runtime remembers of a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    /// Pid of the init process in the runtime's pid namespace.
    pub pid: i32,
    /// Start time of that process (field 22 of /proc/PID/stat), to tell it from a reused pid.
    pub pid_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// The cgroup path (relative to each hierarchy's root).
    pub cgroup_path: String,
    pub created: DateTime<Utc>,
    /// The spec the container was created from (exec uses its process defaults).
    pub spec: Spec,
}

impl ContainerRecord {
    /// Annotations of the spec.
    pub fn annotations(&self) -> HashMap<String, String> {
        self.spec.annotations().clone().unwrap_or_default()
    }
}

/// The state root directory.
#[derive(Debug, Clone)]
pub struct StateRoot {
    dir: PathBuf,
}

/// Container ids are used as directory names: keep them to runc's accepted characters.
pub fn validate_id(id: &str) -> Result<()> {
    let valid = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "invalid container id {id:?}"
        )))
    }
}

impl StateRoot {
    /// The state root at `dir`, created (mode 0700) if missing.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        if !dir.is_absolute() {
            return Err(Error::InvalidArgument(format!(
                "root {dir:?} must be an absolute path"
            )));
        }
        fs::create_dir_all(&dir).map_err(sys(format!("create state root {}", dir.display())))?;
        Ok(Self { dir })
    }

    /// The directory of one container.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Makes the directory of a new container; fails if the id is taken.
    pub fn reserve(&self, id: &str) -> Result<PathBuf> {
        validate_id(id)?;
        let dir = self.container_dir(id);
        match fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::AlreadyExists(id.to_string()))
            }
            Err(e) => Err(Error::sys(format!("create {}", dir.display()), e)),
        }
    }

    /// Writes the record atomically (temp file, rename), so a reader never sees half of it.
    ///
    /// Not fsynced: the record describes live processes only, and after a crash of the machine
    /// those are gone (a stale record is recognised by the init's start time), so durability
    /// buys nothing. The fsync cost 1-4 ms on the critical path of every `create` when the
    /// state root is on a disk rather than the usual tmpfs /run.
    pub fn save(&self, record: &ContainerRecord) -> Result<()> {
        let dir = self.container_dir(&record.id);
        let temporary = dir.join(".state.json.tmp");
        let bytes = serde_json::to_vec(record).map_err(|e| Error::Child(e.to_string()))?;
        let mut file = fs::File::create(&temporary).map_err(sys("write state"))?;
        file.write_all(&bytes).map_err(sys("write state"))?;
        drop(file);
        fs::rename(&temporary, dir.join(STATE_FILE)).map_err(sys("rename state"))?;
        Ok(())
    }

    /// Loads the record of `id`.
    pub fn load(&self, id: &str) -> Result<ContainerRecord> {
        validate_id(id).map_err(|_| Error::NotFound(id.to_string()))?;
        let path = self.container_dir(id).join(STATE_FILE);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.to_string()));
            }
            Err(e) => return Err(Error::sys(format!("read {}", path.display()), e)),
        };
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::InvalidSpec(format!("corrupt state of {id}: {e}")))
    }

    /// Ids of every container with a directory here (sorted).
    pub fn ids(&self) -> Result<Vec<String>> {
        let mut ids: Vec<String> = fs::read_dir(&self.dir)
            .map_err(sys("list state root"))?
            .filter_map(|entry| entry.ok())
            .filter(|entry| entry.path().join(STATE_FILE).exists())
            .filter_map(|entry| entry.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Removes the container's directory; a missing one is fine.
    pub fn remove(&self, id: &str) -> Result<()> {
        match fs::remove_dir_all(self.container_dir(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::sys(format!("remove state of {id}"), e))
            }
            _ => Ok(()),
        }
    }

    /// Path of the exec fifo of `id`.
    pub fn exec_fifo(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(EXEC_FIFO)
    }
}

/// Start time of a process (clock ticks since boot), `None` when it does not exist (or is a
/// zombie, which counts as gone: it will never run the container again).
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    // Field 22 overall is index 19 after the pid and the name.
    fields.get(19)?.parse().ok()
}

/// Whether the record's init process is still the same live process.
pub fn is_alive(record: &ContainerRecord) -> bool {
    record.pid > 0 && process_start_time(record.pid) == Some(record.pid_start_time)
}

/// Path helper used by callers that only have the root and the id.
pub fn fifo_exists(root: &StateRoot, id: &str) -> bool {
    Path::new(&root.exec_fifo(id)).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        for good in ["abc", "a-b_c.d+e", "0123456789abcdef"] {
            validate_id(good).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "ä"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn own_start_time_is_read_and_dead_pids_have_none() {
        let me = std::process::id() as i32;
        assert!(process_start_time(me).is_some());
        assert!(process_start_time(i32::MAX - 1).is_none());
    }
}
