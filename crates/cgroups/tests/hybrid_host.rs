//! Root tests on the real host (hybrid here: v1 controllers plus cgroup2 with hugetlb).
//! Each test makes its own /berth-test-<pid>-<n>-<tag> cgroup and removes it through guards.

mod common;

use std::path::Path;
use std::time::Duration;

use cgroups::{Cgroup, Hierarchies, Layout};
use common::*;
use oci_spec::runtime::LinuxResources;

fn v1(cgroup: &Cgroup, controller: &str, file: &str) -> String {
    let mount = cgroup
        .hierarchies()
        .v1_mount(controller)
        .unwrap_or_else(|| panic!("{controller} not mounted"));
    read(mount.join(cgroup.path().trim_start_matches('/')).join(file))
}

#[test]
fn hybrid_lifecycle_limits_stats_freeze_kill_destroy() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let hierarchies = Hierarchies::detect().unwrap();
    assert_eq!(
        hierarchies.layout(),
        Layout::Hybrid,
        "this test host is hybrid"
    );
    assert_eq!(hierarchies.cgroup_version_string(), "1");
    let cgroup = Cgroup::new(&hierarchies, &unique_path("life")).unwrap();
    let guard = CgroupGuard(cgroup.clone());
    assert!(!cgroup.exists());
    cgroup.create().unwrap();
    assert!(cgroup.exists());
    for dir in dirs_of(&cgroup) {
        assert!(dir.is_dir(), "{} missing", dir.display());
    }

    let disk = a_disk();
    let throttle = disk
        .map(|(major, minor)| {
            format!(r#", "throttleReadBpsDevice": [{{"major": {major}, "minor": {minor}, "rate": 1048576}}],
                       "throttleWriteIOPSDevice": [{{"major": {major}, "minor": {minor}, "rate": 300}}]"#)
        })
        .unwrap_or_default();
    let hugetlb = Path::new("/sys/fs/cgroup/unified")
        .join(cgroup.path().trim_start_matches('/'))
        .join("hugetlb.2MB.max")
        .exists();
    let resources: LinuxResources = serde_json::from_str(&format!(
        r#"{{
            "memory": {{"limit": 67108864, "swap": 134217728, "reservation": 33554432, "swappiness": 10}},
            "cpu": {{"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"}},
            "pids": {{"limit": 20}},
            "blockIO": {{"weight": 200 {throttle}}}
            {}
        }}"#,
        if hugetlb { r#", "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]"# } else { "" }
    ))
    .unwrap();
    cgroup.apply(&resources).unwrap();

    assert_eq!(v1(&cgroup, "memory", "memory.limit_in_bytes"), "67108864");
    if Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists() {
        assert_eq!(
            v1(&cgroup, "memory", "memory.memsw.limit_in_bytes"),
            "134217728"
        );
    }
    assert_eq!(
        v1(&cgroup, "memory", "memory.soft_limit_in_bytes"),
        "33554432"
    );
    assert_eq!(v1(&cgroup, "memory", "memory.swappiness"), "10");
    assert_eq!(v1(&cgroup, "cpu", "cpu.shares"), "512");
    assert_eq!(v1(&cgroup, "cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(v1(&cgroup, "cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(v1(&cgroup, "cpuset", "cpuset.cpus"), "0");
    assert_eq!(v1(&cgroup, "pids", "pids.max"), "20");
    let weight = v1(&cgroup, "blkio", "blkio.bfq.weight");
    assert!(weight.ends_with("200"), "blkio.bfq.weight reads {weight:?}");
    if let Some((major, minor)) = disk {
        assert_eq!(
            v1(&cgroup, "blkio", "blkio.throttle.read_bps_device"),
            format!("{major}:{minor} 1048576")
        );
        assert_eq!(
            v1(&cgroup, "blkio", "blkio.throttle.write_iops_device"),
            format!("{major}:{minor} 300")
        );
    }
    if hugetlb {
        let dir = Path::new("/sys/fs/cgroup/unified").join(cgroup.path().trim_start_matches('/'));
        assert_eq!(read(dir.join("hugetlb.2MB.max")), "4194304");
    }

    // Lowering memory below the current memsw, then raising both: both write orders work.
    let lower: LinuxResources =
        serde_json::from_str(r#"{"memory": {"limit": 33554432, "swap": 50331648}}"#).unwrap();
    cgroup.apply(&lower).unwrap();
    assert_eq!(v1(&cgroup, "memory", "memory.limit_in_bytes"), "33554432");
    let raise: LinuxResources =
        serde_json::from_str(r#"{"memory": {"limit": 268435456, "swap": 536870912}}"#).unwrap();
    cgroup.apply(&raise).unwrap();
    assert_eq!(v1(&cgroup, "memory", "memory.limit_in_bytes"), "268435456");

    // A real process joins every hierarchy.
    let mut child = ChildGuard::worker();
    cgroup.add_process(child.pid()).unwrap();
    child.go();
    assert_eq!(cgroup.pids().unwrap(), vec![child.pid()]);
    let proc_cgroup = read(format!("/proc/{}/cgroup", child.pid()));
    for line in proc_cgroup.lines() {
        assert!(line.ends_with(cgroup.path()), "{line} in {proc_cgroup}");
    }

    let stats = cgroup.stats().unwrap();
    assert_eq!(stats.pids.current, 1);
    assert_eq!(stats.pids.limit, Some(20));
    assert!(stats.memory.usage > 0, "{stats:?}");
    assert_eq!(stats.memory.limit, Some(268435456));
    assert!(stats.memory.stat.contains_key("inactive_file"));
    assert!(stats.memory.stat.contains_key("rss"));
    assert!(stats.cpu.usage_total_ns > 0, "{stats:?}");
    assert!(!stats.cpu.per_cpu_ns.is_empty());
    assert!(
        serde_json::to_string(&stats)
            .unwrap()
            .contains("io_service_bytes")
    );

    // Freeze: the v1 freezer reports FROZEN and the task stops running.
    cgroup.freeze().unwrap();
    assert!(cgroup.is_frozen().unwrap());
    assert_eq!(v1(&cgroup, "freezer", "freezer.state"), "FROZEN");
    let state = read(format!("/proc/{}/status", child.pid()));
    let state = state
        .lines()
        .find(|l| l.starts_with("State:"))
        .unwrap()
        .to_string();
    eprintln!("frozen task: {state}");
    cgroup.thaw().unwrap();
    assert!(!cgroup.is_frozen().unwrap());
    assert_eq!(v1(&cgroup, "freezer", "freezer.state"), "THAWED");

    // kill_all with SIGTERM: freeze, signal, thaw.
    cgroup.kill_all(libc::SIGTERM).unwrap();
    let status = child
        .wait_exit(Duration::from_secs(5))
        .expect("sleep did not die");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    assert!(!cgroup.is_frozen().unwrap());

    // kill_all with SIGKILL (cgroup.kill on the cgroup2 side here, plus direct signals).
    let mut second = ChildGuard::sleep();
    cgroup.add_process(second.pid()).unwrap();
    cgroup.kill_all(libc::SIGKILL).unwrap();
    let status = second
        .wait_exit(Duration::from_secs(5))
        .expect("sleep did not die");
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(cgroup.pids().unwrap().is_empty());

    // Killing a paused (frozen) cgroup: the task dies and the cgroup ends thawed.
    let mut third = ChildGuard::sleep();
    cgroup.add_process(third.pid()).unwrap();
    cgroup.freeze().unwrap();
    cgroup.kill_all(libc::SIGKILL).unwrap();
    let status = third
        .wait_exit(Duration::from_secs(5))
        .expect("frozen sleep did not die");
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(!cgroup.is_frozen().unwrap());

    // destroy removes every directory, and again is fine.
    cgroup.destroy().unwrap();
    for dir in dirs_of(&cgroup) {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
    assert!(!cgroup.exists());
    cgroup.destroy().unwrap();
    drop(guard);
}

#[test]
fn nested_cgroups_are_destroyed_deepest_first() {
    if !is_root() {
        return;
    }
    let hierarchies = Hierarchies::detect().unwrap();
    let parent_path = unique_path("nest");
    let parent = Cgroup::new(&hierarchies, &parent_path).unwrap();
    let _guard = CgroupGuard(parent.clone());
    let child = Cgroup::new(&hierarchies, &format!("{parent_path}/inner/leaf")).unwrap();
    child.create().unwrap();
    // cpuset values were copied down every level.
    assert!(!v1(&child, "cpuset", "cpuset.cpus").is_empty());
    assert!(!v1(&child, "cpuset", "cpuset.mems").is_empty());
    let mut sleeper = ChildGuard::sleep();
    child.add_process(sleeper.pid()).unwrap();
    assert_eq!(
        parent.pids().unwrap(),
        vec![sleeper.pid()],
        "pids() covers the subtree"
    );
    parent.kill_all(libc::SIGKILL).unwrap();
    sleeper.wait_exit(Duration::from_secs(5)).expect("killed");
    parent.destroy().unwrap();
    for dir in dirs_of(&parent) {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

#[test]
fn v1_device_rules_are_enforced() {
    if !is_root() {
        return;
    }
    let hierarchies = Hierarchies::detect().unwrap();
    if hierarchies.v1_mount("devices").is_none() {
        eprintln!("skipped: no v1 devices hierarchy");
        return;
    }
    let cgroup = Cgroup::new(&hierarchies, &unique_path("dev1")).unwrap();
    let _guard = CgroupGuard(cgroup.clone());
    cgroup.create().unwrap();
    let resources: LinuxResources = serde_json::from_str(
        r#"{"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "r"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"}
        ]}"#,
    )
    .unwrap();
    cgroup.apply(&resources).unwrap();
    let list = v1(&cgroup, "devices", "devices.list");
    assert!(
        list.contains("c 1:3 r") && list.contains("c 1:5 rwm"),
        "{list}"
    );
    let join = |pid| cgroup.add_process(pid).unwrap();
    assert_eq!(probe_open(join, "/dev/null", libc::O_WRONLY), libc::EPERM);
    assert_eq!(probe_open(join, "/dev/null", libc::O_RDONLY), 0);
    assert_eq!(probe_open(join, "/dev/zero", libc::O_WRONLY), 0);
    assert_eq!(probe_open(join, "/dev/full", libc::O_RDONLY), libc::EPERM);
}

#[test]
fn absent_controller_with_a_value_is_unsupported() {
    if !is_root() {
        return;
    }
    let hierarchies = Hierarchies::detect().unwrap();
    if hierarchies.v1_mount("net_cls").is_some() {
        return;
    }
    let cgroup = Cgroup::new(&hierarchies, &unique_path("unsup")).unwrap();
    let _guard = CgroupGuard(cgroup.clone());
    cgroup.create().unwrap();
    let ok: LinuxResources = serde_json::from_str(r#"{"network": {}}"#).unwrap();
    cgroup.apply(&ok).unwrap();
    let bad: LinuxResources = serde_json::from_str(r#"{"network": {"classID": 1}}"#).unwrap();
    let err = cgroup.apply(&bad).unwrap_err();
    assert_eq!(err.kind(), types::ErrorKind::Unsupported);
    assert!(err.to_string().contains("net_cls"), "{err}");
    let bad: LinuxResources = serde_json::from_str(r#"{"unified": {"memory.max": "1"}}"#).unwrap();
    assert_eq!(
        cgroup.apply(&bad).unwrap_err().kind(),
        types::ErrorKind::Unsupported
    );
}

#[test]
fn host_features_of_this_hybrid_host() {
    let hierarchies = Hierarchies::detect().unwrap();
    let features = hierarchies.features();
    eprintln!("{features:?}");
    if hierarchies.layout() == Layout::Hybrid {
        assert!(features.memory_limit && features.cpu_shares && features.pids_limit);
        assert!(features.freezer && features.blkio_throttle && features.cpuset);
        assert_eq!(
            features.hugetlb,
            hierarchies
                .unified_controllers()
                .iter()
                .any(|c| c == "hugetlb")
                || hierarchies.v1_mount("hugetlb").is_some()
        );
    }
}

#[test]
fn oom_kill_is_counted() {
    if !is_root() {
        return;
    }
    let hierarchies = Hierarchies::detect().unwrap();
    let cgroup = Cgroup::new(&hierarchies, &unique_path("oom")).unwrap();
    let _guard = CgroupGuard(cgroup.clone());
    cgroup.create().unwrap();
    // 16 MiB and no swap on top.
    let resources: LinuxResources =
        serde_json::from_str(r#"{"memory": {"limit": 16777216, "swap": 16777216}}"#).unwrap();
    cgroup.apply(&resources).unwrap();
    let mut child = ChildGuard(
        std::process::Command::new("sh")
            .arg("-c")
            // The shell keeps 100 MB in a variable.
            .arg("read line; x=$(head -c 100000000 /dev/zero | tr '\\0' a)")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    cgroup.add_process(child.pid()).unwrap();
    use std::io::Write;
    child.0.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let status = child
        .wait_exit(Duration::from_secs(30))
        .expect("pipeline ended");
    assert!(!status.success(), "tail should have been OOM-killed");
    let stats = cgroup.stats().unwrap();
    assert!(stats.memory.oom_kills >= 1, "{:?}", stats.memory);
}
