//! End to end with the real docker CLI against a fresh berthd: `docker cp` both ways on
//! running and stopped containers, symlinks that must stay inside the container, `diff`,
//! `export`, `commit`, and bad input answered with Docker-style errors.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::{Daemon, wait_until};

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

/// A local file (mode 0751) and a directory tree (with a 0700 subdirectory) to copy.
fn local_tree(dir: &Path) {
    std::fs::create_dir_all(dir.join("tree/sub")).unwrap();
    std::fs::write(dir.join("file.txt"), b"hello from the host\n").unwrap();
    std::fs::set_permissions(dir.join("file.txt"), std::fs::Permissions::from_mode(0o751)).unwrap();
    std::fs::write(dir.join("tree/top"), b"top").unwrap();
    std::fs::write(dir.join("tree/sub/deep"), b"deep").unwrap();
    std::fs::set_permissions(dir.join("tree/sub"), std::fs::Permissions::from_mode(0o700)).unwrap();
}

/// Waits until `path` exists in the container (its command has got that far).
fn wait_for_file(daemon: &Daemon, container: &str, path: &str) {
    let spec = format!("{container}:{path}");
    assert!(
        wait_until(Duration::from_secs(20), || daemon
            .docker(&["cp", &spec, "-"])
            .code
            == 0),
        "{spec} never appeared"
    );
}

/// The daemon's mounts of container root file systems.
fn rootfs_mounts(daemon: &Daemon) -> Vec<String> {
    let root = daemon.data_root().display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m.starts_with(&root))
        .collect()
}

fn copy_round_trip(daemon: &Daemon, container: &str, work: &Path) {
    let file = work.join("file.txt");
    let tree = work.join("tree");
    daemon
        .docker(&["cp", file.to_str().unwrap(), &format!("{container}:/tmp/")])
        .ok();
    daemon
        .docker(&[
            "cp",
            tree.to_str().unwrap(),
            &format!("{container}:/tmp/tree"),
        ])
        .ok();
    let back = work.join(format!("back-{container}"));
    std::fs::create_dir(&back).unwrap();
    daemon
        .docker(&[
            "cp",
            &format!("{container}:/tmp/file.txt"),
            back.join("file.txt").to_str().unwrap(),
        ])
        .ok();
    daemon
        .docker(&[
            "cp",
            &format!("{container}:/tmp/tree"),
            back.join("tree").to_str().unwrap(),
        ])
        .ok();
    assert_eq!(
        std::fs::read(back.join("file.txt")).unwrap(),
        b"hello from the host\n"
    );
    assert_eq!(mode(&back.join("file.txt")), 0o751);
    assert_eq!(std::fs::read(back.join("tree/sub/deep")).unwrap(), b"deep");
    assert_eq!(std::fs::read(back.join("tree/top")).unwrap(), b"top");
    assert_eq!(mode(&back.join("tree/sub")), 0o700);
    // `/.` copies a directory's content into an existing directory.
    let content = work.join(format!("content-{container}"));
    std::fs::create_dir(&content).unwrap();
    daemon
        .docker(&[
            "cp",
            &format!("{container}:/tmp/tree/."),
            content.to_str().unwrap(),
        ])
        .ok();
    assert_eq!(std::fs::read(content.join("sub/deep")).unwrap(), b"deep");
    assert!(!content.join("tree").exists());
}

#[test]
fn cp_both_ways_on_running_and_stopped_containers() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    let work = tempfile::tempdir().unwrap();
    local_tree(work.path());

    daemon
        .docker(&["run", "-d", "--name", "running", "busybox", "sleep", "60"])
        .ok();
    copy_round_trip(&daemon, "running", work.path());

    daemon
        .docker(&[
            "create",
            "--name",
            "created",
            "busybox",
            "cat",
            "/tmp/file.txt",
        ])
        .ok();
    copy_round_trip(&daemon, "created", work.path());

    daemon
        .docker(&["run", "--name", "exited", "busybox", "true"])
        .ok();
    copy_round_trip(&daemon, "exited", work.path());
    // A copy into a created container is there when it runs.
    daemon.docker(&["start", "created"]).ok();
    daemon.docker(&["wait", "created"]).ok();
    let logs = daemon.docker(&["logs", "created"]).ok().out();
    assert_eq!(logs, "hello from the host");
    // Only the running container's root file system stays mounted.
    let mounts = rootfs_mounts(&daemon);
    let running = daemon
        .docker(&["inspect", "-f", "{{.Id}}", "running"])
        .ok()
        .out();
    assert!(
        mounts.iter().all(|m| m.contains(&running)),
        "stray mounts: {mounts:?}"
    );
}

