//! The engine's record of one container, persisted as `containers/<id>/config.v2.json`
//! (written atomically), and its conversions to the API's inspect and list models.

use std::path::{Path, PathBuf};

use bollard_stubs::models::{
    ContainerConfig, ContainerInspectResponse, ContainerState, ContainerStateStatusEnum,
    ContainerSummary, ContainerSummaryStateEnum, HostConfig, MountPoint,
};
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Lifecycle status, as Docker names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Restarting => "restarting",
            Self::Removing => "removing",
            Self::Exited => "exited",
            Self::Dead => "dead",
        }
    }

    /// Running in Docker's sense (a paused container is running too).
    pub fn is_running(self) -> bool {
        matches!(self, Self::Running | Self::Paused | Self::Restarting)
    }
}

/// The runtime state of a container.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunState {
    pub status: Status,
    pub pid: i32,
    pub exit_code: i64,
    pub oom_killed: bool,
    pub error: String,
    /// RFC 3339 with nanoseconds; Docker's zero time when never.
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Set by an explicit stop, so `unless-stopped` and `always` do not restart it.
    pub stopped_by_user: bool,
}

/// Everything the engine keeps about a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    /// Without the leading '/'.
    pub name: String,
    pub created: String,
    /// The image as the user named it.
    pub image_name: String,
    /// "sha256:...".
    pub image_id: String,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    /// The program and its arguments after merging with the image.
    pub path: String,
    pub args: Vec<String>,
    pub state: RunState,
    pub restart_count: i64,
    /// Name of the OCI runtime ("berth" = built in).
    pub runtime: String,
    /// Volumes, binds and tmpfs mounts, resolved at create (dockerd's MountPoints).
    #[serde(default)]
    pub mount_points: Vec<volume::MountPoint>,
    /// Networks the container is attached to, and what it holds of them while it runs.
    #[serde(default)]
    pub network: crate::sandbox::ContainerNetwork,
}

/// The zero time Docker prints for "never".
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Now, as Docker formats times in inspect.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

impl ContainerRecord {
    /// The container's directory under the data root.
    pub fn dir(&self, containers_root: &Path) -> PathBuf {
        containers_root.join(&self.id)
    }

    /// Writes config.v2.json atomically and durably (fsync before the rename): for what a
    /// client was told exists or changed (create, rename, update).
    pub fn save(&self, containers_root: &Path) -> Result<()> {
        self.write(containers_root, true)
    }

    /// Writes config.v2.json atomically, without waiting for the disk: for run-state changes
    /// (started, exited, stopped), which a crash of the machine makes stale anyway (its
    /// containers are gone; the next start reconciles records with the shims that still run).
    /// A reader, or the daemon after a crash of its own, sees the old record or the new one.
    pub fn save_state(&self, containers_root: &Path) -> Result<()> {
        self.write(containers_root, false)
    }

    fn write(&self, containers_root: &Path, durable: bool) -> Result<()> {
        let dir = self.dir(containers_root);
        std::fs::create_dir_all(&dir)?;
        let temporary = dir.join(".config.v2.json.tmp");
        let bytes = serde_json::to_vec(self)?;
        {
            use std::io::Write;
            let mut file = std::fs::File::create(&temporary)?;
            file.write_all(&bytes)?;
            if durable {
                file.sync_all()?;
            }
        }
        std::fs::rename(&temporary, dir.join("config.v2.json"))?;
        Ok(())
    }

    /// Reads a record back.
    pub fn load(dir: &Path) -> Result<Self> {
        let bytes = std::fs::read(dir.join("config.v2.json"))?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// Path of the json-file log.
    pub fn log_path(&self, containers_root: &Path) -> PathBuf {
        self.dir(containers_root)
            .join(format!("{}-json.log", self.id))
    }

    /// Docker's human status: "Up 2 seconds", "Exited (0) 3 seconds ago", "Created".
    pub fn status_text(&self) -> String {
        let since = |time: &Option<String>| {
            time.as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| chrono::Utc::now().signed_duration_since(t))
                .map(|elapsed| types::human_duration(elapsed.to_std().unwrap_or_default()))
                .unwrap_or_else(|| "Less than a second".into())
        };
        match self.state.status {
            Status::Created => "Created".into(),
            Status::Running => format!("Up {}", since(&self.state.started_at)),
            Status::Paused => format!("Up {} (Paused)", since(&self.state.started_at)),
            Status::Restarting => format!(
                "Restarting ({}) {} ago",
                self.state.exit_code,
                since(&self.state.finished_at)
            ),
            Status::Removing => "Removal In Progress".into(),
            Status::Exited => format!(
                "Exited ({}) {} ago",
                self.state.exit_code,
                since(&self.state.finished_at)
            ),
            Status::Dead => "Dead".into(),
        }
    }

