//! The runtime's entry point: [`Runtime`] over a state root. Each lifecycle verb lives in its
//! own file (`create.rs`, `start.rs`, `kill.rs`, ...) as methods of [`Runtime`].
//!
//! The verbs that fork (`create`, `run`, `exec`) must be called from a single-threaded process
//! (the CLI or a per-container monitor), as fork(2) in a threaded process may only call
//! async-signal-safe functions.

use std::path::PathBuf;

use oci_spec::runtime::State;

use crate::error::{Error, Result};
use crate::state::{ContainerRecord, StateRoot, Status};

/// How cgroup paths of specs are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CgroupPathStyle {
    /// A path relative to each hierarchy's root ("/berth/abc"); empty means "/berth-<id>".
    #[default]
    Cgroupfs,
    /// systemd's "slice:prefix:name" form (runc's --systemd-cgroup), mapped to
    /// "/<slice path>/<prefix>-<name>.scope" on the cgroup filesystem.
    Systemd,
}

/// An OCI runtime over one state root.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub(crate) root: StateRoot,
    pub(crate) cgroup_style: CgroupPathStyle,
    /// Where compiled seccomp programs are kept (see [`crate::seccomp::prepare`]); None: every
    /// filter is compiled when loaded.
    pub(crate) seccomp_cache: Option<PathBuf>,
}

/// A container as listed by `list` and printed by `state`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ContainerStatus {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: chrono::DateTime<chrono::Utc>,
    pub owner: String,
    #[serde(skip_serializing_if = "std::collections::HashMap::is_empty")]
    pub annotations: std::collections::HashMap<String, String>,
}

impl Runtime {
    /// A runtime whose state lives under `root`.
    pub fn new(root: impl Into<PathBuf>, cgroup_style: CgroupPathStyle) -> Result<Self> {
        Ok(Self {
            root: StateRoot::open(root)?,
            cgroup_style,
            seccomp_cache: None,
        })
    }

    /// The spec's seccomp filter, prepared (compiled, or read from the cache) before forking.
    pub(crate) fn prepare_seccomp(
        &self,
        spec: &oci_spec::runtime::Spec,
    ) -> Result<Option<crate::seccomp::PreparedFilter>> {
        spec.linux()
            .as_ref()
            .and_then(|l| l.seccomp().as_ref())
            .map(|filter| crate::seccomp::prepare(filter, self.seccomp_cache.as_deref()))
            .transpose()
    }

    /// Keeps compiled seccomp programs in `dir` (root-only; see [`crate::seccomp::prepare`]).
    pub fn with_seccomp_cache(mut self, dir: impl Into<PathBuf>) -> Self {
        self.seccomp_cache = Some(dir.into());
        self
    }

    /// The status of a container, derived from its live init process.
    pub fn status(&self, record: &ContainerRecord) -> Status {
        if !crate::state::is_alive(record) {
            return Status::Stopped;
        }
        if self.root.exec_fifo(&record.id).exists() {
            return Status::Created;
        }
        let frozen = self
            .cgroup_of(record)
            .and_then(|cgroup| Ok(cgroup.is_frozen()?));
        if frozen.unwrap_or(false) {
            Status::Paused
        } else {
            Status::Running
        }
    }

    /// The cgroup of a container.
    pub(crate) fn cgroup_of(&self, record: &ContainerRecord) -> Result<cgroups::Cgroup> {
        let hierarchies = cgroups::Hierarchies::detect()?;
        Ok(cgroups::Cgroup::new(&hierarchies, &record.cgroup_path)?)
    }

    /// `state`: the container's status record.
    pub fn state(&self, id: &str) -> Result<ContainerStatus> {
        let record = self.root.load(id)?;
        Ok(self.describe(&record))
    }

    /// `list`: every container under the root.
    pub fn list(&self) -> Result<Vec<ContainerStatus>> {
        let mut all = Vec::new();
        for id in self.root.ids()? {
            match self.root.load(&id) {
                Ok(record) => all.push(self.describe(&record)),
                Err(error) => tracing::warn!("skipping {id}: {error}"),
            }
        }
        Ok(all)
    }