#[test]
fn symlinks_resolve_inside_the_container() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    let work = tempfile::tempdir().unwrap();
    // A host directory the container names by its host path.
    let host_dir = tempfile::tempdir().unwrap();
    std::fs::write(host_dir.path().join("secret"), b"host secret").unwrap();
    let script = format!(
        "ln -s /etc /etclink; ln -s {} /hostlink; ln -s ../../../../.. /up; echo container > /etc/marker; touch /ready; sleep 60",
        host_dir.path().display()
    );
    daemon
        .docker(&[
            "run", "-d", "--name", "links", "busybox", "sh", "-c", &script,
        ])
        .ok();
    wait_for_file(&daemon, "links", "/ready");

    // Reading through the link gives the container's /etc.
    let out = work.path().join("marker");
    daemon
        .docker(&["cp", "links:/etclink/marker", out.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read(&out).unwrap(), b"container\n");
    let passwd = work.path().join("passwd");
    daemon
        .docker(&["cp", "links:/etclink/passwd", passwd.to_str().unwrap()])
        .ok();
    assert_ne!(
        std::fs::read(&passwd).unwrap(),
        std::fs::read("/etc/passwd").unwrap()
    );
    // The link itself is copied as a link; -L follows it (inside the container).
    let link = work.path().join("link");
    daemon
        .docker(&["cp", "links:/etclink", link.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("/etc"));
    let followed = work.path().join("followed");
    daemon
        .docker(&["cp", "-L", "links:/etclink", followed.to_str().unwrap()])
        .ok();
    assert_eq!(
        std::fs::read(followed.join("marker")).unwrap(),
        b"container\n"
    );

    // Writing through the link lands in the container's /etc, never the host's.
    let name = format!("berth-cp-test-{}", std::process::id());
    let file = work.path().join(&name);
    std::fs::write(&file, b"x").unwrap();
    daemon
        .docker(&["cp", file.to_str().unwrap(), "links:/etclink/"])
        .ok();
    assert!(!Path::new("/etc").join(&name).exists());
    daemon
        .docker(&["cp", &format!("links:/etc/{name}"), "-"])
        .ok();

    // A link to a host path names that path inside the container: nothing there.
    let read = daemon.docker(&["cp", "links:/hostlink/secret", "-"]);
    assert_ne!(read.code, 0);
    assert!(
        read.stderr.contains("Could not find the file"),
        "{}",
        read.stderr
    );
    let write = daemon.docker(&["cp", file.to_str().unwrap(), "links:/hostlink/"]);
    assert_ne!(write.code, 0);
    assert_eq!(std::fs::read_dir(host_dir.path()).unwrap().count(), 1);

    // `..` and links climbing out stop at the container's root.
    let up = work.path().join("up-marker");
    daemon
        .docker(&["cp", "links:/up/etc/marker", up.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read(&up).unwrap(), b"container\n");
    let dotdot = work.path().join("dotdot");
    daemon
        .docker(&["cp", "links:../../../etc/marker", dotdot.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read(&dotdot).unwrap(), b"container\n");
    let escape_name = format!("berth-escape-{}", std::process::id());
    daemon
        .docker(&[
            "cp",
            file.to_str().unwrap(),
            &format!("links:../../../../tmp/{escape_name}"),
        ])
        .ok();
    assert!(!Path::new("/tmp").join(&escape_name).exists());
    daemon
        .docker(&["cp", &format!("links:/tmp/{escape_name}"), "-"])
        .ok();
}

#[test]
fn diff_export_and_commit() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    let work = tempfile::tempdir().unwrap();
    daemon
        .docker(&[
            "run",
            "-d",
            "--name",
            "src",
            "busybox",
            "sh",
            "-c",
            "echo committed > /data.txt; rm /bin/vi; echo more >> /etc/group; touch /ready; sleep 60",
        ])
        .ok();
    wait_for_file(&daemon, "src", "/ready");

    let diff = daemon.docker(&["diff", "src"]).ok().out();
    let lines: Vec<&str> = diff.lines().collect();
    for want in [
        "A /data.txt",
        "D /bin/vi",
        "C /etc/group",
        "C /etc",
        "C /bin",
    ] {
        assert!(lines.contains(&want), "{want} missing from:\n{diff}");
    }
    assert!(!lines.iter().any(|l| l.ends_with(" /proc")), "{diff}");

    // A container that changed nothing lists nothing (the runtime's mount points for
    // /proc, /sys, /dev and the generated /etc files are not changes, as in Docker).
    daemon
        .docker(&["run", "--name", "fresh", "busybox", "true"])
        .ok();
    let fresh = daemon.docker(&["diff", "fresh"]).ok().out();
    assert_eq!(fresh, "", "changes of an idle container");

    let tar = work.path().join("export.tar");
    daemon
        .docker(&["export", "-o", tar.to_str().unwrap(), "src"])
        .ok();
    let listing = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&tar)
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&listing.stdout).into_owned();
    assert!(names.lines().any(|l| l == "data.txt"), "{names}");
    assert!(names.lines().any(|l| l == "bin/sh"), "{names}");
    assert!(!names.lines().any(|l| l == "bin/vi"), "{names}");

    let id = daemon
        .docker(&[
            "commit",
            "--change",
            "ENV A=B",
            "-m",
            "a message",
            "-a",
            "Jane <jane@example.com>",
            "src",
            "committed:v1",
        ])
        .ok()
        .out();
    assert!(id.starts_with("sha256:"), "{id}");
    let out = daemon
        .docker(&[
            "run",
            "--rm",
            "committed:v1",
            "sh",
            "-c",
            "echo A=$A; cat /data.txt; ls /bin/vi 2>/dev/null || echo no-vi",
        ])
        .ok()
        .out();
    assert_eq!(out, "A=B\ncommitted\nno-vi");
    let inspect = daemon
        .docker(&[
            "image",
            "inspect",
            "-f",
            "{{.Author}}|{{.Comment}}|{{len .RootFS.Layers}}",
            "committed:v1",
        ])
        .ok()
        .out();
    assert_eq!(inspect, "Jane <jane@example.com>|a message|2");
    // The source kept running (pause thawed it).
    let state = daemon
        .docker(&["inspect", "-f", "{{.State.Status}}", "src"])
        .ok()
        .out();
    assert_eq!(state, "running");
    let history = daemon.docker(&["history", "committed:v1"]).ok().out();
    assert!(history.contains("a message"), "{history}");

    // Commit of a stopped container, without a name.
    daemon.docker(&["rm", "-f", "src"]).ok();
    daemon
        .docker(&[
            "run",
            "--name",
            "stopped",
            "busybox",
            "sh",
            "-c",
            "echo s > /s",
        ])
        .ok();
    let id = daemon.docker(&["commit", "stopped"]).ok().out();
    let out = daemon.docker(&["run", "--rm", &id, "cat", "/s"]).ok().out();
    assert_eq!(out, "s");
}

