//! `GET /info` and `GET /version`, with real figures of this host.

use std::collections::{HashMap, HashSet};

use bollard_stubs::models::{
    ContainerSummary, ImageSummary, SystemInfo, SystemVersion, SystemVersionComponents,
    SystemVersionPlatform,
};
use serde::Serialize;

use crate::Engine;
use crate::error::{Error, Result};
use crate::record::Status;

/// API version the daemon speaks (advertised in headers and /version).
pub const API_VERSION: &str = "1.47";
/// Oldest API version accepted in versioned paths.
pub const MIN_API_VERSION: &str = "1.24";
/// Engine version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Commit the daemon was built from (docker prints it as "Git commit").
const GIT_COMMIT: &str = match option_env!("BERTH_GIT_COMMIT") {
    Some(commit) => commit,
    None => "unknown",
};
/// Docker prints a "Go version"; ours is the language of the build.
const RUST_VERSION: &str = "rust";

fn kernel_version() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The host's memory in bytes (`MemTotal` of /proc/meminfo), 0 when unknown.
pub(crate) fn memory_total() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|kb| kb.parse::<i64>().ok())
                })
        })
        .map(|kb| kb * 1024)
        .unwrap_or_default()
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}

impl Engine {
    /// `GET /info`.
    pub async fn info(&self) -> SystemInfo {
        let entries = self.entries();
        let (mut running, mut paused, mut stopped) = (0, 0, 0);
        for entry in &entries {
            match entry.record.lock().await.state.status {
                Status::Running | Status::Restarting => running += 1,
                Status::Paused => paused += 1,
                _ => stopped += 1,
            }
        }
        let hierarchies = cgroups::Hierarchies::detect().ok();
        let cgroup_version = hierarchies
            .as_ref()
            .map(|h| h.cgroup_version_string())
            .unwrap_or("1");
        let features = hierarchies.as_ref().map(|h| h.features());
        let hostname = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut runtimes = std::collections::HashMap::new();
        runtimes.insert(
            "berth".to_string(),
            bollard_stubs::models::Runtime {
                path: Some("berth-shim (built-in runtime)".into()),
                ..Default::default()
            },
        );
        for (name, path) in &self.config.runtimes {
            runtimes.insert(
                name.clone(),
                bollard_stubs::models::Runtime {
                    path: Some(path.display().to_string()),
                    ..Default::default()
                },
            );
        }
        SystemInfo {
            id: Some(hostname.clone()),
            containers: Some(entries.len() as i64),
            containers_running: Some(running),
            containers_paused: Some(paused),
            containers_stopped: Some(stopped),
            images: Some(self.images.count() as i64),
            driver: Some(self.images.driver().docker_name().into()),
            driver_status: Some(driver_status(self.images.driver(), &self.config.data_root)),
            docker_root_dir: Some(self.config.data_root.display().to_string()),
            memory_limit: Some(features.as_ref().is_some_and(|f| f.memory_limit)),
            swap_limit: Some(features.as_ref().is_some_and(|f| f.swap_limit)),
            cpu_cfs_period: Some(features.as_ref().is_some_and(|f| f.cpu_cfs_period)),
            cpu_cfs_quota: Some(features.as_ref().is_some_and(|f| f.cpu_cfs_quota)),
            cpu_shares: Some(features.as_ref().is_some_and(|f| f.cpu_shares)),
            cpu_set: Some(features.as_ref().is_some_and(|f| f.cpuset)),
            pids_limit: Some(features.as_ref().is_some_and(|f| f.pids_limit)),
            oom_kill_disable: Some(features.as_ref().is_some_and(|f| f.oom_kill_disable)),
            ipv4_forwarding: Some(true),
            debug: Some(false),
            nfd: Some(
                std::fs::read_dir("/proc/self/fd")
                    .map(|d| d.count() as i64)
                    .unwrap_or_default(),
            ),
            n_goroutines: Some(0),
            system_time: Some(crate::record::now_rfc3339()),
            logging_driver: Some("json-file".into()),
            cgroup_driver: Some(bollard_stubs::models::SystemInfoCgroupDriverEnum::CGROUPFS),
            cgroup_version: Some(if cgroup_version == "2" {
                bollard_stubs::models::SystemInfoCgroupVersionEnum::_2
            } else {
                bollard_stubs::models::SystemInfoCgroupVersionEnum::_1
            }),
            n_events_listener: Some(0),
            kernel_version: Some(kernel_version()),
            operating_system: Some(os_name()),
            os_version: Some(String::new()),
            os_type: Some("linux".into()),
            architecture: Some(std::env::consts::ARCH.into()),
            ncpu: Some(
                std::thread::available_parallelism()
                    .map(|n| n.get() as i64)
                    .unwrap_or(1),
            ),
            mem_total: Some(memory_total()),
            index_server_address: Some("https://index.docker.io/v1/".into()),
            name: Some(hostname),
            labels: Some(vec![]),
            experimental_build: Some(false),
            server_version: Some(VERSION.into()),
            runtimes: Some(runtimes),
            default_runtime: Some("berth".into()),
            live_restore_enabled: Some(true),
            isolation: Some(bollard_stubs::models::SystemInfoIsolationEnum::DEFAULT),
            // dockerd names the binary it runs for --init ("docker-init"); ours is berth-init.
            init_binary: Some(
                self.config
                    .init_binary
                    .as_ref()
                    .and_then(|path| path.file_name())
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ),
            security_options: Some(vec![
                "name=seccomp,profile=builtin".into(),
                "name=cgroupns".into(),
            ]),
            warnings: Some(vec![]),
            ..Default::default()
        }
    }

