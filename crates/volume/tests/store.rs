//! Crate integration tests of the volume store and the local driver on the real kernel
//! (root): records on disk, references and in-use protection, prune, restore after a
//! restart, and the `-o` mounts of local volumes counted per user. Every mount is made under a
//! tempdir and checked gone at the end.

use std::collections::HashMap;
use std::path::Path;

use volume::local::LocalDriver;
use volume::{CreateRequest, Error, PluginConfig, VolumeStore};

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&prefix))
        .map(str::to_string)
        .collect()
}

/// Detaches whatever a failed test left mounted under the tempdir.
struct Cleanup(tempfile::TempDir);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let mut mounts = mounts_under(self.0.path());
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for mount in mounts {
            let _ = rustix::mount::unmount(mount.as_str(), rustix::mount::UnmountFlags::DETACH);
        }
    }
}

fn scratch() -> Cleanup {
    Cleanup(tempfile::tempdir().unwrap())
}

fn request(name: &str, reference: Option<&str>) -> CreateRequest {
    CreateRequest {
        name: name.into(),
        reference: reference.map(str::to_string),
        ..Default::default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn records_references_and_removal() {
    let dir = scratch();
    let root = dir.0.path().join("volumes");
    runtime().block_on(async {
        let store = VolumeStore::open(&root, PluginConfig::default()).unwrap();
        let (record, created) = store.create(request("data", Some("c1"))).await.unwrap();
        assert!(created);
        assert_eq!(record.driver, "local");
        assert_eq!(record.labels, None);
        assert!(root.join("data/_data").is_dir());
        assert!(root.join("_metadata/data.json").is_file());
        // Again: the same volume, one more reference.
        let (_, created) = store.create(request("data", Some("c2"))).await.unwrap();
        assert!(!created);
        assert_eq!(store.refs("data"), ["c1", "c2"]);
        // In use: refused, with and without force.
        for force in [false, true] {
            match store.remove("data", force).await {
                Err(Error::InUse { refs, .. }) => assert_eq!(refs, ["c1", "c2"]),
                other => panic!("{other:?}"),
            }
        }
        store.release("data", "c1");
        store.release("data", "c2");
        store.remove("data", false).await.unwrap();
        assert!(!root.join("data").exists());
        assert!(!root.join("_metadata/data.json").exists());
        assert!(matches!(
            store.remove("data", false).await,
            Err(Error::NoSuchVolume { .. })
        ));
        store.remove("data", true).await.unwrap();
        // Anonymous volumes get a random name and dockerd's label.
        let (anonymous, _) = store.create(request("", None)).await.unwrap();
        assert_eq!(anonymous.name.len(), 64);
        assert!(anonymous.is_anonymous());
        // Bad names leave nothing.
        for bad in ["a/b", "..", "x"] {
            assert!(store.create(request(bad, None)).await.is_err(), "{bad}");
        }
        let mut left: Vec<String> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut expected = vec![anonymous.name.clone(), "_metadata".to_string()];
        expected.sort();
        assert_eq!(left, expected);
    });
}

#[test]
fn prune_takes_unused_anonymous_volumes_unless_all() {
    let dir = scratch();
    let root = dir.0.path().join("volumes");
    runtime().block_on(async {
        let store = VolumeStore::open(&root, PluginConfig::default()).unwrap();
        let (used_anonymous, _) = store.create(request("", Some("c1"))).await.unwrap();
        let (unused_anonymous, _) = store.create(request("", None)).await.unwrap();
        store.create(request("named", None)).await.unwrap();
        store
            .create(CreateRequest {
                name: "kept".into(),
                labels: HashMap::from([("keep".into(), "1".into())]),
                ..Default::default()
            })
            .await
            .unwrap();
        std::fs::write(
            root.join(&unused_anonymous.name).join("_data/f"),
            [0u8; 1000],
        )
        .unwrap();
        store
            .create(CreateRequest {
                name: "with-options".into(),
                options: HashMap::from([
                    ("type".into(), "tmpfs".into()),
                    ("device".into(), "tmpfs".into()),
                ]),
                ..Default::default()
            })
            .await
            .unwrap();
        let (removed, bytes) = store.prune(&Default::default(), false).await.unwrap();
        assert_eq!(removed, std::slice::from_ref(&unused_anonymous.name));
        assert_eq!(bytes, 1000);
        let filters = HashMap::from([("label!".to_string(), vec!["keep".to_string()])]);
        let (removed, _) = store.prune(&filters, true).await.unwrap();
        assert_eq!(removed, ["named"]);
        let names: Vec<String> = store
            .list(&Default::default())
            .unwrap()
            .into_iter()
            .map(|v| v.name)
            .collect();
        // Volumes with mount options are not pruned, as in dockerd.
        let mut expected = vec![
            used_anonymous.name.clone(),
            "kept".into(),
            "with-options".into(),
        ];
        expected.sort();
        assert_eq!(names, expected);
        let bad = HashMap::from([("dangling".to_string(), vec!["x".to_string()])]);
        assert!(store.prune(&bad, true).await.is_err());
    });
}

#[test]
fn records_survive_a_restart_and_strays_are_reconciled() {
    let dir = scratch();
    let root = dir.0.path().join("volumes");
    runtime().block_on(async {
        let store = VolumeStore::open(&root, PluginConfig::default()).unwrap();
        store
            .create(CreateRequest {
                name: "labelled".into(),
                labels: HashMap::from([("a".into(), "b".into())]),
                options: HashMap::from([
                    ("type".into(), "tmpfs".into()),
                    ("device".into(), "tmpfs".into()),
                ]),
                ..Default::default()
            })
            .await
            .unwrap();
        store.create(request("gone", None)).await.unwrap();
    });
    // A crash left a volume directory without a record, a record without its directory, and
    // a temporary file of an interrupted write.
    std::fs::create_dir_all(root.join("stray/_data")).unwrap();
    std::fs::remove_dir_all(root.join("gone")).unwrap();
    std::fs::write(root.join("_metadata/.x.json.tmp"), "{").unwrap();
    let store = VolumeStore::open(&root, PluginConfig::default()).unwrap();
    let labelled = store.get("labelled").unwrap();
    assert_eq!(labelled.labels.unwrap()["a"], "b");
    assert_eq!(labelled.options.unwrap()["type"], "tmpfs");
    assert!(store.get("gone").is_err());
    assert!(!root.join("_metadata/gone.json").exists());
    assert_eq!(store.get("stray").unwrap().driver, "local");
    assert!(root.join("_metadata/stray.json").exists());
    assert!(!root.join("_metadata/.x.json.tmp").exists());
}

#[test]
fn local_mounts_are_counted_per_user() {
    if !is_root() {
        return;
    }
    let dir = scratch();
    let root = dir.0.path().join("volumes");
    let driver = LocalDriver::open(&root).unwrap();
    let options = HashMap::from([
        ("type".to_string(), "tmpfs".to_string()),
        ("device".to_string(), "tmpfs".to_string()),
        ("o".to_string(), "size=1m,mode=700".to_string()),
    ]);
    driver.create("mem", &options).unwrap();
    let path = driver.path("mem");
    assert!(
        mounts_under(dir.0.path()).is_empty(),
        "created, not mounted"
    );
    assert_eq!(driver.mount("mem", "a").unwrap(), path);
    assert_eq!(driver.mount("mem", "b").unwrap(), path);
    assert_eq!(mounts_under(dir.0.path()), [path.display().to_string()]);
    std::fs::write(path.join("f"), "in memory").unwrap();
    // Removal is refused while mounted for a user.
    assert!(driver.remove("mem").is_err());
    driver.unmount("mem", "a").unwrap();
    assert_eq!(
        std::fs::read_to_string(path.join("f")).unwrap(),
        "in memory"
    );
    driver.unmount("mem", "b").unwrap();
    assert!(mounts_under(dir.0.path()).is_empty());
    assert!(!path.join("f").exists(), "the tmpfs held the file");
    // A bind volume: removing it never deletes the bound directory's content.
    let device = dir.0.path().join("device");
    std::fs::create_dir_all(&device).unwrap();
    std::fs::write(device.join("precious"), "keep me").unwrap();
    let bind = HashMap::from([
        ("type".to_string(), "none".to_string()),
        ("device".to_string(), device.display().to_string()),
        ("o".to_string(), "bind,ro".to_string()),
    ]);
    driver.create("bound", &bind).unwrap();
    let bound = driver.mount("bound", "a").unwrap();
    assert_eq!(
        std::fs::read_to_string(bound.join("precious")).unwrap(),
        "keep me"
    );
    assert!(std::fs::write(bound.join("new"), "x").is_err(), "read-only");
    // Even a leftover mount (a crash) is detached before the directory goes.
    std::mem::forget(driver);
    let driver = LocalDriver::open(&root).unwrap();
    driver.remove("bound").unwrap();
    assert_eq!(
        std::fs::read_to_string(device.join("precious")).unwrap(),
        "keep me"
    );
    // A mount that fails says what dockerd says, and leaves nothing mounted.
    let missing = HashMap::from([
        ("type".to_string(), "none".to_string()),
        (
            "device".to_string(),
            dir.0.path().join("nope").display().to_string(),
        ),
        ("o".to_string(), "bind".to_string()),
    ]);
    driver.create("broken", &missing).unwrap();
    let error = driver.mount("broken", "a").unwrap_err().to_string();
    assert!(
        error.starts_with(&format!(
            "error while mounting volume '{}': failed to mount local volume: mount {}:{}, flags: 0x1000: no such file or directory",
            driver.path("broken").display(),
            dir.0.path().join("nope").display(),
            driver.path("broken").display()
        )),
        "{error}"
    );
    assert!(mounts_under(dir.0.path()).is_empty());
    driver.remove("broken").unwrap();
    driver.remove("mem").unwrap();
    // Option errors are dockerd's.
    let error = driver
        .create(
            "bad",
            &HashMap::from([("foo".to_string(), "x".to_string())]),
        )
        .unwrap_err();
    assert_eq!(error.to_string(), "create bad: invalid option: \"foo\"");
    assert!(!root.join("bad").exists());
}

#[test]
fn restored_users_keep_a_mount_and_idle_ones_are_unmounted() {
    if !is_root() {
        return;
    }
    let dir = scratch();
    let root = dir.0.path().join("volumes");
    runtime().block_on(async {
        let store = VolumeStore::open(&root, PluginConfig::default()).unwrap();
        for name in ["running", "idle"] {
            store
                .create(CreateRequest {
                    name: name.into(),
                    options: HashMap::from([
                        ("type".into(), "tmpfs".into()),
                        ("device".into(), "tmpfs".into()),
                    ]),
                    ..Default::default()
                })
                .await
                .unwrap();
            store.mount(name, "c1").await.unwrap();
        }
        std::fs::write(root.join("running/_data/state"), "live").unwrap();
    });
    // The daemon restarts: a container still runs with "running"; nobody uses "idle".
    let store = VolumeStore::open(&root, PluginConfig::default()).unwrap();
    store.add_ref("running", "c1");
    store.restore_mount("running", "c1");
    store.unmount_idle();
    assert_eq!(
        mounts_under(dir.0.path()),
        [root.join("running/_data").display().to_string()]
    );
    assert_eq!(
        std::fs::read_to_string(root.join("running/_data/state")).unwrap(),
        "live"
    );
    runtime().block_on(store.unmount("running", "c1")).unwrap();
    assert!(mounts_under(dir.0.path()).is_empty());
}
