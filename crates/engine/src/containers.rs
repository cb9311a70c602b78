//! Container records: create, find, list, inspect, remove, prune, wait.

use std::collections::HashMap;
use std::sync::Arc;

use bollard_stubs::models::{
    ContainerConfig, ContainerInspectResponse, ContainerSummary, EventMessageTypeEnum, HostConfig,
};
use tokio::sync::{Mutex, watch};

use crate::error::{Error, Result};
use crate::record::{ContainerRecord, RunState, Status, now_rfc3339};
use crate::{ContainerEntry, Engine, StatusChange, names};

/// `POST /containers/create`.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: Option<String>,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    /// NetworkingConfig: endpoint settings (`--ip`, `--network-alias`...) per network.
    pub networking: Option<bollard_stubs::models::NetworkingConfig>,
}

/// Filters of `GET /containers/json`.
#[derive(Debug, Clone, Default)]
pub struct ContainerFilters {
    pub all: bool,
    pub limit: Option<usize>,
    /// Docker's filters: key -> accepted values.
    pub filters: HashMap<String, Vec<String>>,
    /// `size=true` (`docker ps --size`): fill `SizeRw` and `SizeRootFs`.
    pub size: bool,
}

/// Conditions of `POST /containers/{id}/wait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

impl WaitCondition {
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "" | "not-running" => Ok(Self::NotRunning),
            "next-exit" => Ok(Self::NextExit),
            "removed" => Ok(Self::Removed),
            other => Err(Error::invalid(format!("invalid condition: \"{other}\""))),
        }
    }
}

