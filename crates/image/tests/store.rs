//! Integration tests of the image store on the real file system (root: layer apply chowns,
//! writes overlay whiteouts and mounts overlays). Each test uses its own temporary store.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use content::sha256_digest;
use image::{Error, ImageId, ImageStore, ImageUse, ListOptions, RemoveAction};
use types::Reference;

fn is_root() -> bool {
    let root = rustix::process::geteuid().is_root();
    if !root {
        eprintln!("skipped: needs root");
    }
    root
}

fn r(s: &str) -> Reference {
    Reference::parse_normalized(s).unwrap()
}

/// A tar of a few small files; `marker` makes the content (and so the DiffID) unique.
fn small_rootfs(marker: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut dir = |name: &str| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(0);
        h.set_mtime(1_600_000_000);
        b.append_data(&mut h, name, std::io::empty()).unwrap();
    };
    dir("etc/");
    dir("bin/");
    let mut file = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(data.len() as u64);
        h.set_mtime(1_600_000_000);
        b.append_data(&mut h, name, data).unwrap();
    };
    file("etc/hello", format!("hello {marker}\n").as_bytes());
    file("etc/os-release", b"NAME=test\n");
    b.into_inner().unwrap()
}

/// A raw tar header with any name (the tar crate's setters refuse `..`).
fn raw_entry(name: &[u8], kind: tar::EntryType, link: &[u8], data: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn finish_tar(mut entries: Vec<u8>) -> Vec<u8> {
    entries.extend_from_slice(&[0u8; 1024]);
    entries
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn never_used(_: &ImageId) -> Option<ImageUse> {
    None
}

fn open_store(dir: &Path) -> ImageStore {
    ImageStore::open(dir.join("image")).unwrap()
}

/// Nothing but empty directories under the store's content and snapshots.
fn assert_store_empty(store: &ImageStore) {
    let root = store.root();
    let blobs: Vec<_> = fs::read_dir(root.join("content/blobs/sha256"))
        .unwrap()
        .collect();
    assert!(blobs.is_empty(), "stray blobs: {blobs:?}");
    let ingest: Vec<_> = fs::read_dir(root.join("content/ingest")).unwrap().collect();
    assert!(ingest.is_empty(), "stray ingest files: {ingest:?}");
    for sub in ["snapshots", "committed", "active"] {
        let left: Vec<_> = fs::read_dir(root.join("snapshots").join(sub))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "stray {sub}: {left:?}");
    }
    let records: Vec<_> = fs::read_dir(root.join("records")).unwrap().collect();
    assert!(records.is_empty(), "stray records: {records:?}");
    assert_eq!(store.count(), 0);
}

#[test]
fn import_gives_dockers_inspect_shape() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let tar = small_rootfs("a");
    let diff_id = sha256_digest(&tar);
    let changes = vec![
        r#"CMD ["/bin/sh", "-c", "cat /etc/hello"]"#.to_owned(),
        "ENV A=1".to_owned(),
        "LABEL com.example.x=y".to_owned(),
        "EXPOSE 8080".to_owned(),
        "WORKDIR /srv".to_owned(),
    ];
    // gzip input: the DiffID is still the sha256 of the uncompressed tar.
    let id = store
        .import(&gzip(&tar)[..], Some(&r("test/app:1")), &changes, None)
        .unwrap();
    let config_bytes = fs::read(store.root().join("content/blobs/sha256").join(id.hex())).unwrap();
    assert_eq!(
        *id.digest(),
        sha256_digest(&config_bytes),
        "id = sha256(config)"
    );
    let config: serde_json::Value = serde_json::from_slice(&config_bytes).unwrap();
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["os"], "linux");
    assert_eq!(config["rootfs"]["type"], "layers");
    assert_eq!(config["rootfs"]["diff_ids"][0], diff_id.to_string());
    assert_eq!(config["history"][0]["comment"], "Imported from -");
    assert!(config["created"].as_str().unwrap().ends_with('Z'));

    let inspect = store.inspect("test/app:1").unwrap();
    let json = serde_json::to_value(&inspect).unwrap();
    assert_eq!(json["Id"], id.to_string());
    assert_eq!(json["RepoTags"], serde_json::json!(["test/app:1"]));
    assert_eq!(json["RepoDigests"], serde_json::json!([]));
    assert_eq!(
        json["Config"]["Cmd"],
        serde_json::json!(["/bin/sh", "-c", "cat /etc/hello"])
    );
    assert_eq!(json["Config"]["Env"], serde_json::json!(["A=1"]));
    assert_eq!(json["Config"]["Labels"]["com.example.x"], "y");
    assert_eq!(
        json["Config"]["ExposedPorts"],
        serde_json::json!({"8080/tcp": {}})
    );
    assert_eq!(json["Config"]["WorkingDir"], "/srv");
    assert_eq!(json["RootFS"]["Type"], "layers");
    assert_eq!(
        json["RootFS"]["Layers"],
        serde_json::json!([diff_id.to_string()])
    );
    assert_eq!(json["Comment"], "Imported from -");
    assert_eq!(json["Size"], tar.len() as i64);
    assert_eq!(json["Os"], "linux");
    assert!(json["Metadata"]["LastTagTime"].is_string());

    // Same layer, another message: a different image on the same snapshot.
    let id2 = store
        .import(&tar[..], None, &[], Some("my message"))
        .unwrap();
    assert_ne!(id, id2);
    assert_eq!(
        store.inspect(id2.hex()).unwrap().comment.as_deref(),
        Some("my message")
    );
    let history = store.history(&id.to_string()).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].id, id.to_string());
    assert_eq!(history[0].tags, vec!["test/app:1".to_owned()]);
    assert_eq!(history[0].comment, "Imported from -");
    assert_eq!(history[0].size, tar.len() as i64);

    // A bad --change fails before anything is stored.
    let err = store
        .import(&tar[..], None, &["RUN true".to_owned()], None)
        .unwrap_err();
    assert_eq!(err.to_string(), "RUN is not a valid change command");
    assert_eq!(store.count(), 2);

    // Reopening sees everything.
    drop(store);
    let store = open_store(dir.path());
    assert_eq!(store.count(), 2);
    assert_eq!(store.resolve("test/app:1").unwrap().id, id);
    assert_eq!(store.resolve(&id.hex()[..8]).unwrap().id, id);
}

