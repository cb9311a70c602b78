//! The image store: records, references, layers unpacked into snapshots, and the container
//! root file systems prepared on them.
//!
//! Layout under the store's root (the data root's `image/`):
//!
//! ```text
//! content/            content::BlobStore: config blobs, and each layer's uncompressed tar
//!                     (named by its DiffID, so `save` can write it back byte for byte)
//! snapshots/          content::SnapshotStore: one committed snapshot per ChainID, one
//!                     active snapshot per container key
//! records/<hex>.json  one ImageRecord per image
//! repositories.json   reference -> image id
//! tmp/                scratch space of `load`
//! ```
//!
//! Invariants: every record's config blob, layer blobs and layer snapshots exist; every
//! reference names a record. A workflow that fails removes what it created (an undo list),
//! and `open` removes blobs and snapshots that no record names (left by a crash), so a
//! failure never leaves a stray blob, snapshot or record.
//!
//! Concurrency: all mutations are serialised by one lock (`write`); readers take a short
//! read lock on the in-memory state and never wait for a layer to unpack.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use content::{
    BlobStore, ContentError, Ingester, Manager, Mount, Provider, SnapshotDriver, SnapshotStore,
};
use types::{Digest, Reference};

use crate::changes::apply_changes;
use crate::config::{ContainerConfig, History, ImageConfigFile, RootFs};
use crate::error::{Error, IoContext, Result};
use crate::id::ImageId;
use crate::record::{
    ImageRecord, LayerRecord, ReferenceIndex, read_json, remove_durable, write_atomic,
};

/// An image as callers see it: its record, config and references.
#[derive(Debug, Clone)]
pub struct Image {
    /// The image id.
    pub id: ImageId,
    /// The tags (and digest references) naming the image, sorted.
    pub references: Vec<Reference>,
    /// The parsed config blob.
    pub config: Arc<ImageConfigFile>,
    /// The local record.
    pub record: ImageRecord,
}

impl Image {
    /// Tag references as docker prints them (`busybox:latest`).
    pub fn repo_tags(&self) -> Vec<String> {
        self.references
            .iter()
            .filter(|r| r.digest().is_none())
            .map(Reference::familiar)
            .collect()
    }

    /// Digest references as docker prints them (`busybox@sha256:...`).
    pub fn repo_digests(&self) -> Vec<String> {
        self.references
            .iter()
            .filter(|r| r.digest().is_some())
            .map(|r| format!("{}@{}", r.familiar_name(), r.digest().expect("filtered")))
            .collect()
    }

    /// Whether no reference names the image.
    pub fn is_dangling(&self) -> bool {
        self.references.is_empty()
    }

    /// The container defaults of the config (empty if the config has none).
    pub fn container_config(&self) -> ContainerConfig {
        self.config.config.clone().unwrap_or_default()
    }
}

/// Who uses an image, as told by the engine's callback to [`ImageStore::remove`] and
/// [`ImageStore::prune`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUse {
    /// The id of (one of) the containers using the image.
    pub container_id: String,
    /// Whether that container runs: a running user is a conflict `force` cannot override.
    pub running: bool,
}

/// One step of a removal, as `docker rmi` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveAction {
    /// A reference was removed (familiar form: `busybox:latest`).
    Untagged(String),
    /// The image was deleted.
    Deleted(ImageId),
    /// A layer (by ChainID) was deleted along with the last image using it.
    DeletedLayer(Digest),
}

impl RemoveAction {
    /// The Engine API model (`ImageDeleteResponseItem`).
    pub fn to_model(&self) -> types::models::ImageDeleteResponseItem {
        let mut item = types::models::ImageDeleteResponseItem::default();
        match self {
            Self::Untagged(r) => item.untagged = Some(r.clone()),
            Self::Deleted(id) => item.deleted = Some(id.to_string()),
            Self::DeletedLayer(d) => item.deleted = Some(d.to_string()),
        }
        item
    }
}

/// What `prune` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Untagged references and deleted images and layers.
    pub actions: Vec<RemoveAction>,
    /// Bytes of layer and config blobs removed.
    pub space_reclaimed: u64,
}

impl PruneReport {
    /// The Engine API model (`ImagePruneResponse`).
    pub fn to_model(&self) -> types::models::ImagePruneResponse {
        types::models::ImagePruneResponse {
            images_deleted: Some(self.actions.iter().map(RemoveAction::to_model).collect()),
            space_reclaimed: Some(i64::try_from(self.space_reclaimed).unwrap_or(i64::MAX)),
        }
    }
}

