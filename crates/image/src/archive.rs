//! `docker save` and `docker load` archives.
//!
//! Written (as Docker 25+ writes them): an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/<hex>` holding each config, OCI manifest and uncompressed layer tar) plus
//! Docker's own `manifest.json` (`[{"Config", "RepoTags", "Layers"}]`, paths into `blobs/`)
//! and `repositories`. Read: that format, the older one (`<id>.json`, `<layer>/layer.tar`,
//! symlinks between duplicate layers), and a plain OCI image layout (compressed layers,
//! nested indexes). Every blob is verified: layers against the config's DiffIDs, and
//! whatever is named by a digest (OCI descriptors, `blobs/sha256/<hex>` paths) against it.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use content::{HashingReader, Provider};
use serde::Deserialize;
use serde_json::json;
use types::{Algorithm, Digest, Reference};

use crate::config::ImageConfigFile;
use crate::error::{Error, IoContext, Result};
use crate::id::ImageId;
use crate::store::{Image, ImageStore, Undo, host_architecture};

/// An image that `load` brought in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    /// Its id.
    pub id: ImageId,
    /// The references the archive gave it (now pointing at it).
    pub references: Vec<Reference>,
}

impl LoadedImage {
    /// The line `docker load` prints: `Loaded image: busybox:latest` per reference, or
    /// `Loaded image ID: sha256:...` for an untagged image.
    pub fn messages(&self) -> Vec<String> {
        if self.references.is_empty() {
            vec![format!("Loaded image ID: {}", self.id)]
        } else {
            self.references
                .iter()
                .map(|r| format!("Loaded image: {}", r.familiar()))
                .collect()
        }
    }
}

const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MEDIA_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Annotation holding the full image name (containerd, which Docker 25+ follows).
const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// OCI annotation holding the tag (image-layout spec, annotations.md).
const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Largest JSON document (config, manifest, index) read into memory.
const MAX_JSON: u64 = 16 << 20;

fn bad(msg: impl Into<String>) -> Error {
    Error::InvalidArchive(msg.into())
}