#[test]
fn resolve_names_ids_and_prefixes() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    // 17 images: two of them must share the first hex digit of their id.
    let mut ids = Vec::new();
    for i in 0..17 {
        ids.push(
            store
                .import(&small_rootfs(&i.to_string())[..], None, &[], None)
                .unwrap(),
        );
    }
    let id = &ids[0];
    store.tag(&id.to_string(), &r("busybox")).unwrap();
    assert_eq!(store.resolve("busybox").unwrap().id, *id);
    assert_eq!(store.resolve("busybox:latest").unwrap().id, *id);
    assert_eq!(store.resolve("docker.io/library/busybox").unwrap().id, *id);
    assert_eq!(store.resolve(id.hex()).unwrap().id, *id);
    assert_eq!(store.resolve(&id.to_string()).unwrap().id, *id);
    assert_eq!(store.resolve(id.short()).unwrap().id, *id);
    assert_eq!(
        store.resolve(&format!("sha256:{}", id.short())).unwrap().id,
        *id
    );
    let mut by_first: BTreeMap<char, usize> = BTreeMap::new();
    for i in &ids {
        *by_first.entry(i.hex().chars().next().unwrap()).or_default() += 1;
    }
    let (shared, _) = by_first.iter().find(|(_, n)| **n > 1).unwrap();
    let err = store.resolve(&shared.to_string()).unwrap_err();
    assert!(matches!(err, Error::AmbiguousPrefix(_)), "{err}");
    let err = store.resolve("nosuch").unwrap_err();
    assert_eq!(err.to_string(), "No such image: nosuch:latest");
    assert_eq!(err.kind(), types::ErrorKind::NotFound);
    assert!(
        store
            .resolve(&format!("sha256:{}", "0".repeat(64)))
            .is_err()
    );
    // Tags cannot carry digests.
    let digest_ref = r(&format!("busybox@sha256:{}", "a".repeat(64)));
    assert_eq!(
        store.tag("busybox", &digest_ref).unwrap_err().kind(),
        types::ErrorKind::InvalidArgument
    );
    assert!(matches!(
        store.tag("nosuch", &r("x")).unwrap_err(),
        Error::NoSuchImage(_)
    ));
}

