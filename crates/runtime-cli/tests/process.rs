//! The `process` section and process-level settings: user and groups, cwd,
//! env, rlimits, noNewPrivileges, oomScoreAdj, sysctls, and `--no-pivot`.
//! Needs root; see tests/common/mod.rs.

mod common;

use common::*;
use serde_json::json;

/// process.user: uid, gid and additionalGids are all applied.
#[test]
fn user_and_groups_are_applied() {
    let mut c = Container::new("user", &["sh", "-c", "id -u; id -g; id -G"]);
    c.config["process"]["user"] = json!({ "uid": 65534, "gid": 65534, "additionalGids": [10, 20] });
    let out = c.run();
    let lines = out.ok().lines();
    assert_eq!(&lines[..2], &["65534", "65534"], "{out:?}");
    let mut groups: Vec<&str> = lines[2].split_whitespace().collect();
    groups.sort_unstable();
    assert_eq!(groups, vec!["10", "20", "65534"], "{out:?}");
}

/// process.cwd and process.env reach the program, and nothing of the
/// runtime's own environment leaks in.
#[test]
fn cwd_and_env_are_exactly_the_specs() {
    let mut c = Container::new("cwdenv", &["sh", "-c", "pwd; env | sort"]);
    c.config["process"]["cwd"] = json!("/tmp");
    c.config["process"]["env"] = json!(["PATH=/bin", "GREETING=hello world", "EMPTY="]);
    let mut cmd = c.command(&["run", "--bundle", path_str(&c.bundle()), &c.id]);
    cmd.env("BERTH_TEST_LEAK", "should-not-appear");
    c.write_config();
    let out = run_piped(cmd, COMMAND_TIMEOUT);
    let lines = out.ok().lines();
    assert_eq!(lines[0], "/tmp");
    for want in ["PATH=/bin", "GREETING=hello world", "EMPTY="] {
        assert!(lines.iter().any(|l| l == want), "{want} missing: {out:?}");
    }
    assert!(
        !out.stdout.contains("BERTH_TEST_LEAK"),
        "runtime environment leaked: {out:?}"
    );
}

/// process.rlimits set both soft and hard limits.
#[test]
fn rlimits_are_applied() {
    let mut c = Container::new("rlimit", &["sh", "-c", "ulimit -Sn; ulimit -Hn"]);
    c.config["process"]["rlimits"] = json!([{ "type": "RLIMIT_NOFILE", "soft": 321, "hard": 654 }]);
    let out = c.run();
    assert_eq!(out.ok().lines(), vec!["321", "654"], "{out:?}");
}

/// noNewPrivileges sets the no_new_privs bit (prctl(2)); oomScoreAdj is
/// written to /proc/self/oom_score_adj.
#[test]
fn no_new_privileges_and_oom_score_adj() {
    let mut c = Container::new(
        "nnp",
        &[
            "sh",
            "-c",
            "grep NoNewPrivs /proc/self/status | tr -d ' \\t'; cat /proc/self/oom_score_adj",
        ],
    );
    c.config["process"]["noNewPrivileges"] = json!(true);
    c.config["process"]["oomScoreAdj"] = json!(345);
    let out = c.run();
    assert_eq!(out.ok().lines(), vec!["NoNewPrivs:1", "345"], "{out:?}");

    let mut off = Container::new(
        "nnpoff",
        &[
            "sh",
            "-c",
            "grep NoNewPrivs /proc/self/status | tr -d ' \\t'",
        ],
    );
    off.config["process"]["noNewPrivileges"] = json!(false);
    let out = off.run();
    assert_eq!(out.ok().lines(), vec!["NoNewPrivs:0"], "{out:?}");
}

/// linux.sysctl is applied inside the container's namespaces only.
#[test]
fn sysctls_apply_inside_only() {
    let host_before = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .unwrap_or_default();
    let mut c = Container::new(
        "sysctl",
        &[
            "sh",
            "-c",
            "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/msgmax",
        ],
    );
    c.config["linux"]["sysctl"] = json!({
        "net.ipv4.ip_unprivileged_port_start": "77",
        "kernel.msgmax": "12345"
    });
    let out = c.run();
    assert_eq!(out.ok().lines(), vec!["77", "12345"], "{out:?}");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
            .unwrap_or_default(),
        host_before,
        "the sysctl leaked to the host"
    );
}

/// `create --no-pivot` (chroot instead of pivot_root, for ramdisk roots)
/// still confines the program to the rootfs.
#[test]
fn no_pivot_still_confines_the_rootfs() {
    let c = Container::new(
        "nopivot",
        &["sh", "-c", "echo $$; ls /; cat /etc/passwd | wc -l"],
    );
    c.write_config();
    let bundle = c.bundle();
    let out = c.rt(&["run", "--no-pivot", "--bundle", path_str(&bundle), &c.id]);
    let lines = out.ok().lines();
    assert_eq!(lines[0], "1", "{out:?}");
    assert!(lines.iter().any(|l| l == "bin"), "{out:?}");
    // Our rootfs's passwd has 2 lines; the host's would have more.
    assert_eq!(lines.last().map(String::as_str), Some("2"), "{out:?}");
    assert!(
        !lines.iter().any(|l| l == "work"),
        "host root visible: {out:?}"
    );
    assert_nothing_left(&c);
}
