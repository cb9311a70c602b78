//! End-to-end tests of `berth` against a real daemon (berthd, or dockerd for reference).
//!
//! They run only when `BERTH_TEST_HOST` names the daemon (e.g. unix:///tmp/dk/docker.sock)
//! and need the image `busybox:latest` there (import one with
//! `tar -C ROOTFS -c . | berth import - busybox:latest`, rootfs from
//! scripts/busybox-rootfs.sh); they never pull. Every container and image they create has a
//! unique name and is removed by a guard, even when the test fails.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

const IMAGE: &str = "busybox:latest";

fn test_host() -> Option<String> {
    std::env::var("BERTH_TEST_HOST")
        .ok()
        .filter(|h| !h.is_empty())
}

macro_rules! need_daemon {
    () => {
        match test_host() {
            Some(h) => {
                require_image(&h);
                h
            }
            None => {
                eprintln!("skipping: set BERTH_TEST_HOST (e.g. unix:///tmp/dk/docker.sock) to run");
                return;
            }
        }
    };
}

fn berth(host: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_API_VERSION")
        .env("BERTH_HOST", host)
        .args(args)
        .output()
        .expect("run berth")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs berth and asserts success, returning stdout.
fn ok(host: &str, args: &[&str]) -> String {
    let o = berth(host, args);
    assert!(
        o.status.success(),
        "berth {args:?} failed ({:?}): {}{}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

fn require_image(host: &str) {
    let o = berth(host, &["image", "inspect", "-f", "{{.Id}}", IMAGE]);
    assert!(
        o.status.success(),
        "the daemon at {host} has no {IMAGE}: import it first (see the module docs): {}",
        stderr(&o)
    );
}

fn unique(what: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "berth-e2e-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Removes a container by name when dropped.
struct ContainerGuard<'a> {
    host: &'a str,
    name: String,
}

impl Drop for ContainerGuard<'_> {
    fn drop(&mut self) {
        let _ = berth(self.host, &["rm", "-f", &self.name]);
    }
}

/// Removes an image reference (and the ID, if given) when dropped.
struct ImageGuard<'a> {
    host: &'a str,
    names: Vec<String>,
}

impl Drop for ImageGuard<'_> {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = berth(self.host, &["rmi", "-f", n]);
        }
    }
}

#[test]
fn run_rm_echo() {
    let host = need_daemon!();
    let name = unique("echo");
    let _g = ContainerGuard {
        host: &host,
        name: name.clone(),
    };
    let o = berth(
        &host,
        &["run", "--rm", "--name", &name, IMAGE, "echo", "hi"],
    );
    assert_eq!(stdout(&o), "hi\n", "stderr: {}", stderr(&o));
    assert_eq!(o.status.code(), Some(0));
    // --rm: the container is gone once run returns.
    let left = ok(
        &host,
        &["ps", "-a", "-q", "--filter", &format!("name={name}")],
    );
    assert_eq!(left, "");
}