#[test]
fn list_filters() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let a = store
        .import(
            &small_rootfs("a")[..],
            Some(&r("alpha:1")),
            &["LABEL tier=web team=x".to_owned()],
            None,
        )
        .unwrap();
    let b = store
        .import(
            &small_rootfs("b")[..],
            Some(&r("example.com/team/beta:2")),
            &["LABEL tier=db".to_owned()],
            None,
        )
        .unwrap();
    let c = store
        .import(&small_rootfs("c")[..], None, &[], None)
        .unwrap();
    let ids = |filters: &[(&str, &str)]| -> Vec<String> {
        let mut f: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in filters {
            f.entry((*k).to_owned()).or_default().push((*v).to_owned());
        }
        let mut out: Vec<String> = store
            .list(&ListOptions {
                all: false,
                filters: f,
            })
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect();
        out.sort();
        out
    };
    let sorted = |v: &[&ImageId]| -> Vec<String> {
        let mut out: Vec<String> = v.iter().map(|i| i.to_string()).collect();
        out.sort();
        out
    };
    assert_eq!(ids(&[]), sorted(&[&a, &b, &c]));
    assert_eq!(ids(&[("dangling", "true")]), sorted(&[&c]));
    assert_eq!(ids(&[("dangling", "false")]), sorted(&[&a, &b]));
    assert_eq!(ids(&[("label", "tier")]), sorted(&[&a, &b]));
    assert_eq!(ids(&[("label", "tier=web")]), sorted(&[&a]));
    assert_eq!(
        ids(&[("label", "tier=web"), ("label", "team=x")]),
        sorted(&[&a])
    );
    assert_eq!(
        ids(&[("label", "tier=web"), ("label", "team=y")]),
        sorted(&[])
    );
    assert_eq!(ids(&[("reference", "alpha")]), sorted(&[&a]));
    assert_eq!(ids(&[("reference", "alp*")]), sorted(&[&a]));
    assert_eq!(ids(&[("reference", "alpha:1")]), sorted(&[&a]));
    assert_eq!(ids(&[("reference", "alpha:2")]), sorted(&[]));
    assert_eq!(ids(&[("reference", "example.com/*/*")]), sorted(&[&b]));
    assert_eq!(ids(&[("reference", "*")]), sorted(&[&a]));
    assert_eq!(
        ids(&[("reference", "*"), ("reference", "*/*/*")]),
        sorted(&[&a, &b])
    );
    assert_eq!(ids(&[("before", "example.com/team/beta:2")]), sorted(&[&a]));
    assert_eq!(ids(&[("since", "alpha:1")]), sorted(&[&b, &c]));
    assert_eq!(
        ids(&[("since", "alpha:1"), ("dangling", "true")]),
        sorted(&[&c])
    );
    assert_eq!(ids(&[("until", "2000-01-01T00:00:00Z")]), sorted(&[]));

    let summaries = store.list(&ListOptions::default()).unwrap();
    assert_eq!(summaries[0].id, c.to_string(), "newest first");
    let sa = summaries.iter().find(|s| s.id == a.to_string()).unwrap();
    assert_eq!(sa.repo_tags, vec!["alpha:1".to_owned()]);
    assert_eq!(sa.labels["tier"], "web");
    assert_eq!(sa.containers, -1);
    let sb = summaries.iter().find(|s| s.id == b.to_string()).unwrap();
    assert_eq!(sb.repo_tags, vec!["example.com/team/beta:2".to_owned()]);
    let json = serde_json::to_value(sa).unwrap();
    for key in [
        "Id",
        "ParentId",
        "RepoTags",
        "RepoDigests",
        "Created",
        "Size",
        "SharedSize",
        "Labels",
        "Containers",
    ] {
        assert!(json.get(key).is_some(), "ImageSummary lacks {key}: {json}");
    }

    let err = store
        .list(&ListOptions {
            all: false,
            filters: [("bogus".to_owned(), vec!["1".to_owned()])].into(),
        })
        .unwrap_err();
    assert_eq!(err.to_string(), "invalid filter 'bogus'");
    let err = store
        .list(&ListOptions {
            all: false,
            filters: [("dangling".to_owned(), vec!["maybe".to_owned()])].into(),
        })
        .unwrap_err();
    assert_eq!(err.to_string(), "invalid filter 'dangling=maybe'");
}

