//! The volume store: every volume's record, whatever its driver, with the containers that
//! reference it, and the dispatch of create/remove/mount/unmount to the driver.
//!
//! Terms (after dockerd's volume service):
//!
//! - A *record* (`<root>/_metadata/<name>.json`, written atomically) holds what Docker shows
//!   of a volume beyond its driver's data: driver, labels, options, creation time, scope. The
//!   `_metadata` directory cannot collide with a volume: names start with a letter or digit.
//! - A *reference* ties a volume to a container from the container's create to its removal,
//!   running or not. A referenced volume cannot be removed, with or without force (409
//!   `remove NAME: volume is in use - [ids]`), and is not pruned.
//! - *Mounting* is separate from referencing: a container mounts its volumes when it starts
//!   and unmounts them when it stops; the driver counts those users.
//!
//! Lifecycle: `create` (driver first, record last; a failed record write undoes the driver's
//! volume) → `add_ref` per container → `mount`/`unmount` per run → `release` → `remove`
//! (driver first, then the record; with force a driver failure still drops the record).
//! Operations on one name are serialized; different names proceed in parallel.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::filters::{self, Candidate, Filters};
use crate::local::{LocalDriver, write_atomically};
use crate::plugin::{PluginConfig, Plugins};

/// The label dockerd puts on anonymous volumes: `volume prune` removes only those unless
/// `all=true` (API >= 1.42).
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// The built-in driver's name.
pub const LOCAL_DRIVER: &str = "local";

const METADATA_DIR: &str = "_metadata";

/// What the store keeps of a volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeRecord {
    pub name: String,
    pub driver: String,
    /// None when created without labels (shown as `null`, as dockerd does).
    pub labels: Option<HashMap<String, String>>,
    pub options: Option<HashMap<String, String>>,
    /// RFC 3339, seconds.
    pub created_at: String,
    /// "local" or "global".
    pub scope: String,
    /// A plugin volume's mount point as last reported (local volumes: computed).
    #[serde(default)]
    pub mountpoint: String,
}

impl VolumeRecord {
    /// Whether the volume was created without a name.
    pub fn is_anonymous(&self) -> bool {
        self.labels
            .as_ref()
            .is_some_and(|l| l.contains_key(ANONYMOUS_LABEL))
    }
}

/// `UsageData` of `GET /system/df`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UsageData {
    /// Containers referencing the volume.
    pub ref_count: i64,
    /// Bytes in it; -1 when not computed (plugin volumes).
    pub size: i64,
}

/// Docker's `Volume` JSON (inspect, list, create): keys in dockerd's order, `null` labels and
/// options when there are none.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeView {
    pub created_at: String,
    pub driver: String,
    pub labels: Option<BTreeMap<String, String>>,
    pub mountpoint: String,
    pub name: String,
    pub options: Option<BTreeMap<String, String>>,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_data: Option<UsageData>,
}

/// What `create` is asked.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    /// Empty: an anonymous volume with a random name.
    pub name: String,
    /// Empty: `local`.
    pub driver: String,
    pub options: HashMap<String, String>,
    pub labels: HashMap<String, String>,
    /// The container that references it from now on.
    pub reference: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    records: HashMap<String, VolumeRecord>,
    refs: HashMap<String, BTreeSet<String>>,
}