#[test]
fn exit_codes_pass_through() {
    let host = need_daemon!();
    let o = berth(
        &host,
        &[
            "run",
            "--rm",
            IMAGE,
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
    );
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(stderr(&o), "err\n");

    let o = berth(&host, &["run", "--rm", IMAGE, "/no/such/binary"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    // dockerd fails the start ("Error response from daemon: ... executable file not found");
    // a daemon whose runtime reports it from inside the container prints it there instead.
    assert!(!stderr(&o).is_empty());

    let o = berth(&host, &["run", "--rm", "--restart", "bogus", IMAGE, "true"]);
    assert_eq!(o.status.code(), Some(125));

    let o = berth(&host, &["rm", &unique("missing")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("Error response from daemon: "),
        "{}",
        stderr(&o)
    );
}

#[test]
fn detached_logs_stop_wait() {
    let host = need_daemon!();
    let name = unique("detached");
    let _g = ContainerGuard {
        host: &host,
        name: name.clone(),
    };
    let id = ok(
        &host,
        &[
            "run",
            "-d",
            "--name",
            &name,
            IMAGE,
            "sh",
            "-c",
            "echo started; echo warn >&2; trap 'exit 0' TERM; while true; do sleep 0.1; done",
        ],
    );
    let id = id.trim();
    assert_eq!(id.len(), 64, "{id}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let o = berth(&host, &["logs", &name]);
        if stdout(&o) == "started\n" && stderr(&o) == "warn\n" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "logs: {:?} {:?}",
            stdout(&o),
            stderr(&o)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let ts = ok(&host, &["logs", "-t", "--tail", "2", &name]);
    assert!(ts.ends_with(" started\n") && ts.contains('T'), "{ts}");
    let status = ok(
        &host,
        &[
            "ps",
            "--filter",
            &format!("name={name}"),
            "--format",
            "{{.Status}}",
        ],
    );
    assert!(status.starts_with("Up "), "{status}");
    assert_eq!(ok(&host, &["stop", "-t", "5", &name]), format!("{name}\n"));
    assert_eq!(
        ok(
            &host,
            &[
                "inspect",
                "-f",
                "{{.State.Status}} {{.State.ExitCode}}",
                &name
            ]
        ),
        "exited 0\n"
    );
    assert_eq!(ok(&host, &["wait", &name]), "0\n");
    assert_eq!(ok(&host, &["rm", &name]), format!("{name}\n"));
}

#[test]
fn ps_filter_and_format() {
    let host = need_daemon!();
    let name = unique("ps");
    let _g = ContainerGuard {
        host: &host,
        name: name.clone(),
    };
    let id = ok(
        &host,
        &["create", "--name", &name, "-l", "suite=e2e", IMAGE, "true"],
    );
    let id = id.trim().to_string();
    let filter = format!("name={name}");
    let table = ok(&host, &["ps", "-a", "--filter", &filter]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>().join(" "),
        "CONTAINER ID IMAGE COMMAND CREATED STATUS PORTS NAMES",
        "{table}"
    );
    // Columns are aligned: each title starts where its values start.
    for (title, value) in [
        ("IMAGE", IMAGE),
        ("COMMAND", "\"true\""),
        ("NAMES", name.as_str()),
    ] {
        assert_eq!(
            lines[0].find(title),
            lines[1].find(value),
            "{title} in {table}"
        );
    }
    assert!(lines[1].starts_with(&id[..12]), "{table}");
    assert!(
        lines[1].contains("\"true\"") && lines[1].contains("Created"),
        "{table}"
    );
    assert!(lines[1].ends_with(&name), "{table}");

    assert_eq!(
        ok(&host, &["ps", "-a", "-q", "--filter", &filter]),
        format!("{}\n", &id[..12])
    );
    assert_eq!(
        ok(
            &host,
            &["ps", "-a", "-q", "--no-trunc", "--filter", &filter]
        ),
        format!("{id}\n")
    );
    assert_eq!(
        ok(
            &host,
            &[
                "ps",
                "-a",
                "--filter",
                &filter,
                "--format",
                "{{.Names}} {{.Image}} {{.Command}} {{.State}}"
            ]
        ),
        format!("{name} {IMAGE} \"true\" created\n")
    );
    let json_line = ok(
        &host,
        &["ps", "-a", "--filter", &filter, "--format", "{{json .}}"],
    );
    let v: Value = serde_json::from_str(json_line.trim()).unwrap();
    assert_eq!(v["Names"], name.as_str());
    assert_eq!(v["Labels"], "suite=e2e");
    assert_eq!(v["ID"], &id[..12]);
    let t = ok(
        &host,
        &[
            "ps",
            "-a",
            "--filter",
            &filter,
            "--format",
            "table {{.Names}}\\t{{.Labels}}",
        ],
    );
    assert_eq!(
        t.lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["NAMES", "LABELS"]
    );
    let by_label = ok(
        &host,
        &[
            "ps",
            "-a",
            "-q",
            "--filter",
            "label=suite=e2e",
            "--filter",
            &filter,
        ],
    );
    assert_eq!(by_label.trim(), &id[..12]);
}

#[test]
fn inspect_reflects_create_flags() {
    let host = need_daemon!();
    let name = unique("inspect");
    let _g = ContainerGuard {
        host: &host,
        name: name.clone(),
    };
    ok(
        &host,
        &[
            "create",
            "--name",
            &name,
            "-t",
            "-i",
            "-e",
            "X=1",
            "-w",
            "/tmp",
            "-u",
            "1000:1000",
            "-l",
            "k=v",
            "--hostname",
            "box",
            "--entrypoint",
            "/bin/sh",
            "--init",
            "--read-only",
            "--cpus",
            "0.5",
            "--memory",
            "64m",
            "--memory-swap",
            "128m",
            "--pids-limit",
            "50",
            "--cpuset-cpus",
            "0",
            "--cpu-shares",
            "512",
            "--ulimit",
            "nofile=100:200",
            "--cap-add",
            "NET_ADMIN",
            "--cap-drop",
            "MKNOD",
            "--security-opt",
            "no-new-privileges",
            "--tmpfs",
            "/scratch:size=1m",
            "--network",
            "none",
            "--stop-signal",
            "SIGUSR1",
            "--stop-timeout",
            "3",
            "--restart",
            "on-failure:2",
            "--runtime",
            "runc",
            IMAGE,
            "-c",
            "true",
        ],
    );
    let hc: Value = serde_json::from_str(&ok(
        &host,
        &["inspect", "-f", "{{json .HostConfig}}", &name],
    ))
    .unwrap();
    assert_eq!(hc["Memory"], 64 * 1024 * 1024);
    assert_eq!(hc["MemorySwap"], 128 * 1024 * 1024);
    assert_eq!(hc["NanoCpus"], 500_000_000);
    assert_eq!(hc["PidsLimit"], 50);
    assert_eq!(hc["CpusetCpus"], "0");
    assert_eq!(hc["CpuShares"], 512);
    assert_eq!(hc["Ulimits"][0]["Name"], "nofile");
    assert_eq!(hc["Ulimits"][0]["Soft"], 100);
    assert_eq!(hc["Ulimits"][0]["Hard"], 200);
    assert_eq!(hc["CapAdd"][0], "NET_ADMIN");
    assert_eq!(hc["CapDrop"][0], "MKNOD");
    assert_eq!(hc["SecurityOpt"][0], "no-new-privileges");
    assert_eq!(hc["Tmpfs"]["/scratch"], "size=1m");
    assert_eq!(hc["NetworkMode"], "none");
    assert_eq!(hc["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(hc["RestartPolicy"]["MaximumRetryCount"], 2);
    assert_eq!(hc["Runtime"], "runc");
    assert_eq!(hc["Init"], true);
    assert_eq!(hc["ReadonlyRootfs"], true);
    assert_eq!(hc["Privileged"], false);

    let cfg: Value =
        serde_json::from_str(&ok(&host, &["inspect", "-f", "{{json .Config}}", &name])).unwrap();
    assert_eq!(cfg["Tty"], true);
    assert_eq!(cfg["OpenStdin"], true);
    assert!(cfg["Env"].as_array().unwrap().iter().any(|e| e == "X=1"));
    assert_eq!(cfg["WorkingDir"], "/tmp");
    assert_eq!(cfg["User"], "1000:1000");
    assert_eq!(cfg["Labels"]["k"], "v");
    assert_eq!(cfg["Hostname"], "box");
    assert_eq!(cfg["Entrypoint"], serde_json::json!(["/bin/sh"]));
    assert_eq!(cfg["Cmd"], serde_json::json!(["-c", "true"]));
    assert_eq!(cfg["StopSignal"], "SIGUSR1");
    assert_eq!(cfg["StopTimeout"], 3);

    // Plain inspect: an indented JSON array, as the daemon sent the object.
    let all: Value = serde_json::from_str(&ok(&host, &["inspect", &name])).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 1);
    assert_eq!(all[0]["Name"], format!("/{name}"));
    assert_eq!(
        ok(
            &host,
            &[
                "container",
                "inspect",
                "-f",
                "{{.Name}} {{.State.Status}}",
                &name
            ]
        ),
        format!("/{name} created\n")
    );
    let image_id = ok(&host, &["image", "inspect", "-f", "{{.Id}}", IMAGE]);
    assert!(image_id.starts_with("sha256:"), "{image_id}");
    assert_eq!(ok(&host, &["inspect", "-f", "{{.Image}}", &name]), image_id);

    let missing = unique("missing");
    let o = berth(&host, &["inspect", &missing]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(&format!("No such object: {missing}")),
        "{}",
        stderr(&o)
    );
}

#[test]
fn import_save_rmi_load_keeps_the_id() {
    let host = need_daemon!();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("hello.txt"), "hello from berth\n").unwrap();
    let tarball = dir.path().join("rootfs.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let reference = format!("{}:v1", unique("img"));
    let _g = ImageGuard {
        host: &host,
        names: vec![reference.clone()],
    };
    let out = ok(
        &host,
        &[
            "import",
            "-c",
            "CMD [\"/hello\"]",
            "-c",
            "ENV A=1",
            "-m",
            "imported by e2e",
            tarball.to_str().unwrap(),
            &reference,
        ],
    );
    let id = out.trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{out}");
    assert_eq!(
        ok(&host, &["inspect", "-f", "{{.Id}}", &reference]).trim(),
        id
    );
    assert_eq!(
        ok(
            &host,
            &[
                "image",
                "inspect",
                "-f",
                "{{json .Config.Cmd}} {{.Comment}}",
                &reference
            ]
        ),
        "[\"/hello\"] imported by e2e\n"
    );
    let (repo, tag) = reference.split_once(':').unwrap();
    assert_eq!(
        ok(
            &host,
            &[
                "images",
                "--format",
                "{{.Repository}} {{.Tag}} {{.ID}}",
                repo
            ]
        ),
        format!("{repo} {tag} {}\n", &id[7..19])
    );
    assert_eq!(
        ok(&host, &["images", "-q", "--no-trunc", repo]),
        format!("{id}\n")
    );

    let saved = dir.path().join("saved.tar");
    ok(&host, &["save", "-o", saved.to_str().unwrap(), &reference]);
    assert!(std::fs::metadata(&saved).unwrap().len() > 1024);
    let rmi = ok(&host, &["rmi", &reference]);
    assert!(rmi.contains(&format!("Untagged: {reference}")), "{rmi}");
    assert!(rmi.contains(&format!("Deleted: {id}")), "{rmi}");
    assert_eq!(
        berth(&host, &["image", "inspect", &reference])
            .status
            .code(),
        Some(1)
    );

    let loaded = ok(&host, &["load", "-i", saved.to_str().unwrap()]);
    assert!(
        loaded.contains(&format!("Loaded image: {reference}")),
        "{loaded}"
    );
    assert_eq!(
        ok(&host, &["inspect", "-f", "{{.Id}}", &reference]).trim(),
        id
    );

    // tag then rmi of the new name only untags.
    let other = format!("{repo}:v2");
    ok(&host, &["tag", &reference, &other]);
    assert_eq!(ok(&host, &["rmi", &other]), format!("Untagged: {other}\n"));
}

#[test]
fn events_show_the_lifecycle() {
    let host = need_daemon!();
    let name = unique("events");
    let _g = ContainerGuard {
        host: &host,
        name: name.clone(),
    };
    let since = (now_unix() - 1).to_string();
    ok(&host, &["run", "--rm", "--name", &name, IMAGE, "true"]);
    let until = (now_unix() + 1).to_string();
    // Let the clock pass --until so the daemon closes the stream.
    std::thread::sleep(Duration::from_millis(1100));
    let out = ok(
        &host,
        &[
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            &format!("container={name}"),
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
        ],
    );
    let actions: Vec<&str> = out
        .lines()
        .map(|l| l.split(' ').nth(1).unwrap_or(""))
        .filter(|a| ["create", "start", "die", "destroy"].contains(a))
        .collect();
    assert_eq!(actions, ["create", "start", "die", "destroy"], "{out}");
    assert!(
        out.lines()
            .all(|l| l.starts_with("container ") && l.ends_with(&name)),
        "{out}"
    );
    // The default line format: time, type, action, ID, (attributes).
    let plain = ok(
        &host,
        &[
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            &format!("container={name}"),
        ],
    );
    let first = plain.lines().next().unwrap_or_default();
    assert!(first.contains(" container create "), "{plain}");
    assert!(first.contains(&format!("name={name}")), "{plain}");
}

#[test]
fn host_selection_and_version() {
    let host = need_daemon!();
    // -H wins over BERTH_HOST.
    let o = berth(&host, &["-H", "unix:///nonexistent/berth.sock", "ps"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("unix:///nonexistent/berth.sock"),
        "{}",
        stderr(&o)
    );
    // DOCKER_HOST is used when BERTH_HOST is unset.
    let o = Command::new(env!("CARGO_BIN_EXE_berth"))
        .env_remove("BERTH_HOST")
        .env("DOCKER_HOST", &host)
        .args([
            "version",
            "--format",
            "{{.Client.ApiVersion}} {{.Server.ApiVersion}}",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let parts: Vec<&str> = text.split_whitespace().collect();
    // The negotiated version is the lower of ours (1.47) and the daemon's.
    assert_eq!(parts.len(), 2, "{text}");
    assert!(
        !client::version_less(client::API_VERSION, parts[0]),
        "{text}"
    );
    assert!(!client::version_less(parts[1], parts[0]), "{text}");
    let v = ok(&host, &["version"]);
    assert!(
        v.starts_with("Client:\n Version:") && v.contains("\nServer:"),
        "{v}"
    );
    let info = ok(&host, &["info", "--format", "{{.ServerInfo.OSType}}"]);
    assert_eq!(info, "linux\n");
}

#[test]
fn stdin_tty_and_start_attach() {
    use std::io::Write;
    let host = need_daemon!();
    // -i: our stdin reaches the container; its EOF closes the container's stdin.
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .env("BERTH_HOST", &host)
        .args(["run", "-i", "--rm", IMAGE, "sh", "-c", "tr a-z A-Z; exit 5"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    // Never hang the suite on a daemon without stdin attach: give up after 30 s.
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("run -i did not finish: stdin EOF did not reach the container");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(stdout(&o), "HELLO\n");
    assert_eq!(o.status.code(), Some(5));
    // -t: one raw stream from a terminal.
    let o = berth(
        &host,
        &["run", "--rm", "-t", IMAGE, "sh", "-c", "tty; echo err >&2"],
    );
    assert_eq!(stdout(&o), "/dev/pts/0\r\nerr\r\n");
    // start -a: output and exit status of a created container.
    let name = unique("start");
    let _g = ContainerGuard {
        host: &host,
        name: name.clone(),
    };
    ok(
        &host,
        &[
            "create",
            "--name",
            &name,
            IMAGE,
            "sh",
            "-c",
            "echo attached; exit 4",
        ],
    );
    let o = berth(&host, &["start", "-a", &name]);
    assert_eq!(stdout(&o), "attached\n");
    assert_eq!(o.status.code(), Some(4));
}
