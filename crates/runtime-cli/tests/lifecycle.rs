//! Lifecycle verbs of runc's command line: create/start/state/kill/delete,
//! run, exec, pause/resume, list, ps, hooks, spec, features.
//! Needs root; see tests/common/mod.rs for how to point it at another runtime.

mod common;

use std::fs;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

/// create runs nothing of the user program; start does. `state` follows
/// the lifecycle (created -> running/stopped) and reports the documented
/// fields; --pid-file holds the same pid.
#[test]
fn create_then_start_runs_the_program_only_at_start() {
    let mut c = Container::new("split", &["sh", "-c", "echo ran > /out/marker; sleep 1"]);
    let host = c.host_dir();
    fs::create_dir_all(c.rootfs().join("out")).unwrap();
    c.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/out", "type": "bind",
        "source": path_str(&host), "options": ["rbind", "rw"]
    }));
    c.write_config();
    let pid_file = c.dir().join("pid");
    let bundle = c.bundle();
    c.rt_files(&[
        "create",
        "--bundle",
        path_str(&bundle),
        "--pid-file",
        path_str(&pid_file),
        &c.id,
    ])
    .ok();

    let state = c.state();
    assert_eq!(state["status"], "created", "{state}");
    assert_eq!(state["id"], c.id.as_str());
    assert!(state["ociVersion"].is_string(), "{state}");
    assert_eq!(
        fs::canonicalize(state["bundle"].as_str().expect("bundle")).unwrap(),
        fs::canonicalize(&bundle).unwrap()
    );
    let pid = state["pid"].as_i64().expect("pid") as i32;
    assert!(
        pid_alive(pid),
        "created container has no live init (pid {pid})"
    );
    let from_file: i32 = fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid file holds a number");
    assert_eq!(from_file, pid);

    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !host.join("marker").exists(),
        "the user program ran before start"
    );

    c.start().ok();
    // The shell creates the file before it writes to it: wait for the content, not the name.
    assert!(
        wait_until(Duration::from_secs(10), || {
            fs::read_to_string(host.join("marker")).is_ok_and(|text| text == "ran\n")
        }),
        "the user program did not run after start"
    );
    c.wait_status("stopped", Duration::from_secs(10));
    c.rt(&["delete", &c.id]).ok();
    assert!(!pid_alive(pid));
    assert_nothing_left(&c);
}

/// Foreground `run` exits with the container's exit code and passes its
/// stdout through.
#[test]
fn run_returns_the_container_exit_code() {
    let c = Container::new("exitcode", &["sh", "-c", "echo out; echo err >&2; exit 42"]);
    let out = c.run();
    assert_eq!(out.code(), 42, "{out:?}");
    assert_eq!(out.lines(), vec!["out"]);
    assert!(out.stderr.contains("err"), "{out:?}");
    // run deletes the container when it exits.
    assert!(!c.rt(&["state", &c.id]).status.success());
    assert_nothing_left(&c);
}

/// `run --detach` returns at once, leaving a running container.
#[test]
fn run_detach_leaves_it_running() {
    let c = Container::new("detach", &["sleep", "30"]);
    c.write_config();
    let bundle = c.bundle();
    c.rt_files(&["run", "--detach", "--bundle", path_str(&bundle), &c.id])
        .ok();
    assert_eq!(c.status(), "running");
    c.rt(&["kill", &c.id, "KILL"]).ok();
    c.wait_status("stopped", Duration::from_secs(10));
    c.rt(&["delete", &c.id]).ok();
    assert_nothing_left(&c);
}

