//! What the store keeps about each image besides its config blob, and how records are
//! persisted: one JSON file per image under `records/`, and the reference index in
//! `repositories.json`, each written atomically (temp file, fsync, rename, fsync of the
//! directory: rename(2) is atomic, and durable once the directory is synced, fsync(2) NOTES).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use types::Digest;

use crate::error::{Error, IoContext, Result};
use crate::id::ImageId;

/// One layer of an image as stored locally.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// sha256 of the uncompressed layer tar; also the digest of the layer's blob.
    pub diff_id: Digest,
    /// ChainID of the layer stack up to this layer: the key of its snapshot.
    pub chain_id: Digest,
    /// Size of the uncompressed tar in bytes.
    pub size: u64,
}

/// The local record of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The image id (digest of the config blob).
    pub id: ImageId,
    /// The layers, bottom first.
    pub layers: Vec<LayerRecord>,
    /// Size of the config blob.
    pub config_size: u64,
    /// The image this one was built on locally (commit/build), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ImageId>,
    /// When a reference last moved to this image (RFC 3339 nanoseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tag_time: Option<String>,
    /// When the record was made here.
    pub added: String,
}

impl ImageRecord {
    /// Sum of the layer sizes: the image's `Size`.
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }

    /// ChainID of the whole stack (the snapshot a container is prepared on).
    pub fn top_chain_id(&self) -> Option<&Digest> {
        self.layers.last().map(|l| &l.chain_id)
    }
}

/// `repositories.json`: normalised reference -> image id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceIndex {
    /// `docker.io/library/busybox:latest` -> `sha256:...`.
    pub references: BTreeMap<String, ImageId>,
}

/// Writes `bytes` to `path` atomically and durably.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp).ctx(|| format!("create {}", tmp.display()))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .ctx(|| format!("write {}", tmp.display()))?;
        fs::rename(&tmp, path).ctx(|| format!("rename {} to {}", tmp.display(), path.display()))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Removes a file durably; absent is fine.
pub fn remove_durable(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => sync_dir(path.parent().unwrap_or(Path::new("."))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("remove {}", path.display()), e)),
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx(|| format!("fsync {}", dir.display()))
}

/// Reads a JSON file; `None` if absent.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| Error::CorruptRecord {
                    path: path.display().to_string(),
                    source,
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("read {}", path.display()), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        write_atomic(&p, b"{\"references\":{}}").unwrap();
        write_atomic(&p, b"{\"references\":{}}\n").unwrap();
        let idx: ReferenceIndex = read_json(&p).unwrap().unwrap();
        assert!(idx.references.is_empty());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(
            read_json::<ReferenceIndex>(&dir.path().join("none"))
                .unwrap()
                .is_none()
        );
        fs::write(&p, b"garbage").unwrap();
        assert!(matches!(
            read_json::<ReferenceIndex>(&p),
            Err(Error::CorruptRecord { .. })
        ));
        remove_durable(&p).unwrap();
        remove_durable(&p).unwrap();
    }
}
