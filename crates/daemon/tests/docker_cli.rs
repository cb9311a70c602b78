//! The real docker CLI (28.x) against berthd: what issue 4 asks to be shown.

mod common;

use std::time::Duration;

use common::{Daemon, wait_until};

#[test]
fn version_and_info_print_both_sections() {
    let daemon = Daemon::start();
    let version = daemon.docker(&["version"]);
    version.ok();
    assert!(
        version.stdout.contains("Client:") && version.stdout.contains("Server:"),
        "{}",
        version.stdout
    );
    assert!(version.stdout.contains("Berth"), "{}", version.stdout);
    let info = daemon.docker(&[
        "info",
        "--format",
        "{{.Driver}} {{.CgroupDriver}} {{.NCPU}} {{.Containers}}",
    ]);
    let fields: Vec<String> = info.ok().out().split(' ').map(str::to_string).collect();
    assert_eq!(fields[0], "overlay2");
    assert_eq!(fields[1], "cgroupfs");
    assert!(fields[2].parse::<i32>().unwrap() >= 1);
}

#[test]
fn run_rm_echo_and_exit_codes() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    let run = daemon.docker(&["run", "--rm", "busybox", "echo", "hi"]);
    assert_eq!(run.ok().stdout, "hi\n");
    let failing = daemon.docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 42",
    ]);
    assert_eq!(failing.code, 42, "{}", failing.stderr);
    assert_eq!(failing.stdout, "out\n");
    assert!(failing.stderr.contains("err"), "{}", failing.stderr);
    // --rm left nothing behind.
    assert_eq!(daemon.docker(&["ps", "-aq"]).ok().out(), "");
    // A missing program: docker's 127.
    let missing = daemon.docker(&["run", "--rm", "busybox", "no-such-program"]);
    assert_eq!(missing.code, 127, "{} {}", missing.stdout, missing.stderr);
}

/// `docker start -a` right after the container's previous run: the CLI's wait (sent from
/// another goroutine, usually before the start) belongs to the new run, not to the exit of the
/// previous one a moment ago.
#[test]
fn start_a_right_after_a_run_waits_for_the_new_exit() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    // Each run exits with its own number (kept in the container's writable layer).
    let script =
        "n=$(cat /count 2>/dev/null || echo 0); n=$((n+1)); echo $n > /count; sleep 0.3; exit $n";
    daemon
        .docker(&["create", "--name", "again", "busybox", "sh", "-c", script])
        .ok();
    for round in 1..=3 {
        let run = daemon.docker(&["start", "-a", "again"]);
        assert_eq!(run.code, round, "{run:?}");
        let state = daemon.docker(&[
            "inspect",
            "-f",
            "{{.State.Running}} {{.State.ExitCode}}",
            "again",
        ]);
        assert_eq!(state.ok().out(), format!("false {round}"));
    }
    daemon.docker(&["rm", "again"]).ok();
}

#[test]
fn detached_logs_follow_and_stop() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    let id = daemon
        .docker(&[
            "run",
            "-d",
            "--name",
            "ticker",
            "busybox",
            "sh",
            "-c",
            "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.1; done",
        ])
        .ok()
        .out();
    assert_eq!(id.len(), 64);
    assert!(wait_until(Duration::from_secs(10), || daemon
        .docker(&["logs", "ticker"])
        .stdout
        .contains("line 3")));
    let stop = daemon.docker(&["stop", "-t", "1", "ticker"]);
    stop.ok();
    let state = daemon
        .docker(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.Running}}",
            "ticker",
        ])
        .ok()
        .out();
    assert_eq!(state, "exited false");
    // logs -f of a stopped container ends by itself and has every line in order.
    let logs = daemon.docker(&["logs", "-f", "ticker"]).ok().stdout.clone();
    let numbers: Vec<u32> = logs
        .lines()
        .filter_map(|l| l.strip_prefix("line ")?.parse().ok())
        .collect();
    assert!(numbers.len() >= 4);
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "lines lost: {numbers:?}"
    );
    let tail = daemon
        .docker(&["logs", "--tail", "2", "ticker"])
        .ok()
        .stdout
        .clone();
    assert_eq!(tail.lines().count(), 2);
}

