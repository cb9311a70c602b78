//! Volumes: the service behind `/volumes` (with events), and the mounts of containers over
//! the `volume` crate. The crate describes; this file acts, in the container's lifecycle:
//!
//! - create: [`Engine::resolve_mounts`] turns `VolumesFrom`, `Binds`, `Mounts` and
//!   `Config.Volumes` into mount points (in dockerd's order and precedence), creating the
//!   volumes they name with a reference to the container, and copies the image's content
//!   into new volumes ([`Engine::copy_up`]);
//! - start: [`Engine::mount_volumes`] mounts the volumes, makes missing `-v` sources, checks
//!   propagation and subpaths, and returns the spec's mounts;
//! - exit: [`Engine::unmount_volumes`];
//! - removal: [`Engine::release_mounts`] drops the references and, with `rm -v` or `--rm`, the
//!   anonymous volumes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bollard_stubs::models::{ContainerConfig, EventMessageTypeEnum, HostConfig};
use volume::propagation::RootPropagation;
use volume::spec::{self, MountRequest};
use volume::{ContainerMount, MountKind, MountPoint, VolumeView};

use crate::Engine;
use crate::error::{Error, Result};
use crate::record::ContainerRecord;

impl From<volume::Error> for Error {
    fn from(error: volume::Error) -> Self {
        Self::new(error.kind(), error.to_string())
    }
}

/// `POST /volumes/create`.
#[derive(Debug, Clone, Default)]
pub struct VolumeCreate {
    pub name: String,
    pub driver: String,
    pub driver_options: HashMap<String, String>,
    pub labels: HashMap<String, String>,
}

/// What a start needs beyond the rootfs: the spec's mounts for volumes, binds and tmpfs, in
/// mount order, and the root propagation their binds need.
#[derive(Debug, Default)]
pub(crate) struct PreparedMounts {
    pub mounts: Vec<ContainerMount>,
    pub root_propagation: Option<RootPropagation>,
}

fn duplicate(destination: &str) -> Error {
    Error::invalid(format!("Duplicate mount point: {destination}"))
}

