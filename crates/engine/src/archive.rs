//! Container filesystem archives: `docker cp` (GET/HEAD/PUT /containers/{id}/archive),
//! `docker export` and `docker diff` (/changes).
//!
//! The work happens on the container's root file system as the daemon mounts it at
//! `containers/<id>/rootfs` (the overlay of its image and its changes). A running
//! container has it mounted already; for a created or stopped one it is mounted for the
//! time of the request and unmounted afterwards (even on failure: a guard), with the
//! record lock held so a concurrent `start` waits instead of racing the mount.
//!
//! Paths are resolved inside that root by `content::ContainerRoot` (openat2
//! `RESOLVE_IN_ROOT`): a symlink in the container that points to `/etc` is the
//! container's `/etc`, never the host's (CVE-2018-15664, CVE-2019-14271).
//!
//! Volumes and binds are mounts of the container's own namespace: for `cp` (stat, get,
//! put) the work runs on a thread of its own in a private mount namespace where they are
//! bound onto the root as in the container (`volumes::enter_view`), so `cp` reads and writes
//! them as dockerd's does; a read-only one refuses writes. `export` and `diff` see the root
//! file system only, as in Docker. Not covered: tmpfs mounts, and the generated
//! `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf` (cp sees the image's files there).

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

pub use content::PathStat;
use content::{ApplyOptions, ContainerRoot, ContentError, WhiteoutMode};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};
use crate::record::ContainerRecord;
use crate::{ContainerEntry, Engine, EngineConfig};

/// A stream of archive bytes produced on a blocking thread; an `Err` item ends it early.
pub type ArchiveStream = mpsc::Receiver<io::Result<Vec<u8>>>;

/// Options of `PUT /containers/{id}/archive`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractOptions {
    /// `noOverwriteDirNonDir`: refuse to replace a directory with a non-directory or the
    /// other way round.
    pub no_overwrite_dir_non_dir: bool,
    /// `copyUIDGID` (`docker cp -a`): files take the uid/gid of the container's user
    /// instead of the archive's (when the container has a user; Docker's rule).
    pub copy_uid_gid: bool,
}

/// One entry of `GET /containers/{id}/changes`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChangeItem {
    /// Absolute path in the container.
    pub path: String,
    /// 0 modified, 1 added, 2 deleted.
    pub kind: u8,
}

/// Maps a content error of an operation on `path` of container `name` to Docker's answer.
fn path_error(error: ContentError, path: &str, name: &str) -> Error {
    match error {
        ContentError::PathNotFound(_) => Error::not_found(format!(
            "Could not find the file {path} in container {name}"
        )),
        ContentError::NotADirectory(_) => Error::invalid("extraction point is not a directory"),
        ContentError::InvalidTar(reason) => Error::invalid(format!(
            "the uploaded content is not a valid tar archive: {reason}"
        )),
        other => Error::new(other.kind(), other.to_string()),
    }
}

/// Unmounts a root file system mounted only for one request.
struct TemporaryMount {
    config: EngineConfig,
    id: String,
}

impl Drop for TemporaryMount {
    fn drop(&mut self) {
        crate::rootfs::unmount(&self.config, &self.id);
    }
}

/// Writes into a channel in chunks, for a response body produced on a blocking thread.
struct ChannelWriter {
    sender: mpsc::Sender<io::Result<Vec<u8>>>,
    buffer: Vec<u8>,
}

const CHUNK: usize = 64 * 1024;

impl ChannelWriter {
    fn new(sender: mpsc::Sender<io::Result<Vec<u8>>>) -> Self {
        Self {
            sender,
            buffer: Vec::with_capacity(CHUNK),
        }
    }