/// The in-memory state, a mirror of `records/` and `repositories.json`.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) records: BTreeMap<ImageId, ImageRecord>,
    pub(crate) configs: HashMap<ImageId, Arc<ImageConfigFile>>,
    pub(crate) refs: BTreeMap<String, ImageId>,
}

impl State {
    pub(crate) fn references_of(&self, id: &ImageId) -> Vec<Reference> {
        let mut out: Vec<Reference> = self
            .refs
            .iter()
            .filter(|(_, v)| *v == id)
            .filter_map(|(k, _)| Reference::parse_normalized(k).ok())
            .collect();
        out.sort_by_key(|r| r.to_string());
        out
    }

    pub(crate) fn image(&self, id: &ImageId) -> Option<Image> {
        let record = self.records.get(id)?.clone();
        let config = self.configs.get(id)?.clone();
        Some(Image {
            id: id.clone(),
            references: self.references_of(id),
            config,
            record,
        })
    }

    /// Resolves a name, full id or unique id prefix (Docker's `GetImage` order: a full id, then
    /// a reference, then an id prefix).
    pub(crate) fn resolve_id(&self, name_or_id: &str) -> Result<ImageId> {
        if let Ok(id) = name_or_id.parse::<ImageId>() {
            return if self.records.contains_key(&id) {
                Ok(id)
            } else {
                Err(Error::NoSuchImage(name_or_id.to_owned()))
            };
        }
        let as_ref = Reference::parse_normalized(name_or_id);
        if let Ok(r) = &as_ref
            && let Some(id) = self.refs.get(&r.to_string())
        {
            return Ok(id.clone());
        }
        let prefix = name_or_id.strip_prefix("sha256:").unwrap_or(name_or_id);
        if !prefix.is_empty()
            && prefix.len() <= 64
            && prefix
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            let mut matches = self
                .records
                .keys()
                .filter(|id| id.hex().starts_with(prefix));
            if let Some(first) = matches.next() {
                if matches.next().is_some() {
                    return Err(Error::AmbiguousPrefix(prefix.to_owned()));
                }
                return Ok(first.clone());
            }
        }
        Err(Error::NoSuchImage(match as_ref {
            Ok(r) => r.familiar(),
            Err(_) => name_or_id.to_owned(),
        }))
    }

    fn uses_chain(&self, chain: &Digest) -> bool {
        self.records
            .values()
            .any(|r| r.layers.iter().any(|l| l.chain_id == *chain))
    }

    fn uses_blob(&self, digest: &Digest) -> bool {
        self.records
            .values()
            .any(|r| r.id.digest() == digest || r.layers.iter().any(|l| l.diff_id == *digest))
    }
}

/// The image store. Sync: share it in an `Arc` and call it from blocking threads.
#[derive(Debug)]
pub struct ImageStore {
    root: PathBuf,
    pub(crate) blobs: BlobStore,
    pub(crate) snapshots: SnapshotStore,
    pub(crate) state: RwLock<State>,
    write: Mutex<()>,
}

/// GOARCH name of the host (the `architecture` of imported images).
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Things a workflow created, removed again unless the workflow commits.
pub(crate) struct Undo<'a> {
    store: &'a ImageStore,
    blobs: Vec<Digest>,
    snapshots: Vec<Digest>,
    armed: bool,
}

impl<'a> Undo<'a> {
    pub(crate) fn new(store: &'a ImageStore) -> Self {
        Self {
            store,
            blobs: Vec::new(),
            snapshots: Vec::new(),
            armed: true,
        }
    }

    /// Keeps everything.
    pub(crate) fn commit(mut self) {
        self.armed = false;
    }

    /// Removes everything, returning `primary` with any cleanup failure attached.
    pub(crate) fn rollback(mut self, primary: Error) -> Error {
        self.armed = false;
        match self.run() {
            Ok(()) => primary,
            Err(cleanup) => primary.with_cleanup(cleanup),
        }
    }