#[test]
fn tag_untag_and_remove_rules() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let id = store
        .import(&small_rootfs("x")[..], Some(&r("one:1")), &[], None)
        .unwrap();
    store.tag("one:1", &r("two:1")).unwrap();
    store.tag(id.short(), &r("one:2")).unwrap();
    assert_eq!(
        store.resolve("one:1").unwrap().repo_tags(),
        vec!["one:1", "one:2", "two:1"]
    );

    // By id with tags in several repositories: a soft conflict.
    let err = store.remove(id.short(), false, &never_used).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
            id.short()
        )
    );
    assert_eq!(err.kind(), types::ErrorKind::FailedPrecondition);

    // By name while other references remain: untag only.
    let actions = store.remove("two:1", false, &never_used).unwrap();
    assert_eq!(actions, vec![RemoveAction::Untagged("two:1".into())]);
    assert_eq!(store.count(), 1);

    // Used by containers.
    let stopped = |_: &ImageId| {
        Some(ImageUse {
            container_id: "c".repeat(64),
            running: false,
        })
    };
    let running = |_: &ImageId| {
        Some(ImageUse {
            container_id: "d".repeat(64),
            running: true,
        })
    };
    store.remove("one:2", false, &never_used).unwrap();
    // Now a single reference left: removing it while a container uses the image is refused.
    let err = store.remove("one:1", false, &stopped).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "conflict: unable to remove repository reference \"one:1\" (must force) - container {} is using its referenced image {}",
            "c".repeat(12),
            id.short()
        )
    );
    let err = store.remove(&id.to_string(), false, &stopped).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "conflict: unable to delete {} (must be forced) - image is being used by stopped container {}",
            id.short(),
            "c".repeat(12)
        )
    );
    let err = store.remove(&id.to_string(), true, &running).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "conflict: unable to delete {} (cannot be forced) - image is being used by running container {}",
            id.short(),
            "d".repeat(12)
        )
    );
    // Forced removal of the name of a used image: untagged, the image stays (dangling).
    let actions = store.remove("one:1", true, &running).unwrap();
    assert_eq!(actions, vec![RemoveAction::Untagged("one:1".into())]);
    assert!(store.resolve(id.hex()).unwrap().is_dangling());

    // Last reference gone and unused: untag and delete, layers too.
    store.tag(id.hex(), &r("one:1")).unwrap();
    let actions = store.remove("one:1", false, &never_used).unwrap();
    assert_eq!(actions[0], RemoveAction::Untagged("one:1".into()));
    assert_eq!(actions[1], RemoveAction::Deleted(id.clone()));
    assert!(matches!(actions[2], RemoveAction::DeletedLayer(_)));
    assert_eq!(
        serde_json::to_value(actions[1].to_model()).unwrap(),
        serde_json::json!({"Deleted": id.to_string()})
    );
    assert_store_empty(&store);

    // Two tags in one repository, removed by id: Docker calls that a conflict too.
    let id = store
        .import(&small_rootfs("y")[..], Some(&r("rep:a")), &[], None)
        .unwrap();
    store.tag("rep:a", &r("rep:b")).unwrap();
    assert!(store.remove(id.hex(), false, &never_used).is_err());
    let actions = store.remove(id.hex(), true, &never_used).unwrap();
    assert_eq!(
        &actions[..3],
        &[
            RemoveAction::Untagged("rep:a".into()),
            RemoveAction::Untagged("rep:b".into()),
            RemoveAction::Deleted(id.clone())
        ]
    );
    // One tag, by id: untag and delete without force.
    let id = store
        .import(&small_rootfs("z")[..], Some(&r("solo")), &[], None)
        .unwrap();
    let actions = store.remove(&id.hex()[..5], false, &never_used).unwrap();
    assert_eq!(actions[0], RemoveAction::Untagged("solo:latest".into()));
    assert_eq!(actions[1], RemoveAction::Deleted(id.clone()));
    assert!(matches!(
        store.remove("solo", false, &never_used).unwrap_err(),
        Error::NoSuchImage(_)
    ));
    assert_store_empty(&store);
    // Reopen: nothing comes back.
    drop(store);
    let store = open_store(dir.path());
    assert_eq!(store.count(), 0);
}

#[test]
fn prune_dangling_and_all() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let tagged = store
        .import(&small_rootfs("t")[..], Some(&r("keep")), &[], None)
        .unwrap();
    let dangling = store
        .import(&small_rootfs("d")[..], None, &[], None)
        .unwrap();
    let used = store
        .import(&small_rootfs("u")[..], None, &[], None)
        .unwrap();
    let in_use = |id: &ImageId| {
        (*id == used).then(|| ImageUse {
            container_id: "e".repeat(64),
            running: false,
        })
    };
    let report = store.prune(true, &in_use).unwrap();
    assert!(
        report
            .actions
            .contains(&RemoveAction::Deleted(dangling.clone()))
    );
    assert!(report.space_reclaimed > 0);
    assert_eq!(store.count(), 2);
    let report = store.prune(false, &in_use).unwrap();
    assert_eq!(
        report.actions[0],
        RemoveAction::Untagged("keep:latest".into())
    );
    assert!(report.actions.contains(&RemoveAction::Deleted(tagged)));
    assert_eq!(store.count(), 1);
    store.prune(false, &never_used).unwrap();
    assert_store_empty(&store);
}