    fn send_buffer(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        // The receiver is gone when the client hung up: stop producing.
        self.sender
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK {
            self.send_buffer()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buffer()
    }
}

impl Engine {
    /// Runs `work` on a blocking thread with the container's root file system open,
    /// mounting it for the time of the call when it is not mounted (see the module
    /// documentation).
    async fn with_rootfs<T, F>(&self, entry: &Arc<ContainerEntry>, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(ContainerRoot, ContainerRecord) -> Result<T> + Send + 'static,
    {
        self.with_rootfs_view(entry, false, work).await
    }

    /// [`Engine::with_rootfs`], with the container's volumes and binds in place when
    /// `with_mounts` (for `cp`).
    async fn with_rootfs_view<T, F>(
        &self,
        entry: &Arc<ContainerEntry>,
        with_mounts: bool,
        work: F,
    ) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(ContainerRoot, ContainerRecord) -> Result<T> + Send + 'static,
    {
        let record_guard = entry.record.lock().await;
        let record = record_guard.clone();
        if record.state.status == crate::Status::Removing {
            return Err(Error::conflict(format!(
                "removal of container {} is already in progress",
                record.id
            )));
        }
        let target = crate::rootfs::mount_point(&self.config, &record.id);
        let (held, mounted) = if volume::mountinfo::is_mount_point(&target) {
            // Running: its mount stays while it runs; an exit meanwhile detaches it lazily,
            // and the files opened here stay usable.
            drop(record_guard);
            (None, None)
        } else {
            let images = self.images.clone();
            let key = record.id.clone();
            let mounts = tokio::task::spawn_blocking(move || images.rootfs_mounts(&key))
                .await
                .map_err(|e| Error::internal(e.to_string()))??;
            let guard = TemporaryMount {
                config: self.config.clone(),
                id: record.id.clone(),
            };
            crate::rootfs::mount(&self.config, &record.id, &mounts)?;
            (Some(record_guard), Some(guard))
        };
        let has_mounts = record
            .mount_points
            .iter()
            .any(|p| p.kind != volume::MountKind::Tmpfs);
        if !(with_mounts && has_mounts) {
            let result = tokio::task::spawn_blocking(move || {
                let root =
                    ContainerRoot::open(&target).map_err(|e| Error::internal(e.to_string()))?;
                work(root, record)
            })
            .await
            .map_err(|e| Error::internal(e.to_string()));
            drop(mounted);
            drop(held);
            return result?;
        }
        let user = format!("{}-archive", record.id);
        let view = match self.view_mounts(&record, &user).await {
            Ok(view) => view,
            Err(error) => {
                drop(mounted);
                drop(held);
                return Err(error);
            }
        };
        let (sender, receiver) = oneshot::channel();
        let view_record = record.clone();
        // A thread of its own: it leaves the host's mount namespace.
        let spawned = std::thread::Builder::new()
            .name("archive-view".into())
            .spawn(move || {
                let result = crate::volumes::enter_view(&target, &view).and_then(|()| {
                    let root =
                        ContainerRoot::open(&target).map_err(|e| Error::internal(e.to_string()))?;
                    work(root, view_record)
                });
                let _ = sender.send(result);
            });
        let result = match spawned {
            Ok(_) => receiver
                .await
                .unwrap_or_else(|_| Err(Error::internal("the archive thread died"))),
            Err(e) => Err(Error::internal(format!("start the archive thread: {e}"))),
        };
        self.release_view_mounts(&record, &user).await;
        drop(mounted);
        drop(held);
        result
    }

    /// `HEAD /containers/{id}/archive?path=`: the stat of a path in the container.
    pub async fn archive_stat(&self, name_or_id: &str, path: &str) -> Result<PathStat> {
        let entry = self.find(name_or_id)?;
        let (name, path) = (name_or_id.to_string(), path.to_string());
        self.with_rootfs_view(&entry, true, move |root, _| {
            root.stat(&path).map_err(|e| path_error(e, &path, &name))
        })
        .await
    }

    /// `GET /containers/{id}/archive?path=`: the stat of the path and a tar stream of it.
    /// Errors found before the first byte (no such container or path) are returned here;
    /// a failure later ends the stream with an error item.
    pub async fn archive_get(
        self: &Arc<Self>,
        name_or_id: &str,
        path: &str,
    ) -> Result<(PathStat, ArchiveStream)> {
        let entry = self.find(name_or_id)?;
        let (sender, receiver) = mpsc::channel(8);
        let (stat_sender, stat_receiver) = oneshot::channel();
        let (name, path) = (name_or_id.to_string(), path.to_string());
        let engine = self.clone();
        tokio::spawn(async move {
            let error_sender = sender.clone();
            let outcome = engine
                .with_rootfs_view(&entry, true, move |root, _| {
                    let stat = root.stat(&path).map_err(|e| path_error(e, &path, &name));
                    let failed = stat.is_err();
                    let _ = stat_sender.send(stat);
                    if failed {
                        return Ok(());
                    }
                    let mut writer = ChannelWriter::new(sender);
                    root.archive(&path, &mut writer)
                        .map_err(|e| path_error(e, &path, &name))?;
                    writer.flush()?;
                    Ok(())
                })
                .await;
            if let Err(error) = outcome {
                tracing::warn!(%error, "archive of a container path failed");
                let _ = error_sender
                    .send(Err(io::Error::other(error.message)))
                    .await;
            }
        });
        // The task drops the stat sender without sending only when it failed before
        // reaching the file system; its error went to the stream then.
        match stat_receiver.await {
            Ok(stat) => Ok((stat?, receiver)),
            Err(_) => {
                let mut receiver = receiver;
                match receiver.recv().await {
                    Some(Err(e)) => Err(Error::internal(e.to_string())),
                    _ => Err(Error::internal("archive failed")),
                }
            }
        }
    }

    /// `PUT /containers/{id}/archive?path=`: extracts a tar (plain or compressed) into
    /// the directory at `path`.
    pub async fn archive_put(
        &self,
        name_or_id: &str,
        path: &str,
        options: ExtractOptions,
        body: Box<dyn Read + Send>,
    ) -> Result<()> {
        let entry = self.find(name_or_id)?;
        let (name, path) = (name_or_id.to_string(), path.to_string());
        self.with_rootfs_view(&entry, true, move |root, record| {
            // dockerd's rules: a read-only volume or bind refuses; a read-only root file
            // system refuses unless the path is in a writable mount.
            let target = volume::spec::clean(&format!("/{path}"));
            let mount = record
                .mount_points
                .iter()
                .filter(|p| {
                    Path::new(&target).starts_with(&p.destination)
                        && p.kind != volume::MountKind::Tmpfs
                })
                .max_by_key(|p| p.destination.len());
            match mount {
                Some(point) if !point.rw => {
                    return Err(Error::invalid("mounted volume is marked read-only"));
                }
                None if record.host_config.readonly_rootfs.unwrap_or(false) => {
                    return Err(Error::invalid("container rootfs is marked read-only"));
                }
                _ => {}
            }
            // Docker: without a configured user, -a keeps the archive's ids like a plain cp.
            let user = record.config.user.clone().unwrap_or_default();
            let owner = if options.copy_uid_gid && !user.is_empty() {
                Some(container_user_ids(&root, &user)?)
            } else {
                None
            };
            let apply = ApplyOptions {
                whiteouts: WhiteoutMode::Keep,
                chown: true,
                owner,
                no_overwrite_dir_non_dir: options.no_overwrite_dir_non_dir,
            };
            root.extract(&path, io::BufReader::new(body), &apply)
                .map_err(|e| path_error(e, &path, &name))
        })
        .await
    }

    /// `GET /containers/{id}/export`: a tar stream of the container's whole root file
    /// system (image and changes, without volumes or the generated /etc files).
    pub async fn export(self: &Arc<Self>, name_or_id: &str) -> Result<ArchiveStream> {
        let entry = self.find(name_or_id)?;
        let (sender, receiver) = mpsc::channel(8);
        let (ready_sender, ready_receiver) = oneshot::channel::<()>();
        let engine = self.clone();
        let id = entry.record.lock().await.id.clone();
        tokio::spawn(async move {
            let error_sender = sender.clone();
            let outcome = engine
                .with_rootfs(&entry, move |root, _| {
                    let _ = ready_sender.send(());
                    let mut writer = ChannelWriter::new(sender);
                    root.export(&mut writer)
                        .map_err(|e| Error::new(e.kind(), e.to_string()))?;
                    writer.flush()?;
                    Ok(())
                })
                .await;
            if let Err(error) = outcome {
                tracing::warn!(%error, "export failed");
                let _ = error_sender
                    .send(Err(io::Error::other(error.message)))
                    .await;
            }
        });
        match ready_receiver.await {
            Ok(()) => {
                self.events.publish(
                    bollard_stubs::models::EventMessageTypeEnum::CONTAINER,
                    "export",
                    &id,
                    Default::default(),
                );
                Ok(receiver)
            }
            Err(_) => {
                let mut receiver = receiver;
                match receiver.recv().await {
                    Some(Err(e)) => Err(Error::internal(e.to_string())),
                    _ => Err(Error::internal("export failed")),
                }
            }
        }
    }

    /// `GET /containers/{id}/changes`: what the container changed over its image.
    pub async fn changes(&self, name_or_id: &str) -> Result<Vec<ChangeItem>> {
        let entry = self.find(name_or_id)?;
        let id = entry.record.lock().await.id.clone();
        let images = self.images.clone();
        let changes = tokio::task::spawn_blocking(move || images.rootfs_changes(&id))
            .await
            .map_err(|e| Error::internal(e.to_string()))??;
        Ok(visible_changes(
            changes
                .into_iter()
                .map(|c| ChangeItem {
                    path: c.path,
                    kind: c.kind as u8,
                })
                .collect(),
        ))
    }
}

/// The uid and gid of the container's user (`copyUIDGID`). Its account files are read
/// through the in-root resolver and copied to a scratch directory for the shared parser,
/// so an `/etc/passwd` symlinked to a host path cannot be read.
fn container_user_ids(root: &ContainerRoot, user: &str) -> Result<(u32, u32)> {
    let scratch = tempfile::tempdir()?;
    std::fs::create_dir(scratch.path().join("etc"))?;
    for file in ["etc/passwd", "etc/group"] {
        let bytes = root
            .read_file(file, 4 << 20)
            .map_err(|e| Error::internal(e.to_string()))?;
        if let Some(bytes) = bytes {
            std::fs::write(scratch.path().join(file), bytes)?;
        }
    }
    let resolved = crate::user::resolve(scratch.path(), user)?;
    Ok((resolved.uid, resolved.gid))
}

/// Drops the runtime's mount points, and a directory listed as modified only because one
/// of them was created in it (`C /etc` for a new `/etc/hosts`): Docker creates them in its
/// hidden init layer, below the container's changes.
fn visible_changes(all: Vec<ChangeItem>) -> Vec<ChangeItem> {
    let hidden: Vec<&str> = all
        .iter()
        .filter(|c| is_runtime_mount_point(&c.path))
        .map(|c| c.path.as_str())
        .collect();
    let beneath = |dir: &str, path: &str| {
        path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
    };
    let keep: Vec<bool> = all
        .iter()
        .map(|c| {
            if is_runtime_mount_point(&c.path) {
                return false;
            }
            let only_for_hidden = c.kind == 0
                && hidden.iter().any(|h| beneath(&c.path, h))
                && !all
                    .iter()
                    .any(|o| beneath(&c.path, &o.path) && !is_runtime_mount_point(&o.path));
            !only_for_hidden
        })
        .collect();
    all.into_iter()
        .zip(keep)
        .filter_map(|(c, keep)| keep.then_some(c))
        .collect()
}

/// Mount points the runtime creates in a root file system that lacks them (Docker keeps
/// these in a hidden "init" layer, so `docker diff` never lists them).
fn is_runtime_mount_point(path: &str) -> bool {
    matches!(
        path,
        "/proc" | "/sys" | "/dev" | "/etc/hostname" | "/etc/hosts" | "/etc/resolv.conf"
    ) || path.starts_with("/dev/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_like_dockerd() {
        let e = path_error(ContentError::PathNotFound("/nope".into()), "/nope", "web");
        assert_eq!(e.kind, types::ErrorKind::NotFound);
        assert_eq!(e.message, "Could not find the file /nope in container web");
        let e = path_error(ContentError::NotADirectory("/f".into()), "/f", "web");
        assert_eq!(e.kind, types::ErrorKind::InvalidArgument);
        let e = path_error(ContentError::InvalidTar("x".into()), "/", "web");
        assert_eq!(e.kind, types::ErrorKind::InvalidArgument);
    }

    #[test]
    fn channel_writer_chunks_and_stops_when_dropped() {
        let (sender, mut receiver) = mpsc::channel(4);
        let handle = std::thread::spawn(move || {
            let mut writer = ChannelWriter::new(sender);
            writer.write_all(&vec![1u8; CHUNK + 10]).unwrap();
            writer.flush().unwrap();
        });
        let first = receiver.blocking_recv().unwrap().unwrap();
        assert_eq!(first.len(), CHUNK + 10);
        handle.join().unwrap();
        drop(receiver);
        let (sender, receiver) = mpsc::channel(1);
        drop(receiver);
        let mut writer = ChannelWriter::new(sender);
        assert!(writer.write_all(&vec![0u8; CHUNK]).is_err());
    }

    #[test]
    fn hides_parents_changed_only_by_mount_points() {
        let item = |path: &str, kind: u8| ChangeItem {
            path: path.into(),
            kind,
        };
        let got = visible_changes(vec![
            item("/dev", 1),
            item("/etc", 0),
            item("/etc/hosts", 1),
            item("/proc", 1),
            item("/tmp", 0),
            item("/tmp/x", 1),
        ]);
        assert_eq!(got, vec![item("/tmp", 0), item("/tmp/x", 1)]);
        let got = visible_changes(vec![
            item("/etc", 0),
            item("/etc/group", 0),
            item("/etc/hosts", 1),
        ]);
        assert_eq!(got, vec![item("/etc", 0), item("/etc/group", 0)]);
    }

    #[test]
    fn hides_runtime_mount_points() {
        assert!(is_runtime_mount_point("/proc"));
        assert!(is_runtime_mount_point("/dev/console"));
        assert!(!is_runtime_mount_point("/etc"));
        assert!(!is_runtime_mount_point("/tmp/x"));
    }
}