    fn run(&mut self) -> Result<()> {
        let mut first_err = None;
        // Top snapshots first: a parent cannot go while a child names it.
        for chain in self.snapshots.drain(..).rev() {
            match self.store.snapshots.remove_committed(&chain) {
                Ok(()) | Err(ContentError::SnapshotNotFound(_)) => {}
                // A container prepared on a snapshot we thought new: keep it.
                Err(ContentError::SnapshotInUse(..)) => {}
                Err(e) => {
                    first_err.get_or_insert(Error::from(e));
                }
            }
        }
        for blob in self.blobs.drain(..) {
            match self.store.blobs.delete(&blob) {
                Ok(()) | Err(ContentError::BlobNotFound(_)) => {}
                Err(e) => {
                    first_err.get_or_insert(Error::from(e));
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.run();
        }
    }
}

impl ImageStore {
    /// Opens (creating if needed) the store at `root`, with overlay snapshots when the kernel
    /// and file system allow them, else copies. An existing store keeps the driver it was
    /// created with. Removes blobs and snapshots no record names (crash leftovers).
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref();
        let snap_root = root.join("snapshots");
        let driver = match fs::read_to_string(snap_root.join("driver"))
            .as_deref()
            .map(str::trim)
        {
            Ok("copy") => SnapshotDriver::Copy,
            Ok("overlay") => SnapshotDriver::Overlay,
            _ => {
                fs::create_dir_all(&snap_root).ctx(|| format!("create {}", snap_root.display()))?;
                SnapshotDriver::detect(&snap_root)
            }
        };
        Self::open_with_driver(root, driver)
    }

    /// Opens the store with a given snapshot driver.
    pub fn open_with_driver(root: impl AsRef<Path>, driver: SnapshotDriver) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        for sub in ["records", "tmp"] {
            let p = root.join(sub);
            fs::create_dir_all(&p).ctx(|| format!("create {}", p.display()))?;
        }
        // Scratch of interrupted loads.
        for entry in fs::read_dir(root.join("tmp")).ctx(|| "read tmp".to_owned())? {
            let path = entry.ctx(|| "read tmp".to_owned())?.path();
            let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
        }
        let blobs = BlobStore::open(root.join("content"))?;
        let snapshots = SnapshotStore::open(root.join("snapshots"), driver)?;
        let mut state = State::default();
        let mut damaged = false;
        let records_dir = root.join("records");
        for entry in fs::read_dir(&records_dir).ctx(|| format!("read {}", records_dir.display()))? {
            let path = entry
                .ctx(|| format!("read {}", records_dir.display()))?
                .path();
            if path.extension().is_none_or(|e| e != "json") {
                // A temp file of an interrupted atomic write.
                let _ = fs::remove_file(&path);
                continue;
            }
            // One damaged record must not keep the daemon from starting: skip it, say so,
            // and collect no garbage this time (its layers would look unused).
            let loaded = read_json::<ImageRecord>(&path).and_then(|record| {
                let Some(record) = record else {
                    return Ok(None);
                };
                let bytes = content::read_blob(&blobs, record.id.digest())?;
                let config: ImageConfigFile = serde_json::from_slice(&bytes)
                    .map_err(|e| Error::InvalidConfig(e.to_string()))?;
                Ok(Some((record, config)))
            });
            match loaded {
                Ok(Some((record, config))) => {
                    state.configs.insert(record.id.clone(), Arc::new(config));
                    state.records.insert(record.id.clone(), record);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(record = %path.display(), error = %e, "skipping damaged image record");
                    damaged = true;
                }
            }
        }
        if let Some(index) = read_json::<ReferenceIndex>(&root.join("repositories.json"))? {
            state.refs = index
                .references
                .into_iter()
                .filter(|(_, id)| state.records.contains_key(id))
                .collect();
        }
        let store = Self {
            root,
            blobs,
            snapshots,
            state: RwLock::new(state),
            write: Mutex::new(()),
        };
        if !damaged {
            store.collect_garbage()?;
        }
        Ok(store)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The snapshot driver in use.
    pub fn driver(&self) -> SnapshotDriver {
        self.snapshots.driver()
    }

    pub(crate) fn lock_write(&self) -> MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn read_state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of images.
    pub fn count(&self) -> usize {
        self.read_state().records.len()
    }

    /// Resolves a name (`busybox`, `busybox:1`, `reg:5000/app@sha256:..`), a full id
    /// (`sha256:<hex>` or `<hex>`) or a unique id prefix to an image.
    pub fn resolve(&self, name_or_id: &str) -> Result<Image> {
        let state = self.read_state();
        let id = state.resolve_id(name_or_id)?;
        state
            .image(&id)
            .ok_or_else(|| Error::NoSuchImage(name_or_id.to_owned()))
    }

    /// All images, ordered by id.
    pub fn images(&self) -> Vec<Image> {
        let state = self.read_state();
        state
            .records
            .keys()
            .filter_map(|id| state.image(id))
            .collect()
    }

    /// Imports a root file system tar (plain or compressed) as a one-layer image, like
    /// `docker import`: the config gets the host's platform, the creation time, a history
    /// entry with `message` (default `Imported from -`) and `changes` applied.
    pub fn import(
        &self,
        reader: impl Read,
        reference: Option<&Reference>,
        changes: &[String],
        message: Option<&str>,
    ) -> Result<ImageId> {
        if let Some(r) = reference {
            check_taggable(r)?;
        }
        // Validate the changes before reading a byte of the (possibly large) stream.
        let mut container_config = ContainerConfig::default();
        apply_changes(&mut container_config, changes)?;
        let _guard = self.lock_write();
        let mut undo = Undo::new(self);
        let result = (|| {
            let layer = self.unpack_layer(&mut undo, None, reader, None)?;
            let created = now_rfc3339();
            let comment = message
                .filter(|m| !m.is_empty())
                .unwrap_or("Imported from -")
                .to_owned();
            let config = ImageConfigFile {
                created: Some(created.clone()),
                architecture: host_architecture().to_owned(),
                os: std::env::consts::OS.to_owned(),
                config: Some(container_config),
                rootfs: RootFs {
                    kind: "layers".into(),
                    diff_ids: vec![layer.diff_id.clone()],
                },
                history: vec![History {
                    created: Some(created),
                    comment: Some(comment.clone()),
                    ..History::default()
                }],
                comment: Some(comment),
                ..ImageConfigFile::default()
            };
            let bytes =
                serde_json::to_vec(&config).map_err(|e| Error::InvalidConfig(e.to_string()))?;
            self.add_image(&mut undo, &bytes, config, vec![layer], None)
        })();
        match result {
            Ok(id) => {
                undo.commit();
                if let Some(r) = reference {
                    self.set_reference(r, &id)?;
                }
                tracing::info!(image = %id, "imported image");
                Ok(id)
            }
            Err(e) => Err(undo.rollback(e)),
        }
    }

    /// Unpacks one layer on top of the snapshot `parent`: the uncompressed tar is stored as a
    /// blob (verified against `expected` if given) and applied into a new committed snapshot
    /// unless one with the same ChainID exists. New blobs and snapshots go on `undo`.
    pub(crate) fn unpack_layer(
        &self,
        undo: &mut Undo<'_>,
        parent: Option<&Digest>,
        reader: impl Read,
        expected: Option<&Digest>,
    ) -> Result<LayerRecord> {
        let (_, plain) = content::decompress(reader)?;
        let mut source = SourceReader {
            inner: plain,
            failed: None,
        };
        let (diff_id, size) = match self.blobs.ingest(&mut source, expected) {
            Ok(v) => v,
            // A failure to read the input (truncated gzip, client gone) is the input's fault,
            // not the store's.
            Err(e) => match source.failed {
                Some(reason) => return Err(Error::InvalidLayer(format!("read layer: {reason}"))),
                None => return Err(e.into()),
            },
        };
        if !self.read_state().uses_blob(&diff_id) && !undo.blobs.contains(&diff_id) {
            undo.blobs.push(diff_id.clone());
        }
        let chain_id = content::next_chain_id(parent, &diff_id);
        if !self.snapshots.has_committed(&chain_id)? {
            let file = self.blobs.open(&diff_id)?;
            let (committed, _) = self
                .snapshots
                .commit_layer(parent, Some(&diff_id), file)
                .map_err(|e| match e {
                    // Everything the apply opens is inside the new snapshot, so a missing
                    // path is the layer's fault (a link to what it does not contain, or
                    // through a symlink that resolves elsewhere), not the host's.
                    ContentError::Io { ref source, .. }
                        if source.kind() == std::io::ErrorKind::NotFound =>
                    {
                        Error::InvalidLayer(e.to_string())
                    }
                    e => e.into(),
                })?;
            debug_assert_eq!(committed, chain_id);
            undo.snapshots.push(chain_id.clone());
        }
        Ok(LayerRecord {
            diff_id,
            chain_id,
            size,
        })
    }

    /// Stores a config blob and the record of its image, publishing it in the state. The
    /// config must list exactly the layers' DiffIDs.
    pub(crate) fn add_image(
        &self,
        undo: &mut Undo<'_>,
        config_bytes: &[u8],
        config: ImageConfigFile,
        layers: Vec<LayerRecord>,
        parent: Option<ImageId>,
    ) -> Result<ImageId> {
        let diff_ids: Vec<&Digest> = layers.iter().map(|l| &l.diff_id).collect();
        if config.rootfs.diff_ids.iter().collect::<Vec<_>>() != diff_ids {
            return Err(Error::InvalidConfig(
                "rootfs.diff_ids do not match the layers".into(),
            ));
        }
        let mut reader = config_bytes;
        let (digest, config_size) = self.blobs.ingest(&mut reader, None)?;
        let id = ImageId::from_digest(digest.clone());
        if self.read_state().records.contains_key(&id) {
            // The same image again: nothing new to record.
            return Ok(id);
        }
        if !self.read_state().uses_blob(&digest) {
            undo.blobs.push(digest);
        }
        let record = ImageRecord {
            id: id.clone(),
            layers,
            config_size,
            parent,
            last_tag_time: None,
            added: now_rfc3339(),
        };
        self.persist_record(&record)?;
        let mut state = self.write_state();
        state.configs.insert(id.clone(), Arc::new(config));
        state.records.insert(id.clone(), record);
        Ok(id)
    }

    fn record_path(&self, id: &ImageId) -> PathBuf {
        self.root.join("records").join(format!("{}.json", id.hex()))
    }

    fn persist_record(&self, record: &ImageRecord) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(record).expect("records serialise");
        write_atomic(&self.record_path(&record.id), &bytes)
    }

