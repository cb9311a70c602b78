//! Crate integration tests of the snapshot store on the real kernel (root): two layers are
//! committed, an active snapshot is prepared, and its mounts are performed in a private mount
//! namespace of a dedicated thread, so nothing leaks to the host even if a test fails.

mod common;

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use common::*;
use content::{
    ContentError, Mount, SnapshotDriver, SnapshotStore, chain_id, diff_overlay_upper, sha256_digest,
};

fn layer1() -> Vec<u8> {
    let mut t = TarBuilder::new();
    t.dir("etc", 0o755, 0, 0);
    t.file("etc/a", b"a1", 0o644, 0, 0);
    t.file("etc/b", b"b1", 0o644, 0, 0);
    t.file("dir/x", b"x", 0o644, 0, 0);
    t.file("dir/y", b"y", 0o644, 0, 0);
    t.file("bin/sh", b"sh", 0o755, 0, 0);
    t.finish()
}

fn layer2() -> Vec<u8> {
    let mut t = TarBuilder::new();
    t.file("etc/a", b"a2", 0o644, 0, 0);
    t.raw_file(b"etc/.wh.b", b"");
    t.dir("dir", 0o755, 0, 0);
    t.raw_file(b"dir/.wh..wh..opq", b"");
    t.file("dir/z", b"z", 0o644, 0, 0);
    t.file("c", b"c", 0o644, 0, 0);
    t.finish()
}

/// The merged view both drivers must show for layer1 + layer2.
fn expected_view() -> BTreeMap<String, String> {
    [
        ("bin", "dir"),
        ("bin/sh", "file:sh"),
        ("c", "file:c"),
        ("dir", "dir"),
        ("dir/z", "file:z"),
        ("etc", "dir"),
        ("etc/a", "file:a2"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// path -> kind (and content for files), of everything under `root`.
fn view(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let meta = fs::symlink_metadata(&path).unwrap();
            let ft = meta.file_type();
            let kind = if ft.is_dir() {
                walk(root, &path, out);
                "dir".to_owned()
            } else if ft.is_file() {
                format!(
                    "file:{}",
                    String::from_utf8_lossy(&fs::read(&path).unwrap())
                )
            } else if ft.is_char_device() {
                format!("chr:{}", meta.rdev())
            } else {
                format!("other:{:?}", ft)
            };
            out.insert(rel, kind);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Unmounts (lazily) on drop.
struct MountGuard(PathBuf);

impl Drop for MountGuard {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
    }
}

/// Performs `mounts` on `target` in a new private mount namespace of a fresh thread, runs `f`
/// there, and unmounts. The namespace dies with the thread.
fn with_mounted<T: Send>(mounts: &[Mount], target: &Path, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: CLONE_NEWNS (which implies CLONE_FS) only gives this thread its own
            // mount namespace and fs info; no file descriptor table is unshared, so no fd
            // crosses threads in a way the call could invalidate.
            unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS) }
                .expect("unshare mount namespace");
            rustix::mount::mount_change(
                "/",
                rustix::mount::MountPropagationFlags::REC
                    | rustix::mount::MountPropagationFlags::PRIVATE,
            )
            .expect("make / private");
            let mut guards = Vec::new();
            for m in mounts {
                let (flags, data) = m.flags_and_data();
                let data = CString::new(data).unwrap();
                let at = target.join(&m.target);
                rustix::mount::mount(
                    m.source.as_path(),
                    &at,
                    m.kind.as_str(),
                    flags,
                    Some(data.as_c_str()),
                )
                .unwrap_or_else(|e| panic!("mount {m:?}: {e}"));
                guards.push(MountGuard(at));
            }
            let out = f();
            drop(guards);
            out
        })
        .join()
        .expect("mount thread panicked")
    })
}