/// kill accepts signal names with and without SIG and numbers; the default
/// signal is SIGTERM. Init of a pid namespace only gets signals it handles
/// (pid_namespaces(7)), hence the traps.
#[test]
fn kill_delivers_signals() {
    let c = Container::new(
        "kill",
        &[
            "sh",
            "-c",
            "trap 'echo usr1 >> /tmp/got' USR1; trap 'echo hup >> /tmp/got' HUP; \
             trap 'echo term >> /tmp/got' TERM; \
             echo ready > /tmp/ready; while :; do sleep 0.05; done",
        ],
    );
    c.create_and_start();
    let got = c.rootfs().join("tmp/got");
    assert!(wait_until(Duration::from_secs(10), || c
        .rootfs()
        .join("tmp/ready")
        .exists()));
    let received = |n: usize| {
        wait_until(Duration::from_secs(10), || {
            fs::read_to_string(&got).is_ok_and(|s| s.lines().count() >= n)
        })
    };
    c.rt(&["kill", &c.id, "SIGUSR1"]).ok();
    assert!(received(1), "SIGUSR1 not delivered");
    c.rt(&["kill", &c.id, "HUP"]).ok();
    assert!(received(2), "HUP not delivered");
    c.rt(&["kill", &c.id]).ok();
    assert!(received(3), "default signal not delivered");
    assert_eq!(
        fs::read_to_string(&got).unwrap(),
        "usr1\nhup\nterm\n",
        "wrong signals"
    );
    assert_eq!(c.status(), "running");
    c.rt(&["kill", &c.id, "9"]).ok();
    c.wait_status("stopped", Duration::from_secs(10));
    c.rt(&["delete", &c.id]).ok();
    assert_nothing_left(&c);
}

/// `kill --all` reaches every process of the container.
#[test]
fn kill_all_signals_every_process() {
    let c = Container::new("killall", &["sh", "-c", "sleep 60 & sleep 60 & wait"]);
    c.create_and_start();
    let pid = c.pid();
    assert!(wait_until(Duration::from_secs(5), || {
        pids_in_cgroup_matching(&cgroups_path(&c.id)).len() >= 3
    }));
    c.rt(&["kill", "--all", &c.id, "KILL"]).ok();
    c.wait_status("stopped", Duration::from_secs(10));
    assert!(!pid_alive(pid));
    c.rt(&["delete", &c.id]).ok();
    assert_nothing_left(&c);
}

/// delete refuses a running container; --force kills and deletes it.
#[test]
fn delete_running_requires_force() {
    let c = Container::new("delete", &["sleep", "60"]);
    c.create_and_start();
    let pid = c.pid();
    c.rt(&["delete", &c.id]).refused();
    assert_eq!(c.status(), "running");
    assert!(pid_alive(pid));
    c.rt(&["delete", "--force", &c.id]).ok();
    assert!(wait_until(Duration::from_secs(5), || !pid_alive(pid)));
    c.rt(&["state", &c.id]).refused();
    assert_nothing_left(&c);
}

/// `list` (table, json, quiet) and `ps` (table, json) show the container.
#[test]
fn list_and_ps_show_the_container() {
    let c = Container::new("list", &["sleep", "60"]);
    c.create_and_start();
    let pid = c.pid();

    let table = c.rt(&["list"]);
    table.ok();
    assert!(table.stdout.lines().next().unwrap_or("").contains("ID"));
    assert!(
        table
            .stdout
            .lines()
            .any(|l| l.split_whitespace().next() == Some(c.id.as_str()) && l.contains("running")),
        "{}",
        table.stdout
    );
    let quiet = c.rt(&["list", "--quiet"]);
    assert_eq!(quiet.ok().lines(), vec![c.id.clone()]);
    let json = c.rt(&["list", "--format", "json"]);
    let list: Value = serde_json::from_str(&json.ok().stdout).expect("list json");
    let entry = list
        .as_array()
        .expect("array")
        .iter()
        .find(|e| e["id"] == c.id.as_str())
        .expect("container in list");
    assert_eq!(entry["status"], "running");
    assert_eq!(entry["pid"].as_i64(), Some(pid as i64));

    let ps = c.rt(&["ps", "--format", "json", &c.id]);
    let pids: Value = serde_json::from_str(&ps.ok().stdout).expect("ps json");
    assert!(
        pids.as_array()
            .expect("array")
            .iter()
            .any(|p| p.as_i64() == Some(pid as i64)),
        "{pids}"
    );
    let ps_table = c.rt(&["ps", &c.id]);
    assert!(
        ps_table.ok().stdout.contains(&pid.to_string()),
        "{}",
        ps_table.stdout
    );
    assert!(ps_table.stdout.contains("PID"), "{}", ps_table.stdout);
}