    pub(crate) fn persist_refs(&self, state: &State) -> Result<()> {
        let index = ReferenceIndex {
            references: state.refs.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&index).expect("index serialises");
        write_atomic(&self.root.join("repositories.json"), &bytes)
    }

    /// Points `reference` at `id` (moving it from another image if needed) and persists.
    /// Caller holds the write lock.
    pub(crate) fn set_reference(&self, reference: &Reference, id: &ImageId) -> Result<()> {
        let mut state = self.write_state();
        if !state.records.contains_key(id) {
            return Err(Error::NoSuchImage(id.to_string()));
        }
        let previous = state.refs.insert(reference.to_string(), id.clone());
        if let Err(e) = self.persist_refs(&state) {
            match previous {
                Some(p) => state.refs.insert(reference.to_string(), p),
                None => state.refs.remove(&reference.to_string()),
            };
            return Err(e);
        }
        if let Some(record) = state.records.get_mut(id) {
            record.last_tag_time = Some(now_rfc3339());
            let record = record.clone();
            self.persist_record(&record)?;
        }
        Ok(())
    }

    /// `docker tag SOURCE TARGET`: `target` now names the image `source` resolves to.
    pub fn tag(&self, source: &str, target: &Reference) -> Result<()> {
        check_taggable(target)?;
        let _guard = self.lock_write();
        let id = self.read_state().resolve_id(source)?;
        self.set_reference(target, &id)
    }