#[test]
fn overlay_stack_shows_the_merged_view() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // This host has overlayfs and the temp dir is not on an overlay.
    assert_eq!(SnapshotDriver::detect(dir.path()), SnapshotDriver::Overlay);
    let store = SnapshotStore::open(dir.path().join("snapshots"), SnapshotDriver::Overlay).unwrap();
    let (l1, l2) = (layer1(), layer2());
    let (d1, d2) = (sha256_digest(&l1), sha256_digest(&l2));

    let (c1, s1) = store.commit_layer(None, Some(&d1), &l1[..]).unwrap();
    assert_eq!(c1, d1, "ChainID(L0) = DiffID(L0)");
    assert_eq!(s1.diff_id, d1);
    let (c2, _) = store.commit_layer(Some(&c1), Some(&d2), &l2[..]).unwrap();
    assert_eq!(c2, chain_id(&[d1.clone(), d2.clone()]).unwrap());
    assert_eq!(store.list_committed().unwrap(), {
        let mut v = vec![c1.clone(), c2.clone()];
        v.sort();
        v
    });
    // The committed overlay snapshot of layer 2 holds overlay whiteouts.
    let l2_fs = store.committed_fs(&c2).unwrap();
    assert!(
        fs::symlink_metadata(l2_fs.join("etc/b"))
            .unwrap()
            .file_type()
            .is_char_device()
    );

    let mounts = store.prepare_active("ctr1", Some(&c2)).unwrap();
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].kind, "overlay");
    let lower = mounts[0]
        .options
        .iter()
        .find_map(|o| o.strip_prefix("lowerdir="))
        .unwrap();
    assert_eq!(lower.split(':').count(), 2);
    assert_eq!(store.mounts("ctr1").unwrap(), mounts);
    assert!(matches!(
        store.prepare_active("ctr1", Some(&c2)),
        Err(ContentError::SnapshotExists(_))
    ));

    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let merged = with_mounted(&mounts, &mnt, || {
        let before = view(&mnt);
        // Container changes land in the upper dir.
        fs::write(mnt.join("new-file"), b"new").unwrap();
        fs::remove_file(mnt.join("bin/sh")).unwrap();
        before
    });
    assert_eq!(merged, expected_view());
    // Unmounted: the mount point is empty again.
    assert_eq!(fs::read_dir(&mnt).unwrap().count(), 0);

    let upper = store.active_fs("ctr1").unwrap();
    assert_eq!(fs::read(upper.join("new-file")).unwrap(), b"new");
    let sh = fs::symlink_metadata(upper.join("bin/sh")).unwrap();
    assert!(sh.file_type().is_char_device() && sh.rdev() == 0);

    // The container's changes as a layer: `.wh.` entries, and they apply back.
    let mut diff = Vec::new();
    let diff_id = diff_overlay_upper(&upper, &mut diff).unwrap();
    assert_eq!(diff_id, sha256_digest(&diff));
    let names = tar_names(&diff);
    assert!(names.contains(&"bin/.wh.sh".to_owned()), "{names:?}");
    assert!(names.contains(&"new-file".to_owned()), "{names:?}");
    let (c3, _) = store
        .commit_layer(Some(&c2), Some(&diff_id), &diff[..])
        .unwrap();
    let mounts3 = store.prepare_active("ctr2", Some(&c3)).unwrap();
    let merged3 = with_mounted(&mounts3, &mnt, || view(&mnt));
    let mut want3 = expected_view();
    want3.remove("bin/sh");
    want3.insert("new-file".into(), "file:new".into());
    assert_eq!(merged3, want3);

    // Removal order is enforced.
    assert!(matches!(
        store.remove_committed(&c2),
        Err(ContentError::SnapshotInUse(..))
    ));
    store.remove_active("ctr1").unwrap();
    store.remove_active("ctr2").unwrap();
    store.remove_committed(&c3).unwrap();
    store.remove_committed(&c2).unwrap();
    store.remove_committed(&c1).unwrap();
    assert!(store.list_committed().unwrap().is_empty());
    assert!(store.list_active().unwrap().is_empty());
    assert_eq!(
        fs::read_dir(dir.path().join("snapshots/snapshots"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn copy_driver_shows_the_same_view() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path().join("snapshots"), SnapshotDriver::Copy).unwrap();
    let (c1, _) = store.commit_layer(None, None, &layer1()[..]).unwrap();
    let (c2, _) = store.commit_layer(Some(&c1), None, &layer2()[..]).unwrap();
    // A copy snapshot holds the whole tree, whiteouts applied.
    assert_eq!(view(&store.committed_fs(&c2).unwrap()), expected_view());
    let mounts = store.prepare_active("ctr", Some(&c2)).unwrap();
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].kind, "bind");
    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let merged = with_mounted(&mounts, &mnt, || {
        fs::write(mnt.join("written"), b"w").unwrap();
        view(&mnt)
    });
    let mut want = expected_view();
    want.insert("written".into(), "file:w".into());
    assert_eq!(merged, want);
    // Writes do not reach the committed parent.
    assert!(!store.committed_fs(&c2).unwrap().join("written").exists());
    store.remove_active("ctr").unwrap();
    store.remove_committed(&c2).unwrap();
    store.remove_committed(&c1).unwrap();
}