#[test]
fn bad_input_gets_docker_errors_and_leaves_nothing() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    let work = tempfile::tempdir().unwrap();
    local_tree(work.path());
    daemon
        .docker(&["create", "--name", "victim", "busybox", "true"])
        .ok();
    let file = work.path().join("file.txt");

    let missing = daemon.docker(&["cp", "victim:/no/such/file", "-"]);
    assert_ne!(missing.code, 0);
    assert!(
        missing
            .stderr
            .contains("Could not find the file /no/such/file in container victim"),
        "{}",
        missing.stderr
    );
    let into_missing = daemon.docker(&["cp", file.to_str().unwrap(), "victim:/no/such/dir/"]);
    assert_ne!(into_missing.code, 0);
    let into_file = daemon.docker(&[
        "cp",
        work.path().join("tree").to_str().unwrap(),
        "victim:/etc/passwd",
    ]);
    assert_ne!(into_file.code, 0);
    let no_container = daemon.docker(&["cp", "ghost:/etc/passwd", "-"]);
    assert!(
        no_container.stderr.contains("No such container"),
        "{}",
        no_container.stderr
    );

    // An upload that is not a tar: 400, nothing written.
    let junk = work.path().join("junk");
    std::fs::write(&junk, vec![b'j'; 4096]).unwrap();
    let upload = daemon.docker_with_stdin(&["cp", "-", "victim:/tmp"], Some(&junk));
    assert_ne!(upload.code, 0);
    assert!(
        upload.stderr.contains("not a valid tar archive"),
        "{}",
        upload.stderr
    );
    // A tar whose entry climbs out with `..` is refused.
    let evil = work.path().join("evil.tar");
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..14].copy_from_slice(b"../../../evil-");
    header.set_size(1);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, &b"x"[..]).unwrap();
    std::fs::write(&evil, builder.into_inner().unwrap()).unwrap();
    let upload = daemon.docker_with_stdin(&["cp", "-", "victim:/tmp"], Some(&evil));
    assert_ne!(upload.code, 0, "{}", upload.stdout);
    assert!(!Path::new("/evil-").exists());

    // A commit with a bad --change makes no image and no blob.
    let images_before = daemon.docker(&["images", "-aq"]).ok().out();
    let blobs = daemon.data_root().join("image/content/blobs/sha256");
    let blobs_before = std::fs::read_dir(&blobs).unwrap().count();
    let bad = daemon.docker(&["commit", "--change", "BOGUS x", "victim", "bad:v1"]);
    assert_ne!(bad.code, 0);
    assert_eq!(daemon.docker(&["images", "-aq"]).ok().out(), images_before);
    assert_eq!(std::fs::read_dir(&blobs).unwrap().count(), blobs_before);

    // No mount left behind by any of it, and the daemon still serves.
    assert!(
        rootfs_mounts(&daemon).is_empty(),
        "{:?}",
        rootfs_mounts(&daemon)
    );
    daemon
        .docker(&["cp", file.to_str().unwrap(), "victim:/tmp/"])
        .ok();
    daemon.docker(&["cp", "victim:/tmp/file.txt", "-"]).ok();
    assert!(rootfs_mounts(&daemon).is_empty());
}