    fn state_model(&self) -> ContainerState {
        let status = match self.state.status {
            Status::Created => ContainerStateStatusEnum::CREATED,
            Status::Running => ContainerStateStatusEnum::RUNNING,
            Status::Paused => ContainerStateStatusEnum::PAUSED,
            Status::Restarting => ContainerStateStatusEnum::RESTARTING,
            Status::Removing => ContainerStateStatusEnum::REMOVING,
            Status::Exited => ContainerStateStatusEnum::EXITED,
            Status::Dead => ContainerStateStatusEnum::DEAD,
        };
        ContainerState {
            status: Some(status),
            running: Some(self.state.status.is_running()),
            paused: Some(self.state.status == Status::Paused),
            restarting: Some(self.state.status == Status::Restarting),
            oom_killed: Some(self.state.oom_killed),
            dead: Some(self.state.status == Status::Dead),
            pid: Some(if self.state.status.is_running() {
                self.state.pid as i64
            } else {
                0
            }),
            exit_code: Some(self.state.exit_code),
            error: Some(self.state.error.clone()),
            started_at: Some(
                self.state
                    .started_at
                    .clone()
                    .unwrap_or_else(|| ZERO_TIME.into()),
            ),
            finished_at: Some(
                self.state
                    .finished_at
                    .clone()
                    .unwrap_or_else(|| ZERO_TIME.into()),
            ),
            health: None,
        }
    }

    /// Inspect's `Mounts`.
    pub fn mounts(&self) -> Vec<MountPoint> {
        self.mount_points.iter().map(|p| p.model()).collect()
    }

    /// `GET /containers/{id}/json`; `graph_driver` is the storage driver and its paths.
    pub fn inspect(
        &self,
        containers_root: &Path,
        graph_driver: bollard_stubs::models::DriverData,
    ) -> ContainerInspectResponse {
        let dir = self.dir(containers_root);
        ContainerInspectResponse {
            id: Some(self.id.clone()),
            created: Some(self.created.clone()),
            path: Some(self.path.clone()),
            args: Some(self.args.clone()),
            state: Some(self.state_model()),
            image: Some(self.image_id.clone()),
            resolv_conf_path: Some(dir.join("resolv.conf").display().to_string()),
            hostname_path: Some(dir.join("hostname").display().to_string()),
            hosts_path: Some(dir.join("hosts").display().to_string()),
            log_path: Some(self.log_path(containers_root).display().to_string()),
            name: Some(format!("/{}", self.name)),
            restart_count: Some(self.restart_count),
            driver: Some(graph_driver.name.clone()),
            platform: Some("linux".into()),
            mount_label: Some(String::new()),
            process_label: Some(String::new()),
            app_armor_profile: Some(String::new()),
            exec_ids: None,
            host_config: Some(self.host_config.clone()),
            graph_driver: Some(graph_driver),
            size_rw: None,
            size_root_fs: None,
            mounts: Some(self.mounts()),
            config: Some(self.config.clone()),
            network_settings: Some(crate::sandbox::network_settings(self)),
            ..Default::default()
        }
    }

    /// One row of `GET /containers/json`.
    pub fn summary(&self) -> ContainerSummary {
        // dockerd quotes the arguments that contain spaces: sh -c 'echo a b'.
        let command = std::iter::once(self.path.clone())
            .chain(self.args.iter().map(|arg| {
                if arg.is_empty() || arg.contains(char::is_whitespace) {
                    format!("'{arg}'")
                } else {
                    arg.clone()
                }
            }))
            .collect::<Vec<_>>()
            .join(" ");
        let state = match self.state.status {
            Status::Created => ContainerSummaryStateEnum::CREATED,
            Status::Running => ContainerSummaryStateEnum::RUNNING,
            Status::Paused => ContainerSummaryStateEnum::PAUSED,
            Status::Restarting => ContainerSummaryStateEnum::RESTARTING,
            Status::Removing => ContainerSummaryStateEnum::REMOVING,
            Status::Exited => ContainerSummaryStateEnum::EXITED,
            Status::Dead => ContainerSummaryStateEnum::DEAD,
        };
        let created = chrono::DateTime::parse_from_rfc3339(&self.created)
            .map(|t| t.timestamp())
            .unwrap_or_default();
        ContainerSummary {
            id: Some(self.id.clone()),
            names: Some(vec![format!("/{}", self.name)]),
            image: Some(self.image_name.clone()),
            image_id: Some(self.image_id.clone()),
            command: Some(command),
            created: Some(created),
            ports: Some(crate::sandbox::summary_ports(self)),
            labels: Some(self.config.labels.clone().unwrap_or_default()),
            state: Some(state),
            status: Some(self.status_text()),
            host_config: Some(bollard_stubs::models::ContainerSummaryHostConfig {
                network_mode: self.host_config.network_mode.clone(),
                ..Default::default()
            }),
            network_settings: Some(bollard_stubs::models::ContainerSummaryNetworkSettings {
                networks: crate::sandbox::network_settings(self).networks,
            }),
            mounts: Some(self.mounts()),
            ..Default::default()
        }
    }
}
