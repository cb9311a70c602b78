//! A cgroup2-only layout on this hybrid host: the test re-runs its own binary in a private
//! mount namespace, where /sys/fs/cgroup (tmpfs plus v1 mounts) is replaced by a cgroup2 mount.
//! That cgroup2 is the same hierarchy as the host's /sys/fs/cgroup/unified, so the host parent
//! removes anything the child left there.
//!
//! Only hugetlb is available on this host's cgroup2, so memory/pids/cpu limits cannot be shown
//! on v2 here; they are checked on a fake tree by the unit tests.

mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cgroups::{Cgroup, Hierarchies, Layout};
use common::*;
use oci_spec::runtime::LinuxResources;

const CHILD_ENV: &str = "BERTH_CGROUP2_ONLY_CHILD";

#[test]
fn unified_only_layout_in_a_mount_namespace() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let Some(host_v2) = Hierarchies::detect()
        .unwrap()
        .unified_mount()
        .map(Path::to_path_buf)
    else {
        eprintln!("skipped: no cgroup2 mount");
        return;
    };
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "unified_only_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1");
    // SAFETY: unshare(2) is async-signal-safe; the new mount namespace is the child's alone.
    unsafe {
        command.pre_exec(|| {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn().unwrap();
    let child_pid = child.id();
    let output = child.wait_with_output().unwrap();
    // Whatever happened, no test cgroup of the child may stay in the shared cgroup2 tree.
    let leftover = host_v2.join(format!("berth-test-{child_pid}-0-v2only"));
    if leftover.exists() {
        let _ = std::fs::write(leftover.join("cgroup.kill"), "1");
        std::thread::sleep(Duration::from_millis(100));
        let _ = std::fs::remove_dir(&leftover);
        panic!("child left {} behind", leftover.display());
    }
    assert!(output.status.success(), "child failed: {:?}", output.status);
}

/// Runs only inside the namespace made above.
#[test]
fn unified_only_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    use nix::mount::{MntFlags, MsFlags, mount, umount2};
    // Private propagation first, so nothing below reaches the host's mounts.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .unwrap();
    umount2("/sys/fs/cgroup", MntFlags::MNT_DETACH).unwrap();
    mount(
        Some("cgroup2"),
        "/sys/fs/cgroup",
        Some("cgroup2"),
        MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();

    let hierarchies = Hierarchies::detect().unwrap();
    assert_eq!(hierarchies.layout(), Layout::Unified);
    assert_eq!(hierarchies.cgroup_version_string(), "2");
    assert_eq!(
        hierarchies.unified_mount(),
        Some(Path::new("/sys/fs/cgroup"))
    );
    let cgroup = Cgroup::new(&hierarchies, &unique_path("v2only")).unwrap();
    let guard = CgroupGuard(cgroup.clone());
    cgroup.create().unwrap();
    let dir = Path::new("/sys/fs/cgroup").join(cgroup.path().trim_start_matches('/'));
    assert!(dir.is_dir());
    let offered = read(dir.join("cgroup.controllers"));
    eprintln!("controllers of the new cgroup: {offered:?}");

    // Controllers this cgroup2 lacks: defaults pass, values are Unsupported.
    let defaults: LinuxResources =
        serde_json::from_str(r#"{"pids": {"limit": 0}, "memory": {}, "cpu": {}}"#).unwrap();
    cgroup.apply(&defaults).unwrap();
    if !offered.contains("pids") {
        let pids: LinuxResources = serde_json::from_str(r#"{"pids": {"limit": 5}}"#).unwrap();
        assert_eq!(
            cgroup.apply(&pids).unwrap_err().kind(),
            types::ErrorKind::Unsupported
        );
    }
    if offered.contains("hugetlb") && dir.join("hugetlb.2MB.max").exists() {
        let huge: LinuxResources = serde_json::from_str(
            r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}],
                                     "unified": {"hugetlb.1GB.max": "0"}}"#,
        )
        .unwrap();
        cgroup.apply(&huge).unwrap();
        assert_eq!(read(dir.join("hugetlb.2MB.max")), "2097152");
        if dir.join("hugetlb.1GB.max").exists() {
            assert_eq!(read(dir.join("hugetlb.1GB.max")), "0");
        }
    }
    // Devices on a unified host: the eBPF filter.
    let devices: LinuxResources = serde_json::from_str(
        r#"{"devices": [{"allow": true, "access": "rwm"},
                        {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"}]}"#,
    )
    .unwrap();
    cgroup.apply(&devices).unwrap();
    let join = |pid| cgroup.add_process(pid).unwrap();
    assert_eq!(probe_open(join, "/dev/null", libc::O_WRONLY), libc::EPERM);
    assert_eq!(probe_open(join, "/dev/null", libc::O_RDONLY), 0);

    let mut sleeper = ChildGuard::worker();
    cgroup.add_process(sleeper.pid()).unwrap();
    sleeper.go();
    assert_eq!(cgroup.pids().unwrap(), vec![sleeper.pid()]);
    let stats = cgroup.stats().unwrap();
    assert!(stats.cpu.usage_total_ns > 0, "{stats:?}");

    cgroup.freeze().unwrap();
    assert!(cgroup.is_frozen().unwrap());
    assert!(read(dir.join("cgroup.events")).contains("frozen 1"));
    let status = read(format!("/proc/{}/status", sleeper.pid()));
    eprintln!(
        "frozen task: {}",
        status.lines().find(|l| l.starts_with("State:")).unwrap()
    );
    cgroup.thaw().unwrap();
    assert!(!cgroup.is_frozen().unwrap());

    cgroup.kill_all(libc::SIGKILL).unwrap();
    let status = sleeper.wait_exit(Duration::from_secs(5)).expect("killed");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));

    // kill_all with another signal goes through freeze/signal/thaw.
    let mut second = ChildGuard::sleep();
    cgroup.add_process(second.pid()).unwrap();
    cgroup.kill_all(libc::SIGTERM).unwrap();
    let status = second
        .wait_exit(Duration::from_secs(5))
        .expect("terminated");
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    assert!(!cgroup.is_frozen().unwrap());

    // Killing a frozen cgroup.
    let mut third = ChildGuard::sleep();
    cgroup.add_process(third.pid()).unwrap();
    cgroup.freeze().unwrap();
    cgroup.kill_all(libc::SIGKILL).unwrap();
    let status = third
        .wait_exit(Duration::from_secs(5))
        .expect("frozen sleep did not die");
    assert_eq!(status.signal(), Some(libc::SIGKILL));

    cgroup.destroy().unwrap();
    assert!(!dir.exists());
    assert!(!cgroup.exists());
    drop(guard);
}