impl ImageStore {
    /// `docker save NAME...`: writes the images to `writer` as a tar. A name with a tag (or
    /// digest) saves that reference; a repository name without a tag saves all its tags; an
    /// id saves the image untagged.
    pub fn save(&self, names: &[String], writer: impl Write) -> Result<()> {
        // Held so that no removal deletes a blob while it is being written out.
        let _guard = self.lock_write();
        let mut selected: Vec<(Image, Vec<Reference>)> = Vec::new();
        {
            let state = self.read_state();
            for name in names {
                // A repository name without tag saves every tag of it (Docker's
                // `reference.IsNameOnly` case of the tar exporter).
                if is_name_only(name)
                    && let Ok(repo) = Reference::parse_normalized(name)
                {
                    let mut found = false;
                    for (k, v) in &state.refs {
                        if let Ok(other) = Reference::parse_normalized(k)
                            && other.name() == repo.name()
                            && other.digest().is_none()
                        {
                            let image = state.image(v).expect("refs name records");
                            push_selected(&mut selected, image, Some(other));
                            found = true;
                        }
                    }
                    if found {
                        continue;
                    }
                }
                let id = state.resolve_id(name)?;
                let by_id = id.to_string().starts_with(name.as_str())
                    || id.hex().starts_with(name.as_str());
                let reference = if by_id {
                    None
                } else {
                    Some(Reference::parse_normalized(name)?)
                };
                let image = state.image(&id).expect("resolved ids have records");
                push_selected(&mut selected, image, reference);
            }
        }
        let mut tar = tar::Builder::new(writer);
        let mut written: std::collections::HashSet<Digest> = Default::default();
        let mut manifest_json = Vec::new();
        let mut index_manifests = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for dir in ["blobs/", "blobs/sha256/"] {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            h.set_mtime(0);
            tar.append_data(&mut h, dir, io::empty())
                .ctx(|| format!("write {dir}"))?;
        }
        for (image, refs) in &selected {
            let config_digest = image.id.digest().clone();
            self.append_blob(&mut tar, &config_digest, &mut written)?;
            let mut layer_paths = Vec::new();
            let mut layer_descriptors = Vec::new();
            for layer in &image.record.layers {
                self.append_blob(&mut tar, &layer.diff_id, &mut written)?;
                layer_paths.push(format!("blobs/sha256/{}", layer.diff_id.encoded()));
                layer_descriptors.push(json!({
                    "mediaType": MEDIA_LAYER,
                    "digest": layer.diff_id.to_string(),
                    "size": layer.size,
                }));
            }
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": MEDIA_MANIFEST,
                "config": {
                    "mediaType": MEDIA_CONFIG,
                    "digest": config_digest.to_string(),
                    "size": image.record.config_size,
                },
                "layers": layer_descriptors,
            });
            let manifest_bytes = serde_json::to_vec(&manifest).expect("json");
            let manifest_digest = content::sha256_digest(&manifest_bytes);
            if written.insert(manifest_digest.clone()) {
                append_bytes(
                    &mut tar,
                    &format!("blobs/sha256/{}", manifest_digest.encoded()),
                    &manifest_bytes,
                )?;
            }
            let descriptor = |annotations: Option<serde_json::Value>| {
                let mut d = json!({
                    "mediaType": MEDIA_MANIFEST,
                    "digest": manifest_digest.to_string(),
                    "size": manifest_bytes.len(),
                });
                if let Some(a) = annotations {
                    d["annotations"] = a;
                }
                d
            };
            if refs.is_empty() {
                index_manifests.push(descriptor(None));
            }
            for r in refs {
                let mut annotations = json!({ ANNOTATION_IMAGE_NAME: r.to_string() });
                if let Some(tag) = r.tag() {
                    annotations[ANNOTATION_REF_NAME] = json!(tag);
                    if let Some(top) = image.record.layers.last() {
                        repositories
                            .entry(r.familiar_name())
                            .or_default()
                            .insert(tag.to_owned(), top.diff_id.encoded().to_owned());
                    }
                }
                index_manifests.push(descriptor(Some(annotations)));
            }
            let tags: Vec<String> = refs
                .iter()
                .filter(|r| r.digest().is_none())
                .map(Reference::familiar)
                .collect();
            manifest_json.push(json!({
                "Config": format!("blobs/sha256/{}", config_digest.encoded()),
                "RepoTags": if tags.is_empty() { serde_json::Value::Null } else { json!(tags) },
                "Layers": layer_paths,
            }));
        }
        let index = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_INDEX,
            "manifests": index_manifests,
        });
        append_bytes(
            &mut tar,
            "index.json",
            &serde_json::to_vec(&index).expect("json"),
        )?;
        append_bytes(
            &mut tar,
            "manifest.json",
            &serde_json::to_vec(&manifest_json).expect("json"),
        )?;
        append_bytes(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        if !repositories.is_empty() {
            append_bytes(
                &mut tar,
                "repositories",
                &serde_json::to_vec(&repositories).expect("json"),
            )?;
        }
        tar.into_inner()
            .and_then(|mut w| w.flush())
            .ctx(|| "finish archive".to_owned())?;
        Ok(())
    }

    fn append_blob<W: Write>(
        &self,
        tar: &mut tar::Builder<W>,
        digest: &Digest,
        written: &mut std::collections::HashSet<Digest>,
    ) -> Result<()> {
        if !written.insert(digest.clone()) {
            return Ok(());
        }
        let size = self.blobs.size(digest)?;
        let file = self.blobs.open(digest)?;
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(size);
        h.set_mtime(0);
        let path = format!("blobs/sha256/{}", digest.encoded());
        tar.append_data(&mut h, &path, file)
            .ctx(|| format!("write {path}"))
    }

    /// `docker load`: reads a `docker save` archive (either generation) or an OCI image
    /// layout tar, verifies every blob, unpacks the layers, records the images and points
    /// their references at them. All or nothing: a failure leaves no blob, snapshot, record
    /// or reference behind.
    pub fn load(&self, reader: impl Read) -> Result<Vec<LoadedImage>> {
        let scratch = tempfile::Builder::new()
            .prefix("load-")
            .tempdir_in(self.root().join("tmp"))
            .ctx(|| "create load scratch dir".to_owned())?;
        let archive = Extracted::unpack(reader, scratch.path())?;
        let plans = if archive.exists("manifest.json") {
            archive.docker_plans()?
        } else if archive.exists("index.json") {
            archive.oci_plans()?
        } else {
            return Err(bad("no manifest.json or index.json"));
        };
        let _guard = self.lock_write();
        let mut undo = Undo::new(self);
        let mut loaded = Vec::new();
        for plan in &plans {
            match self.load_one(&mut undo, &archive, plan) {
                Ok(id) => loaded.push(LoadedImage {
                    id,
                    references: plan.references.clone(),
                }),
                Err(e) => return Err(undo.rollback(e)),
            }
        }
        undo.commit();
        for image in &loaded {
            for r in &image.references {
                self.set_reference(r, &image.id)?;
            }
        }
        Ok(loaded)
    }

    fn load_one(
        &self,
        undo: &mut Undo<'_>,
        archive: &Extracted,
        plan: &ImagePlan,
    ) -> Result<ImageId> {
        let config_bytes = archive.read_verified(&plan.config, plan.config_digest.as_ref())?;
        let config: ImageConfigFile = serde_json::from_slice(&config_bytes)
            .map_err(|e| Error::InvalidConfig(e.to_string()))?;
        if config.rootfs.diff_ids.len() != plan.layers.len() {
            return Err(bad(format!(
                "config lists {} layers, the manifest {}",
                config.rootfs.diff_ids.len(),
                plan.layers.len()
            )));
        }
        let mut records = Vec::new();
        let mut parent: Option<Digest> = None;
        for ((path, digest), diff_id) in plan.layers.iter().zip(&config.rootfs.diff_ids) {
            let file = archive.open(path)?;
            let mut hashing = HashingReader::new(file);
            let record = self.unpack_layer(undo, parent.as_ref(), &mut hashing, Some(diff_id))?;
            if let Some(expected) = digest {
                io::copy(&mut hashing, &mut io::sink()).ctx(|| format!("read {path}"))?;
                let (actual, _) = hashing.finish().ctx(|| format!("read {path}"))?;
                if actual != *expected {
                    return Err(bad(format!(
                        "layer {path}: digest mismatch: expected {expected}, got {actual}"
                    )));
                }
            }
            parent = Some(record.chain_id.clone());
            records.push(record);
        }
        self.add_image(undo, &config_bytes, config, records, None)
    }
}