#[test]
fn save_then_load_into_a_fresh_store_gives_the_same_image() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let id = store
        .import(
            &small_rootfs("s")[..],
            Some(&r("saved:1")),
            &["CMD [\"sh\"]".to_owned()],
            None,
        )
        .unwrap();
    store.tag("saved:1", &r("saved:2")).unwrap();
    store.tag("saved:1", &r("other/name:x")).unwrap();
    let other = store
        .import(&small_rootfs("o")[..], None, &[], None)
        .unwrap();
    let mut archive = Vec::new();
    store
        .save(
            &["saved".to_owned(), other.hex()[..10].to_owned()],
            &mut archive,
        )
        .unwrap();

    // The archive's shape.
    let mut names = BTreeMap::new();
    let mut ar = tar::Archive::new(&archive[..]);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        names.insert(name, data);
    }
    for required in ["manifest.json", "index.json", "oci-layout", "repositories"] {
        assert!(
            names.contains_key(required),
            "{required} missing: {:?}",
            names.keys()
        );
    }
    let manifest: serde_json::Value = serde_json::from_slice(&names["manifest.json"]).unwrap();
    assert_eq!(manifest.as_array().unwrap().len(), 2);
    assert_eq!(manifest[0]["Config"], format!("blobs/sha256/{}", id.hex()));
    assert_eq!(
        manifest[0]["RepoTags"],
        serde_json::json!(["saved:1", "saved:2"])
    );
    assert_eq!(manifest[1]["RepoTags"], serde_json::Value::Null);
    let layer_path = manifest[0]["Layers"][0].as_str().unwrap();
    assert_eq!(
        format!(
            "sha256:{}",
            layer_path.strip_prefix("blobs/sha256/").unwrap()
        ),
        sha256_digest(&names[layer_path]).to_string(),
        "layers are stored uncompressed, named by their DiffID"
    );
    let index: serde_json::Value = serde_json::from_slice(&names["index.json"]).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 3);
    assert_eq!(
        index["manifests"][0]["annotations"]["io.containerd.image.name"],
        "docker.io/library/saved:1"
    );
    let repositories: serde_json::Value = serde_json::from_slice(&names["repositories"]).unwrap();
    assert!(repositories["saved"]["1"].is_string());

    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = open_store(fresh_dir.path());
    let loaded = fresh.load(&archive[..]).unwrap();
    assert_eq!(loaded.len(), 2);
    assert_eq!(loaded[0].id, id);
    assert_eq!(
        loaded[0].messages(),
        vec!["Loaded image: saved:1", "Loaded image: saved:2"]
    );
    assert_eq!(loaded[1].id, other);
    assert_eq!(
        loaded[1].messages(),
        vec![format!("Loaded image ID: {other}")]
    );
    let image = fresh.resolve("saved:2").unwrap();
    assert_eq!(image.id, id);
    assert_eq!(image.repo_tags(), vec!["saved:1", "saved:2"]);
    assert_eq!(
        fresh.inspect("saved:1").unwrap().config.unwrap().cmd,
        Some(vec!["sh".to_owned()])
    );
    // Loading again changes nothing.
    assert_eq!(fresh.load(&archive[..]).unwrap()[0].id, id);
    assert_eq!(fresh.count(), 2);

    // The same archive read as a plain OCI layout (without manifest.json).
    let mut oci = tar::Builder::new(Vec::new());
    for (name, data) in &names {
        if name == "manifest.json" || name == "repositories" || name.ends_with('/') {
            continue;
        }
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        oci.append_data(&mut h, name, &data[..]).unwrap();
    }
    let oci = oci.into_inner().unwrap();
    let oci_dir = tempfile::tempdir().unwrap();
    let oci_store = open_store(oci_dir.path());
    let loaded = oci_store.load(&oci[..]).unwrap();
    assert_eq!(loaded[0].id, id);
    assert_eq!(
        oci_store.resolve("saved:1").unwrap().repo_tags(),
        vec!["saved:1", "saved:2"]
    );
}

/// Builds an old-format `docker save` archive (`<id>.json`, `<layer>/layer.tar`, a symlink
/// for a duplicate layer) with two images sharing their base layer.
fn legacy_archive(base: &[u8], top1: &[u8], top2: &[u8], corrupt: bool) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, name, data).unwrap();
    };
    let mut manifest = Vec::new();
    let mut config_of = |layers: &[&[u8]], tag: &str, add: &mut dyn FnMut(&str, &[u8])| {
        let diff_ids: Vec<String> = layers
            .iter()
            .map(|l| sha256_digest(l).to_string())
            .collect();
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let bytes = serde_json::to_vec(&config).unwrap();
        let hex = sha256_digest(&bytes).encoded().to_owned();
        add(&format!("{hex}.json"), &bytes);
        manifest.push(serde_json::json!({
            "Config": format!("{hex}.json"),
            "RepoTags": [tag],
            "Layers": layers.iter().enumerate().map(|(i, _)| format!("{}/{i}/layer.tar", tag.replace(':', "_"))).collect::<Vec<_>>(),
        }));
    };
    add("img_1/0/layer.tar", base);
    add("img_1/1/layer.tar", if corrupt { top2 } else { top1 });
    config_of(&[base, top1], "img:1", &mut add);
    // The duplicate base layer is a symlink, as old Docker wrote it.
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "img_2/0/layer.tar", "../../img_1/0/layer.tar")
        .unwrap();
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, name, data).unwrap();
    };
    add("img_2/1/layer.tar", top2);
    config_of(&[base, top2], "img:2", &mut add);
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    b.into_inner().unwrap()
}

fn layer_with(name: &str, data: &[u8]) -> Vec<u8> {
    finish_tar(raw_entry(
        name.as_bytes(),
        tar::EntryType::Regular,
        b"",
        data,
    ))
}

