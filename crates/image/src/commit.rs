//! `docker commit`: a new image made of a container's image layers plus one layer holding
//! the container's changes (its overlay upper dir as a layer tar, whiteouts as `.wh.`
//! entries), and a config carrying the container's settings with `--change` applied.
//!
//! Shape of the result (moby `daemon/images/image_commit.go`, `image.NewChildImage`): the
//! parent image's config with a new `created`, `author`, `comment` and `config`, one more
//! `history` entry (author, comment, `created_by` = the container's command), and the new
//! layer's DiffID appended to `rootfs.diff_ids` — unless the changes are empty, in which
//! case no layer is added and the history entry says `empty_layer`. The image's `Parent`
//! is the container's image. The id is the digest of the config bytes, as for every image.
//!
//! All or nothing: the layer blob and snapshot are registered on the store's undo list, so a
//! failure (bad `--change`, I/O error, a reference that cannot be set) leaves no blob,
//! snapshot or record behind.

use std::io::{Seek, Write};

use types::{Digest, Reference};

use crate::changes::apply_changes;
use crate::config::{ContainerConfig, History};
use crate::error::{Error, IoContext, Result};
use crate::id::ImageId;
use crate::store::{ImageStore, Undo, check_taggable, now_rfc3339};

/// What `POST /commit` asks for, resolved by the engine.
#[derive(Debug, Clone, Default)]
pub struct CommitRequest<'a> {
    /// The container's root file system key (its id), as given to
    /// [`ImageStore::prepare_rootfs`].
    pub container_key: &'a str,
    /// The container's image: the parent of the new one.
    pub image: Option<&'a ImageId>,
    /// `repo[:tag]` to name the new image, if any.
    pub reference: Option<&'a Reference>,
    /// The container's configuration (merged with the request's `Config` by the caller),
    /// before `changes`.
    pub config: ContainerConfig,
    /// Dockerfile instructions (`--change`), applied in order.
    pub changes: &'a [String],
    /// `--message`.
    pub comment: Option<&'a str>,
    /// `--author`.
    pub author: Option<&'a str>,
    /// What made the layer: the container's command line (history `created_by`).
    pub created_by: Option<String>,
}

/// sha256 of an empty tar (two zero blocks): the DiffID of a layer that changes nothing
/// (moby `layer.DigestSHA256EmptyTar`).
pub fn empty_layer_diff_id() -> Digest {
    content::sha256_digest(&[0u8; 1024])
}

impl ImageStore {
    /// Commits the container's changes as a new image (see the module documentation) and
    /// returns its id. The caller keeps the container from writing meanwhile (pauses it) if
    /// it wants a consistent layer; a file changing during the read fails the commit rather
    /// than producing a corrupt layer.
    pub fn commit(&self, request: &CommitRequest<'_>) -> Result<ImageId> {
        if let Some(r) = request.reference {
            check_taggable(r)?;
        }
        // Validate the changes before reading a byte of the container's files.
        let mut container_config = request.config.clone();
        apply_changes(&mut container_config, request.changes)?;
        let _guard = self.lock_write();
        let (base_config, base_layers) = match request.image {
            Some(id) => {
                let state = self.read_state();
                let record = state
                    .records
                    .get(id)
                    .ok_or_else(|| Error::NoSuchImage(id.to_string()))?;
                let config = state
                    .configs
                    .get(id)
                    .map(|c| (**c).clone())
                    .unwrap_or_default();
                (config, record.layers.clone())
            }
            None => (
                crate::config::ImageConfigFile {
                    architecture: crate::store::host_architecture().to_owned(),
                    os: std::env::consts::OS.to_owned(),
                    rootfs: crate::config::RootFs {
                        kind: "layers".into(),
                        diff_ids: Vec::new(),
                    },
                    ..Default::default()
                },
                Vec::new(),
            ),
        };
        let tmp_dir = self.root().join("tmp");
        let mut undo = Undo::new(self);
        let result = (|| {
            // The diff goes to an unnamed file first: the layer's DiffID must be known
            // before it is applied, and a failure leaves nothing to clean up.
            let mut file = tempfile::tempfile_in(&tmp_dir)
                .ctx(|| format!("create temp file in {}", tmp_dir.display()))?;
            let diff_id = {
                let mut writer = std::io::BufWriter::new(&mut file);
                let diff_id = self
                    .snapshots
                    .diff_active(request.container_key, &mut writer)?;
                writer.flush().ctx(|| "write layer".into())?;
                diff_id
            };
            file.rewind().ctx(|| "rewind layer".into())?;
            let empty = diff_id == empty_layer_diff_id();
            let mut layers = base_layers.clone();
            if !empty {
                let parent = base_layers.last().map(|l| l.chain_id.clone());
                let layer = self.unpack_layer(
                    &mut undo,
                    parent.as_ref(),
                    std::io::BufReader::new(file),
                    Some(&diff_id),
                )?;
                layers.push(layer);
            }
            let created = now_rfc3339();
            let author = request.author.filter(|a| !a.is_empty()).map(str::to_owned);
            let comment = request.comment.filter(|c| !c.is_empty()).map(str::to_owned);
            let mut config = base_config.clone();
            config.created = Some(created.clone());
            config.author = author.clone();
            config.comment = comment.clone();
            config.config = Some(container_config.clone());
            config.rootfs.kind = "layers".into();
            config.rootfs.diff_ids = layers.iter().map(|l| l.diff_id.clone()).collect();
            config.history.push(History {
                created: Some(created),
                created_by: request.created_by.clone().filter(|c| !c.is_empty()),
                author,
                comment,
                empty_layer: empty,
            });
            let bytes =
                serde_json::to_vec(&config).map_err(|e| Error::InvalidConfig(e.to_string()))?;
            self.add_image(&mut undo, &bytes, config, layers, request.image.cloned())
        })();
        let id = match result {
            Ok(id) => id,
            Err(e) => return Err(undo.rollback(e)),
        };
        undo.commit();
        if let Some(r) = request.reference {
            self.set_reference(r, &id)?;
        }
        tracing::info!(image = %id, container = request.container_key, "committed image");
        Ok(id)
    }