/// The uid/gid of the single entry of a `docker cp c:path -` tar.
fn owner_in_container(daemon: &Daemon, spec: &str) -> (u64, u64) {
    let run = daemon.docker(&["cp", spec, "-"]);
    run.ok();
    let mut archive = tar::Archive::new(run.stdout.as_bytes());
    let entry = archive.entries().unwrap().next().unwrap().unwrap();
    (entry.header().uid().unwrap(), entry.header().gid().unwrap())
}

#[test]
fn cp_keeps_owners_and_archive_mode_takes_the_container_user() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("owned");
    std::fs::write(&file, b"v1").unwrap();
    std::os::unix::fs::chown(&file, Some(4321), Some(8765)).unwrap();
    daemon
        .docker(&[
            "create",
            "--name",
            "owner",
            "--user",
            "1234:5678",
            "busybox",
            "true",
        ])
        .ok();
    daemon
        .docker(&["cp", file.to_str().unwrap(), "owner:/tmp/plain"])
        .ok();
    assert_eq!(
        owner_in_container(&daemon, "owner:/tmp/plain"),
        (4321, 8765)
    );
    daemon
        .docker(&["cp", "-a", file.to_str().unwrap(), "owner:/tmp/archived"])
        .ok();
    assert_eq!(
        owner_in_container(&daemon, "owner:/tmp/archived"),
        (1234, 5678)
    );
    // Copying onto an existing file replaces its content.
    std::fs::write(&file, b"v2").unwrap();
    daemon
        .docker(&["cp", file.to_str().unwrap(), "owner:/tmp/plain"])
        .ok();
    let out = work.path().join("again");
    daemon
        .docker(&["cp", "owner:/tmp/plain", out.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read(&out).unwrap(), b"v2");
}