/// The store.
#[derive(Debug)]
pub struct VolumeStore {
    root: PathBuf,
    local: LocalDriver,
    plugins: Plugins,
    state: Mutex<State>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Now, as volume records keep it.
fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl VolumeStore {
    /// Opens the store at `root` (`<data root>/volumes`): loads the records, drops those of
    /// local volumes whose directory is gone, and adopts local volume directories that have
    /// no record (left by a crash between the two writes, or by another daemon).
    pub fn open(root: &Path, plugins: PluginConfig) -> Result<Self> {
        let local = LocalDriver::open(root)?;
        let metadata = root.join(METADATA_DIR);
        std::fs::create_dir_all(&metadata).ctx(|| format!("create {}", metadata.display()))?;
        let mut records = HashMap::new();
        for entry in std::fs::read_dir(&metadata).ctx(|| format!("read {}", metadata.display()))? {
            let entry = entry.ctx(|| format!("read {}", metadata.display()))?;
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                // A temporary file of an interrupted write.
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let record: VolumeRecord = match std::fs::read(&path)
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            {
                Some(record) => record,
                None => {
                    tracing::warn!("skipping unreadable volume record {}", path.display());
                    continue;
                }
            };
            if record.driver == LOCAL_DRIVER && !local.exists(&record.name) {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            records.insert(record.name.clone(), record);
        }
        let store = Self {
            root: root.to_path_buf(),
            local,
            plugins: crate::plugin::Plugins::new(plugins),
            state: Mutex::new(State::default()),
            locks: Mutex::new(HashMap::new()),
        };
        for name in store.local.names()? {
            if records.contains_key(&name) {
                continue;
            }
            let created = store
                .local
                .created_at(&name)
                .map(|t| {
                    chrono::DateTime::<chrono::Utc>::from(t)
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                })
                .unwrap_or_else(now);
            let options = store.local.options(&name).unwrap_or_default();
            let record = VolumeRecord {
                name: name.clone(),
                driver: LOCAL_DRIVER.into(),
                labels: None,
                options: (!options.is_empty()).then_some(options),
                created_at: created,
                scope: "local".into(),
                mountpoint: String::new(),
            };
            store.write_record(&record)?;
            records.insert(name, record);
        }
        store.state.lock().expect("state lock").records = records;
        Ok(store)
    }

    /// The root directory of the store (and of the local driver's volumes).
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn record_path(&self, name: &str) -> PathBuf {
        self.root.join(METADATA_DIR).join(format!("{name}.json"))
    }

    fn write_record(&self, record: &VolumeRecord) -> Result<()> {
        let bytes = serde_json::to_vec(record).expect("record");
        write_atomically(&self.record_path(&record.name), &bytes)
    }

    /// Serializes operations on one name.
    async fn lock(&self, name: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self
            .locks
            .lock()
            .expect("locks lock")
            .entry(name.to_string())
            .or_default()
            .clone();
        lock.lock_owned().await
    }

    fn record(&self, name: &str) -> Option<VolumeRecord> {
        self.state
            .lock()
            .expect("state lock")
            .records
            .get(name)
            .cloned()
    }

    /// The record of `name`, or dockerd's `get NAME: no such volume`.
    pub fn get(&self, name: &str) -> Result<VolumeRecord> {
        self.record(name).ok_or_else(|| Error::NoSuchVolume {
            op: "get",
            name: name.to_string(),
        })
    }

    /// Creates a volume, or returns the existing one of that name (the second value says
    /// which). A name taken by another driver is a conflict. Adds the request's reference.
    pub async fn create(&self, request: CreateRequest) -> Result<(VolumeRecord, bool)> {
        let mut labels = request.labels;
        let name = if request.name.is_empty() {
            labels.insert(ANONYMOUS_LABEL.into(), String::new());
            crate::name::anonymous()
        } else {
            request.name
        };
        crate::name::validate("create", &name)?;
        // Without a driver, an existing volume of any driver is taken (`-v name:/path`).
        let driver_given = !request.driver.is_empty();
        let driver = if driver_given {
            request.driver
        } else {
            LOCAL_DRIVER.to_string()
        };
        let _guard = self.lock(&name).await;
        if let Some(existing) = self.record(&name) {
            if driver_given && existing.driver != driver {
                return Err(Error::NameConflict {
                    op: "create",
                    name,
                    driver: existing.driver,
                });
            }
            if let Some(id) = &request.reference {
                self.add_ref(&name, id);
            }
            return Ok((existing, false));
        }
        let (scope, mountpoint) = if driver == LOCAL_DRIVER {
            self.local.create(&name, &request.options)?;
            ("local".to_string(), String::new())
        } else {
            let plugin = self.plugins.get(&driver, "create", &name).await?;
            plugin
                .create(&name, &request.options)
                .await
                .map_err(|reason| Error::Plugin {
                    op: "create",
                    name: name.clone(),
                    reason,
                })?;
            let mountpoint = plugin.path(&name).await.unwrap_or_default();
            (plugin.scope(), mountpoint)
        };
        let record = VolumeRecord {
            name: name.clone(),
            driver: driver.clone(),
            labels: (!labels.is_empty()).then_some(labels),
            options: (!request.options.is_empty()).then_some(request.options),
            created_at: now(),
            scope,
            mountpoint,
        };
        if let Err(error) = self.write_record(&record) {
            // Undo the driver's volume: a volume exists once its record does.
            let undo = if driver == LOCAL_DRIVER {
                self.local.remove(&name)
            } else {
                match self.plugins.get(&driver, "remove", &name).await {
                    Ok(plugin) => plugin.remove(&name).await.map_err(|reason| Error::Plugin {
                        op: "remove",
                        name: name.clone(),
                        reason,
                    }),
                    Err(e) => Err(e),
                }
            };
            if let Err(undo) = undo {
                tracing::warn!("undo of volume {name}: {undo}");
            }
            return Err(error);
        }
        {
            let mut state = self.state.lock().expect("state lock");
            state.records.insert(name.clone(), record.clone());
        }
        if let Some(id) = &request.reference {
            self.add_ref(&name, id);
        }
        Ok((record, true))
    }

    /// Notes that container `id` uses the volume.
    pub fn add_ref(&self, name: &str, id: &str) {
        self.state
            .lock()
            .expect("state lock")
            .refs
            .entry(name.to_string())
            .or_default()
            .insert(id.to_string());
    }

    /// Drops container `id`'s reference.
    pub fn release(&self, name: &str, id: &str) {
        let mut state = self.state.lock().expect("state lock");
        if let Some(refs) = state.refs.get_mut(name) {
            refs.remove(id);
            if refs.is_empty() {
                state.refs.remove(name);
            }
        }
    }

    /// The containers referencing the volume.
    pub fn refs(&self, name: &str) -> Vec<String> {
        self.state
            .lock()
            .expect("state lock")
            .refs
            .get(name)
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Removes a volume. In use: 409 even with `force`. With `force`, a missing volume is not
    /// an error and a driver that fails to remove it still loses the record.
    pub async fn remove(&self, name: &str, force: bool) -> Result<()> {
        let _guard = self.lock(name).await;
        let record = match self.get(name) {
            Ok(record) => record,
            Err(_) if force => return Ok(()),
            Err(error) => return Err(error),
        };
        let refs = self.refs(name);
        if !refs.is_empty() {
            return Err(Error::InUse {
                op: "remove",
                name: name.to_string(),
                refs,
            });
        }
        let removed = if record.driver == LOCAL_DRIVER {
            self.local.remove(name)
        } else {
            match self.plugins.get(&record.driver, "remove", name).await {
                Ok(plugin) => plugin.remove(name).await.map_err(|reason| Error::Plugin {
                    op: "remove",
                    name: name.to_string(),
                    reason,
                }),
                Err(e) => Err(e),
            }
        };
        if let Err(error) = removed {
            if !force {
                return Err(error);
            }
            tracing::warn!("purging volume {name} whose driver failed to remove it: {error}");
        }
        match std::fs::remove_file(self.record_path(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("remove the record of {name}"), e)),
        }
        self.state.lock().expect("state lock").records.remove(name);
        Ok(())
    }

    /// The JSON view of a record (without usage).
    pub fn view(&self, record: &VolumeRecord) -> VolumeView {
        let sorted = |map: &Option<HashMap<String, String>>| {
            map.as_ref()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        };
        VolumeView {
            created_at: record.created_at.clone(),
            driver: record.driver.clone(),
            labels: sorted(&record.labels),
            mountpoint: if record.driver == LOCAL_DRIVER {
                self.local.path(&record.name).display().to_string()
            } else {
                record.mountpoint.clone()
            },
            name: record.name.clone(),
            options: sorted(&record.options),
            scope: record.scope.clone(),
            status: None,
            usage_data: None,
        }
    }

    /// `GET /volumes/{name}`: the record, refreshed from its plugin (`VolumeDriver.Get`:
    /// mount point and status) for plugin volumes.
    pub async fn inspect(&self, name: &str) -> Result<VolumeView> {
        let record = self.get(name)?;
        let mut view = self.view(&record);
        if record.driver != LOCAL_DRIVER {
            let plugin = self.plugins.get(&record.driver, "get", name).await?;
            let volume = plugin.get(name).await.map_err(|reason| Error::Plugin {
                op: "get",
                name: name.to_string(),
                reason,
            })?;
            if !volume.mountpoint.is_empty() {
                view.mountpoint = volume.mountpoint;
            }
            view.status = volume.status;
        }
        Ok(view)
    }

    /// `GET /volumes`: the volumes passing `filters`, sorted by name.
    pub fn list(&self, filters: &Filters) -> Result<Vec<VolumeView>> {
        filters::check_list(filters)?;
        let state = self.state.lock().expect("state lock");
        let mut records: Vec<&VolumeRecord> = state
            .records
            .values()
            .filter(|r| {
                filters::matches_list(
                    filters,
                    &Candidate {
                        name: &r.name,
                        driver: &r.driver,
                        labels: r.labels.as_ref(),
                        refs: state.refs.get(&r.name).map_or(0, |s| s.len()),
                    },
                )
            })
            .collect();
        records.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(records.into_iter().map(|r| self.view(r)).collect())
    }

    /// Every volume with its usage (`GET /system/df`): sizes of local volumes are counted.
    pub async fn usage(&self) -> Vec<VolumeView> {
        let (records, refs): (Vec<VolumeRecord>, HashMap<String, usize>) = {
            let state = self.state.lock().expect("state lock");
            (
                state.records.values().cloned().collect(),
                state
                    .refs
                    .iter()
                    .map(|(name, ids)| (name.clone(), ids.len()))
                    .collect(),
            )
        };
        let mut views = Vec::with_capacity(records.len());
        for record in records {
            let size = if record.driver == LOCAL_DRIVER {
                let path = self.local.path(&record.name);
                tokio::task::spawn_blocking(move || content::tree_size(&path).unwrap_or(0))
                    .await
                    .unwrap_or(0) as i64
            } else {
                -1
            };
            let mut view = self.view(&record);
            view.usage_data = Some(UsageData {
                ref_count: refs.get(&record.name).copied().unwrap_or(0) as i64,
                size,
            });
            views.push(view);
        }
        views.sort_by(|a, b| a.name.cmp(&b.name));
        views
    }

    /// `POST /volumes/prune`: removes the unreferenced volumes passing `filters`; without
    /// `all` (the filter, or `all_by_default` for API < 1.42) only anonymous ones. As in
    /// dockerd, only plain local volumes are pruned: not a plugin's, not one with mount
    /// options (its data lives elsewhere). Returns the names removed and the bytes they held.
    pub async fn prune(
        &self,
        filters: &Filters,
        all_by_default: bool,
    ) -> Result<(Vec<String>, u64)> {
        let all = filters::check_prune(filters)?.unwrap_or(all_by_default);
        let candidates: Vec<VolumeRecord> = {
            let state = self.state.lock().expect("state lock");
            let mut list: Vec<VolumeRecord> = state
                .records
                .values()
                .filter(|r| state.refs.get(&r.name).is_none_or(|ids| ids.is_empty()))
                .filter(|r| r.driver == LOCAL_DRIVER && r.options.is_none())
                .filter(|r| all || r.is_anonymous())
                .filter(|r| filters::labels_match(filters, r.labels.as_ref()))
                .cloned()
                .collect();
            list.sort_by(|a, b| a.name.cmp(&b.name));
            list
        };
        let mut removed = Vec::new();
        let mut reclaimed = 0;
        for record in candidates {
            let size = if record.driver == LOCAL_DRIVER {
                self.local.size(&record.name)
            } else {
                0
            };
            match self.remove(&record.name, false).await {
                Ok(()) => {
                    removed.push(record.name);
                    reclaimed += size;
                }
                Err(error) => tracing::warn!("prune of volume {}: {error}", record.name),
            }
        }
        Ok((removed, reclaimed))
    }

    /// Prepares the volume for container `id` and returns the host path to bind.
    pub async fn mount(&self, name: &str, id: &str) -> Result<String> {
        let record = self.get(name)?;
        if record.driver == LOCAL_DRIVER {
            return Ok(self.local.mount(name, id)?.display().to_string());
        }
        let plugin = self.plugins.get(&record.driver, "mount", name).await?;
        let mountpoint = plugin
            .mount(name, id)
            .await
            .map_err(|reason| Error::Plugin {
                op: "mount",
                name: name.to_string(),
                reason,
            })?;
        if let Some(record) = self.state.lock().expect("state lock").records.get_mut(name) {
            record.mountpoint = mountpoint.clone();
        }
        Ok(mountpoint)
    }

    /// Container `id` no longer needs the volume mounted.
    pub async fn unmount(&self, name: &str, id: &str) -> Result<()> {
        let record = self.get(name)?;
        if record.driver == LOCAL_DRIVER {
            return self.local.unmount(name, id);
        }
        let plugin = self.plugins.get(&record.driver, "unmount", name).await?;
        plugin
            .unmount(name, id)
            .await
            .map_err(|reason| Error::Plugin {
                op: "unmount",
                name: name.to_string(),
                reason,
            })
    }

    /// Marks the local volume as mounted for `id` without mounting (a container that kept
    /// running across a daemon restart), so that its mount is kept.
    pub fn restore_mount(&self, name: &str, id: &str) {
        if self.record(name).is_some_and(|r| r.driver == LOCAL_DRIVER) {
            let _ = self.local.mount(name, id);
        }
    }

    /// Unmounts the local volumes that no running container uses (after the restore).
    pub fn unmount_idle(&self) {
        self.local.unmount_idle();
    }
}
