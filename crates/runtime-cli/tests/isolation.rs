//! Namespace isolation: pid, uts, network, mount and user namespaces.
//! Needs root; see tests/common/mod.rs.

mod common;

use std::fs;
use std::time::Duration;

use common::*;
use serde_json::json;

/// The user program is pid 1 of a new pid namespace.
#[test]
fn program_is_pid_one() {
    let c = Container::new(
        "pid1",
        &["sh", "-c", "echo $$; ls /proc | grep -c '^[0-9]'"],
    );
    let out = c.run();
    // Only sh itself and ls/grep (children of the pipeline) are visible.
    let lines = out.ok().lines();
    assert_eq!(lines[0], "1", "{out:?}");
    let visible: usize = lines[1].parse().unwrap();
    assert!(
        visible <= 4,
        "container sees {visible} processes: host pid ns?"
    );
}

/// The hostname comes from the spec, in a new uts namespace.
#[test]
fn hostname_comes_from_the_spec() {
    let host_before = nix::unistd::gethostname().unwrap();
    let mut c = Container::new("uts", &["hostname"]);
    c.config["hostname"] = json!("berth-box");
    let out = c.run();
    assert_eq!(out.ok().lines(), vec!["berth-box"]);
    assert_eq!(nix::unistd::gethostname().unwrap(), host_before);
}

/// A new network namespace has only the loopback interface.
#[test]
fn network_namespace_has_only_lo() {
    // /proc/net/dev lists the interfaces of the reader's network namespace;
    // /sys/class/net those of the namespace that mounted sysfs.
    let c = Container::new(
        "net",
        &[
            "sh",
            "-c",
            "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; echo ---; ls /sys/class/net",
        ],
    );
    let out = c.run();
    out.ok();
    let (proc_part, sys_part) = out.stdout.split_once("---\n").expect("marker");
    assert_eq!(proc_part.trim(), "lo", "{out:?}");
    assert_eq!(sys_part.split_whitespace().collect::<Vec<_>>(), vec!["lo"]);
    // Host has more than lo (otherwise the check would prove nothing).
    let host = fs::read_to_string("/proc/net/dev").unwrap();
    assert!(host.lines().count() > 3, "host has only lo?");
}

/// A mount made inside the container is invisible on the host.
#[test]
fn mounts_inside_stay_inside() {
    let mut c = Container::new(
        "mnt",
        &[
            "sh",
            "-c",
            "mkdir -p /tmp/inner && mount -t tmpfs inner-tmpfs /tmp/inner && \
           touch /tmp/inner/f && grep -c inner-tmpfs /proc/self/mountinfo",
        ],
    );
    for set in ["bounding", "effective", "permitted"] {
        c.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_SYS_ADMIN"));
    }
    let out = c.run();
    assert_eq!(out.ok().lines(), vec!["1"], "{out:?}");
    let host = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !host.contains("inner-tmpfs"),
        "container mount visible on host"
    );
    // The file went to the tmpfs, not to the rootfs directory below it.
    assert!(c.rootfs().join("tmp/inner").is_dir());
    assert!(!c.rootfs().join("tmp/inner/f").exists());
    assert_nothing_left(&c);
}

/// With a user namespace mapping 0 -> 100000, container root is host uid
/// 100000 and `id -u` inside says 0.
#[test]
fn user_namespace_maps_root_to_an_unprivileged_uid() {
    let mut c = Container::new(
        "userns",
        &["sh", "-c", "id -u > /tmp/inside; exec sleep 60"],
    );
    c.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "type": "user" }));
    c.config["linux"]["uidMappings"] =
        json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    c.config["linux"]["gidMappings"] =
        json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    // The container root must be able to write its /tmp.
    nix::unistd::chown(
        &c.rootfs().join("tmp"),
        Some(nix::unistd::Uid::from_raw(100000)),
        Some(nix::unistd::Gid::from_raw(100000)),
    )
    .unwrap();
    c.create_and_start();
    let pid = c.pid();
    let inside = c.rootfs().join("tmp/inside");
    assert!(
        wait_until(Duration::from_secs(10), || fs::read_to_string(&inside)
            .is_ok_and(|s| s.ends_with('\n'))),
        "program did not run"
    );
    assert_eq!(fs::read_to_string(&inside).unwrap(), "0\n");
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let uids: Vec<&str> = uid_line.split_whitespace().skip(1).collect();
    assert_eq!(uids, vec!["100000"; 4], "{uid_line}");
    let gid_line = status.lines().find(|l| l.starts_with("Gid:")).unwrap();
    assert!(
        gid_line.split_whitespace().skip(1).all(|g| g == "100000"),
        "{gid_line}"
    );
    let map = fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    assert_eq!(
        map.split_whitespace().collect::<Vec<_>>(),
        vec!["0", "100000", "65536"]
    );
    // exec joins the user namespace too.
    assert_eq!(c.exec(&["id", "-u"]).ok().lines(), vec!["0"]);
}

/// Detaches a host mount at the end of a test, also when it fails.
struct HostMount(std::path::PathBuf);

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(self.0.as_path(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Mount propagation (mount_namespaces(7)): a bind with `rshared` under `rootfsPropagation:
/// rshared` stays a peer of its shared host mount, as with runc: what the host mounts under
/// it later appears inside, and the container's mount table shows it shared (not a slave,
/// which the detach of the old root must not make it).
#[test]
fn rshared_bind_sees_later_host_mounts() {
    let mut c = Container::new("rshared", &["sleep", "300"]);
    let host = c.host_dir();
    fs::create_dir_all(host.join("sub")).unwrap();
    let host_str = path_str(&host).to_string();
    // The source must be a shared mount: a bind of the directory onto itself, made shared.
    nix::mount::mount(
        Some(host.as_path()),
        host.as_path(),
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    let _source = HostMount(host.clone());
    nix::mount::mount(
        None::<&str>,
        host.as_path(),
        None::<&str>,
        nix::mount::MsFlags::MS_SHARED,
        None::<&str>,
    )
    .unwrap();
    c.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/data", "type": "bind", "source": host_str,
        "options": ["rbind", "rshared"]
    }));
    c.config["linux"]["rootfsPropagation"] = json!("rshared");
    c.create_and_start();
    // Mounted on the host after the container started.
    nix::mount::mount(
        Some("tmpfs"),
        host.join("sub").as_path(),
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )
    .unwrap();
    let _sub = HostMount(host.join("sub"));
    fs::write(host.join("sub/f"), "from the host\n").unwrap();
    assert_eq!(
        c.exec(&["cat", "/data/sub/f"]).ok().lines(),
        vec!["from the host"]
    );
    let table = c
        .exec(&["sh", "-c", "grep ' /data ' /proc/self/mountinfo"])
        .ok()
        .lines()
        .join("\n");
    assert!(table.contains(" shared:"), "{table}");
    assert!(!table.contains(" master:"), "{table}");
    c.rt(&["delete", "--force", &c.id]).ok();
}
