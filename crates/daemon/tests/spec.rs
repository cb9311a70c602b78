//! The OCI spec berthd builds, seen from inside containers (real docker CLI, busybox-static):
//! capability sets and seccomp filters as dockerd gives them. Needs root.

mod common;

use common::Daemon;

/// The `Cap*:` lines of /proc/self/status inside a container, as (name, hex mask) pairs.
fn capabilities(daemon: &Daemon, extra: &[&str]) -> Vec<(String, String)> {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "grep", "^Cap", "/proc/self/status"]);
    let run = daemon.docker(&args);
    run.ok();
    run.stdout
        .lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((name.to_string(), value.trim().to_string()))
        })
        .collect()
}

fn get<'a>(caps: &'a [(String, String)], name: &str) -> &'a str {
    caps.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in {caps:?}"))
}

#[test]
fn capabilities_are_dockers() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    // Docker's 14 default capabilities (moby oci/caps): this mask on every kernel here.
    let defaults = "00000000a80425fb";

    let root = capabilities(&daemon, &[]);
    for set in ["CapPrm", "CapEff", "CapBnd"] {
        assert_eq!(get(&root, set), defaults, "{set} of root: {root:?}");
    }
    // Never inheritable or ambient capabilities (CVE-2022-24769).
    assert_eq!(get(&root, "CapInh"), "0000000000000000");
    assert_eq!(get(&root, "CapAmb"), "0000000000000000");

    // A non-root user keeps the bounding set but has no effective capabilities.
    let nobody = capabilities(&daemon, &["--user", "nobody"]);
    assert_eq!(get(&nobody, "CapBnd"), defaults);
    for set in ["CapPrm", "CapEff", "CapInh", "CapAmb"] {
        assert_eq!(get(&nobody, set), "0000000000000000", "{set}: {nobody:?}");
    }

    // --cap-drop ALL leaves nothing, as root or not (this used to fail in capset(2)).
    for user in ["root", "nobody"] {
        let none = capabilities(&daemon, &["--cap-drop", "ALL", "--user", user]);
        for (set, value) in &none {
            assert_eq!(value, "0000000000000000", "{set} of {user}: {none:?}");
        }
    }
}

/// The `Seccomp:` mode of /proc/self/status inside a container: 0 none, 2 a filter.
fn seccomp_mode(daemon: &Daemon, extra: &[&str]) -> String {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "busybox",
        "awk",
        "/^Seccomp:/ {print $2}",
        "/proc/self/status",
    ]);
    let run = daemon.docker(&args);
    run.ok();
    run.out()
}

#[test]
fn seccomp_default_profile_as_dockers() {
    let daemon = Daemon::start();
    daemon.import_busybox();

    // A filter by default; none with --privileged or seccomp=unconfined (as dockerd).
    assert_eq!(seccomp_mode(&daemon, &[]), "2");
    assert_eq!(seccomp_mode(&daemon, &["--privileged"]), "0");
    assert_eq!(
        seccomp_mode(&daemon, &["--security-opt", "seccomp=unconfined"]),
        "0"
    );
    let info = daemon.docker(&["info", "--format", "{{json .SecurityOptions}}"]);
    assert!(
        info.ok().stdout.contains("name=seccomp,profile=builtin"),
        "{}",
        info.stdout
    );

    // Creating a user namespace needs no capability in the kernel, but the default profile
    // refuses it without CAP_SYS_ADMIN.
    let userns = ["busybox", "unshare", "-U", "true"];
    let denied = daemon.docker(&[&["run", "--rm"][..], &userns].concat());
    assert_ne!(denied.code, 0, "{denied:?}");
    assert!(
        denied.stderr.contains("Operation not permitted"),
        "{denied:?}"
    );
    let unconfined = ["run", "--rm", "--security-opt", "seccomp=unconfined"];
    daemon.docker(&[&unconfined[..], &userns].concat()).ok();
    let admin = ["run", "--rm", "--cap-add", "SYS_ADMIN"];
    daemon.docker(&[&admin[..], &userns].concat()).ok();

    // A profile file in Docker's format (the CLI sends its content): mkdir denied with
    // EACCES, everything else allowed; includes by capability are honoured.
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("profile.json");
    std::fs::write(
        &profile,
        r#"{
  "defaultAction": "SCMP_ACT_ALLOW",
  "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
  "syscalls": [
    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
    {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_SYS_ADMIN"]}}
  ]
}"#,
    )
    .unwrap();
    let option = format!("seccomp={}", profile.display());
    let mkdir = daemon.docker(&[
        "run",
        "--rm",
        "--security-opt",
        &option,
        "busybox",
        "mkdir",
        "/x",
    ]);
    assert_ne!(mkdir.code, 0, "{mkdir:?}");
    assert!(mkdir.stderr.contains("Permission denied"), "{mkdir:?}");
    // The rmdir rule applies only with CAP_SYS_ADMIN: without it, rmdir reaches the kernel.
    let rmdir = daemon.docker(&[
        "run",
        "--rm",
        "--security-opt",
        &option,
        "busybox",
        "rmdir",
        "/x",
    ]);
    assert!(rmdir.stderr.contains("No such file"), "{rmdir:?}");
    let rmdir = daemon.docker(&[
        "run",
        "--rm",
        "--cap-add",
        "SYS_ADMIN",
        "--security-opt",
        &option,
        "busybox",
        "rmdir",
        "/x",
    ]);
    assert!(
        rmdir.stderr.contains("Operation not permitted"),
        "{rmdir:?}"
    );

    // A malformed profile is refused at create, and nothing is left.
    std::fs::write(&profile, r#"{"syscalls": 7}"#).unwrap();
    let bad = daemon.docker(&["run", "--rm", "--security-opt", &option, "busybox", "true"]);
    assert_eq!(bad.code, 125, "{bad:?}");
    assert!(
        bad.stderr.contains("decoding seccomp profile failed"),
        "{bad:?}"
    );
    assert_eq!(daemon.docker(&["ps", "-aq"]).ok().out(), "");
}