    /// `docker rmi`, with Docker's rules (daemon/images/image_delete.go): removing a
    /// reference untags, and deletes the image once no reference is left and nothing uses
    /// it; removing by id untags every reference if they are all in one repository (else a
    /// conflict that `force` overrides), then deletes. A running container is a conflict
    /// `force` cannot override; a stopped one needs `force`. `in_use` tells whether a
    /// container uses an image; it runs under the store's write lock, so it may read the store
    /// (`resolve`) but must not call its mutating methods.
    pub fn remove(
        &self,
        name_or_id: &str,
        force: bool,
        in_use: &dyn Fn(&ImageId) -> Option<ImageUse>,
    ) -> Result<Vec<RemoveAction>> {
        let _guard = self.lock_write();
        let id = self.read_state().resolve_id(name_or_id)?;
        let refs = self.read_state().references_of(&id);
        let mut actions = Vec::new();
        let mut quiet = false;
        if !is_image_id_prefix(&id, name_or_id) {
            if !force
                && is_single_reference(&refs)
                && let Some(user) = in_use(&id)
            {
                return Err(Error::ReferenceInUse {
                    reference: name_or_id.to_owned(),
                    container: truncate_id(&user.container_id),
                    short_id: id.short().to_owned(),
                });
            }
            let removed = Reference::parse_normalized(name_or_id)?;
            let mut gone = vec![removed.clone()];
            // A removed tag takes along the digest references of its repository when no other
            // tag of that repository is left.
            if removed.digest().is_none() {
                let remaining: Vec<&Reference> = refs.iter().filter(|r| **r != removed).collect();
                let tag_left = remaining
                    .iter()
                    .any(|r| r.digest().is_none() && r.name() == removed.name());
                if !tag_left {
                    gone.extend(
                        remaining
                            .iter()
                            .filter(|r| r.digest().is_some() && r.name() == removed.name())
                            .map(|r| (*r).clone()),
                    );
                }
            }
            self.remove_references(&gone, &mut actions)?;
            if !self.read_state().references_of(&id).is_empty() {
                return Ok(actions);
            }
            quiet = true;
        } else if is_single_reference(&refs) {
            if let Some(conflict) = self.conflict(&id, force, false, in_use) {
                return Err(conflict);
            }
            self.remove_references(&refs, &mut actions)?;
        }
        self.delete_image(&id, force, quiet, in_use, &mut actions)?;
        Ok(actions)
    }