#[test]
fn images_sharing_a_base_layer_share_its_snapshot() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let base = small_rootfs("base");
    let (top1, top2) = (layer_with("one", b"1"), layer_with("two", b"2"));
    let loaded = store
        .load(&legacy_archive(&base, &top1, &top2, false)[..])
        .unwrap();
    assert_eq!(loaded.len(), 2);
    let i1 = store.resolve("img:1").unwrap();
    let i2 = store.resolve("img:2").unwrap();
    assert_eq!(i1.record.layers[0].chain_id, i2.record.layers[0].chain_id);
    let committed = || {
        fs::read_dir(store.root().join("snapshots/committed"))
            .unwrap()
            .count()
    };
    assert_eq!(committed(), 3, "base once, and one top each");
    // Importing the base tar alone reuses the base snapshot too.
    let imported = store.import(&base[..], None, &[], None).unwrap();
    assert_eq!(committed(), 3);
    store.remove(imported.hex(), false, &never_used).unwrap();
    store.remove("img:1", false, &never_used).unwrap();
    assert_eq!(committed(), 2, "the base stays for img:2");
    assert!(store.resolve("img:2").is_ok());
    store.remove("img:2", false, &never_used).unwrap();
    assert_store_empty(&store);

    // A layer that does not match its DiffID fails the whole load, leaving nothing.
    let err = store
        .load(&legacy_archive(&base, &top1, &top2, true)[..])
        .unwrap_err();
    assert!(err.to_string().contains("digest mismatch"), "{err}");
    assert_store_empty(&store);
    // Not an archive at all.
    assert!(store.load(&b"not a tar"[..]).is_err());
    assert_store_empty(&store);
}

#[test]
fn escaping_layers_fail_cleanly() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let passwd_links = fs::metadata("/etc/passwd").unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "dot-dot",
            finish_tar(raw_entry(b"../escape", tar::EntryType::Regular, b"", b"x")),
        ),
        (
            "dot-dot inside",
            finish_tar(raw_entry(
                b"a/../../escape",
                tar::EntryType::Regular,
                b"",
                b"x",
            )),
        ),
        ("hardlink through an absolute symlink", {
            let mut t = raw_entry(b"s", tar::EntryType::Symlink, b"/etc", b"");
            t.extend(raw_entry(b"h", tar::EntryType::Link, b"s/passwd", b""));
            finish_tar(t)
        }),
        (
            "hardlink outside",
            finish_tar(raw_entry(
                b"h",
                tar::EntryType::Link,
                b"../../etc/passwd",
                b"",
            )),
        ),
    ];
    for (what, tar) in cases {
        let err = store
            .import(&tar[..], Some(&r("evil")), &[], None)
            .expect_err(what);
        assert_eq!(
            err.kind(),
            types::ErrorKind::InvalidArgument,
            "{what}: {err}"
        );
        assert_store_empty(&store);
        assert!(store.resolve("evil").is_err());
    }
    assert_eq!(
        std::os::unix::fs::MetadataExt::nlink(&fs::metadata("/etc/passwd").unwrap()),
        std::os::unix::fs::MetadataExt::nlink(&passwd_links)
    );
    // A file written through an absolute symlink stays inside the layer.
    let host = tempfile::tempdir().unwrap();
    let mut t = raw_entry(
        b"link",
        tar::EntryType::Symlink,
        host.path().to_str().unwrap().as_bytes(),
        b"",
    );
    t.extend(raw_entry(
        b"link/evil",
        tar::EntryType::Regular,
        b"",
        b"pwned",
    ));
    match store.import(&finish_tar(t)[..], None, &[], None) {
        Ok(id) => {
            store.remove(id.hex(), false, &never_used).unwrap();
        }
        Err(e) => assert_eq!(e.kind(), types::ErrorKind::InvalidArgument),
    }
    assert_eq!(
        fs::read_dir(host.path()).unwrap().count(),
        0,
        "escaped to the host"
    );
    assert_store_empty(&store);
}

#[test]
fn truncated_layers_fail_cleanly() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let big = {
        let data = vec![7u8; 100_000];
        finish_tar(raw_entry(b"big", tar::EntryType::Regular, b"", &data))
    };
    for (what, input) in [
        ("plain, cut in a file", big[..50_000].to_vec()),
        ("plain, cut in a header", big[..100].to_vec()),
        ("gzip, cut", {
            let gz = gzip(&big);
            gz[..gz.len() / 2].to_vec()
        }),
        ("garbage", vec![0x42; 4096]),
    ] {
        let err = store.import(&input[..], None, &[], None).expect_err(what);
        eprintln!("{what}: {err}");
        assert_eq!(
            err.kind(),
            types::ErrorKind::InvalidArgument,
            "{what}: {err}"
        );
        assert_store_empty(&store);
    }
}

