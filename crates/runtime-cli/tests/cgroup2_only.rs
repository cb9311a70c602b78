//! The runtime on a cgroup2-only host. This VM is hybrid (v1 controllers plus cgroup2 at
//! /sys/fs/cgroup/unified), so the test builds a v2-only view in a private mount namespace:
//! cgroup2 mounted at /sys/fs/cgroup. Only the hugetlb controller is free for cgroup2 here, so
//! memory/pids limits cannot be shown on v2; placement, the cgroup2 mount inside the container,
//! freeze/thaw (core cgroup2 files) and cleanup can.

mod common;

use std::process::Command;

use common::*;

#[test]
fn runs_pauses_and_cleans_up_on_a_cgroup2_only_layout() {
    let mut c = Container::new(
        "v2only",
        &[
            "sh",
            "-c",
            "cat /proc/self/cgroup; ls /sys/fs/cgroup; sleep 30",
        ],
    );
    c.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"type": "cgroup"}));
    c.config["mounts"].as_array_mut().unwrap().push(serde_json::json!(
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]}));
    c.config["linux"]["cgroupsPath"] = format!("/{}", c.id).into();
    c.write_config();
    let runtime = runtime_path();
    let root = c.state_root();
    let bundle = c.bundle();
    let id = c.id.clone();
    let script = format!(
        r#"set -e
mount --make-rprivate /
umount -l /sys/fs/cgroup
mount -t cgroup2 none /sys/fs/cgroup
R="{runtime} --root {root}"
$R create --bundle {bundle} {id} > {dir}/out 2>&1
$R start {id}
sleep 0.3
echo "placed=$(cat /sys/fs/cgroup/{id}/cgroup.procs | wc -l)"
$R pause {id}
echo "state=$($R state {id} | grep -o '"status": "[a-z]*"')"
echo "frozen=$(grep frozen /sys/fs/cgroup/{id}/cgroup.events)"
$R resume {id}
echo "thawed=$(grep frozen /sys/fs/cgroup/{id}/cgroup.events)"
$R delete --force {id}
echo "left=$(ls -d /sys/fs/cgroup/{id} 2>/dev/null | wc -l)"
"#,
        runtime = runtime.display(),
        root = root.display(),
        bundle = bundle.display(),
        dir = c.dir().display(),
    );
    let out = run_piped(
        {
            let mut command = Command::new("unshare");
            command.args(["-m", "sh", "-c", &script]);
            command
        },
        COMMAND_TIMEOUT,
    );
    let lines = out.ok().lines();
    assert!(
        lines.contains(&"placed=1".to_string()),
        "{lines:?}\n{}",
        out.stderr
    );
    assert!(
        lines.contains(&"state=\"status\": \"paused\"".to_string()),
        "{lines:?}"
    );
    assert!(lines.contains(&"frozen=frozen 1".to_string()), "{lines:?}");
    assert!(lines.contains(&"thawed=frozen 0".to_string()), "{lines:?}");
    assert!(lines.contains(&"left=0".to_string()), "{lines:?}");
    // Inside, the container saw its own cgroup2 root.
    let inside = std::fs::read_to_string(c.dir().join("out")).unwrap();
    assert!(inside.contains("0::/"), "{inside}");
    assert!(inside.contains("cgroup.controllers"), "{inside}");
}