fn new_id() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Engine {
    /// Every container, as a snapshot of the table.
    pub(crate) fn entries(&self) -> Vec<Arc<ContainerEntry>> {
        self.containers
            .read()
            .expect("containers lock")
            .values()
            .cloned()
            .collect()
    }

    /// Finds a container by full id, name, or unique id prefix.
    pub fn find(&self, name_or_id: &str) -> Result<Arc<ContainerEntry>> {
        let containers = self.containers.read().expect("containers lock");
        if let Some(entry) = containers.get(name_or_id) {
            return Ok(entry.clone());
        }
        let name = name_or_id.strip_prefix('/').unwrap_or(name_or_id);
        if let Some(id) = self.names.read().expect("names lock").get(name)
            && let Some(entry) = containers.get(id)
        {
            return Ok(entry.clone());
        }
        if !name_or_id.is_empty() {
            let mut matches = containers
                .iter()
                .filter(|(id, _)| id.starts_with(name_or_id));
            if let Some((_, entry)) = matches.next() {
                if matches.next().is_some() {
                    return Err(Error::invalid(format!(
                        "multiple IDs found with provided prefix: {name_or_id}"
                    )));
                }
                return Ok(entry.clone());
            }
        }
        Err(Error::no_such_container(name_or_id))
    }

    pub(crate) fn insert(&self, record: ContainerRecord) -> Arc<ContainerEntry> {
        let change = StatusChange {
            status: record.state.status,
            exit_code: record.state.exit_code,
            exits: 0,
            removed: false,
        };
        let id = record.id.clone();
        let name = record.name.clone();
        let entry = Arc::new(ContainerEntry {
            record: Mutex::new(record),
            status: watch::channel(change).0,
        });
        self.containers
            .write()
            .expect("containers lock")
            .insert(id.clone(), entry.clone());
        self.names.write().expect("names lock").insert(name, id);
        entry
    }

    /// `POST /containers/create`: returns the id and warnings.
    pub async fn create(&self, request: CreateRequest) -> Result<(String, Vec<String>)> {
        let image_name = request
            .config
            .image
            .clone()
            .filter(|i| !i.is_empty())
            .ok_or_else(|| Error::invalid("config.Image is required"))?;
        let image = self.image_for_container(&image_name).await?;
        let id = new_id();
        let name = {
            let mut names = self.names.write().expect("names lock");
            let name = match &request.name {
                Some(name) if !name.is_empty() => {
                    let name = names::validate(name)?;
                    if let Some(owner) = names.get(&name) {
                        return Err(Error::conflict(format!(
                            "Conflict. The container name \"/{name}\" is already in use by container \"{owner}\". You have to remove (or rename) that container to be able to reuse that name."
                        )));
                    }
                    name
                }
                _ => (0..)
                    .map(names::generate)
                    .find(|n| !names.contains_key(n))
                    .expect("a free name"),
            };
            // Reserved now so a concurrent create cannot take it.
            names.insert(name.clone(), id.clone());
            name
        };
        let result = self
            .create_record(&id, &name, &image_name, &image, request)
            .await;
        match result {
            Ok(record) => {
                let mut attributes = HashMap::from([
                    ("name".to_string(), record.name.clone()),
                    ("image".to_string(), record.image_name.clone()),
                ]);
                for (key, value) in record.config.labels.iter().flatten() {
                    attributes.insert(key.clone(), value.clone());
                }
                self.insert(record);
                self.events
                    .publish(EventMessageTypeEnum::CONTAINER, "create", &id, attributes);
                Ok((id, Vec::new()))
            }
            Err(error) => {
                self.names.write().expect("names lock").remove(&name);
                let _ = std::fs::remove_dir_all(self.config.containers_root().join(&id));
                Err(error)
            }
        }
    }

    async fn create_record(
        &self,
        id: &str,
        name: &str,
        image_name: &str,
        image: &crate::images::ImageForContainer,
        request: CreateRequest,
    ) -> Result<ContainerRecord> {
        let mut config = request.config;
        let mut host_config = request.host_config;
        let networking = request.networking;
        crate::images::merge_image_config(&mut config, &image.config);
        let (path, args) = crate::images::command_line(&config)?;
        if let Some(policy) = host_config.restart_policy.as_ref() {
            crate::lifecycle::validate_restart_policy(
                policy,
                host_config.auto_remove.unwrap_or(false),
            )?;
        }
        let runtime = host_config
            .runtime
            .clone()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "berth".into());
        if runtime != "berth" && runtime != "runc" && !self.config.runtimes.contains_key(&runtime) {
            return Err(Error::invalid(format!(
                "unknown or invalid runtime name: {runtime}"
            )));
        }
        host_config.runtime = Some(runtime.clone());
        let network = self.prepare_network(&config, &mut host_config, networking.as_ref())?;
        // Validate everything that the spec builder checks, now rather than at start.
        let probe = crate::spec::SpecInput {
            id,
            config: &config,
            host_config: &host_config,
            args: vec![path.clone()],
            env: vec![],
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            rootfs: "/".into(),
            etc_files: vec![],
            cgroup_path: String::new(),
            init_binary: None,
            mounts: vec![],
            rootfs_propagation: None,
            network_namespace: None,
        };
        crate::spec::build(&probe)?;
        let mount_points = self.resolve_mounts(id, &config, &host_config).await?;
        let record = ContainerRecord {
            id: id.to_string(),
            name: name.to_string(),
            created: now_rfc3339(),
            image_name: image_name.to_string(),
            image_id: image.id.to_string(),
            config,
            host_config,
            path,
            args,
            state: RunState::default(),
            restart_count: 0,
            runtime,
            mount_points,
            network,
        };
        let result = self.save_and_prepare(&record, &image.id).await;
        if result.is_err() {
            self.release_mounts(id, &record.mount_points, true).await;
        }
        result.map(|()| record)
    }

    /// Writes a new container's record and log, prepares its rootfs, and copies the image's
    /// content into its new volumes.
    async fn save_and_prepare(
        &self,
        record: &ContainerRecord,
        image_id: &image::ImageId,
    ) -> Result<()> {
        let containers_root = self.config.containers_root();
        record.save(&containers_root)?;
        std::fs::File::create(record.log_path(&containers_root))?;
        let images = self.images.clone();
        let key = record.id.clone();
        let image_id = image_id.clone();
        let mounts = tokio::task::spawn_blocking(move || images.prepare_rootfs(&key, &image_id))
            .await
            .map_err(|e| Error::internal(e.to_string()))??;
        // The root file system is mounted only when a volume may take a copy.
        let copy_up = record.mount_points.iter().any(|p| self.may_copy_up(p));
        if copy_up {
            let copied = match crate::rootfs::mount(&self.config, &record.id, &mounts) {
                Ok(rootfs) => {
                    self.copy_up(&record.id, &rootfs, &record.mount_points)
                        .await
                }
                Err(error) => Err(error),
            };
            crate::rootfs::unmount(&self.config, &record.id);
            if let Err(error) = copied {
                let images = self.images.clone();
                let key = record.id.clone();
                let _ = tokio::task::spawn_blocking(move || images.remove_rootfs(&key)).await;
                return Err(error);
            }
        }
        Ok(())
    }

    /// `GET /containers/json`.
    pub async fn list(&self, filters: &ContainerFilters) -> Result<Vec<ContainerSummary>> {
        let entries = self.entries();
        let mut records = Vec::with_capacity(entries.len());
        for entry in entries {
            records.push(entry.record.lock().await.clone());
        }
        for key in filters.filters.keys() {
            if !matches!(
                key.as_str(),
                "id" | "name"
                    | "status"
                    | "label"
                    | "exited"
                    | "ancestor"
                    | "before"
                    | "since"
                    | "network"
                    | "volume"
                    | "health"
                    | "isolation"
                    | "is-task"
                    | "publish"
                    | "expose"
            ) {
                return Err(Error::invalid(format!("invalid filter '{key}'")));
            }
        }
        let find_created = |name: &str| -> Option<String> {
            records
                .iter()
                .find(|r| r.id.starts_with(name) || r.name == name.trim_start_matches('/'))
                .map(|r| r.created.clone())
        };
        let before = filters
            .filters
            .get("before")
            .and_then(|v| v.first())
            .and_then(|n| find_created(n));
        let since = filters
            .filters
            .get("since")
            .and_then(|v| v.first())
            .and_then(|n| find_created(n));
        let any_status_filter =
            filters.filters.contains_key("status") || filters.filters.contains_key("exited");
        let mut selected: Vec<&ContainerRecord> = records
            .iter()
            .filter(|r| filters.all || any_status_filter || r.state.status.is_running())
            .filter(|r| matches_filters(r, &filters.filters))
            .filter(|r| before.as_ref().is_none_or(|b| r.created < *b))
            .filter(|r| since.as_ref().is_none_or(|s| r.created > *s))
            .collect();
        selected.sort_by(|a, b| b.created.cmp(&a.created));
        if let Some(limit) = filters.limit.filter(|l| *l > 0) {
            selected.truncate(limit);
        }
        let mut summaries = Vec::with_capacity(selected.len());
        for record in selected {
            let mut summary = record.summary();
            if filters.size {
                let (rw, root) = self.container_sizes(&record.id, &record.image_id).await;
                summary.size_rw = Some(rw);
                summary.size_root_fs = Some(root);
            }
            summaries.push(summary);
        }
        Ok(summaries)
    }

    /// `GET /containers/{id}/json`.
    pub async fn inspect(&self, name_or_id: &str) -> Result<ContainerInspectResponse> {
        self.inspect_with_size(name_or_id, false).await
    }

    /// `GET /containers/{id}/json?size=1`: with `SizeRw` and `SizeRootFs` (`inspect -s`).
    pub async fn inspect_with_size(
        &self,
        name_or_id: &str,
        size: bool,
    ) -> Result<ContainerInspectResponse> {
        let entry = self.find(name_or_id)?;
        let (mut inspect, id, image_id) = {
            let record = entry.record.lock().await;
            let graph_driver = self.graph_driver(&record.id);
            let mut inspect = record.inspect(&self.config.containers_root(), graph_driver);
            inspect.exec_ids = self.execs.live_ids(&record.id);
            (inspect, record.id.clone(), record.image_id.clone())
        };
        if size {
            let (rw, root) = self.container_sizes(&id, &image_id).await;
            inspect.size_rw = Some(rw);
            inspect.size_root_fs = Some(root);
        }
        Ok(inspect)
    }

    /// Inspect's `GraphDriver`: the storage driver's name and, with overlay2, the directories
    /// of the container's root file system as dockerd lists them.
    fn graph_driver(&self, id: &str) -> bollard_stubs::models::DriverData {
        let driver = self.images.driver();
        let mut data = HashMap::new();
        if let Ok(mounts) = self.images.rootfs_mounts(id) {
            for mount in mounts.iter().filter(|m| m.kind == "overlay") {
                for option in &mount.options {
                    for (key, name) in [
                        ("lowerdir=", "LowerDir"),
                        ("upperdir=", "UpperDir"),
                        ("workdir=", "WorkDir"),
                    ] {
                        if let Some(value) = option.strip_prefix(key) {
                            data.insert(name.to_string(), value.to_string());
                        }
                    }
                }
            }
            if driver == content::SnapshotDriver::Overlay {
                data.insert(
                    "MergedDir".to_string(),
                    crate::rootfs::mount_point(&self.config, id)
                        .display()
                        .to_string(),
                );
            }
        }
        bollard_stubs::models::DriverData {
            name: driver.docker_name().to_string(),
            data,
        }
    }

    /// `DELETE /containers/{id}`.
    pub async fn remove(
        self: &Arc<Self>,
        name_or_id: &str,
        force: bool,
        volumes: bool,
    ) -> Result<()> {
        let entry = self.find(name_or_id)?;
        {
            let record = entry.record.lock().await;
            if record.state.status.is_running() && !force {
                let what = if record.state.status == Status::Paused {
                    "paused"
                } else {
                    "running"
                };
                return Err(Error::conflict(format!(
                    "cannot remove container \"/{}\": container is {what}: stop the container before removing or force remove",
                    record.name
                )));
            }
        }
        if force {
            self.kill_for_removal(&entry).await?;
        }
        self.destroy_with(&entry, volumes).await
    }

    /// Removes the record, rootfs and files of a stopped container; its anonymous volumes
    /// stay.
    pub(crate) async fn destroy(&self, entry: &Arc<ContainerEntry>) -> Result<()> {
        self.destroy_with(entry, false).await
    }

    /// Removes the record, rootfs and files of a stopped container, and with
    /// `remove_volumes` (`rm -v`, `--rm`) its anonymous volumes.
    pub(crate) async fn destroy_with(
        &self,
        entry: &Arc<ContainerEntry>,
        remove_volumes: bool,
    ) -> Result<()> {
        let mut record = entry.record.lock().await;
        if record.state.status == Status::Removing {
            return Ok(());
        }
        record.state.status = Status::Removing;
        let id = record.id.clone();
        self.sandbox_down(&mut record).await;
        crate::rootfs::unmount(&self.config, &id);
        self.discard(&self.shim_dir(&id));
        self.execs.remove_container(&id);
        drop(self.attaches.take(&id));
        // The container's directory leaves the containers root with one rename; its files and
        // its writable layer are deleted in the background (see `delete_in_background`).
        let trash = self.config.trash_root().join(&id);
        std::fs::create_dir_all(self.config.trash_root())?;
        std::fs::rename(self.config.containers_root().join(&id), &trash)?;
        self.delete_in_background(id.clone());
        self.containers
            .write()
            .expect("containers lock")
            .remove(&id);
        self.names.write().expect("names lock").remove(&record.name);
        self.release_mounts(&id, &record.mount_points, remove_volumes)
            .await;
        let name = record.name.clone();
        let image = record.image_name.clone();
        {
            let mut removed = self.recently_removed.lock().expect("removed lock");
            removed.retain(|_, (_, at)| at.elapsed() < std::time::Duration::from_secs(10));
            let now = std::time::Instant::now();
            removed.insert(id.clone(), (record.state.exit_code, now));
            removed.insert(name.clone(), (record.state.exit_code, now));
        }
        drop(record);
        tracing::debug!(%id, "removed");
        entry.status.send_modify(|change| change.removed = true);
        self.events.publish(
            EventMessageTypeEnum::CONTAINER,
            "destroy",
            &id,
            HashMap::from([("name".to_string(), name), ("image".to_string(), image)]),
        );
        Ok(())
    }

    /// Deletes a removed container's leftovers: its directory in the trash root and its
    /// writable layer. Run off the request: under disk load, unlinking the container's files
    /// and the snapshot store's directory fsync took tens of milliseconds that `rm -f` and
    /// `run --rm` would wait for. A daemon that stops first finishes the job at its next start
    /// ([`Engine::empty_trash`]).
    pub(crate) fn delete_in_background(&self, id: String) {
        let images = self.images.clone();
        let trash = self.config.trash_root().join(&id);
        tokio::task::spawn_blocking(move || {
            if let Err(error) = images.remove_rootfs(&id) {
                tracing::warn!("remove the writable layer of {id}: {error}");
            }
            remove_tree(&trash);
        });
    }

    /// Deletes the runtime state directory of a shim that is done (a container's or an
    /// exec's) in the background, after moving it into `<exec-root>/trash` with one rename:
    /// its name is free again at once, and nobody waits for the unlinks (12-18 ms on a busy
    /// disk when the exec root is not a tmpfs).
    pub(crate) fn discard(&self, dir: &std::path::Path) {
        let trash_root = self.config.run_root.join("trash");
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let trash = trash_root.join(format!("{name}.{:016x}", rand::random::<u64>()));
        let moved =
            std::fs::create_dir_all(&trash_root).and_then(|()| std::fs::rename(dir, &trash));
        match moved {
            Ok(()) => {
                tokio::task::spawn_blocking(move || remove_tree(&trash));
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => remove_tree(dir),
        }
    }

    /// At start: deletes what removals in the background left when the daemon stopped.
    pub(crate) fn empty_trash(&self) {
        if let Ok(entries) = std::fs::read_dir(self.config.trash_root()) {
            for entry in entries.flatten() {
                if let Some(id) = entry.file_name().to_str() {
                    self.delete_in_background(id.to_string());
                }
            }
        }
        let run_trash = self.config.run_root.join("trash");
        tokio::task::spawn_blocking(move || remove_tree(&run_trash));
    }

    /// `POST /containers/prune`: removes stopped containers; returns their ids.
    pub async fn prune(&self, _filters: &HashMap<String, Vec<String>>) -> Result<Vec<String>> {
        let entries = self.entries();
        let mut removed = Vec::new();
        for entry in entries {
            let stopped = {
                let record = entry.record.lock().await;
                matches!(
                    record.state.status,
                    Status::Exited | Status::Created | Status::Dead
                )
                .then(|| record.id.clone())
            };
            if let Some(id) = stopped
                && self.destroy(&entry).await.is_ok()
            {
                removed.push(id);
            }
        }
        Ok(removed)
    }

    /// `POST /containers/{id}/wait`: registers the waiter now (so an exit right after this call
    /// is seen) and returns the future of the exit code.
    ///
    /// `next-exit` also counts an exit of the last few seconds when the container is stopped:
    /// the docker CLI sends its wait and its start on separate connections, so a short-lived
    /// container can exit before the wait arrives.
    pub fn wait_registration(
        &self,
        name_or_id: &str,
        condition: WaitCondition,
    ) -> Result<WaitFuture> {
        let entry = match self.find(name_or_id) {
            Ok(entry) => entry,
            Err(error) => {
                let removed = self.recently_removed.lock().expect("removed lock");
                return match removed.get(name_or_id).or_else(|| {
                    removed
                        .iter()
                        .find(|(id, _)| id.starts_with(name_or_id))
                        .map(|(_, v)| v)
                }) {
                    Some((code, _)) => {
                        let code = *code;
                        Ok(futures_ready(code))
                    }
                    None => Err(error),
                };
            }
        };
        let mut receiver = entry.status.subscribe();
        let start = *receiver.borrow_and_update();
        // The docker CLI (run, start -a) attaches, then sends its next-exit wait from another
        // goroutine and starts the container without waiting for the wait to be registered:
        // a quick container may have run and exited before its wait arrives. Such a wait takes
        // an exit of the last 3 s, unless a client attached before this wait still waits for
        // the next start: then the wait belongs to that start (a second `start -a` right
        // after the first run must not get the first run's exit).
        // A record locked by a start in progress: that run's exit is counted below anyway.
        let recently_exited = entry.record.try_lock().ok().is_some_and(|record| {
            !self.attaches.has_waiting(&record.id)
                && record
                    .state
                    .finished_at
                    .as_deref()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .is_some_and(|t| {
                        chrono::Utc::now()
                            .signed_duration_since(t)
                            .num_milliseconds()
                            < 3000
                    })
        });
        Ok(Box::pin(async move {
            loop {
                let now = *receiver.borrow_and_update();
                let stopped = !now.status.is_running() && now.status != Status::Removing;
                let done = match condition {
                    WaitCondition::NotRunning => stopped || now.removed,
                    WaitCondition::NextExit => {
                        now.exits > start.exits
                            || now.removed
                            || (stopped && start.status == Status::Exited && recently_exited)
                    }
                    WaitCondition::Removed => now.removed,
                };
                if done {
                    return Ok(now.exit_code);
                }
                if receiver.changed().await.is_err() {
                    return Ok(now.exit_code);
                }
            }
        }))
    }

    /// `POST /containers/{id}/wait`, awaited.
    pub async fn wait(&self, name_or_id: &str, condition: WaitCondition) -> Result<i64> {
        self.wait_registration(name_or_id, condition)?.await
    }
}