/// Tars a directory without following symlinks.
fn tar_dir(dir: &Path) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.append_dir_all(".", dir).unwrap();
    b.into_inner().unwrap()
}

fn busybox_rootfs_tar() -> Option<Vec<u8>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/busybox-rootfs.sh");
    let out = tempfile::tempdir().unwrap();
    let rootfs = out.path().join("rootfs");
    let status = Command::new("bash")
        .arg(&script)
        .arg(&rootfs)
        .status()
        .ok()?;
    if !status.success() {
        eprintln!("skipped: busybox-rootfs.sh failed");
        return None;
    }
    fs::write(rootfs.join("etc/hello"), "hello from the image\n").unwrap();
    Some(tar_dir(&rootfs))
}

/// Runs `cmd` in a forked child that enters a private mount namespace, performs `mounts` on
/// `target` and chroots into it. The mounts die with the child's namespace.
fn run_in_rootfs(mounts: &[image::Mount], target: &Path, cmd: &[&str]) -> std::process::Output {
    let prepared: Vec<(PathBuf, PathBuf, String, rustix::mount::MountFlags, CString)> = mounts
        .iter()
        .map(|m| {
            let (flags, data) = m.flags_and_data();
            (
                m.source.clone(),
                target.join(&m.target),
                m.kind.clone(),
                flags,
                CString::new(data).unwrap(),
            )
        })
        .collect();
    let target = target.to_path_buf();
    let mut command = Command::new(cmd[0]);
    command.args(&cmd[1..]).env_clear().env("PATH", "/bin");
    // SAFETY: the closure runs in the forked child before exec; it only makes system calls
    // (unshare, mount, chroot, chdir) on data prepared before the fork.
    unsafe {
        command.pre_exec(move || {
            rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS)?;
            rustix::mount::mount_change(
                "/",
                rustix::mount::MountPropagationFlags::REC
                    | rustix::mount::MountPropagationFlags::PRIVATE,
            )?;
            for (source, at, kind, flags, data) in &prepared {
                rustix::mount::mount(
                    source.as_path(),
                    at.as_path(),
                    kind.as_str(),
                    *flags,
                    Some(data.as_c_str()),
                )?;
            }
            rustix::process::chroot(&target)?;
            rustix::process::chdir("/")?;
            Ok(())
        });
    }
    command.output().unwrap()
}