#[test]
fn failed_commit_leaves_nothing() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("snapshots");
    let store = SnapshotStore::open(&root, SnapshotDriver::Overlay).unwrap();
    let l1 = layer1();
    // Wrong expected DiffID.
    let wrong = sha256_digest(b"not it");
    assert!(matches!(
        store.commit_layer(None, Some(&wrong), &l1[..]),
        Err(ContentError::DigestMismatch { .. })
    ));
    // A malicious layer.
    let mut bad = TarBuilder::new();
    bad.raw_file(b"../../escape", b"x");
    assert!(store.commit_layer(None, None, &bad.finish()[..]).is_err());
    // An unknown parent.
    assert!(matches!(
        store.commit_layer(Some(&wrong), None, &l1[..]),
        Err(ContentError::SnapshotNotFound(_))
    ));
    assert!(matches!(
        store.prepare_active("k", Some(&wrong)),
        Err(ContentError::SnapshotNotFound(_))
    ));
    assert!(matches!(
        store.prepare_active("../k", None),
        Err(ContentError::InvalidKey(_))
    ));
    assert!(store.list_committed().unwrap().is_empty());
    assert_eq!(fs::read_dir(root.join("snapshots")).unwrap().count(), 0);
    // Committing the same layer twice keeps one snapshot.
    let (c1, _) = store.commit_layer(None, None, &l1[..]).unwrap();
    let (again, _) = store.commit_layer(None, None, &l1[..]).unwrap();
    assert_eq!(c1, again);
    assert_eq!(fs::read_dir(root.join("snapshots")).unwrap().count(), 1);
    // A store is not reopened with another driver; orphans are removed on open.
    fs::create_dir(root.join("snapshots/999")).unwrap();
    drop(store);
    assert!(SnapshotStore::open(&root, SnapshotDriver::Copy).is_err());
    let store = SnapshotStore::open(&root, SnapshotDriver::Overlay).unwrap();
    assert!(!root.join("snapshots/999").exists());
    assert!(store.has_committed(&c1).unwrap());
    // An empty active snapshot on the overlay driver is a bind mount.
    let m = store.prepare_active("empty", None).unwrap();
    assert_eq!(m[0].kind, "bind");
    store.remove_active("empty").unwrap();
}

fn tar_names(bytes: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(bytes);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .unwrap()
                .display()
                .to_string()
                .trim_end_matches('/')
                .to_owned()
        })
        .collect()
}

/// What layer1 + layer2 + (write new-file, delete bin/sh) shows.
fn expected_after_changes() -> BTreeMap<String, String> {
    let mut want = expected_view();
    want.remove("bin/sh");
    want.insert("new-file".into(), "file:new".into());
    want
}

#[test]
fn overlay_commit_active_becomes_a_lower_layer() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path().join("snapshots"), SnapshotDriver::Overlay).unwrap();
    let (c1, _) = store.commit_layer(None, None, &layer1()[..]).unwrap();
    let (c2, _) = store.commit_layer(Some(&c1), None, &layer2()[..]).unwrap();
    let mounts = store.prepare_active("work", Some(&c2)).unwrap();
    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    with_mounted(&mounts, &mnt, || {
        fs::write(mnt.join("new-file"), b"new").unwrap();
        fs::remove_file(mnt.join("bin/sh")).unwrap();
    });
    let mut layer = Vec::new();
    let diff_id = store.diff_active("work", &mut layer).unwrap();
    // Computing it again inside commit gives the same DiffID.
    let mut again = Vec::new();
    assert_eq!(store.diff_active("work", &mut again).unwrap(), diff_id);
    let chain = store.commit_active("work", None).unwrap();
    assert_eq!(chain, content::next_chain_id(Some(&c2), &diff_id));
    assert!(store.list_active().unwrap().is_empty());
    assert!(store.has_committed(&chain).unwrap());

    let mounts = store.prepare_active("reader", Some(&chain)).unwrap();
    let lower = mounts[0]
        .options
        .iter()
        .find_map(|o| o.strip_prefix("lowerdir="))
        .unwrap();
    assert_eq!(lower.split(':').count(), 3);
    let merged = with_mounted(&mounts, &mnt, || view(&mnt));
    assert_eq!(merged, expected_after_changes());

    // The exported layer, applied as a pulled layer, yields the same ChainID's content.
    let other = SnapshotStore::open(dir.path().join("other"), SnapshotDriver::Copy).unwrap();
    let (o1, _) = other.commit_layer(None, None, &layer1()[..]).unwrap();
    let (o2, _) = other.commit_layer(Some(&o1), None, &layer2()[..]).unwrap();
    let (o3, _) = other
        .commit_layer(Some(&o2), Some(&diff_id), &layer[..])
        .unwrap();
    assert_eq!(o3, chain);
    assert_eq!(
        view(&other.committed_fs(&o3).unwrap()),
        expected_after_changes()
    );
    store.remove_active("reader").unwrap();
}

