//! Bad input: each case must fail with a non-zero exit and an error on
//! stderr (one line for berth-runtime), and leave nothing behind: no state
//! under --root, no cgroup, no mount into the bundle, no process.
//! Needs root; see tests/common/mod.rs.

mod common;

use std::fs;

use common::*;
use serde_json::json;

/// create (then run) of `c` must both be refused and leave nothing.
#[track_caller]
fn assert_refused_cleanly(c: &Container) {
    c.create().refused();
    assert_nothing_left(c);
    c.run().refused();
    assert_nothing_left(c);
    // And no half-created container is visible afterwards.
    c.rt(&["state", &c.id]).refused();
}

#[test]
fn malformed_config_json() {
    let c = Container::new("badjson", &["true"]);
    c.create().ok(); // the well-formed base config works...
    c.rt(&["delete", "--force", &c.id]).ok();
    fs::write(
        c.bundle().join("config.json"),
        "{ \"ociVersion\": \"1.0.2\", ",
    )
    .unwrap();
    let bundle = c.bundle();
    // ...and a truncated one is refused (write_config is bypassed here).
    c.rt_files(&["create", "--bundle", path_str(&bundle), &c.id])
        .refused();
    assert_nothing_left(&c);
    c.rt(&["run", "--bundle", path_str(&bundle), &c.id])
        .refused();
    assert_nothing_left(&c);
}

#[test]
fn missing_config_json() {
    let c = Container::new("noconfig", &["true"]);
    let bundle = c.bundle();
    c.rt_files(&["create", "--bundle", path_str(&bundle), &c.id])
        .refused();
    assert_nothing_left(&c);
}

#[test]
fn unknown_namespace_type() {
    let mut c = Container::new("badns", &["true"]);
    c.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "type": "bogus" }));
    assert_refused_cleanly(&c);
}

#[test]
fn missing_rootfs() {
    let mut c = Container::new("norootfs", &["true"]);
    c.config["root"]["path"] = json!("does-not-exist");
    assert_refused_cleanly(&c);
}

/// config.md: a mount destination must be absolute. (Runtimes before spec
/// 1.1 accepted relative ones as relative to /; we and the spec refuse.)
#[test]
fn relative_mount_destination() {
    let mut c = Container::new("relmount", &["true"]);
    c.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "relative/x", "type": "tmpfs", "source": "tmpfs"
    }));
    if !testing_berth() {
        // runc 1.1 only warns ("mount destination relative/x is not
        // absolute") and crun 1.8 accepts it silently; berth-runtime must
        // refuse. Nothing to check on a reference runtime.
        eprintln!("reference runtime: relative destinations are accepted; skipped");
        return;
    }
    assert_refused_cleanly(&c);
}

/// An executable that does not exist in the rootfs: create/run fail.
#[test]
fn missing_executable() {
    let c = Container::new("noexe", &["/no/such/program"]);
    c.run().refused();
    assert_nothing_left(&c);
}

/// The same id cannot be created twice.
#[test]
fn duplicate_id() {
    let c = Container::new("dup", &["sleep", "30"]);
    c.create().ok();
    let pid = c.pid();
    c.create().refused();
    assert_eq!(c.status(), "created");
    assert_eq!(c.pid(), pid);
}

#[test]
fn unknown_id_is_refused_by_every_verb() {
    let c = Container::new("unknown", &["true"]);
    let missing = format!("{}-missing", c.id);
    for verb in [
        vec!["start", missing.as_str()],
        vec!["state", missing.as_str()],
        vec!["kill", missing.as_str()],
        vec!["kill", missing.as_str(), "KILL"],
        vec!["delete", missing.as_str()],
        vec!["pause", missing.as_str()],
        vec!["resume", missing.as_str()],
        vec!["ps", missing.as_str()],
        vec!["exec", missing.as_str(), "true"],
    ] {
        c.rt(&verb).refused();
    }
    assert!(
        fs::read_dir(c.state_root()).unwrap().next().is_none(),
        "a failed verb left state under --root"
    );
    assert_nothing_left(&c);
}

/// `delete --force` of an id that does not exist succeeds quietly, as in
/// runc: callers (podman, shims) use it as an idempotent cleanup.
#[test]
fn force_delete_of_unknown_id_succeeds() {
    let c = Container::new("forcedel", &["true"]);
    let missing = format!("{}-missing", c.id);
    c.rt(&["delete", "--force", &missing]).ok();
    assert_nothing_left(&c);
}

/// Ids with a path separator or `..` must not escape --root.
#[test]
fn path_like_id_is_refused() {
    let c = Container::new("pathid", &["true"]);
    c.write_config();
    let bundle = c.bundle();
    for id in ["../escape", "a/b", ".."] {
        c.rt_files(&["create", "--bundle", path_str(&bundle), id])
            .refused();
    }
    assert!(!c.dir().join("escape").exists());
    assert_nothing_left(&c);
}

/// A signal name the runtime does not know is refused and the container
/// keeps running. (runc refuses; crun 1.8 silently accepts it.)
#[test]
fn unknown_signal_is_refused() {
    let c = Container::new("badsig", &["sleep", "30"]);
    c.create_and_start();
    c.rt(&["kill", &c.id, "SIGNOPE"]).refused();
    assert_eq!(c.status(), "running");
}

/// `--log FILE --log-format json` (what podman and containerd pass): the
/// error of a failing command lands in FILE as a JSON object with `level`
/// "error" and a `msg`, one per line. With text format FILE gets the error
/// too.
#[test]
fn log_file_receives_errors_as_json() {
    let c = Container::new("logjson", &["true"]);
    let missing = format!("{}-missing", c.id);
    let json_log = c.dir().join("runtime.json.log");
    let out = c.rt(&[
        "--log",
        path_str(&json_log),
        "--log-format",
        "json",
        "state",
        &missing,
    ]);
    assert!(!out.status.success(), "{out:?}");
    let text = fs::read_to_string(&json_log).expect("log file written");
    let errors: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .filter(|v: &serde_json::Value| v["level"] == "error")
        .collect();
    assert!(!errors.is_empty(), "no error entry in {text}");
    assert!(
        errors
            .iter()
            .all(|e| e["msg"].as_str().is_some_and(|m| !m.is_empty())),
        "{text}"
    );

    let text_log = c.dir().join("runtime.log");
    let out = c.rt(&["--log", path_str(&text_log), "state", &missing]);
    assert!(!out.status.success());
    let text = fs::read_to_string(&text_log).expect("text log file written");
    assert!(!text.trim().is_empty(), "text log is empty");
}