impl Engine {
    fn volume_event(&self, action: &str, name: &str, attributes: &[(&str, &str)]) {
        self.events.publish(
            EventMessageTypeEnum::VOLUME,
            action,
            name,
            attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
    }

    /// `POST /volumes/create`: the new volume, or the existing one of that name.
    pub async fn volume_create(&self, request: VolumeCreate) -> Result<VolumeView> {
        let (record, created) = self
            .volumes
            .create(volume::CreateRequest {
                name: request.name,
                driver: request.driver,
                options: request.driver_options,
                labels: request.labels,
                reference: None,
            })
            .await?;
        if created {
            self.volume_event("create", &record.name, &[("driver", &record.driver)]);
        }
        Ok(self.volumes.view(&record))
    }

    /// `GET /volumes/{name}`.
    pub async fn volume_inspect(&self, name: &str) -> Result<VolumeView> {
        Ok(self.volumes.inspect(name).await?)
    }

    /// `GET /volumes`.
    pub fn volume_list(&self, filters: &volume::Filters) -> Result<Vec<VolumeView>> {
        Ok(self.volumes.list(filters)?)
    }

    /// `DELETE /volumes/{name}`.
    pub async fn volume_remove(&self, name: &str, force: bool) -> Result<()> {
        let driver = self.volumes.get(name).map(|r| r.driver).ok();
        self.volumes.remove(name, force).await?;
        if let Some(driver) = driver {
            self.volume_event("destroy", name, &[("driver", &driver)]);
        }
        Ok(())
    }

    /// `POST /volumes/prune`: the names removed and the bytes reclaimed. `all_by_default`
    /// for API < 1.42, where prune took named volumes too.
    pub async fn volume_prune(
        &self,
        filters: &volume::Filters,
        all_by_default: bool,
    ) -> Result<(Vec<String>, u64)> {
        let drivers: HashMap<String, String> = self
            .volumes
            .list(&Default::default())?
            .into_iter()
            .map(|v| (v.name, v.driver))
            .collect();
        let (removed, reclaimed) = self.volumes.prune(filters, all_by_default).await?;
        for name in &removed {
            let driver = drivers.get(name).map(String::as_str).unwrap_or_default();
            self.volume_event("destroy", name, &[("driver", driver)]);
        }
        self.events.publish(
            EventMessageTypeEnum::VOLUME,
            "prune",
            "",
            HashMap::from([("reclaimed".to_string(), reclaimed.to_string())]),
        );
        Ok((removed, reclaimed))
    }

    /// `GET /system/df`'s volumes.
    pub(crate) async fn volume_usage(&self) -> Vec<VolumeView> {
        self.volumes.usage().await
    }

    /// Creates (or finds) the volume of a request, referenced by container `id`; returns the
    /// mount point and whether the volume is new.
    async fn volume_mount_point(
        &self,
        id: &str,
        request: &MountRequest,
    ) -> Result<(MountPoint, bool)> {
        let (record, created) = self
            .volumes
            .create(volume::CreateRequest {
                name: request.source.clone(),
                driver: request.driver.clone(),
                options: request.driver_options.clone(),
                labels: request.labels.clone(),
                reference: Some(id.to_string()),
            })
            .await?;
        if created {
            self.volume_event("create", &record.name, &[("driver", &record.driver)]);
        }
        let mountpoint = self.volumes.view(&record).mountpoint;
        let point =
            MountPoint::from_request(request, Some((&record.name, &record.driver, &mountpoint)));
        Ok((point, created))
    }

    /// A bind's mount point, with dockerd's default propagation for the data root.
    fn bind_mount_point(&self, request: &MountRequest) -> MountPoint {
        let mut point = MountPoint::from_request(request, None);
        if !request.propagation_given {
            point.propagation = volume::propagation::default_propagation(
                Path::new(&point.source),
                &self.config.data_root,
            )
            .to_string();
        }
        point
    }

    /// The mount points of a new container `id`, in dockerd's precedence: `--volumes-from`,
    /// then Binds and Mounts (which override it at the same destination, and may not repeat
    /// one), then an anonymous volume for each `Config.Volumes` destination still free.
    /// Volumes are created or referenced as they come; on failure every reference taken is
    /// dropped and every volume created is removed again.
    pub(crate) async fn resolve_mounts(
        &self,
        id: &str,
        config: &ContainerConfig,
        host: &HostConfig,
    ) -> Result<Vec<MountPoint>> {
        let mut points: Vec<MountPoint> = Vec::new();
        let mut created: Vec<String> = Vec::new();
        let result = self
            .resolve_mounts_into(id, config, host, &mut points, &mut created)
            .await;
        if let Err(error) = result {
            self.release_mounts(id, &points, false).await;
            for name in created {
                self.volumes.release(&name, id);
                let _ = self.volumes.remove(&name, true).await;
            }
            return Err(error);
        }
        Ok(points)
    }

    async fn resolve_mounts_into(
        &self,
        id: &str,
        config: &ContainerConfig,
        host: &HostConfig,
        points: &mut Vec<MountPoint>,
        created: &mut Vec<String>,
    ) -> Result<()> {
        let driver = host.volume_driver.clone().unwrap_or_default();
        let put = |points: &mut Vec<MountPoint>, point: MountPoint| {
            points.retain(|p| p.destination != point.destination);
            points.push(point);
        };
        for raw in host.volumes_from.iter().flatten() {
            let (source, writable) = spec::parse_volumes_from(raw)?;
            // dockerd answers 400 here: the container is a parameter of the create.
            let entry = self.find(&source).map_err(|e| Error::invalid(e.message))?;
            let borrowed: Vec<MountPoint> = entry
                .record
                .lock()
                .await
                .mount_points
                .iter()
                .map(|p| p.borrowed(writable))
                .collect();
            for point in borrowed {
                if point.kind == MountKind::Volume {
                    self.volumes.get(&point.name)?;
                    self.volumes.add_ref(&point.name, id);
                }
                put(points, point);
            }
        }
        let mut requested: Vec<String> = Vec::new();
        let mut requests = Vec::new();
        for raw in host.binds.iter().flatten() {
            requests.push(spec::parse_bind(raw, &driver)?);
        }
        for mount in host.mounts.iter().flatten() {
            let request = spec::parse_mount(mount, &driver)?;
            if request.kind == MountKind::Bind
                && !request.create_source
                && std::fs::metadata(&request.source).is_err()
            {
                return Err(Error::invalid(format!(
                    "invalid mount config for type \"bind\": bind source path does not exist: {}",
                    request.source
                )));
            }
            requests.push(request);
        }
        for request in requests {
            if requested.contains(&request.destination) {
                return Err(duplicate(&request.destination));
            }
            requested.push(request.destination.clone());
            let point = match request.kind {
                MountKind::Volume => {
                    let (point, new) = self.volume_mount_point(id, &request).await?;
                    if new {
                        created.push(point.name.clone());
                    }
                    point
                }
                MountKind::Bind => self.bind_mount_point(&request),
                MountKind::Tmpfs => MountPoint::from_request(&request, None),
            };
            // A volume taken from --volumes-from at this destination is replaced.
            if let Some(old) = points.iter().find(|p| p.destination == point.destination)
                && old.kind == MountKind::Volume
            {
                self.volumes.release(&old.name, id);
            }
            put(points, point);
        }
        for destination in config.volumes.iter().flatten() {
            let request = MountRequest::anonymous(destination, &driver);
            if !request.destination.starts_with('/') {
                return Err(Error::invalid(format!(
                    "invalid mount path: '{destination}' mount path must be absolute"
                )));
            }
            if points.iter().any(|p| p.destination == request.destination) {
                continue;
            }
            let (point, new) = self.volume_mount_point(id, &request).await?;
            if new {
                created.push(point.name.clone());
            }
            put(points, point);
        }
        for (destination, options) in host.tmpfs.iter().flatten() {
            spec::parse_tmpfs(destination, options)?;
        }
        Ok(())
    }

    /// Whether a mount point may need the image's content copied in: a volume asking for it
    /// whose content could be empty (a plain local volume is checked on disk; one with a
    /// mount or a plugin's only shows its content once mounted).
    pub(crate) fn may_copy_up(&self, point: &MountPoint) -> bool {
        if point.kind != MountKind::Volume || !point.copy_data || !point.subpath.is_empty() {
            return false;
        }
        match self.volumes.get(&point.name) {
            Ok(record) if record.driver == volume::LOCAL_DRIVER && record.options.is_none() => {
                std::fs::read_dir(&point.source)
                    .map(|mut entries| entries.next().is_none())
                    .unwrap_or(true)
            }
            _ => true,
        }
    }

    /// Copies the image's content at each copy-up mount point into its volume while the
    /// volume is empty (dockerd's populateVolumes, at create). `rootfs` is the container's
    /// root, mounted by the caller.
    pub(crate) async fn copy_up(
        &self,
        id: &str,
        rootfs: &Path,
        points: &[MountPoint],
    ) -> Result<()> {
        for point in points {
            if !self.may_copy_up(point) {
                continue;
            }
            let root =
                content::ContainerRoot::open(rootfs).map_err(|e| Error::internal(e.to_string()))?;
            let Some(source) = root
                .open_dir(&point.destination)
                .map_err(|e| Error::internal(e.to_string()))?
            else {
                continue;
            };
            // A mount of its own, so that a volume with a mount is filled, not its mount point.
            let user = format!("{id}-copyup");
            let path = self.volumes.mount(&point.name, &user).await?;
            let copied = tokio::task::spawn_blocking({
                let path = PathBuf::from(&path);
                move || copy_if_empty(&source, &path)
            })
            .await
            .map_err(|e| Error::internal(e.to_string()))?;
            let unmounted = self.volumes.unmount(&point.name, &user).await;
            copied?;
            unmounted?;
        }
        Ok(())
    }

    /// Mounts the volumes of a starting container and describes every mount of its
    /// volumes, binds and tmpfs for the spec. On failure nothing stays mounted.
    pub(crate) async fn mount_volumes(&self, record: &ContainerRecord) -> Result<PreparedMounts> {
        let mut prepared = PreparedMounts::default();
        match self.mount_volumes_into(record, &mut prepared).await {
            Ok(()) => {
                volume::sort_by_depth(&mut prepared.mounts);
                Ok(prepared)
            }
            Err(error) => {
                self.unmount_volumes(record).await;
                Err(error)
            }
        }
    }

    async fn mount_volumes_into(
        &self,
        record: &ContainerRecord,
        prepared: &mut PreparedMounts,
    ) -> Result<()> {
        let id = &record.id;
        // Read once, and only when a bind needs its propagation checked.
        let mut table: Option<Vec<volume::mountinfo::MountInfo>> = None;
        for (index, point) in record.mount_points.iter().enumerate() {
            match point.kind {
                MountKind::Volume => {
                    let path = self.volumes.mount(&point.name, id).await?;
                    self.volume_event(
                        "mount",
                        &point.name,
                        &[
                            ("driver", &point.driver),
                            ("container", id),
                            ("destination", &point.destination),
                            ("read/write", if point.rw { "true" } else { "false" }),
                            ("propagation", &point.propagation),
                        ],
                    );
                    let source = if point.subpath.is_empty() {
                        path
                    } else {
                        let fd = volume::subpath::open_beneath(Path::new(&path), &point.subpath)
                            .map_err(|e| {
                                Error::invalid(format!("error while mounting volume '{path}': {e}"))
                            })?;
                        let target = self.subpaths_dir(id).join(index.to_string());
                        volume::subpath::bind_fd(&fd, &target)?;
                        target.display().to_string()
                    };
                    prepared.mounts.push(point.container_mount(&source));
                }
                MountKind::Bind => {
                    let source = Path::new(&point.source);
                    if std::fs::symlink_metadata(source).is_err() {
                        if !point.create_source {
                            return Err(Error::invalid(format!(
                                "invalid mount config for type \"bind\": bind source path does not exist: {}",
                                point.source
                            )));
                        }
                        // `-v` makes a missing host directory, as dockerd does.
                        std::fs::create_dir_all(source).map_err(|e| {
                            Error::internal(format!(
                                "error while creating mount source path '{}': {e}",
                                point.source
                            ))
                        })?;
                    }
                    let table = table.get_or_insert_with(volume::mountinfo::current);
                    let needed = volume::propagation::check(point, table, &self.config.data_root)?;
                    prepared.root_propagation = prepared.root_propagation.max(needed);
                    prepared.mounts.push(point.container_mount(&point.source));
                }
                MountKind::Tmpfs => prepared.mounts.push(point.container_mount("")),
            }
        }
        for (destination, options) in record.host_config.tmpfs.iter().flatten() {
            let request = spec::parse_tmpfs(destination, options)?;
            prepared
                .mounts
                .push(MountPoint::from_request(&request, None).container_mount(""));
        }
        Ok(())
    }

    /// Where a container's subpath binds are made.
    fn subpaths_dir(&self, id: &str) -> PathBuf {
        self.config.containers_root().join(id).join("subpaths")
    }

    /// Unmounts a container's volumes and subpath binds (after its exit, or a failed start).
    pub(crate) async fn unmount_volumes(&self, record: &ContainerRecord) {
        let dir = self.subpaths_dir(&record.id);
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                while volume::mountinfo::is_mount_point(&path) {
                    if rustix::mount::unmount(&path, rustix::mount::UnmountFlags::DETACH).is_err() {
                        break;
                    }
                }
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
        for point in &record.mount_points {
            if point.kind != MountKind::Volume {
                continue;
            }
            match self.volumes.unmount(&point.name, &record.id).await {
                Ok(()) => self.volume_event(
                    "unmount",
                    &point.name,
                    &[("driver", &point.driver), ("container", &record.id)],
                ),
                Err(error) => tracing::warn!(
                    "unmount of volume {} for {}: {error}",
                    point.name,
                    record.id
                ),
            }
        }
    }

    /// Drops container `id`'s references to its volumes; with `remove_anonymous` (`rm -v`,
    /// `--rm`) removes the volumes it did not name, unless another container uses them.
    pub(crate) async fn release_mounts(
        &self,
        id: &str,
        points: &[MountPoint],
        remove_anonymous: bool,
    ) {
        for point in points {
            if point.kind != MountKind::Volume {
                continue;
            }
            self.volumes.release(&point.name, id);
            if !remove_anonymous || point.named {
                continue;
            }
            match self.volumes.remove(&point.name, false).await {
                Ok(()) => self.volume_event("destroy", &point.name, &[("driver", &point.driver)]),
                Err(error) if error.kind() == types::ErrorKind::FailedPrecondition => {}
                Err(error) => tracing::warn!("removal of volume {}: {error}", point.name),
            }
        }
    }

    /// At daemon start: the references of every container, and the mounts of those still
    /// running.
    pub(crate) fn restore_volumes(&self, record: &ContainerRecord, running: bool) {
        for point in &record.mount_points {
            if point.kind == MountKind::Volume {
                self.volumes.add_ref(&point.name, &record.id);
                if running {
                    self.volumes.restore_mount(&point.name, &record.id);
                }
            }
        }
    }
}

/// Copies `source` (an open directory of the image) into the volume at `volume` if the volume
/// is empty, keeping owners and modes.
fn copy_if_empty(source: &std::os::fd::OwnedFd, volume: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    let empty = std::fs::read_dir(volume)
        .map(|mut entries| entries.next().is_none())
        .unwrap_or(false);
    if !empty {
        return Ok(());
    }
    let source = PathBuf::from(format!("/proc/self/fd/{}", source.as_raw_fd()));
    content::copy_tree(&source, volume).map_err(|e| Error::internal(format!("copy-up: {e}")))
}

/// A volume or bind as `docker cp` sees it: the host directory shown at a container path.
#[derive(Debug, Clone)]
pub(crate) struct ViewMount {
    pub destination: String,
    /// The bind source or the volume's path.
    pub source: PathBuf,
    /// A volume subpath, opened beneath `source` when bound.
    pub subpath: String,
    pub writable: bool,
}

impl Engine {
    /// The volumes and binds of a container for an archive request (`docker cp` reads and
    /// writes through them, as dockerd does), with the volumes mounted for `user` until
    /// [`Engine::release_view_mounts`]. tmpfs mounts have no host side and are left out.
    pub(crate) async fn view_mounts(
        &self,
        record: &ContainerRecord,
        user: &str,
    ) -> Result<Vec<ViewMount>> {
        let mut view = Vec::new();
        for point in &record.mount_points {
            let source = match point.kind {
                MountKind::Tmpfs => continue,
                MountKind::Bind => PathBuf::from(&point.source),
                MountKind::Volume => match self.volumes.mount(&point.name, user).await {
                    Ok(path) => PathBuf::from(path),
                    Err(error) => {
                        self.release_view_mounts(record, user).await;
                        return Err(error.into());
                    }
                },
            };
            view.push(ViewMount {
                destination: point.destination.clone(),
                source,
                subpath: point.subpath.clone(),
                writable: point.rw,
            });
        }
        view.sort_by_key(|m| m.destination.split('/').filter(|p| !p.is_empty()).count());
        Ok(view)
    }