#[test]
fn copy_driver_diff_lists_only_changes() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path().join("snapshots"), SnapshotDriver::Copy).unwrap();
    let (c1, _) = store.commit_layer(None, None, &layer1()[..]).unwrap();
    let (c2, _) = store.commit_layer(Some(&c1), None, &layer2()[..]).unwrap();
    store.prepare_active("work", Some(&c2)).unwrap();
    let active = store.active_fs("work").unwrap();
    fs::write(active.join("new-file"), b"new").unwrap();
    fs::remove_file(active.join("bin/sh")).unwrap();

    let mut layer = Vec::new();
    let diff_id = store.diff_active("work", &mut layer).unwrap();
    assert_eq!(diff_id, sha256_digest(&layer));
    let names = tar_names(&layer);
    assert!(names.contains(&"new-file".to_owned()), "{names:?}");
    assert!(names.contains(&"bin/.wh.sh".to_owned()), "{names:?}");
    for unchanged in ["etc/a", "c", "dir/z", "etc"] {
        assert!(
            !names.contains(&unchanged.to_owned()),
            "{unchanged} in {names:?}"
        );
    }

    let chain = store.commit_active("work", Some(&diff_id)).unwrap();
    assert_eq!(chain, content::next_chain_id(Some(&c2), &diff_id));
    assert_eq!(
        view(&store.committed_fs(&chain).unwrap()),
        expected_after_changes()
    );

    // Applying the diff on the parent reproduces the committed tree.
    let (c3, _) = {
        let other = SnapshotStore::open(dir.path().join("other"), SnapshotDriver::Copy).unwrap();
        let (o1, _) = other.commit_layer(None, None, &layer1()[..]).unwrap();
        let (o2, _) = other.commit_layer(Some(&o1), None, &layer2()[..]).unwrap();
        let r = other.commit_layer(Some(&o2), None, &layer[..]).unwrap();
        assert_eq!(
            view(&other.committed_fs(&r.0).unwrap()),
            expected_after_changes()
        );
        r
    };
    assert_eq!(c3, chain);
}

/// Runs `f` in a new private mount namespace of a fresh thread (processes it starts share
/// that namespace), so that what it mounts disappears with the thread.
fn in_private_namespace<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    with_mounted(&[], Path::new("/"), f)
}

fn run(program: &str, args: &[&str]) {
    let status = std::process::Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(status.success(), "{program} {args:?}");
}

#[test]
fn detect_picks_copy_where_overlay_cannot_work() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p).display().to_string();
    // ext4 without the `filetype` feature: readdir answers DT_UNKNOWN (no d_type), which
    // dockerd refuses overlay2 on too.
    run("truncate", &["-s", "64M", &path("nodtype.img")]);
    run(
        "mkfs.ext4",
        &["-q", "-F", "-O", "^filetype", &path("nodtype.img")],
    );
    for sub in ["nodtype", "tmpfs", "lower", "upper", "work", "merged"] {
        fs::create_dir(dir.path().join(sub)).unwrap();
    }
    let (no_d_type, on_tmpfs, on_overlay) = in_private_namespace(|| {
        // A loop mount with autoclear: the device goes when the namespace does.
        run(
            "mount",
            &["-o", "loop", &path("nodtype.img"), &path("nodtype")],
        );
        run("mount", &["-t", "tmpfs", "tmpfs", &path("tmpfs")]);
        let overlay = format!(
            "lowerdir={},upperdir={},workdir={}",
            path("lower"),
            path("upper"),
            path("work")
        );
        run(
            "mount",
            &["-t", "overlay", "overlay", "-o", &overlay, &path("merged")],
        );
        let results = (
            SnapshotDriver::detect(&dir.path().join("nodtype")),
            SnapshotDriver::detect(&dir.path().join("tmpfs")),
            SnapshotDriver::detect(&dir.path().join("merged")),
        );
        // The probes leave nothing behind.
        for sub in ["nodtype", "tmpfs", "merged"] {
            let left: Vec<_> = fs::read_dir(dir.path().join(sub))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .filter(|n| n != "lost+found")
                .collect();
            assert!(left.is_empty(), "{sub}: {left:?}");
        }
        for sub in ["merged", "tmpfs", "nodtype"] {
            run("umount", &[&path(sub)]);
        }
        results
    });
    assert_eq!(no_d_type, SnapshotDriver::Copy);
    assert_eq!(on_tmpfs, SnapshotDriver::Overlay);
    assert_eq!(on_overlay, SnapshotDriver::Copy);
    assert_eq!(SnapshotDriver::Copy.docker_name(), "vfs");
    assert_eq!(SnapshotDriver::Overlay.docker_name(), "overlay2");
}