/// `busybox` or `reg:5000/app` (no tag, no digest): Docker's `reference.IsNameOnly`.
fn is_name_only(name: &str) -> bool {
    let last = name.rsplit('/').next().unwrap_or(name);
    !name.contains('@') && !last.contains(':')
}

fn push_selected(selected: &mut Vec<(Image, Vec<Reference>)>, image: Image, r: Option<Reference>) {
    if let Some(entry) = selected.iter_mut().find(|(i, _)| i.id == image.id) {
        if let Some(r) = r
            && !entry.1.contains(&r)
        {
            entry.1.push(r);
        }
    } else {
        selected.push((image, r.into_iter().collect()));
    }
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, path: &str, bytes: &[u8]) -> Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(bytes.len() as u64);
    h.set_mtime(0);
    tar.append_data(&mut h, path, bytes)
        .ctx(|| format!("write {path}"))
}

/// What to load for one image: where its config and layers are in the archive, and the
/// digests they must have when the archive names them by digest.
#[derive(Debug)]
struct ImagePlan {
    config: String,
    config_digest: Option<Digest>,
    layers: Vec<(String, Option<Digest>)>,
    references: Vec<Reference>,
}

/// An archive unpacked into a scratch directory. Only regular files and directories are
/// created, under cleaned names; symlinks and hard links between entries (the old format
/// links duplicate layers) are kept as a table and resolved inside the archive.
struct Extracted {
    dir: PathBuf,
    links: HashMap<String, String>,
}

/// Cleans an archive path to `a/b/c`; `None` if it climbs out of the archive.
fn clean(path: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            c => out.push(c),
        }
    }
    Some(out.join("/"))
}

/// `blobs/sha256/<hex>` or `<hex>.json` names its digest.
fn digest_in_path(path: &str) -> Option<Digest> {
    let mut parts = path.rsplit('/');
    let last = parts.next()?;
    if let Some(hex) = last.strip_suffix(".json") {
        return Digest::from_parts(Algorithm::Sha256, hex).ok();
    }
    if parts.next() == Some("sha256") {
        return Digest::from_parts(Algorithm::Sha256, last).ok();
    }
    None
}

#[derive(Deserialize)]
struct DockerManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

#[derive(Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: Digest,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
}