    /// Docker's `checkImageDeleteConflict`: children and running containers are hard
    /// conflicts; references (when `check_refs`) and stopped containers soft ones.
    fn conflict(
        &self,
        id: &ImageId,
        force: bool,
        check_refs: bool,
        in_use: &dyn Fn(&ImageId) -> Option<ImageUse>,
    ) -> Option<Error> {
        // The state lock is not held while the caller's callback runs.
        let (has_children, has_refs) = {
            let state = self.read_state();
            (
                state
                    .records
                    .values()
                    .any(|r| r.parent.as_ref() == Some(id)),
                !state.references_of(id).is_empty(),
            )
        };
        let conflict = |hard, reason: String| Error::DeleteConflict {
            short_id: id.short().to_owned(),
            hard,
            reason,
        };
        if has_children {
            return Some(conflict(true, "image has dependent child images".into()));
        }
        let user = in_use(id);
        if let Some(u) = &user
            && u.running
        {
            return Some(conflict(
                true,
                format!(
                    "image is being used by running container {}",
                    truncate_id(&u.container_id)
                ),
            ));
        }
        if force {
            return None;
        }
        if check_refs && has_refs {
            return Some(conflict(
                false,
                "image is referenced in multiple repositories".into(),
            ));
        }
        if let Some(u) = user {
            return Some(conflict(
                false,
                format!(
                    "image is being used by stopped container {}",
                    truncate_id(&u.container_id)
                ),
            ));
        }
        None
    }

    /// Docker's `imageDeleteHelper` without parent pruning (imported and loaded images have
    /// no local parents).
    fn delete_image(
        &self,
        id: &ImageId,
        force: bool,
        quiet: bool,
        in_use: &dyn Fn(&ImageId) -> Option<ImageUse>,
        actions: &mut Vec<RemoveAction>,
    ) -> Result<()> {
        if let Some(conflict) = self.conflict(id, force, true, in_use) {
            let used = in_use(id).is_some();
            let dangling = self.read_state().references_of(id).is_empty();
            if quiet && (!dangling || used) {
                return Ok(());
            }
            return Err(conflict);
        }
        let refs = self.read_state().references_of(id);
        self.remove_references(&refs, actions)?;
        self.delete_record(id, actions)?;
        Ok(())
    }

    fn remove_references(&self, refs: &[Reference], actions: &mut Vec<RemoveAction>) -> Result<()> {
        if refs.is_empty() {
            return Ok(());
        }
        let mut state = self.write_state();
        let before = state.refs.clone();
        for r in refs {
            if state.refs.remove(&r.to_string()).is_some() {
                actions.push(RemoveAction::Untagged(r.familiar()));
            }
        }
        if let Err(e) = self.persist_refs(&state) {
            state.refs = before;
            return Err(e);
        }
        Ok(())
    }