    /// The file system changes of a container's root file system over its image, as
    /// `docker diff` lists them.
    pub fn rootfs_changes(&self, container_key: &str) -> Result<Vec<content::Change>> {
        Ok(self.snapshots.changes_active(container_key)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use content::SnapshotDriver;
    use std::fs;
    use std::path::Path;

    fn rootfs_tar() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in [
            ("etc/passwd", &b"root:x:0:0::/root:/bin/sh\n"[..]),
            ("gone", b"g"),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(1_700_000_000);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn blob_count(store: &ImageStore) -> usize {
        fs::read_dir(store.root().join("content/blobs/sha256"))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    fn committed_count(store: &ImageStore) -> usize {
        fs::read_dir(store.root().join("snapshots/committed"))
            .unwrap()
            .count()
    }

    /// Imports a base, prepares a container on it and changes its files directly in the
    /// changes dir (no mount needed), as a running container would through its overlay.
    fn setup(dir: &Path, driver: SnapshotDriver) -> (ImageStore, ImageId) {
        let store = ImageStore::open_with_driver(dir.join("image"), driver).unwrap();
        let reference = Reference::parse_normalized("base:1").unwrap();
        let base = store
            .import(
                &rootfs_tar()[..],
                Some(&reference),
                &["CMD [\"sh\"]".into()],
                None,
            )
            .unwrap();
        store.prepare_rootfs("ctr", &base).unwrap();
        let changes = store.rootfs_changes_dir("ctr").unwrap();
        fs::write(changes.join("added"), b"new file").unwrap();
        match driver {
            SnapshotDriver::Overlay => {
                rustix::fs::mknodat(
                    rustix::fs::CWD,
                    changes.join("gone"),
                    rustix::fs::FileType::CharacterDevice,
                    rustix::fs::Mode::empty(),
                    0,
                )
                .unwrap();
            }
            SnapshotDriver::Copy => fs::remove_file(changes.join("gone")).unwrap(),
        }
        (store, base)
    }

    fn commit_adds_a_layer_and_applies_changes(driver: SnapshotDriver) {
        let dir = tempfile::tempdir().unwrap();
        let (store, base) = setup(dir.path(), driver);
        let reference = Reference::parse_normalized("committed:v1").unwrap();
        let changes = vec!["ENV A=B".to_owned()];
        let base_config = store.resolve("base:1").unwrap().container_config();
        let id = store
            .commit(&CommitRequest {
                container_key: "ctr",
                image: Some(&base),
                reference: Some(&reference),
                config: base_config,
                changes: &changes,
                comment: Some("a message"),
                author: Some("Jane <jane@example.com>"),
                created_by: Some("sh".into()),
            })
            .unwrap();
        let image = store.resolve("committed:v1").unwrap();
        assert_eq!(image.id, id);
        assert_eq!(image.record.layers.len(), 2);
        assert_eq!(image.record.parent.as_ref(), Some(&base));
        let config = image.container_config();
        assert!(config.env.unwrap().contains(&"A=B".to_owned()));
        assert_eq!(config.cmd, Some(vec!["sh".to_owned()]));
        assert_eq!(
            image.config.author.as_deref(),
            Some("Jane <jane@example.com>")
        );
        let last = image.config.history.last().unwrap();
        assert_eq!(last.comment.as_deref(), Some("a message"));
        assert!(!last.empty_layer);
        // The id is the digest of the stored config bytes.
        let bytes = content::read_blob(&store.blobs, id.digest()).unwrap();
        assert_eq!(&content::sha256_digest(&bytes), id.digest());
        // A container of the new image sees the added file and not the deleted one.
        store.prepare_rootfs("ctr2", &id).unwrap();
        let top = image.record.top_chain_id().unwrap();
        let layer_fs = store.snapshots.committed_fs(top).unwrap();
        assert_eq!(fs::read(layer_fs.join("added")).unwrap(), b"new file");
        match driver {
            SnapshotDriver::Copy => assert!(!layer_fs.join("gone").exists()),
            SnapshotDriver::Overlay => {
                let meta = fs::symlink_metadata(layer_fs.join("gone")).unwrap();
                assert!(std::os::unix::fs::FileTypeExt::is_char_device(
                    &meta.file_type()
                ));
            }
        }
        // The layer tar (kept for save) carries the deletion as a .wh. entry.
        let diff_id = &image.record.layers[1].diff_id;
        let tar_bytes = content::read_blob(&store.blobs, diff_id).unwrap();
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert!(names.contains(&".wh.gone".to_owned()), "{names:?}");
        assert!(names.contains(&"added".to_owned()), "{names:?}");
        // The changes as docker diff sees them.
        let listed: Vec<(String, content::ChangeKind)> = store
            .rootfs_changes("ctr")
            .unwrap()
            .into_iter()
            .map(|c| (c.path, c.kind))
            .collect();
        assert!(listed.contains(&("/added".into(), content::ChangeKind::Added)));
        assert!(listed.contains(&("/gone".into(), content::ChangeKind::Deleted)));
    }

    #[test]
    fn commit_with_overlay_snapshots() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        commit_adds_a_layer_and_applies_changes(SnapshotDriver::Overlay);
    }

    #[test]
    fn commit_with_copy_snapshots() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        commit_adds_a_layer_and_applies_changes(SnapshotDriver::Copy);
    }

    #[test]
    fn commit_without_changes_adds_no_layer() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            ImageStore::open_with_driver(dir.path().join("image"), SnapshotDriver::Copy).unwrap();
        let base = store.import(&rootfs_tar()[..], None, &[], None).unwrap();
        store.prepare_rootfs("ctr", &base).unwrap();
        let id = store
            .commit(&CommitRequest {
                container_key: "ctr",
                image: Some(&base),
                ..CommitRequest::default()
            })
            .unwrap();
        let image = store.resolve(&id.to_string()).unwrap();
        assert_eq!(image.record.layers.len(), 1);
        assert!(image.config.history.last().unwrap().empty_layer);
        assert_ne!(id, base);
    }

    #[test]
    fn failed_commits_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            ImageStore::open_with_driver(dir.path().join("image"), SnapshotDriver::Copy).unwrap();
        let base = store.import(&rootfs_tar()[..], None, &[], None).unwrap();
        store.prepare_rootfs("ctr", &base).unwrap();
        fs::write(store.rootfs_changes_dir("ctr").unwrap().join("x"), b"x").unwrap();
        let blobs = blob_count(&store);
        let committed = committed_count(&store);
        let bad = vec!["BOGUS instruction".to_owned()];
        let err = store
            .commit(&CommitRequest {
                container_key: "ctr",
                image: Some(&base),
                changes: &bad,
                ..CommitRequest::default()
            })
            .unwrap_err();
        assert_eq!(err.kind(), types::ErrorKind::InvalidArgument);
        let err = store
            .commit(&CommitRequest {
                container_key: "no-such-container",
                image: Some(&base),
                ..CommitRequest::default()
            })
            .unwrap_err();
        assert_eq!(err.kind(), types::ErrorKind::NotFound);
        let digest_ref = Reference::parse_normalized(
            "x@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        )
        .unwrap();
        assert!(
            store
                .commit(&CommitRequest {
                    container_key: "ctr",
                    image: Some(&base),
                    reference: Some(&digest_ref),
                    ..CommitRequest::default()
                })
                .is_err()
        );
        assert_eq!(store.count(), 1);
        assert_eq!(blob_count(&store), blobs);
        assert_eq!(committed_count(&store), committed);
        assert_eq!(fs::read_dir(store.root().join("tmp")).unwrap().count(), 0);
    }
}