#[derive(Deserialize)]
struct IndexDoc {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct ManifestDoc {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

impl Extracted {
    fn unpack(reader: impl Read, dir: &Path) -> Result<Self> {
        let mut links = HashMap::new();
        let mut archive = tar::Archive::new(reader);
        let entries = archive.entries().map_err(|e| bad(e.to_string()))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| bad(e.to_string()))?;
            let raw = String::from_utf8(entry.path_bytes().into_owned())
                .map_err(|_| bad("entry name is not UTF-8"))?;
            let name =
                clean(&raw).ok_or_else(|| bad(format!("entry {raw:?} escapes the archive")))?;
            if name.is_empty() {
                continue;
            }
            let kind = entry.header().entry_type();
            match kind {
                tar::EntryType::Directory => {
                    let p = dir.join(&name);
                    fs::create_dir_all(&p).ctx(|| format!("create {}", p.display()))?;
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let p = dir.join(&name);
                    if let Some(parent) = p.parent() {
                        fs::create_dir_all(parent)
                            .ctx(|| format!("create {}", parent.display()))?;
                    }
                    let mut f = File::create(&p).ctx(|| format!("create {}", p.display()))?;
                    io::copy(&mut entry, &mut f).map_err(|e| bad(format!("{raw}: {e}")))?;
                    links.remove(&name);
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target = entry
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    let joined = if kind == tar::EntryType::Symlink && !target.starts_with('/') {
                        let parent = name.rsplit_once('/').map_or("", |(p, _)| p);
                        format!("{parent}/{target}")
                    } else {
                        target.clone()
                    };
                    let resolved = clean(&joined).ok_or_else(|| {
                        bad(format!("link {raw:?} -> {target:?} escapes the archive"))
                    })?;
                    links.insert(name, resolved);
                }
                // Metadata entries (PAX, GNU long names) are consumed by the tar crate; other
                // kinds never appear in image archives and are skipped.
                _ => {}
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            links,
        })
    }

    /// The scratch path of an archive path, following the link table.
    fn resolve(&self, path: &str) -> Result<PathBuf> {
        let mut name =
            clean(path).ok_or_else(|| bad(format!("path {path:?} escapes the archive")))?;
        for _ in 0..16 {
            match self.links.get(&name) {
                Some(next) => name = next.clone(),
                None => return Ok(self.dir.join(name)),
            }
        }
        Err(bad(format!("too many links resolving {path:?}")))
    }

    fn exists(&self, path: &str) -> bool {
        self.resolve(path).is_ok_and(|p| p.is_file())
    }

    fn open(&self, path: &str) -> Result<File> {
        let p = self.resolve(path)?;
        if !p.is_file() {
            return Err(bad(format!("{path} is missing")));
        }
        File::open(&p).ctx(|| format!("open {}", p.display()))
    }