    /// `GET /version`.
    pub fn version(&self) -> SystemVersion {
        let component = SystemVersionComponents {
            name: "Engine".into(),
            version: VERSION.into(),
            details: Some(std::collections::HashMap::from([
                ("ApiVersion".to_string(), API_VERSION.to_string()),
                ("MinAPIVersion".to_string(), MIN_API_VERSION.to_string()),
                ("Os".to_string(), "linux".to_string()),
                ("Arch".to_string(), go_arch().to_string()),
                ("KernelVersion".to_string(), kernel_version()),
                ("GitCommit".to_string(), GIT_COMMIT.to_string()),
                ("BuildTime".to_string(), String::new()),
                ("Experimental".to_string(), "false".to_string()),
                ("GoVersion".to_string(), RUST_VERSION.to_string()),
            ])),
        };
        SystemVersion {
            platform: Some(SystemVersionPlatform {
                name: "Berth Engine".into(),
            }),
            components: Some(vec![component]),
            version: Some(VERSION.into()),
            api_version: Some(API_VERSION.into()),
            min_api_version: Some(MIN_API_VERSION.into()),
            git_commit: Some(GIT_COMMIT.into()),
            go_version: Some(RUST_VERSION.into()),
            os: Some("linux".into()),
            arch: Some(go_arch().into()),
            kernel_version: Some(kernel_version()),
            experimental: Some(false),
            build_time: Some(String::new()),
        }
    }
}

/// The name dockerd gives the file system holding `path` (its fsmagic table), as `info`
/// shows it under "Backing Filesystem".
fn backing_filesystem(path: &std::path::Path) -> &'static str {
    // `f_type`'s integer type differs between architectures.
    #[allow(clippy::unnecessary_cast)]
    let magic = match rustix::fs::statfs(path) {
        Ok(stat) => stat.f_type as i64,
        Err(_) => return "<unknown>",
    };
    match magic {
        0xEF53 => "extfs",
        0x5846_5342 => "xfs",
        0x0102_1994 => "tmpfs",
        0x9123_683E => "btrfs",
        0x794C_7630 => "overlayfs",
        0x2FC1_2FC1 => "zfs",
        0x6969 => "nfs",
        0xF2F5_2010 => "f2fs",
        0x5346_544E => "ntfs",
        0x4d44 => "msdos",
        _ => "<unknown>",
    }
}

/// `DriverStatus` of `info`: overlay2's lines as dockerd prints them; none for vfs.
fn driver_status(driver: content::SnapshotDriver, data_root: &std::path::Path) -> Vec<Vec<String>> {
    match driver {
        content::SnapshotDriver::Overlay => [
            ("Backing Filesystem", backing_filesystem(data_root)),
            ("Supports d_type", "true"),
            ("Using metacopy", "false"),
            ("Native Overlay Diff", "true"),
            ("userxattr", "false"),
        ]
        .iter()
        .map(|(k, v)| vec![k.to_string(), v.to_string()])
        .collect(),
        content::SnapshotDriver::Copy => Vec::new(),
    }
}

/// Go's name of the architecture, as docker prints it.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// `GET /system/df` in the shape of API 1.47 (`types.DiskUsage`): what `docker system df`
/// and `docker system df -v` print.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiskUsage {
    /// Bytes of every image layer, each counted once however many images share it.
    pub layers_size: i64,
    /// Every image, with `Containers` (how many use it) and `SharedSize` (bytes of its layers
    /// that other images use too).
    pub images: Vec<ImageSummary>,
    /// Every container, with `SizeRw` and `SizeRootFs`.
    pub containers: Vec<ContainerSummary>,
    /// Every volume, with `UsageData` (its size and how many containers reference it).
    pub volumes: Vec<volume::VolumeView>,
    /// Build cache records: none until Berth builds images.
    pub build_cache: Vec<serde_json::Value>,
}

/// What `POST /containers/prune` answers.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerPruneReport {
    pub containers_deleted: Vec<String>,
    /// Bytes of the removed containers' writable layers.
    pub space_reclaimed: u64,
}