/// The answer of a wait.
pub type WaitFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<i64>> + Send>>;

fn futures_ready(code: i64) -> WaitFuture {
    Box::pin(async move { Ok(code) })
}

fn matches_filters(record: &ContainerRecord, filters: &HashMap<String, Vec<String>>) -> bool {
    filters.iter().all(|(key, values)| {
        // Several values of a key are alternatives, except labels: a container has to carry
        // every label asked for (dockerd's MatchKVList), which is how docker-compose finds
        // the containers of one service of one project.
        let mut values = values.iter();
        let matches = |value: &String| match key.as_str() {
            "id" => record.id.starts_with(value.as_str()),
            "name" => {
                // Docker matches names as a regular expression; substring covers the common use.
                let pattern = value.trim_start_matches('/');
                let anchored_start = pattern.starts_with('^');
                let anchored_end = pattern.ends_with('$');
                let core = pattern.trim_start_matches('^').trim_end_matches('$');
                match (anchored_start, anchored_end) {
                    (true, true) => record.name == core,
                    (true, false) => record.name.starts_with(core),
                    (false, true) => record.name.ends_with(core),
                    (false, false) => record.name.contains(core),
                }
            }
            "status" => record.state.status.as_str() == value,
            "exited" => {
                record.state.status == Status::Exited
                    && value
                        .parse::<i64>()
                        .is_ok_and(|code| code == record.state.exit_code)
            }
            "label" => {
                let labels = record.config.labels.clone().unwrap_or_default();
                match value.split_once('=') {
                    Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
                    None => labels.contains_key(value),
                }
            }
            "ancestor" => {
                record.image_name == *value
                    || record.image_id == *value
                    || record
                        .image_id
                        .trim_start_matches("sha256:")
                        .starts_with(value.as_str())
                    || record.image_name == format!("{value}:latest")
            }
            "network" => {
                record.host_config.network_mode.as_deref() == Some(value.as_str())
                    || record.network.endpoints.iter().any(|e| {
                        e.network_name == *value
                            || (!value.is_empty() && e.network_id.starts_with(value.as_str()))
                    })
            }
            // A volume's name, or a mount's destination (dockerd's `volume` filter).
            "volume" => record
                .mount_points
                .iter()
                .any(|p| (!p.name.is_empty() && p.name == *value) || p.destination == *value),
            _ => true,
        };
        if key == "label" {
            values.all(matches)
        } else {
            values.any(matches)
        }
    })
}

/// Removes a directory tree; a missing one is fine, other failures are logged.
fn remove_tree(path: &std::path::Path) {
    if let Err(error) = std::fs::remove_dir_all(path)
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("remove {}: {error}", path.display());
    }
}
