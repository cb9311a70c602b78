//! Confinement: capabilities, seccomp, masked paths, read-only rootfs, and
//! mount destinations that try to leave the rootfs through a symlink.
//! Needs root; see tests/common/mod.rs.

mod common;

use std::fs;

use common::*;
use serde_json::json;

const PRIVILEGED_OPS: &str = "hostname foo 2>/dev/null && echo hostname-ok || echo hostname-denied; \
     mknod /tmp/x c 1 3 2>/dev/null && echo mknod-ok || echo mknod-denied; \
     touch /tmp/f; chown 1:1 /tmp/f 2>/dev/null && echo chown-ok || echo chown-denied; \
     grep CapEff /proc/self/status";

fn set_caps(c: &mut Container, caps: &[&str]) {
    for set in ["bounding", "effective", "permitted"] {
        c.config["process"]["capabilities"][set] = json!(caps);
    }
}

/// CapEff bits from a `CapEff:\t<hex>` line.
fn cap_eff(out: &Out) -> u64 {
    let line = out
        .lines()
        .into_iter()
        .find(|l| l.starts_with("CapEff:"))
        .expect("CapEff line");
    u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

const CAP_CHOWN: u32 = 0;
const CAP_MKNOD: u32 = 27;
const CAP_SYS_ADMIN: u32 = 21;

/// Without CAP_SYS_ADMIN, CAP_MKNOD and CAP_CHOWN, sethostname, mknod and
/// chown fail; with them (control run) they work.
#[test]
fn dropped_capabilities_deny_privileged_operations() {
    let mut c = Container::new("capsoff", &["sh", "-c", PRIVILEGED_OPS]);
    let without: Vec<&str> = DEFAULT_CAPS
        .iter()
        .copied()
        .filter(|cap| !["CAP_MKNOD", "CAP_CHOWN"].contains(cap))
        .collect();
    set_caps(&mut c, &without);
    let out = c.run();
    let lines = out.ok().lines();
    assert_eq!(
        &lines[..3],
        &["hostname-denied", "mknod-denied", "chown-denied"],
        "{out:?}"
    );
    let eff = cap_eff(&out);
    for cap in [CAP_CHOWN, CAP_MKNOD, CAP_SYS_ADMIN] {
        assert_eq!(
            eff & (1 << cap),
            0,
            "capability {cap} still effective: {eff:x}"
        );
    }

    let mut control = Container::new("capson", &["sh", "-c", PRIVILEGED_OPS]);
    let mut with: Vec<&str> = DEFAULT_CAPS.to_vec();
    with.push("CAP_SYS_ADMIN");
    set_caps(&mut control, &with);
    let out = control.run();
    let lines = out.ok().lines();
    assert_eq!(
        &lines[..3],
        &["hostname-ok", "mknod-ok", "chown-ok"],
        "{out:?}"
    );
    let eff = cap_eff(&out);
    for cap in [CAP_CHOWN, CAP_MKNOD, CAP_SYS_ADMIN] {
        assert_ne!(eff & (1 << cap), 0, "capability {cap} missing: {eff:x}");
    }
}

/// A seccomp rule SCMP_ACT_ERRNO on mkdir/mkdirat (errnoRet omitted, so
/// EPERM per the runtime spec) makes mkdir fail; other syscalls still work.
#[test]
fn seccomp_errno_rule_blocks_mkdir() {
    let mut c = Container::new(
        "seccomp",
        &[
            "sh",
            "-c",
            "touch /tmp/file && echo touch-ok; mkdir /tmp/d; echo mkdir=$?",
        ],
    );
    c.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO" }]
    });
    let out = c.run();
    out.ok();
    assert!(out.stdout.contains("touch-ok"), "{out:?}");
    assert!(out.stdout.contains("mkdir=1"), "{out:?}");
    assert!(out.stderr.contains("Operation not permitted"), "{out:?}");
    assert!(!c.rootfs().join("tmp/d").exists());
}

/// Masked paths read empty: a file over-mounted with /dev/null (so a
/// character device), /proc/timer_list (non-empty on the host) reads
/// nothing, and /proc/kcore, where the kernel has one, is masked too.
#[test]
fn masked_paths_read_empty() {
    let mut c = Container::new(
        "masked",
        &[
            "sh",
            "-c",
            "echo \"[$(cat /etc/masked-file)]\"; cat /proc/timer_list | wc -c; \
             if [ -e /proc/kcore ]; then ls -l /proc/kcore | cut -c1; else echo absent; fi",
        ],
    );
    fs::write(c.rootfs().join("etc/masked-file"), "secret\n").unwrap();
    c.config["linux"]["maskedPaths"] =
        json!(["/etc/masked-file", "/proc/kcore", "/proc/timer_list"]);
    assert!(!fs::read("/proc/timer_list").unwrap().is_empty());
    let kcore = if std::path::Path::new("/proc/kcore").exists() {
        "c"
    } else {
        "absent"
    };
    let out = c.run();
    assert_eq!(out.ok().lines(), vec!["[]", "0", kcore], "{out:?}");
    assert_eq!(
        fs::read_to_string(c.rootfs().join("etc/masked-file")).unwrap(),
        "secret\n"
    );
}

