//! Berth's engine: owns containers (records, lifecycle, logs, exit monitoring, restart
//! policies) and, through the `image` crate, images; publishes events. It knows nothing of
//! HTTP: the `api` crate calls these services and maps [`ErrorKind`](types::ErrorKind)s.
//!
//! Each running container has a `berth-shim` process (crate `shim`) that is the parent of its
//! init, writes its log and records its exit; the engine talks to it over its socket, so a
//! restart of the daemon leaves containers running and reattaches to them.

mod archive;
pub mod attach;
mod commit;
mod containers;
pub mod error;
pub mod events;
pub mod exec;
mod images;
mod lifecycle;
pub mod logs;
pub mod names;
pub mod networks;
mod ops;
pub mod record;
mod rootfs;
pub mod sandbox;
pub mod seccomp;
mod shim_client;
pub mod spec;
mod stats;
mod system;
mod user;
pub mod volumes;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use tokio::sync::{Mutex, watch};

pub use archive::{ArchiveStream, ChangeItem, ExtractOptions, PathStat};
pub use commit::CommitOptions;
pub use containers::{ContainerFilters, CreateRequest, WaitCondition};
pub use error::{Error, Result};
pub use record::{ContainerRecord, Status};
pub use system::{API_VERSION, MIN_API_VERSION, VERSION};
pub use volumes::VolumeCreate;

/// Where the engine keeps things and which helper programs it runs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Persistent data (images, container records, logs): /var/lib/berth.
    pub data_root: PathBuf,
    /// Runtime state (shims, sockets): /run/berth.
    pub run_root: PathBuf,
    /// The `berth-shim` binary.
    pub shim_binary: PathBuf,
    /// Named OCI runtimes (`--runtime NAME`), as dockerd's `runtimes` setting.
    pub runtimes: HashMap<String, PathBuf>,
    /// The static `berth-init` binary mounted as /sbin/docker-init for `--init` (None: not
    /// found; `--init` then fails at start).
    pub init_binary: Option<PathBuf>,
    /// Run an init in every container whose HostConfig.Init is unset (daemon.json `init`).
    pub default_init: bool,
    /// Where volume plugins are looked for, and their call deadline.
    pub volume_plugins: volume::PluginConfig,
    /// Networking: the default bridge, address pools, nftables table, DNS defaults.
    pub network: networks::NetworkOptions,
}

impl EngineConfig {
    pub fn containers_root(&self) -> PathBuf {
        self.data_root.join("containers")
    }
    /// Removed containers' directories, deleted in the background.
    pub fn trash_root(&self) -> PathBuf {
        self.data_root.join("trash")
    }
    pub fn shims_root(&self) -> PathBuf {
        self.run_root.join("shims")
    }
    pub fn volumes_root(&self) -> PathBuf {
        self.data_root.join("volumes")
    }
    /// Compiled seccomp programs, shared by every container's runtime (root-only, under the
    /// exec root: rebuilt after a reboot or a libseccomp upgrade).
    pub fn seccomp_cache(&self) -> PathBuf {
        self.run_root.join("seccomp")
    }
}

/// One container: its record behind an async lock, and a channel announcing its status.
pub struct ContainerEntry {
    pub(crate) record: Mutex<ContainerRecord>,
    pub(crate) status: watch::Sender<StatusChange>,
}

/// What waiters see change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusChange {
    pub status: Status,
    pub exit_code: i64,
    /// Bumped on every exit, so `next-exit` waiters notice one even if the status is the same.
    pub exits: u64,
    pub removed: bool,
}

/// The engine.
pub struct Engine {
    pub(crate) config: EngineConfig,
    pub(crate) containers: RwLock<HashMap<String, Arc<ContainerEntry>>>,
    /// Name -> id.
    pub(crate) names: RwLock<HashMap<String, String>>,
    pub(crate) images: Arc<image::ImageStore>,
    /// Volumes of every driver, with the containers referencing them.
    pub(crate) volumes: Arc<volume::VolumeStore>,
    pub events: events::Events,
    /// Exit codes of containers removed in the last seconds, by id and by name: a wait that
    /// arrives just after an automatic removal still gets its answer.
    pub(crate) recently_removed: std::sync::Mutex<HashMap<String, (i64, std::time::Instant)>>,
    /// Attach sessions waiting for their container's start.
    pub(crate) attaches: attach::PendingAttaches,
    /// Exec instances.
    pub(crate) execs: exec::ExecTable,
    /// Networks, their pools, the firewall table, published ports, embedded DNS.
    pub(crate) networks: networks::Networks,
}

impl Engine {
    /// Opens the stores under the data root and reattaches to the containers that still run.
    pub async fn open(config: EngineConfig) -> Result<Arc<Self>> {
        std::fs::create_dir_all(config.containers_root())?;
        std::fs::create_dir_all(config.shims_root())?;
        // The image store, the volume store and the networks (links, sysctls) are
        // independent: opened side by side.
        let images_root = config.data_root.join("image");
        let images = async {
            let opened = tokio::task::spawn_blocking(move || image::ImageStore::open(images_root));
            Ok::<_, Error>(Arc::new(
                opened.await.map_err(|e| Error::internal(e.to_string()))??,
            ))
        };
        let volumes_root = config.volumes_root();
        let plugins = config.volume_plugins.clone();
        let volumes = async {
            let opened = tokio::task::spawn_blocking(move || {
                volume::VolumeStore::open(&volumes_root, plugins)
            });
            Ok::<_, Error>(Arc::new(
                opened.await.map_err(|e| Error::internal(e.to_string()))??,
            ))
        };
        let networks = networks::Networks::new(config.network.clone(), &config.data_root);
        let (images, volumes, opened) = tokio::join!(images, volumes, networks.open());
        let (images, volumes) = (images?, volumes?);
        opened?;
        let engine = Arc::new(Self {
            config,
            containers: RwLock::new(HashMap::new()),
            names: RwLock::new(HashMap::new()),
            images,
            volumes,
            events: events::Events::default(),
            recently_removed: std::sync::Mutex::new(HashMap::new()),
            attaches: Default::default(),
            execs: Default::default(),
            networks,
        });
        engine.restore().await?;
        engine.restore_networking().await;
        engine.empty_trash();
        Ok(engine)
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// After the containers are restored: the firewall table rebuilt from the networks and
    /// the running containers' ports (one transaction), and namespaces of containers that no
    /// longer run removed.
    async fn restore_networking(&self) {
        let (ports, running) = self.running_ports().await;
        self.networks.rebuild_firewall(ports).await;
        self.remove_stale_namespaces(&running).await;
    }
}