    /// `ps`: pids of every process in the container's cgroup.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let record = self.root.load(id)?;
        if !crate::state::is_alive(&record) {
            return Ok(Vec::new());
        }
        Ok(self.cgroup_of(&record)?.pids()?)
    }

    /// Resource usage of a running container (for `events --stats`).
    pub fn stats(&self, id: &str) -> Result<cgroups::Stats> {
        let record = self.root.load(id)?;
        Ok(self.cgroup_of(&record)?.stats()?)
    }

    pub(crate) fn describe(&self, record: &ContainerRecord) -> ContainerStatus {
        let status = self.status(record);
        let owner = std::fs::metadata(self.root.container_dir(&record.id))
            .ok()
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
            .and_then(|uid| nix::unistd::User::from_uid(uid.into()).ok().flatten())
            .map(|user| user.name)
            .unwrap_or_default();
        ContainerStatus {
            oci_version: crate::bundle::OCI_VERSION.into(),
            id: record.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                record.pid
            },
            status,
            bundle: record.bundle.clone(),
            rootfs: record.rootfs.clone(),
            created: record.created,
            owner,
            annotations: record.annotations(),
        }
    }

    /// The OCI state handed to hooks.
    pub(crate) fn hook_state(&self, record: &ContainerRecord, status: Status) -> State {
        let mut state = State::default();
        state.set_version(crate::bundle::OCI_VERSION.into());
        state.set_id(record.id.clone());
        state.set_status(match status {
            Status::Creating => oci_spec::runtime::ContainerState::Creating,
            Status::Created => oci_spec::runtime::ContainerState::Created,
            Status::Running | Status::Paused => oci_spec::runtime::ContainerState::Running,
            Status::Stopped => oci_spec::runtime::ContainerState::Stopped,
        });
        if status != Status::Stopped {
            state.set_pid(Some(record.pid));
        }
        state.set_bundle(record.bundle.clone());
        let annotations = record.annotations();
        if !annotations.is_empty() {
            state.set_annotations(Some(annotations));
        }
        state
    }

    /// The cgroup path a new container gets.
    pub(crate) fn cgroup_path(
        &self,
        id: &str,
        spec_path: Option<&std::path::Path>,
    ) -> Result<String> {
        let spec_path = spec_path
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        match self.cgroup_style {
            CgroupPathStyle::Cgroupfs if spec_path.is_empty() => Ok(format!("/berth-{id}")),
            CgroupPathStyle::Cgroupfs => Ok(if spec_path.starts_with('/') {
                spec_path
            } else {
                format!("/{spec_path}")
            }),
            CgroupPathStyle::Systemd => systemd_to_cgroupfs(id, &spec_path),
        }
    }
}

/// Maps systemd's "slice:prefix:name" to the path systemd would give the scope:
/// "a-b.slice:pfx:name" -> "/a.slice/a-b.slice/pfx-name.scope" (systemd.slice(5): dashes in a
/// slice name denote its parents).
fn systemd_to_cgroupfs(id: &str, spec_path: &str) -> Result<String> {
    let parts: Vec<&str> = if spec_path.is_empty() {
        vec!["system.slice", "berth", id]
    } else {
        spec_path.split(':').collect()
    };
    let [slice, prefix, name] = parts.as_slice() else {
        return Err(Error::InvalidSpec(format!(
            "systemd cgroupsPath {spec_path:?} must be \"slice:prefix:name\""
        )));
    };
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    if !slice.ends_with(".slice") || slice.contains('/') {
        return Err(Error::InvalidSpec(format!(
            "invalid systemd slice {slice:?}"
        )));
    }
    let mut path = String::new();
    let stem = slice.trim_end_matches(".slice");
    if stem != "-" {
        let pieces: Vec<&str> = stem.split('-').collect();
        for end in 1..=pieces.len() {
            path.push('/');
            path.push_str(&pieces[..end].join("-"));
            path.push_str(".slice");
        }
    }
    let unit = if name.ends_with(".slice") {
        name.to_string()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    Ok(format!("{path}/{unit}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_paths_map_to_scopes() {
        assert_eq!(
            systemd_to_cgroupfs("x", "machine.slice:libpod:abc").unwrap(),
            "/machine.slice/libpod-abc.scope"
        );
        assert_eq!(
            systemd_to_cgroupfs("x", "a-b.slice:pfx:n").unwrap(),
            "/a.slice/a-b.slice/pfx-n.scope"
        );
        assert_eq!(
            systemd_to_cgroupfs("x", "").unwrap(),
            "/system.slice/berth-x.scope"
        );
        assert!(systemd_to_cgroupfs("x", "/plain/path").is_err());
    }
}