/// An exec'd process joins every namespace and the cgroup of the init.
#[test]
fn exec_joins_namespaces_and_cgroup() {
    let c = Container::new("exec", &["sleep", "60"]);
    c.create_and_start();
    let pid = c.pid();
    let out = c.exec(&[
        "sh",
        "-c",
        "for n in cgroup ipc mnt net pid user uts; do readlink /proc/self/ns/$n; done; \
         echo ---; cat /proc/self/cgroup",
    ]);
    out.ok();
    let (ns_part, cgroup_part) = out.stdout.split_once("---\n").expect("marker");
    let inside: std::collections::BTreeSet<String> = ns_part.lines().map(str::to_string).collect();
    assert_eq!(inside, namespaces_of(pid), "namespaces differ from init's");
    let host_cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(cgroup_part.trim(), host_cgroup.trim(), "cgroups differ");
    // The exec'd process is not pid 1 but lives in the container pid ns.
    let pid_out = c.exec(&["sh", "-c", "echo $$"]);
    let inner: i32 = pid_out.ok().stdout.trim().parse().expect("pid");
    assert!(inner > 1, "exec got pid {inner}");
}

/// exec's --env, --cwd, --user, --process and exit status.
#[test]
fn exec_options_and_exit_code() {
    let c = Container::new("execopts", &["sleep", "60"]);
    c.create_and_start();
    let out = c.exec_with(
        &["--env", "FOO=bar", "--cwd", "/tmp", "--user", "65534:65534"],
        // Absolute path: crun's --env replaces the environment (no PATH),
        // runc's adds to it.
        &["/bin/sh", "-c", "echo $FOO; pwd; id -u; id -g"],
    );
    assert_eq!(out.ok().lines(), vec!["bar", "/tmp", "65534", "65534"]);
    assert_eq!(c.exec(&["sh", "-c", "exit 7"]).code(), 7);

    let process = json!({
        "terminal": false,
        "user": { "uid": 0, "gid": 0 },
        "args": ["sh", "-c", "echo from-process-file $X"],
        "env": ["PATH=/bin", "X=y"],
        "cwd": "/"
    });
    let process_file = c.dir().join("process.json");
    fs::write(&process_file, process.to_string()).unwrap();
    let out = c.rt(&["exec", "--process", path_str(&process_file), &c.id]);
    assert_eq!(out.ok().lines(), vec!["from-process-file y"]);

    // exec --detach: returns while the process keeps running.
    let pid_file = c.dir().join("exec.pid");
    c.rt_files(&[
        "exec",
        "--detach",
        "--pid-file",
        path_str(&pid_file),
        &c.id,
        "sleep",
        "30",
    ])
    .ok();
    let exec_pid: i32 = fs::read_to_string(&pid_file)
        .expect("exec pid file")
        .trim()
        .parse()
        .unwrap();
    assert!(pid_alive(exec_pid));
    assert_eq!(namespaces_of(exec_pid), namespaces_of(c.pid()));
}