#[test]
fn restart_on_failure_three_times() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    daemon
        .docker(&[
            "run",
            "-d",
            "--name",
            "flaky",
            "--restart",
            "on-failure:3",
            "busybox",
            "sh",
            "-c",
            "exit 3",
        ])
        .ok();
    assert!(
        wait_until(Duration::from_secs(20), || {
            daemon
                .docker(&[
                    "inspect",
                    "-f",
                    "{{.RestartCount}} {{.State.Status}}",
                    "flaky",
                ])
                .out()
                == "3 exited"
        }),
        "{}",
        daemon
            .docker(&[
                "inspect",
                "-f",
                "{{.RestartCount}} {{.State.Status}}",
                "flaky"
            ])
            .out()
    );
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        daemon
            .docker(&[
                "inspect",
                "-f",
                "{{.RestartCount}} {{.State.ExitCode}}",
                "flaky"
            ])
            .ok()
            .out(),
        "3 3"
    );
}

#[test]
fn memory_and_pids_limits_are_enforced() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    let oom = daemon.docker(&[
        "run",
        "--rm",
        "--memory",
        "32m",
        "--memory-swap",
        "32m",
        "busybox",
        "sh",
        "-c",
        "head -c 200m /dev/zero | tail > /dev/null",
    ]);
    assert_eq!(oom.code, 137, "{} {}", oom.stdout, oom.stderr);
    let pids = daemon.docker(&[
        "run",
        "--rm",
        "--pids-limit",
        "8",
        "busybox",
        "sh",
        "-c",
        "for i in $(seq 20); do sleep 5 & done 2>&1 | grep -c fork; true",
    ]);
    pids.ok();
    assert!(
        pids.out().parse::<i32>().unwrap_or(0) > 0 || pids.stderr.contains("fork"),
        "{} {}",
        pids.stdout,
        pids.stderr
    );
}

#[test]
fn inspect_ps_filters_and_format() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    daemon
        .docker(&[
            "create",
            "--name",
            "alpha",
            "-l",
            "tier=web",
            "-e",
            "A=1",
            "--hostname",
            "h1",
            "busybox",
            "sleep",
            "30",
        ])
        .ok();
    daemon
        .docker(&["run", "-d", "--name", "beta", "busybox", "sleep", "30"])
        .ok();
    let inspect = daemon.docker(&["inspect", "alpha"]).ok().stdout.clone();
    let value: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    let alpha = &value[0];
    assert_eq!(alpha["Name"], "/alpha");
    assert_eq!(alpha["State"]["Status"], "created");
    assert_eq!(alpha["Config"]["Hostname"], "h1");
    assert!(
        alpha["Config"]["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "A=1")
    );
    assert_eq!(alpha["Config"]["Labels"]["tier"], "web");
    assert!(
        alpha["HostConfig"].is_object()
            && alpha["Mounts"].is_array()
            && alpha["NetworkSettings"].is_object()
    );
    assert_eq!(
        daemon.docker(&["ps", "--format", "{{.Names}}"]).ok().out(),
        "beta"
    );
    assert_eq!(
        daemon
            .docker(&[
                "ps",
                "-a",
                "--filter",
                "label=tier=web",
                "--format",
                "{{.Names}} {{.Status}}"
            ])
            .ok()
            .out(),
        "alpha Created"
    );
    assert_eq!(
        daemon
            .docker(&["ps", "-a", "--filter", "status=running", "-q"])
            .ok()
            .out()
            .len(),
        12
    );
    let table = daemon.docker(&["ps", "-a"]).ok().stdout.clone();
    assert!(table.starts_with("CONTAINER ID"), "{table}");
    assert_eq!(table.lines().count(), 3);
}