    /// Reads a small file, checking its digest if one is given or its path names one.
    fn read_verified(&self, path: &str, digest: Option<&Digest>) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.open(path)?
            .take(MAX_JSON + 1)
            .read_to_end(&mut bytes)
            .ctx(|| format!("read {path}"))?;
        if bytes.len() as u64 > MAX_JSON {
            return Err(bad(format!("{path} is larger than {MAX_JSON} bytes")));
        }
        let named = digest_in_path(path);
        for expected in digest.into_iter().chain(named.as_ref()) {
            let actual = content::sha256_digest(&bytes);
            if actual != *expected {
                return Err(bad(format!(
                    "{path}: digest mismatch: expected {expected}, got {actual}"
                )));
            }
        }
        Ok(bytes)
    }

    fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        digest: Option<&Digest>,
    ) -> Result<T> {
        let bytes = self.read_verified(path, digest)?;
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("{path}: {e}")))
    }

    fn docker_plans(&self) -> Result<Vec<ImagePlan>> {
        let entries: Vec<DockerManifestEntry> = self.read_json("manifest.json", None)?;
        entries
            .into_iter()
            .map(|e| {
                let mut references = Vec::new();
                for tag in e.repo_tags.unwrap_or_default() {
                    let r = Reference::parse_normalized(&tag)?;
                    if r.digest().is_none() {
                        references.push(r);
                    }
                }
                Ok(ImagePlan {
                    config_digest: None,
                    config: e.config,
                    layers: e
                        .layers
                        .into_iter()
                        .map(|l| {
                            let d = digest_in_path(&l);
                            (l, d)
                        })
                        .collect(),
                    references,
                })
            })
            .collect()
    }

    fn blob_path(digest: &Digest) -> String {
        format!("blobs/{}/{}", digest.algorithm(), digest.encoded())
    }

    fn read_descriptor<T: serde::de::DeserializeOwned>(&self, d: &Descriptor) -> Result<T> {
        let path = Self::blob_path(&d.digest);
        let bytes = self.read_verified(&path, Some(&d.digest))?;
        if let Some(size) = d.size
            && size != bytes.len() as u64
        {
            return Err(bad(format!(
                "{path}: size {} but descriptor says {size}",
                bytes.len()
            )));
        }
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("{path}: {e}")))
    }

    fn oci_plans(&self) -> Result<Vec<ImagePlan>> {
        let index: IndexDoc = self.read_json("index.json", None)?;
        let mut plans = Vec::new();
        for d in &index.manifests {
            let mut references = Vec::new();
            if let Some(name) = d.annotations.get(ANNOTATION_IMAGE_NAME) {
                references.push(Reference::parse_normalized(name)?);
            } else if let Some(name) = d.annotations.get(ANNOTATION_REF_NAME)
                && (name.contains('/') || name.contains(':'))
                && let Ok(r) = Reference::parse_normalized(name)
            {
                references.push(r);
            }
            let manifest = self.pick_manifest(d, 0)?;
            let config = manifest
                .config
                .as_ref()
                .ok_or_else(|| bad(format!("manifest {} has no config", d.digest)))?;
            plans.push(ImagePlan {
                config: Self::blob_path(&config.digest),
                config_digest: Some(config.digest.clone()),
                layers: manifest
                    .layers
                    .iter()
                    .map(|l| (Self::blob_path(&l.digest), Some(l.digest.clone())))
                    .collect(),
                references,
            });
        }
        // One image may be listed under several names: load it once with all of them.
        let mut merged: Vec<ImagePlan> = Vec::new();
        for plan in plans {
            if let Some(existing) = merged.iter_mut().find(|p| p.config == plan.config) {
                existing.references.extend(plan.references);
            } else {
                merged.push(plan);
            }
        }
        Ok(merged)
    }

    /// The image manifest a descriptor leads to, choosing the host's platform in indexes.
    fn pick_manifest(&self, d: &Descriptor, depth: usize) -> Result<ManifestDoc> {
        if depth > 4 {
            return Err(bad("indexes nested too deeply"));
        }
        let doc: ManifestDoc = self.read_descriptor(d)?;
        let is_index = matches!(d.media_type.as_str(), MEDIA_INDEX | DOCKER_MANIFEST_LIST)
            || matches!(
                doc.media_type.as_deref(),
                Some(MEDIA_INDEX | DOCKER_MANIFEST_LIST)
            )
            || (doc.config.is_none() && doc.manifests.is_some());
        if !is_index {
            return Ok(doc);
        }
        let children = doc.manifests.unwrap_or_default();
        let arch = host_architecture();
        let chosen = children
            .iter()
            .find(|c| {
                c.platform
                    .as_ref()
                    .is_some_and(|p| p.architecture == arch && p.os == std::env::consts::OS)
            })
            .or_else(|| (children.len() == 1).then(|| &children[0]))
            .ok_or_else(|| {
                bad(format!(
                    "no manifest for {}/{arch} in {}",
                    std::env::consts::OS,
                    d.digest
                ))
            })?;
        self.pick_manifest(chosen, depth + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_helpers() {
        assert_eq!(clean("a/./b//c").as_deref(), Some("a/b/c"));
        assert_eq!(clean("/abs/x").as_deref(), Some("abs/x"));
        assert_eq!(clean("a/../../x"), None);
        assert_eq!(clean("a/../x").as_deref(), Some("x"));
        let hex = "ab".repeat(32);
        assert!(digest_in_path(&format!("blobs/sha256/{hex}")).is_some());
        assert!(digest_in_path(&format!("{hex}.json")).is_some());
        assert!(digest_in_path(&format!("{hex}/layer.tar")).is_none());
        assert!(is_name_only("busybox"));
        assert!(is_name_only("localhost:5000/app"));
        assert!(!is_name_only("busybox:1"));
        assert!(!is_name_only("localhost:5000/app:2"));
    }
}
