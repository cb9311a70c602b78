//! `--init` end to end: a fresh berthd (which finds `berth-init` next to itself), the real docker
//! CLI, busybox-static (no libc in the image, so the init must be static). Needs root and
//! `cargo build -p init` (scripts/test.sh builds the whole workspace first).

mod common;

use std::time::{Duration, Instant};

use common::{Daemon, sibling_binary};

fn daemon() -> Daemon {
    assert!(
        sibling_binary("berth-init").is_file(),
        "berth-init is not built next to berthd: run `cargo build -p init` first"
    );
    let daemon = Daemon::start();
    daemon.import_busybox();
    daemon
}

#[test]
fn init_is_pid_1_and_runs_the_command() {
    let daemon = daemon();
    // `docker info` names the init binary, as dockerd names docker-init.
    let info = daemon.docker(&["info", "--format", "{{.InitBinary}}"]);
    assert_eq!(info.ok().out(), "berth-init");
    let ps = daemon.docker(&["run", "--rm", "--init", "busybox", "ps"]);
    ps.ok();
    // busybox ps: PID USER TIME COMMAND
    let pid1 = ps
        .stdout
        .lines()
        .find(|line| line.split_whitespace().next() == Some("1"))
        .unwrap_or_else(|| panic!("no pid 1 in:\n{}", ps.stdout));
    assert!(
        pid1.ends_with("/sbin/docker-init -- ps"),
        "pid 1 is not the init: {pid1}"
    );
    assert!(
        ps.stdout
            .lines()
            .any(|line| line.split_whitespace().last() == Some("ps")),
        "the command runs as a child of the init:\n{}",
        ps.stdout
    );

    // The exit code of the command is the container's.
    let run = daemon.docker(&["run", "--rm", "--init", "busybox", "sh", "-c", "exit 42"]);
    assert_eq!(run.code, 42, "{}", run.stderr);
    // Killed by a signal: 128 + signal, as docker-init reports.
    let run = daemon.docker(&[
        "run",
        "--rm",
        "--init",
        "busybox",
        "sh",
        "-c",
        "kill -KILL $$",
    ]);
    assert_eq!(run.code, 137, "{}", run.stderr);
    // A missing program: the init exits 127 and says why.
    let run = daemon.docker(&["run", "--rm", "--init", "busybox", "/no/such/program"]);
    assert_eq!(run.code, 127, "{}", run.stderr);
    assert!(run.stderr.contains("/no/such/program"), "{}", run.stderr);

    // Without --init the command itself is pid 1 and nothing is mounted.
    let ps = daemon.docker(&["run", "--rm", "busybox", "ps"]);
    ps.ok();
    assert!(!ps.stdout.contains("docker-init"), "{}", ps.stdout);
    let ls = daemon.docker(&["run", "--rm", "busybox", "ls", "/sbin/docker-init"]);
    assert_ne!(ls.code, 0, "docker-init present without --init");
}

#[test]
fn orphaned_zombies_are_reaped() {
    let daemon = daemon();
    // The inner shell exits at once; its background `sleep` is orphaned, re-parented to pid 1
    // and exits 0.2 s later. Then every process's state is printed: none may be a zombie.
    let script = "sh -c 'sleep 0.2 &'; sleep 1; cat /proc/[0-9]*/stat";
    let run = daemon.docker(&["run", "--rm", "--init", "busybox", "sh", "-c", script]);
    run.ok();
    let states: Vec<(&str, &str)> = run
        .stdout
        .lines()
        .filter_map(|line| {
            let (head, tail) = line.rsplit_once(") ")?;
            Some((head, tail.split_whitespace().next()?))
        })
        .collect();
    assert!(states.len() >= 2, "no process list:\n{}", run.stdout);
    for (process, state) in &states {
        assert_ne!(*state, "Z", "zombie left: {process}");
    }
}

#[test]
fn stop_forwards_sigterm_and_reports_143() {
    let daemon = daemon();
    // `sleep` installs no handler: as pid 1 it would ignore SIGTERM and `docker stop` would
    // wait the whole timeout, then SIGKILL (137). Under the init it gets the forwarded SIGTERM.
    let id = daemon
        .docker(&[
            "run", "-d", "--init", "--name", "sleeper", "busybox", "sleep", "1000",
        ])
        .ok()
        .out();
    let host_config = daemon
        .docker(&["inspect", "-f", "{{.HostConfig.Init}}", &id])
        .ok()
        .out();
    assert_eq!(host_config, "true");
    let started = Instant::now();
    daemon.docker(&["stop", "-t", "10", "sleeper"]).ok();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "stop waited for the timeout: {took:?}"
    );
    let code = daemon
        .docker(&["inspect", "-f", "{{.State.ExitCode}}", "sleeper"])
        .ok()
        .out();
    assert_eq!(code, "143");

    // Other signals reach the command too (docker kill -s USR1 to a shell that traps it).
    daemon
        .docker(&[
            "run",
            "-d",
            "--init",
            "--name",
            "trapper",
            "busybox",
            "sh",
            "-c",
            "trap 'exit 21' USR1; while :; do sleep 0.1; done",
        ])
        .ok();
    std::thread::sleep(Duration::from_millis(300));
    daemon.docker(&["kill", "-s", "USR1", "trapper"]).ok();
    let code = daemon.docker(&["wait", "trapper"]).ok().out();
    assert_eq!(code, "21");
    daemon.docker(&["rm", "-f", "sleeper", "trapper"]).ok();
}

#[test]
fn daemon_default_init_and_init_path() {
    // daemon.json `init: true` gives every container an init unless it says --init=false;
    // `init-path` names the binary (here a copy outside berthd's directory).
    let tools = tempfile::tempdir().unwrap();
    let init = tools.path().join("my-init");
    std::fs::copy(sibling_binary("berth-init"), &init).unwrap();
    let config = serde_json::json!({ "init": true, "init-path": init }).to_string();
    let daemon = Daemon::start_with_config(&config);
    daemon.import_busybox();

    let ps = daemon.docker(&["run", "--rm", "busybox", "ps"]);
    ps.ok();
    assert!(
        ps.stdout.contains("/sbin/docker-init -- ps"),
        "the daemon default did not apply:\n{}",
        ps.stdout
    );
    let ps = daemon.docker(&["run", "--rm", "--init=false", "busybox", "ps"]);
    ps.ok();
    assert!(!ps.stdout.contains("docker-init"), "{}", ps.stdout);
}
