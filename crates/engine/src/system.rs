//! `GET /info` and `GET /version`, with real figures of this host.

use bollard_stubs::models::{
    SystemInfo, SystemVersion, SystemVersionComponents, SystemVersionPlatform,
};

use crate::Engine;
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

fn memory_total() -> i64 {
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
            driver: Some("overlay2".into()),
            driver_status: Some(vec![vec!["Backing Filesystem".into(), "extfs".into()]]),
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
            init_binary: Some(String::new()),
            security_options: Some(vec![
                "name=seccomp,profile=unconfined".into(),
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

/// Go's name of the architecture, as docker prints it.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}