/// A read-only rootfs rejects writes; tmpfs mounts on it stay writable.
#[test]
fn readonly_rootfs_rejects_writes() {
    let mut c = Container::new(
        "rofs",
        &[
            "sh",
            "-c",
            "touch /x 2>&1; echo touch=$?; touch /dev/shm/y && echo shm-ok",
        ],
    );
    c.config["root"]["readonly"] = json!(true);
    let out = c.run();
    let text = out.ok().stdout.clone();
    assert!(text.contains("touch=1"), "{out:?}");
    assert!(text.contains("Read-only file system"), "{out:?}");
    assert!(text.contains("shm-ok"), "{out:?}");
    assert!(!c.rootfs().join("x").exists());
}

/// A mount destination reached through a symlink that points outside the
/// rootfs (rootfs/etc/evil -> /tmp/<host dir>/sub) must be resolved inside
/// the rootfs: the host directory stays untouched, and the tmpfs shows up
/// in the container at the in-rootfs path. Cf. CVE-2021-30465 (runc).
#[test]
fn mount_destination_symlink_cannot_escape_the_rootfs() {
    let host_escape = tempfile::Builder::new()
        .prefix("berth-escape-")
        .tempdir()
        .unwrap();
    fs::write(host_escape.path().join("marker"), "host\n").unwrap();
    let target = host_escape.path().join("sub");

    let mut c = Container::new(
        "escape",
        &[
            "sh",
            "-c",
            "echo inside > /etc/evil/f && grep ' /etc/evil\\| /tmp/berth-escape' /proc/self/mountinfo | grep -c tmpfs",
        ],
    );
    std::os::unix::fs::symlink(&target, c.rootfs().join("etc/evil")).unwrap();
    c.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/etc/evil", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]
    }));
    let out = c.run();

    // Whatever the runtime decided, the host directory is untouched.
    let entries: Vec<_> = fs::read_dir(host_escape.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        entries,
        vec!["marker"],
        "the runtime wrote through the symlink"
    );
    assert!(
        mounts_under(host_escape.path()).is_empty(),
        "a mount landed on the host directory"
    );
    // And the mount landed inside the container: berth-runtime, like runc,
    // resolves the symlink within the rootfs and creates the missing target
    // there. (crun 1.8 refuses instead, which is also safe.)
    if !testing_berth() && !out.status.success() {
        eprintln!("reference runtime refused the mount: {}", out.stderr.trim());
        assert_nothing_left(&c);
        return;
    }
    assert_eq!(out.ok().lines(), vec!["1"], "{out:?}");
    assert!(
        !c.rootfs()
            .join(target.strip_prefix("/").unwrap())
            .join("f")
            .exists(),
        "the write went to the rootfs directory, not to the tmpfs"
    );
    assert_nothing_left(&c);
}

/// A read-only bind mount of a host directory is visible inside and leaves
/// no mount behind.
#[test]
fn bind_mount_is_visible_inside_only() {
    let mut c = Container::new("bind", &["cat", "/data/hello"]);
    fs::write(c.host_dir().join("hello"), "from host\n").unwrap();
    fs::create_dir_all(c.rootfs().join("data")).unwrap();
    let host_dir = c.host_dir();
    c.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/data", "type": "bind", "source": path_str(&host_dir),
        "options": ["rbind", "ro"]
    }));
    let out = c.run();
    assert_eq!(out.ok().lines(), vec!["from host"]);
    assert_nothing_left(&c);
}

/// The runtime-spec's default devices (config-linux.md "Default Devices")
/// exist and are usable even when the only device cgroup rule is runc
/// spec's deny-all: the runtime supplies them and allows them itself, while
/// other devices stay denied: a node made for /dev/loop-control (10:237)
/// cannot be opened (EPERM from the device cgroup; when allowed, reading it
/// gives EIO). Podman's configs rely on this too.
#[test]
fn default_devices_work_under_a_deny_all_rule() {
    let mut c = Container::new(
        "devices",
        &[
            "sh",
            "-c",
            "echo x > /dev/null && head -c 3 /dev/zero | wc -c && head -c 3 /dev/urandom | wc -c \
             && head -c 3 /dev/random | wc -c && ls -l /dev/null /dev/zero /dev/full /dev/random \
             /dev/urandom /dev/tty | cut -c1 | sort -u; mknod /tmp/lc c 10 237; head -c 1 /tmp/lc 2>&1 | grep -o 'Operation not permitted'",
        ],
    );
    c.resources().insert(
        "devices".into(),
        json!([{ "allow": false, "access": "rwm" }]),
    );
    let out = c.run();
    assert_eq!(
        out.ok().lines(),
        vec!["3", "3", "3", "c", "Operation not permitted"],
        "{out:?}"
    );
}

/// A filter may deny what the runtime itself uses between loading it and execve (here
/// getcwd, as the OCI validation suite's seccomp test does): the container still starts.
#[test]
fn seccomp_denying_getcwd_still_starts_the_container() {
    let mut c = Container::new("seccompcwd", &["sh", "-c", "echo started"]);
    c.config["process"]["noNewPrivileges"] = json!(false);
    c.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getcwd"], "action": "SCMP_ACT_ERRNO" }]
    });
    let out = c.run();
    assert_eq!(out.ok().lines(), vec!["started"]);
}