    /// Deletes a record, then the snapshots and blobs no other image uses. Returns the bytes
    /// of blobs removed.
    fn delete_record(&self, id: &ImageId, actions: &mut Vec<RemoveAction>) -> Result<u64> {
        let record = {
            let mut state = self.write_state();
            let Some(record) = state.records.remove(id) else {
                return Ok(0);
            };
            state.configs.remove(id);
            state.refs.retain(|_, v| v != id);
            record
        };
        remove_durable(&self.record_path(id))?;
        actions.push(RemoveAction::Deleted(id.clone()));
        let state = self.read_state();
        let mut reclaimed = 0;
        for layer in record.layers.iter().rev() {
            if state.uses_chain(&layer.chain_id) {
                continue;
            }
            match self.snapshots.remove_committed(&layer.chain_id) {
                Ok(()) => actions.push(RemoveAction::DeletedLayer(layer.chain_id.clone())),
                // A container still runs on it: `remove_rootfs` collects it later.
                Err(ContentError::SnapshotInUse(..) | ContentError::SnapshotNotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let mut blobs: BTreeSet<&Digest> = record.layers.iter().map(|l| &l.diff_id).collect();
        blobs.insert(id.digest());
        for blob in blobs {
            if state.uses_blob(blob) {
                continue;
            }
            let size = self.blobs.size(blob).unwrap_or(0);
            match self.blobs.delete(blob) {
                Ok(()) => reclaimed += size,
                Err(ContentError::BlobNotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        tracing::info!(image = %id, "deleted image");
        Ok(reclaimed)
    }

    /// `docker image prune`: deletes dangling images (or, with `dangling_only` false, every
    /// image) that no container uses.
    pub fn prune(
        &self,
        dangling_only: bool,
        in_use: &dyn Fn(&ImageId) -> Option<ImageUse>,
    ) -> Result<PruneReport> {
        let _guard = self.lock_write();
        let candidates: Vec<ImageId> = {
            let state = self.read_state();
            state
                .records
                .keys()
                .filter(|id| !dangling_only || state.references_of(id).is_empty())
                .filter(|id| {
                    !state
                        .records
                        .values()
                        .any(|r| r.parent.as_ref() == Some(*id))
                })
                .cloned()
                .collect()
        };
        let mut report = PruneReport::default();
        for id in candidates {
            if in_use(&id).is_some() {
                continue;
            }
            let refs = self.read_state().references_of(&id);
            self.remove_references(&refs, &mut report.actions)?;
            report.space_reclaimed += self.delete_record(&id, &mut report.actions)?;
        }
        Ok(report)
    }

    /// Removes blobs and committed snapshots that no record names. Snapshots under an active
    /// (container) snapshot stay until it goes.
    pub(crate) fn collect_garbage(&self) -> Result<()> {
        let state = self.read_state();
        loop {
            let mut progress = false;
            for chain in self.snapshots.list_committed()? {
                if state.uses_chain(&chain) {
                    continue;
                }
                match self.snapshots.remove_committed(&chain) {
                    Ok(()) => progress = true,
                    Err(ContentError::SnapshotInUse(..)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if !progress {
                break;
            }
        }
        for blob in self.blobs.list()? {
            if !state.uses_blob(&blob) {
                match self.blobs.delete(&blob) {
                    Ok(()) | Err(ContentError::BlobNotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    /// Creates the writable root file system of a container (snapshot key `container_key`)
    /// on the layers of `image`, and returns the mounts that assemble it, for the caller to
    /// perform: with overlay, one overlay mount whose lowerdirs are the image's layer
    /// snapshots, top first, and whose upper and work dirs belong to the container.
    pub fn prepare_rootfs(&self, container_key: &str, image: &ImageId) -> Result<Vec<Mount>> {
        let _guard = self.lock_write();
        let top = {
            let state = self.read_state();
            let record = state
                .records
                .get(image)
                .ok_or_else(|| Error::NoSuchImage(image.to_string()))?;
            record.top_chain_id().cloned()
        };
        Ok(self.snapshots.prepare_active(container_key, top.as_ref())?)
    }

    /// The mounts of a prepared container root file system.
    pub fn rootfs_mounts(&self, container_key: &str) -> Result<Vec<Mount>> {
        Ok(self.snapshots.mounts(container_key)?)
    }

    /// The directory holding a container's changes (the overlay upper dir).
    pub fn rootfs_changes_dir(&self, container_key: &str) -> Result<PathBuf> {
        Ok(self.snapshots.active_fs(container_key)?)
    }

    /// Removes a container's root file system (the caller has unmounted it); absent is fine.
    /// Layers of images deleted while the container existed go with it.
    pub fn remove_rootfs(&self, container_key: &str) -> Result<()> {
        let _guard = self.lock_write();
        match self.snapshots.remove_active(container_key) {
            Ok(()) | Err(ContentError::SnapshotNotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        self.collect_garbage()
    }

    /// Bytes used by a container's changes (`SizeRw`): the files of the overlay upper dir,
    /// or, with full copies, the files added or modified over the image (as dockerd's naive
    /// diff of vfs counts them).
    pub fn rootfs_size(&self, container_key: &str) -> Result<u64> {
        let dir = self.snapshots.active_fs(container_key)?;
        match self.driver() {
            SnapshotDriver::Overlay => Ok(content::tree_size(&dir)?),
            SnapshotDriver::Copy => {
                let changes = self.snapshots.changes_active(container_key)?;
                Ok(changes
                    .iter()
                    .filter(|c| c.kind != content::ChangeKind::Deleted)
                    .filter_map(|c| {
                        fs::symlink_metadata(dir.join(c.path.trim_start_matches('/'))).ok()
                    })
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum())
            }
        }
    }
}

/// Remembers whether reading the input failed, to tell input errors from store errors.
struct SourceReader<R> {
    inner: R,
    failed: Option<String>,
}

impl<R: Read> Read for SourceReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            if e.kind() != std::io::ErrorKind::Interrupted {
                self.failed = Some(e.to_string());
            }
        })
    }
}

/// Docker refuses to create a tag that carries a digest.
pub(crate) fn check_taggable(r: &Reference) -> Result<()> {
    if r.digest().is_some() {
        return Err(Error::InvalidArgument(
            "refusing to create a tag with a digest reference".into(),
        ));
    }
    Ok(())
}

/// Docker's `isImageIDPrefix`: whether the user named the image by (a prefix of) its id.
fn is_image_id_prefix(id: &ImageId, name: &str) -> bool {
    let full = id.to_string();
    full.starts_with(name) || id.hex().starts_with(name)
}

/// Docker's `isSingleReference`: all references in one repository, with at most one tag.
fn is_single_reference(refs: &[Reference]) -> bool {
    if refs.len() <= 1 {
        return refs.len() == 1;
    }
    let mut single: Option<&Reference> = None;
    let mut canonical = BTreeSet::new();
    for r in refs {
        if r.digest().is_some() {
            canonical.insert(r.name());
        } else if single.is_none() {
            single = Some(r);
        } else {
            return false;
        }
    }
    let single = single.unwrap_or(&refs[0]);
    canonical.len() == 1 && canonical.contains(&single.name())
}

/// The first 12 characters of an id (stringid.TruncateID), without any `sha256:`.
fn truncate_id(id: &str) -> String {
    let hex = id.split_once(':').map_or(id, |(_, h)| h);
    hex.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_is_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ImageStore>();
        assert_send_sync::<Image>();
    }

    #[test]
    fn single_reference_rules() {
        let r = |s: &str| Reference::parse_normalized(s).unwrap();
        let d = format!("sha256:{}", "a".repeat(64));
        assert!(!is_single_reference(&[]));
        assert!(is_single_reference(&[r("a:1")]));
        assert!(!is_single_reference(&[r("a:1"), r("a:2")]));
        assert!(!is_single_reference(&[r("a:1"), r("b:1")]));
        assert!(is_single_reference(&[r("a:1"), r(&format!("a@{d}"))]));
        assert!(!is_single_reference(&[r("a:1"), r(&format!("b@{d}"))]));
    }

    #[test]
    fn id_prefixes_and_truncation() {
        let id: ImageId = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        assert!(is_image_id_prefix(&id, "abab"));
        assert!(is_image_id_prefix(&id, "sha256:abab"));
        assert!(!is_image_id_prefix(&id, "busybox"));
        assert_eq!(truncate_id(&"c".repeat(64)), "c".repeat(12));
        assert_eq!(truncate_id("sha256:0123456789abcdef"), "0123456789ab");
        if cfg!(target_arch = "x86_64") {
            assert_eq!(host_architecture(), "amd64");
        }
    }
}
