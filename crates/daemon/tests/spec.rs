//! The OCI spec berthd builds, seen from inside containers (real docker CLI, busybox-static):
//! capability sets as dockerd gives them. Needs root.

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
