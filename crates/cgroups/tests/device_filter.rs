//! Root tests of the cgroup v2 eBPF device filter on the host's real cgroup2 mount
//! (/sys/fs/cgroup/unified on this hybrid host). The v1 devices cgroup of the probe stays the
//! root one (allow all), so what is refused is refused by our program.

mod common;

use std::path::{Path, PathBuf};

use cgroups::bpf::{self, ACC_ALL, ACC_WRITE, DEV_CHAR, ProgramRule};
use cgroups::{Cgroup, Hierarchies};
use common::*;
use oci_spec::runtime::LinuxResources;

/// A bare directory in the cgroup2 hierarchy, removed (after killing members) on drop.
struct V2Dir(PathBuf);

impl Drop for V2Dir {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0.join("cgroup.kill"), "1");
        for _ in 0..100 {
            if std::fs::remove_dir(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

fn unified_mount() -> Option<PathBuf> {
    Hierarchies::detect()
        .ok()?
        .unified_mount()
        .map(Path::to_path_buf)
}

#[test]
fn program_denies_dev_null_writes_and_is_replaced() {
    if !is_root() {
        return;
    }
    let Some(mount) = unified_mount() else {
        eprintln!("skipped: no cgroup2 mount");
        return;
    };
    let dir = V2Dir(mount.join(unique_path("bpf").trim_start_matches('/')));
    std::fs::create_dir(&dir.0).unwrap();
    let join = |pid: i32| std::fs::write(dir.0.join("cgroup.procs"), pid.to_string()).unwrap();

    let deny_null_writes = [
        ProgramRule {
            allow: true,
            dev_type: None,
            major: None,
            minor: None,
            access: ACC_ALL,
        },
        ProgramRule {
            allow: false,
            dev_type: Some(DEV_CHAR),
            major: Some(1),
            minor: Some(3),
            access: ACC_WRITE,
        },
    ];
    bpf::install_device_filter(&dir.0, &bpf::device_program(&deny_null_writes)).unwrap();
    assert_eq!(bpf::attached_device_programs(&dir.0).unwrap(), 1);
    assert_eq!(probe_open(join, "/dev/null", libc::O_WRONLY), libc::EPERM);
    assert_eq!(probe_open(join, "/dev/null", libc::O_RDWR), libc::EPERM);
    assert_eq!(probe_open(join, "/dev/null", libc::O_RDONLY), 0);
    assert_eq!(probe_open(join, "/dev/zero", libc::O_WRONLY), 0);

    // Installing again replaces our program instead of stacking a second one.
    let allow_all = [ProgramRule {
        allow: true,
        dev_type: None,
        major: None,
        minor: None,
        access: ACC_ALL,
    }];
    bpf::install_device_filter(&dir.0, &bpf::device_program(&allow_all)).unwrap();
    assert_eq!(bpf::attached_device_programs(&dir.0).unwrap(), 1);
    assert_eq!(probe_open(join, "/dev/null", libc::O_WRONLY), 0);

    // Default deny: no rules, nothing opens.
    bpf::install_device_filter(&dir.0, &bpf::device_program(&[])).unwrap();
    assert_eq!(probe_open(join, "/dev/zero", libc::O_RDONLY), libc::EPERM);
}

/// Through `Cgroup::apply` on a hybrid layout whose v1 devices hierarchy is left out of the
/// mountinfo: the rules then go to the cgroup2 side as a filter.
#[test]
fn apply_uses_the_filter_without_a_v1_devices_hierarchy() {
    if !is_root() {
        return;
    }
    let Some(_) = unified_mount() else {
        return;
    };
    let mountinfo: String = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| !l.ends_with(",devices"))
        .map(|l| format!("{l}\n"))
        .collect();
    let hierarchies = Hierarchies::from_mountinfo(&mountinfo, Path::new("/")).unwrap();
    assert!(hierarchies.v1_mount("devices").is_none());
    let cgroup = Cgroup::new(&hierarchies, &unique_path("bpfapply")).unwrap();
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
    let join = |pid| cgroup.add_process(pid).unwrap();
    assert_eq!(probe_open(join, "/dev/null", libc::O_WRONLY), libc::EPERM);
    assert_eq!(probe_open(join, "/dev/null", libc::O_RDONLY), 0);
    assert_eq!(probe_open(join, "/dev/zero", libc::O_RDWR), 0);
    assert_eq!(probe_open(join, "/dev/full", libc::O_RDONLY), libc::EPERM);
    // An update replaces the program.
    cgroup.apply(&resources).unwrap();
    let v2 = hierarchies
        .unified_mount()
        .unwrap()
        .join(cgroup.path().trim_start_matches('/'));
    assert_eq!(bpf::attached_device_programs(&v2).unwrap(), 1);
}