#[test]
fn prepare_rootfs_mounts_the_image_and_remove_rootfs_leaves_nothing() {
    if !is_root() {
        return;
    }
    let Some(tar) = busybox_rootfs_tar() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    assert_eq!(store.driver(), image::SnapshotDriver::Overlay);
    let base = store
        .import(&tar[..], Some(&r("bb")), &["CMD [\"sh\"]".to_owned()], None)
        .unwrap();
    // A second layer on top, through a loaded archive: base + a file that shadows one.
    let top = layer_with("etc/hello", b"hello from the top layer\n");
    let config_bytes =
        fs::read(store.root().join("content/blobs/sha256").join(base.hex())).unwrap();
    let mut config: serde_json::Value = serde_json::from_slice(&config_bytes).unwrap();
    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!(sha256_digest(&top).to_string()));
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_hex = sha256_digest(&config_bytes).encoded().to_owned();
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        (format!("{config_hex}.json"), config_bytes.clone()),
        ("base/layer.tar".to_owned(), tar.clone()),
        ("top/layer.tar".to_owned(), top.clone()),
        (
            "manifest.json".to_owned(),
            serde_json::to_vec(&serde_json::json!([{
                "Config": format!("{config_hex}.json"),
                "RepoTags": ["bb:two"],
                "Layers": ["base/layer.tar", "top/layer.tar"],
            }]))
            .unwrap(),
        ),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, &name, &data[..]).unwrap();
    }
    let two = store.load(&b.into_inner().unwrap()[..]).unwrap()[0]
        .id
        .clone();
    let record = store.resolve("bb:two").unwrap().record;

    let mounts = store.prepare_rootfs("ctr1", &two).unwrap();
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].kind, "overlay");
    let lower = mounts[0]
        .options
        .iter()
        .find_map(|o| o.strip_prefix("lowerdir="))
        .unwrap();
    let lowers: Vec<&str> = lower.split(':').collect();
    assert_eq!(lowers.len(), 2);
    // Top first.
    assert!(Path::new(lowers[0]).join("etc/hello").exists());
    assert!(!Path::new(lowers[0]).join("bin/busybox").exists());
    assert!(Path::new(lowers[1]).join("bin/busybox").exists());
    assert!(mounts[0].options.iter().any(|o| o.starts_with("upperdir=")));
    assert!(mounts[0].options.iter().any(|o| o.starts_with("workdir=")));
    assert_eq!(store.rootfs_mounts("ctr1").unwrap(), mounts);
    assert!(store.prepare_rootfs("ctr1", &two).is_err(), "key taken");

    let target = tempfile::tempdir().unwrap();
    let out = run_in_rootfs(
        &mounts,
        target.path(),
        &[
            "/bin/sh",
            "-c",
            "cat /etc/hello && echo written > /new-file && busybox ls /bin/busybox",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from the top layer\n/bin/busybox\n"
    );
    // The child's mounts died with it; its write landed in the container's upper dir only.
    assert_eq!(fs::read_dir(target.path()).unwrap().count(), 0);
    let upper = store.rootfs_changes_dir("ctr1").unwrap();
    assert_eq!(
        fs::read_to_string(upper.join("new-file")).unwrap(),
        "written\n"
    );
    assert!(store.rootfs_size("ctr1").unwrap() >= 8);
    for layer in &record.layers {
        let fs_dir = store
            .root()
            .join("snapshots/committed")
            .join(layer.chain_id.encoded());
        assert!(!fs_dir.join("fs/new-file").exists());
    }

    // The single-layer image works too, on its own upper dir.
    let mounts = store.prepare_rootfs("ctr2", &base).unwrap();
    let out = run_in_rootfs(&mounts, target.path(), &["/bin/cat", "/etc/hello"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from the image\n"
    );

    // Deleting an image under a container (forced) keeps its layers until the rootfs goes.
    let user = |_: &ImageId| {
        Some(ImageUse {
            container_id: "f".repeat(64),
            running: false,
        })
    };
    // Docker: forcing overrides a stopped user, so the untag deletes the image as well.
    let actions = store.remove("bb:two", true, &user).unwrap();
    assert_eq!(actions[1], RemoveAction::Deleted(two.clone()));
    assert!(store.resolve(two.hex()).is_err());
    assert!(store.rootfs_mounts("ctr1").is_ok());
    store.remove_rootfs("ctr1").unwrap();
    store.remove_rootfs("ctr1").unwrap();
    store.remove_rootfs("ctr2").unwrap();
    assert!(store.rootfs_mounts("ctr1").is_err());
    let committed = fs::read_dir(store.root().join("snapshots/committed"))
        .unwrap()
        .count();
    assert_eq!(committed, 1, "only the base image's layer is left");
    store.remove("bb", false, &never_used).unwrap();
    assert_store_empty(&store);
}

#[test]
fn open_collects_crash_leftovers() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let id = store
        .import(&small_rootfs("keep")[..], Some(&r("keep")), &[], None)
        .unwrap();
    let root = store.root().to_path_buf();
    drop(store);
    // What a crash between steps can leave: a blob and a snapshot no record names, a
    // half-written record, a load's scratch directory.
    let stray = small_rootfs("stray");
    let stray_digest = sha256_digest(&stray);
    fs::write(
        root.join("content/blobs/sha256")
            .join(stray_digest.encoded()),
        &stray,
    )
    .unwrap();
    let snapshots = content::SnapshotStore::open(
        root.join("snapshots"),
        content::SnapshotDriver::detect(&root.join("snapshots")),
    )
    .unwrap();
    snapshots.commit_layer(None, None, &stray[..]).unwrap();
    drop(snapshots);
    fs::write(root.join("records/.x.json.tmp-1"), b"{").unwrap();
    fs::create_dir_all(root.join("tmp/load-x/blobs")).unwrap();

    let store = open_store(dir.path());
    assert_eq!(store.resolve("keep").unwrap().id, id);
    assert!(
        !root
            .join("content/blobs/sha256")
            .join(stray_digest.encoded())
            .exists()
    );
    assert_eq!(
        fs::read_dir(root.join("snapshots/committed"))
            .unwrap()
            .count(),
        1
    );
    assert_eq!(fs::read_dir(root.join("records")).unwrap().count(), 1);
    assert_eq!(fs::read_dir(root.join("tmp")).unwrap().count(), 0);
    store.remove("keep", false, &never_used).unwrap();
    assert_store_empty(&store);
}

#[test]
fn a_damaged_record_does_not_keep_the_store_closed() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let good = store
        .import(&small_rootfs("good")[..], Some(&r("good")), &[], None)
        .unwrap();
    let bad = store
        .import(&small_rootfs("bad")[..], Some(&r("bad")), &[], None)
        .unwrap();
    let root = store.root().to_path_buf();
    drop(store);
    fs::write(
        root.join("records").join(format!("{}.json", bad.hex())),
        b"{",
    )
    .unwrap();
    let store = open_store(dir.path());
    assert_eq!(store.resolve("good").unwrap().id, good);
    assert!(store.resolve("bad").is_err());
    // Its layers were not collected.
    assert_eq!(
        fs::read_dir(root.join("snapshots/committed"))
            .unwrap()
            .count(),
        2
    );
}