/// pause freezes every process (a counter stops), resume thaws it.
#[test]
fn pause_freezes_and_resume_thaws() {
    let c = Container::new(
        "pause",
        &[
            "sh",
            "-c",
            "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.02; done",
        ],
    );
    c.create_and_start();
    let counter = c.rootfs().join("tmp/n");
    let read = || {
        fs::read_to_string(&counter)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    assert!(wait_until(Duration::from_secs(10), || read().is_some()));

    c.rt(&["pause", &c.id]).ok();
    assert_eq!(c.status(), "paused");
    std::thread::sleep(Duration::from_millis(200)); // let a write in flight land
    let frozen = read();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(read(), frozen, "counter advanced while paused");
    if let Some(freezer) = cgroup_dir_of(c.pid(), "freezer")
        && let Ok(s) = fs::read_to_string(freezer.join("freezer.state"))
    {
        assert_eq!(s.trim(), "FROZEN");
    }

    c.rt(&["resume", &c.id]).ok();
    assert_eq!(c.status(), "running");
    let thawed = read();
    assert!(
        wait_until(Duration::from_secs(5), || read() > thawed),
        "counter did not advance after resume"
    );
}

/// Runtime-namespace hooks get the state JSON on stdin.
#[test]
fn hooks_receive_the_state_on_stdin() {
    let mut c = Container::new("hooks", &["true"]);
    let host = c.host_dir();
    let hook = |name: &str| {
        let file = host.join(format!("{name}.json"));
        json!([{ "path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}", file.display())] }])
    };
    c.config["hooks"] = json!({
        "prestart": hook("prestart"),
        "createRuntime": hook("createRuntime"),
        "poststart": hook("poststart"),
        "poststop": hook("poststop"),
    });
    c.run().ok();
    for (name, want_pid) in [
        ("prestart", true),
        ("createRuntime", true),
        ("poststart", true),
        ("poststop", false),
    ] {
        let text = fs::read_to_string(host.join(format!("{name}.json")))
            .unwrap_or_else(|_| panic!("{name} hook did not run"));
        let state: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{name} hook stdin is not JSON ({e}): {text}"));
        assert_eq!(state["id"], c.id.as_str(), "{name}: {state}");
        assert!(state["ociVersion"].is_string(), "{name}: {state}");
        assert!(state["status"].is_string(), "{name}: {state}");
        assert_eq!(
            fs::canonicalize(state["bundle"].as_str().expect("bundle")).unwrap(),
            fs::canonicalize(c.bundle()).unwrap(),
            "{name}"
        );
        if want_pid {
            assert!(state["pid"].as_i64().unwrap_or(0) > 0, "{name}: {state}");
        }
    }
    assert_nothing_left(&c);
}

/// `spec` writes a config.json that is valid and runnable; `--rootless`
/// adds a user namespace.
#[test]
fn spec_writes_a_runnable_config() {
    let c = Container::new("spec", &["true"]);
    let bundle = c.bundle();
    c.rt(&["spec", "--bundle", path_str(&bundle)]).ok();
    let text = fs::read_to_string(bundle.join("config.json")).expect("config.json written");
    let mut spec: Value = serde_json::from_str(&text).expect("config.json is JSON");
    assert!(spec["ociVersion"].is_string());
    assert_eq!(spec["root"]["path"], "rootfs");
    assert!(spec["process"]["args"].is_array());
    let namespaces: Vec<&str> = spec["linux"]["namespaces"]
        .as_array()
        .expect("namespaces")
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    for ns in ["pid", "mount", "network", "ipc", "uts"] {
        assert!(namespaces.contains(&ns), "spec lacks {ns}: {namespaces:?}");
    }
    // It runs (with our args and no terminal).
    spec["process"]["args"] = json!(["sh", "-c", "echo spec-ok"]);
    spec["process"]["terminal"] = json!(false);
    fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
    let out = c.rt(&["run", "--bundle", path_str(&bundle), &c.id]);
    assert_eq!(out.ok().lines(), vec!["spec-ok"]);

    // --rootless, in a fresh directory (runc refuses to overwrite a spec).
    let rootless = c.dir().join("rootless");
    fs::create_dir_all(&rootless).unwrap();
    c.rt(&["spec", "--rootless", "--bundle", path_str(&rootless)])
        .ok();
    let spec: Value =
        serde_json::from_str(&fs::read_to_string(rootless.join("config.json")).unwrap()).unwrap();
    assert!(
        spec["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "user"),
        "rootless spec has no user namespace"
    );
    if testing_berth() {
        // crun fills the mappings in at create time instead.
        assert!(spec["linux"]["uidMappings"].is_array(), "{spec}");
    }
}

/// `features` prints a JSON document (runtime-spec features.md). runc has
/// it since 1.1; crun 1.8 does not.
#[test]
fn features_prints_json() {
    let c = Container::new("features", &["true"]);
    let out = c.rt(&["features"]);
    let features: Value = serde_json::from_str(&out.ok().stdout).expect("features JSON");
    assert!(features["ociVersionMin"].is_string(), "{features}");
    assert!(features["ociVersionMax"].is_string(), "{features}");
    let namespaces = features["linux"]["namespaces"]
        .as_array()
        .expect("namespaces");
    assert!(namespaces.iter().any(|n| n == "pid"), "{features}");
}