/// Layer statistics over all images: total of distinct layers, and per image the bytes of
/// its layers that at least one other image also holds (dockerd counts, per layer, the images
/// referencing it; a layer with more than one is shared).
fn layer_usage(images: &[image::Image]) -> (i64, HashMap<String, i64>) {
    let mut references: HashMap<&str, usize> = HashMap::new();
    let mut sizes: HashMap<&str, u64> = HashMap::new();
    for image in images {
        let mut seen = HashSet::new();
        for layer in &image.record.layers {
            let chain = layer.chain_id.encoded();
            if seen.insert(chain) {
                *references.entry(chain).or_default() += 1;
                sizes.insert(chain, layer.size);
            }
        }
    }
    let total = sizes.values().sum::<u64>() as i64;
    let shared = images
        .iter()
        .map(|image| {
            let mut seen = HashSet::new();
            let bytes: u64 = image
                .record
                .layers
                .iter()
                .filter(|l| seen.insert(l.chain_id.encoded()))
                .filter(|l| references.get(l.chain_id.encoded()).copied().unwrap_or(0) > 1)
                .map(|l| l.size)
                .sum();
            (image.id.to_string(), bytes as i64)
        })
        .collect();
    (total, shared)
}

impl Engine {
    /// A container's `SizeRw` (bytes of the files in its writable layer) and `SizeRootFs`
    /// (its image's size plus that), as `docker ps --size` shows them.
    pub(crate) async fn container_sizes(&self, id: &str, image_id: &str) -> (i64, i64) {
        let images = self.images.clone();
        let key = id.to_string();
        let image_id = image_id.to_string();
        tokio::task::spawn_blocking(move || {
            let rw = images.rootfs_size(&key).unwrap_or(0) as i64;
            let image = images
                .resolve(&image_id)
                .map(|i| i.record.size() as i64)
                .unwrap_or(0);
            (rw, image + rw)
        })
        .await
        .unwrap_or((0, 0))
    }

    /// `GET /system/df`.
    pub async fn disk_usage(&self) -> Result<DiskUsage> {
        let mut records = Vec::new();
        for entry in self.entries() {
            records.push(entry.record.lock().await.clone());
        }
        records.sort_by(|a, b| b.created.cmp(&a.created));
        let mut containers = Vec::with_capacity(records.len());
        for record in &records {
            let mut summary = record.summary();
            let (rw, root) = self.container_sizes(&record.id, &record.image_id).await;
            summary.size_rw = Some(rw);
            summary.size_root_fs = Some(root);
            containers.push(summary);
        }
        let store = self.images.clone();
        let (mut images, all) = tokio::task::spawn_blocking(move || {
            let list = store.list(&image::ListOptions {
                all: true,
                filters: Default::default(),
            })?;
            Ok::<_, image::Error>((list, store.images()))
        })
        .await
        .map_err(|e| Error::internal(e.to_string()))??;
        let (layers_size, shared) = layer_usage(&all);
        for summary in &mut images {
            summary.containers = records.iter().filter(|r| r.image_id == summary.id).count() as i64;
            summary.shared_size = shared.get(&summary.id).copied().unwrap_or(0);
        }
        Ok(DiskUsage {
            layers_size,
            images,
            containers,
            volumes: self.volume_usage().await,
            build_cache: Vec::new(),
        })
    }

    /// `POST /containers/prune`: removes the stopped containers and reports the bytes their
    /// writable layers held.
    pub async fn prune_containers(
        &self,
        filters: &HashMap<String, Vec<String>>,
    ) -> Result<ContainerPruneReport> {
        let mut sizes = HashMap::new();
        for entry in self.entries() {
            let (id, image_id, stopped) = {
                let record = entry.record.lock().await;
                (
                    record.id.clone(),
                    record.image_id.clone(),
                    matches!(
                        record.state.status,
                        Status::Exited | Status::Created | Status::Dead
                    ),
                )
            };
            if stopped {
                sizes.insert(id.clone(), self.container_sizes(&id, &image_id).await.0);
            }
        }
        let deleted = self.prune(filters).await?;
        let space_reclaimed = deleted
            .iter()
            .filter_map(|id| sizes.get(id))
            .map(|size| (*size).max(0) as u64)
            .sum();
        Ok(ContainerPruneReport {
            containers_deleted: deleted,
            space_reclaimed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_meminfo_is_read() {
        assert!(memory_total() > 0);
    }

    #[test]
    fn storage_driver_is_described_as_dockerd_does() {
        let overlay = driver_status(content::SnapshotDriver::Overlay, std::path::Path::new("/"));
        assert_eq!(overlay[0][0], "Backing Filesystem");
        assert_ne!(overlay[0][1], "");
        assert_eq!(overlay[1], ["Supports d_type", "true"]);
        assert!(driver_status(content::SnapshotDriver::Copy, std::path::Path::new("/")).is_empty());
        assert_eq!(
            backing_filesystem(std::path::Path::new("/dev/shm")),
            "tmpfs"
        );
    }
}