#[test]
fn import_save_rmi_load_keeps_the_image_id() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    let id = daemon
        .docker(&["image", "inspect", "-f", "{{.Id}}", "busybox"])
        .ok()
        .out();
    assert!(id.starts_with("sha256:"));
    let archive = daemon.dir.path().join("saved.tar");
    daemon
        .docker(&["save", "-o", archive.to_str().unwrap(), "busybox"])
        .ok();
    daemon.docker(&["rmi", "busybox"]).ok();
    assert!(daemon.docker(&["image", "inspect", "busybox"]).code != 0);
    daemon
        .docker(&["load", "-i", archive.to_str().unwrap()])
        .ok();
    assert_eq!(
        daemon
            .docker(&["image", "inspect", "-f", "{{.Id}}", "busybox"])
            .ok()
            .out(),
        id
    );
    let images = daemon
        .docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .ok()
        .out();
    assert_eq!(images, "busybox:latest");
}

#[test]
fn events_show_the_lifecycle() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    let since = chrono_like_now();
    daemon
        .docker(&["run", "--rm", "--name", "evented", "busybox", "true"])
        .ok();
    let until = chrono_like_now() + 1;
    let events = daemon
        .docker(&[
            "events",
            "--since",
            &since.to_string(),
            "--until",
            &until.to_string(),
            "--filter",
            "container=evented",
            "--format",
            "{{.Action}}",
        ])
        .ok()
        .stdout
        .clone();
    let actions: Vec<&str> = events.lines().collect();
    for expected in ["create", "start", "die", "destroy"] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
}

fn chrono_like_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn bad_input_gets_dockers_errors() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    let missing = daemon.docker(&["run", "--rm", "no-such-image:1"]);
    assert_eq!(missing.code, 125);
    let bad_name = daemon.docker(&["create", "--name", "bad name!", "busybox", "true"]);
    assert_ne!(bad_name.code, 0);
    assert!(
        bad_name.stderr.contains("Invalid container name"),
        "{}",
        bad_name.stderr
    );
    daemon
        .docker(&["run", "-d", "--name", "busy", "busybox", "sleep", "30"])
        .ok();
    let rm = daemon.docker(&["rm", "busy"]);
    assert_ne!(rm.code, 0);
    assert!(
        rm.stderr
            .contains("stop the container before removing or force remove"),
        "{}",
        rm.stderr
    );
    assert!(
        daemon
            .docker(&["inspect", "nope"])
            .stderr
            .contains("No such")
    );
    // The daemon still serves.
    daemon.docker(&["rm", "-f", "busy"]).ok();
    daemon.docker(&["version"]).ok();
}

#[test]
fn containers_survive_kill_9_of_the_daemon() {
    let mut daemon = Daemon::start();
    daemon.import_busybox();
    for name in ["w1", "w2", "w3"] {
        daemon
            .docker(&[
                "run",
                "-d",
                "--name",
                name,
                "busybox",
                "sh",
                "-c",
                "i=0; while true; do echo $i; i=$((i+1)); sleep 0.05; done",
            ])
            .ok();
    }
    std::thread::sleep(Duration::from_millis(300));
    daemon.kill_hard();
    std::thread::sleep(Duration::from_millis(500));
    daemon.restart();
    let running = daemon.docker(&["ps", "--format", "{{.Names}}"]).ok().out();
    let mut names: Vec<&str> = running.lines().collect();
    names.sort();
    assert_eq!(names, vec!["w1", "w2", "w3"]);
    for name in ["w1", "w2", "w3"] {
        daemon.docker(&["stop", "-t", "1", name]).ok();
        let logs = daemon.docker(&["logs", name]).ok().stdout.clone();
        let numbers: Vec<u64> = logs.lines().filter_map(|l| l.parse().ok()).collect();
        assert!(numbers.len() > 10, "{name}: {numbers:?}");
        assert!(
            numbers.iter().enumerate().all(|(i, n)| *n == i as u64),
            "{name} lost lines"
        );
    }
}