    /// Unmounts what [`Engine::view_mounts`] mounted for `user`.
    pub(crate) async fn release_view_mounts(&self, record: &ContainerRecord, user: &str) {
        for point in &record.mount_points {
            if point.kind == MountKind::Volume {
                let _ = self.volumes.unmount(&point.name, user).await;
            }
        }
    }
}

/// In the calling thread only: enters a new private mount namespace and binds each view
/// mount onto its destination in the root file system at `rootfs` (resolved in-root, so a
/// symlink of the container cannot redirect it), read-only when the mount is. The
/// namespace, and every mount made here, goes when the thread exits; the host's view is
/// never changed. The caller runs this on a thread of its own, never a pool thread.
pub(crate) fn enter_view(rootfs: &Path, mounts: &[ViewMount]) -> Result<()> {
    use rustix::mount::{MountFlags, MountPropagationFlags};
    use std::os::fd::AsRawFd;
    // SAFETY: CLONE_NEWNS (with the CLONE_FS it implies) gives only this thread its own
    // mount namespace and fs info; the thread is dedicated to one archive request, and no
    // file descriptor table is unshared.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS) }
        .map_err(|e| Error::internal(format!("unshare a mount namespace: {e}")))?;
    rustix::mount::mount_change(
        "/",
        MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
    )
    .map_err(|e| Error::internal(format!("make the view private: {e}")))?;
    for mount in mounts {
        let root =
            content::ContainerRoot::open(rootfs).map_err(|e| Error::internal(e.to_string()))?;
        let Some(target) = root
            .open_dir(&mount.destination)
            .map_err(|e| Error::internal(e.to_string()))?
        else {
            // Never started: the mount point is not made yet; the path stays the image's.
            continue;
        };
        let target_path = format!("/proc/self/fd/{}", target.as_raw_fd());
        // A subpath is opened beneath its volume, as at start.
        let subpath = if mount.subpath.is_empty() {
            None
        } else {
            Some(volume::subpath::open_beneath(
                &mount.source,
                &mount.subpath,
            )?)
        };
        let source = match &subpath {
            Some(fd) => PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
            None => mount.source.clone(),
        };
        if std::fs::metadata(&source).is_err() {
            continue;
        }
        rustix::mount::mount_bind_recursive(&source, target_path.as_str()).map_err(|e| {
            Error::internal(format!(
                "bind {} for the archive: {e}",
                mount.source.display()
            ))
        })?;
        if !mount.writable {
            let mounted = root
                .open_dir(&mount.destination)
                .map_err(|e| Error::internal(e.to_string()))?
                .ok_or_else(|| Error::internal("the bound directory vanished"))?;
            rustix::mount::mount_remount(
                format!("/proc/self/fd/{}", mounted.as_raw_fd()).as_str(),
                MountFlags::BIND | MountFlags::RDONLY,
                "",
            )
            .map_err(|e| Error::internal(format!("make {} read-only: {e}", mount.destination)))?;
        }
    }
    Ok(())
}
