//! The real docker CLI (28.x) against berthd for the operations on live containers of issue 5:
//! stats, top, pause/unpause, update, rename, ps --size, system df and system prune, and
//! their bad input (dockerd's statuses and messages; the daemon keeps serving).

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use common::{Daemon, http, wait_until};

/// Reads the first `lines` lines of a streamed answer (HTTP/1.0: the body is raw).
fn stream_lines(daemon: &Daemon, path: &str, lines: usize) -> Vec<String> {
    let mut stream = UnixStream::connect(&daemon.socket).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: berth\r\n\r\n").as_bytes())
        .expect("write");
    let mut raw = Vec::new();
    let mut buffer = [0u8; 65536];
    loop {
        let text = String::from_utf8_lossy(&raw).into_owned();
        if let Some((_, body)) = text.split_once("\r\n\r\n") {
            let complete: Vec<String> = body
                .split_inclusive('\n')
                .filter(|l| l.ends_with('\n'))
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect();
            if complete.len() >= lines {
                return complete.into_iter().take(lines).collect();
            }
        }
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => panic!("stream ended early: {text}"),
            Ok(n) => raw.extend_from_slice(&buffer[..n]),
        }
    }
}

fn message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("no JSON error message in {body:?}"))
}

/// The container's directory in the hierarchy of a cgroup v1 controller, or in cgroup2.
fn cgroup_dir(controller: &str, id: &str) -> PathBuf {
    let v1 = PathBuf::from(format!("/sys/fs/cgroup/{controller}/berth/{id}"));
    if v1.is_dir() {
        return v1;
    }
    PathBuf::from(format!("/sys/fs/cgroup/berth/{id}"))
}

fn read_u64(path: PathBuf) -> u64 {
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The cgroup's own memory figure as docker computes it: usage (v1 memory.usage_in_bytes,
/// v2 memory.current) minus inactive file pages.
fn cgroup_memory(id: &str) -> (u64, u64) {
    let dir = cgroup_dir("memory", id);
    let v1 = dir.join("memory.usage_in_bytes").exists();
    let usage = if v1 {
        read_u64(dir.join("memory.usage_in_bytes"))
    } else {
        read_u64(dir.join("memory.current"))
    };
    let stat = std::fs::read_to_string(dir.join("memory.stat")).unwrap_or_default();
    let key = if v1 {
        "total_inactive_file"
    } else {
        "inactive_file"
    };
    let inactive = stat
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    (usage, inactive)
}

/// "20.03MiB" -> bytes (docker's binary units).
fn parse_size(text: &str) -> f64 {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().unwrap_or_else(|_| panic!("size {text:?}"));
    let factor = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        other => panic!("unit {other:?} in {text:?}"),
    };
    number * factor
}

fn container_id(daemon: &Daemon, name: &str) -> String {
    daemon
        .docker(&["inspect", "-f", "{{.Id}}", name])
        .ok()
        .out()
}

#[test]
fn stats_memory_matches_the_cgroup_and_json_has_dockers_shape() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    // A shell that holds ~20 MB in a variable, so the figure is well above noise.
    daemon
        .docker(&[
            "run",
            "-d",
            "--name",
            "mem",
            "busybox",
            "sh",
            "-c",
            "x=$(head -c 20000000 /dev/zero | tr '\\0' a); while true; do sleep 1; done",
        ])
        .ok();
    let id = container_id(&daemon, "mem");
    assert!(
        wait_until(Duration::from_secs(20), || cgroup_memory(&id).0
            > 15_000_000),
        "the container never used 15 MB: {:?}",
        cgroup_memory(&id)
    );
    let stats = daemon.docker(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.MemUsage}}|{{.PIDs}}|{{.Name}}",
        "mem",
    ]);
    let out = stats.ok().out();
    let (usage, inactive) = cgroup_memory(&id);
    let fields: Vec<&str> = out.split('|').collect();
    assert_eq!(fields.len(), 3, "{out}");
    let shown = parse_size(fields[0].split(" / ").next().unwrap());
    let counter = (usage - inactive.min(usage)) as f64;
    assert!(
        (shown - counter).abs() <= counter * 0.10,
        "docker shows {shown} bytes, the cgroup counts {counter} (usage {usage}, inactive file {inactive})"
    );
    assert!(
        (shown - usage as f64).abs() <= usage as f64 * 0.10,
        "docker shows {shown}, memory usage counter {usage}"
    );
    assert!(fields[1].parse::<u32>().unwrap() >= 1, "{out}");
    assert_eq!(fields[2], "mem");

    // The JSON itself, one sample without a stream: CPU primed, dockerd's keys.
    let (status, body) = http(
        &daemon,
        "GET",
        "/v1.47/containers/mem/stats?stream=false",
        None,
    );
    assert_eq!(status, 200, "{body}");
    let sample: serde_json::Value = serde_json::from_str(body.trim()).expect("one JSON sample");
    for key in [
        "read",
        "preread",
        "pids_stats",
        "blkio_stats",
        "cpu_stats",
        "precpu_stats",
        "memory_stats",
        "name",
        "id",
    ] {
        assert!(sample.get(key).is_some(), "{key} missing in {sample}");
    }
    assert_eq!(sample["name"], "/mem");
    assert_eq!(sample["id"], id);
    let cpu = &sample["cpu_stats"];
    assert!(
        cpu["cpu_usage"]["total_usage"].as_u64().unwrap() > 0,
        "{cpu}"
    );
    assert!(cpu["cpu_usage"]["usage_in_usermode"].is_u64(), "{cpu}");
    assert!(cpu["cpu_usage"]["usage_in_kernelmode"].is_u64(), "{cpu}");
    assert!(cpu["system_cpu_usage"].as_u64().unwrap() > 0, "{cpu}");
    assert!(cpu["online_cpus"].as_u64().unwrap() >= 1, "{cpu}");
    assert!(cpu["throttling_data"]["periods"].is_u64(), "{cpu}");
    assert!(
        sample["precpu_stats"]["system_cpu_usage"].as_u64().unwrap() > 0,
        "stream=false primes precpu_stats: {sample}"
    );
    assert_ne!(sample["preread"], "0001-01-01T00:00:00Z");
    let memory = &sample["memory_stats"];
    assert!(memory["usage"].as_u64().unwrap() > 15_000_000, "{memory}");
    assert!(memory["limit"].as_u64().unwrap() > 0, "{memory}");
    let inactive_key = if cgroup_dir("memory", &id)
        .join("memory.usage_in_bytes")
        .exists()
    {
        "total_inactive_file"
    } else {
        "inactive_file"
    };
    assert!(memory["stats"][inactive_key].is_u64(), "{memory}");
    assert!(sample["pids_stats"]["current"].as_u64().unwrap() >= 1);
    assert!(sample["blkio_stats"].is_object());
    // The default bridge's interface is reported, as dockerd reports it (lo is not).
    assert!(sample["networks"]["eth0"]["rx_bytes"].is_u64(), "{sample}");
    assert!(sample["networks"].get("lo").is_none(), "{sample}");

    // one-shot: at once, precpu empty.
    let (status, body) = http(
        &daemon,
        "GET",
        "/containers/mem/stats?stream=false&one-shot=true",
        None,
    );
    assert_eq!(status, 200, "{body}");
    let sample: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
    assert_eq!(sample["preread"], "0001-01-01T00:00:00Z");
    // A stream: a sample a second, each carrying the previous CPU figures.
    let lines = stream_lines(&daemon, "/containers/mem/stats", 2);
    let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    let second: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(second["preread"], first["read"]);
    assert_eq!(second["precpu_stats"], first["cpu_stats"]);
    // A stopped container answers zero figures (docker prints 0B / 0B).
    daemon
        .docker(&["run", "-d", "--name", "done", "busybox", "true"])
        .ok();
    daemon.docker(&["wait", "done"]).ok();
    let stopped = daemon.docker(&["stats", "--no-stream", "--format", "{{.MemUsage}}", "done"]);
    assert_eq!(stopped.ok().out(), "0B / 0B");
}

#[test]
fn top_lists_the_containers_processes_and_only_them() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    daemon
        .docker(&[
            "run",
            "-d",
            "--name",
            "procs",
            "busybox",
            "sh",
            "-c",
            "sleep 1001 & sleep 1002 & wait",
        ])
        .ok();
    let id = container_id(&daemon, "procs");
    let mut top = String::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            top = daemon.docker(&["top", "procs"]).ok().stdout.clone();
            top.contains("sleep 1001") && top.contains("sleep 1002")
        }),
        "{top}"
    );
    let mut lines = top.lines();
    let titles: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        titles,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    );
    // Every row is a process of the container's cgroup, and they are all there.
    let procs = std::fs::read_to_string(cgroup_dir("pids", &id).join("cgroup.procs")).unwrap();
    let mut procs: Vec<&str> = procs.split_whitespace().collect();
    procs.sort();
    let mut rows: Vec<&str> = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    rows.sort();
    assert_eq!(rows, procs, "{top}");
    assert!(
        !rows.contains(&"1"),
        "the host's init is not the container's: {top}"
    );
    assert!(rows.len() >= 3, "{top}");
    // ps arguments pass through.
    let custom = daemon.docker(&["top", "procs", "-o", "pid,comm"]);
    let custom = custom.ok().out();
    assert!(custom.starts_with("PID"), "{custom}");
    assert!(custom.contains("sleep"), "{custom}");
    assert_eq!(custom.lines().count(), rows.len() + 1, "{custom}");
    // And through the API, with the JSON shape.
    let (status, body) = http(&daemon, "GET", "/containers/procs/top?ps_args=aux", None);
    assert_eq!(status, 200, "{body}");
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        value["Titles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "PID")
    );
    assert_eq!(value["Processes"].as_array().unwrap().len(), rows.len());
    // A stopped container has no processes: dockerd's conflict.
    daemon.docker(&["rm", "-f", "procs"]).ok();
    daemon
        .docker(&["create", "--name", "idle", "busybox", "true"])
        .ok();
    let (status, body) = http(&daemon, "GET", "/containers/idle/top", None);
    assert_eq!(status, 409, "{body}");
    assert!(message(&body).contains("is not running"), "{body}");
}

#[test]
fn pause_freezes_the_container_until_unpause() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    daemon
        .docker(&[
            "run",
            "-d",
            "--name",
            "counter",
            "busybox",
            "sh",
            "-c",
            "i=0; while true; do i=$((i+1)); echo $i; usleep 50000; done",
        ])
        .ok();
    let count = || daemon.docker(&["logs", "counter"]).stdout.lines().count();
    assert!(wait_until(Duration::from_secs(10), || count() > 3));
    daemon.docker(&["pause", "counter"]).ok();
    let state = daemon
        .docker(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.Paused}} {{.State.Running}}",
            "counter",
        ])
        .ok()
        .out();
    assert_eq!(state, "paused true true");
    let listed = daemon
        .docker(&["ps", "--format", "{{.State}}|{{.Status}}"])
        .ok()
        .out();
    assert!(listed.starts_with("paused|Up"), "{listed}");
    assert!(listed.ends_with("(Paused)"), "{listed}");
    // Frozen: the counter stops advancing.
    std::thread::sleep(Duration::from_millis(300));
    let frozen = count();
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(count(), frozen, "the counter advanced while paused");
    // Pausing again, or unpausing something running, is dockerd's conflict.
    let again = daemon.docker(&["pause", "counter"]);
    assert_ne!(again.code, 0);
    assert!(
        again.stderr.contains("is already paused"),
        "{}",
        again.stderr
    );
    let (status, _) = http(&daemon, "POST", "/containers/counter/pause", None);
    assert_eq!(status, 409);
    daemon.docker(&["unpause", "counter"]).ok();
    assert!(
        wait_until(Duration::from_secs(5), || count() > frozen + 3),
        "the counter did not resume"
    );
    let state = daemon
        .docker(&["inspect", "-f", "{{.State.Status}}", "counter"])
        .ok()
        .out();
    assert_eq!(state, "running");
    let not_paused = daemon.docker(&["unpause", "counter"]);
    assert!(
        not_paused.stderr.contains("is not paused"),
        "{}",
        not_paused.stderr
    );
    let events = daemon
        .docker(&[
            "events",
            "--since",
            "0",
            "--until",
            &format!("{}", chrono_now() + 1),
            "--filter",
            "container=counter",
            "--format",
            "{{.Action}}",
        ])
        .ok()
        .out();
    let actions: Vec<&str> = events.lines().collect();
    let pause = actions
        .iter()
        .position(|a| *a == "pause")
        .expect("pause event");
    let unpause = actions
        .iter()
        .position(|a| *a == "unpause")
        .expect("unpause event");
    assert!(pause < unpause, "{events}");
    // A paused container can be killed: SIGKILL resumes it, as dockerd does.
    daemon.docker(&["pause", "counter"]).ok();
    daemon.docker(&["kill", "counter"]).ok();
    assert!(wait_until(Duration::from_secs(10), || daemon
        .docker(&["inspect", "-f", "{{.State.Status}}", "counter"])
        .out()
        == "exited"));
    // A stopped container cannot be paused: 409.
    let (status, body) = http(&daemon, "POST", "/containers/counter/pause", None);
    assert_eq!(status, 409, "{body}");
    assert!(message(&body).contains("is not running"), "{body}");
}

fn chrono_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn update_changes_live_limits_and_the_record() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    daemon
        .docker(&[
            "run", "-d", "--name", "limited", "--memory", "128m", "busybox", "sleep", "1000",
        ])
        .ok();
    let id = container_id(&daemon, "limited");
    let memory_dir = cgroup_dir("memory", &id);
    let limit_file = if memory_dir.join("memory.limit_in_bytes").exists() {
        memory_dir.join("memory.limit_in_bytes")
    } else {
        memory_dir.join("memory.max")
    };
    assert_eq!(read_u64(limit_file.clone()), 128 << 20);
    daemon
        .docker(&["update", "--memory", "64m", "limited"])
        .ok();
    assert_eq!(read_u64(limit_file.clone()), 64 << 20);
    let inspected = daemon
        .docker(&["inspect", "-f", "{{.HostConfig.Memory}}", "limited"])
        .ok()
        .out();
    assert_eq!(inspected, (64u64 << 20).to_string());
    // CPU, pids and the restart policy in one go.
    daemon
        .docker(&[
            "update",
            "--cpus",
            "0.5",
            "--pids-limit",
            "50",
            "--restart",
            "on-failure:2",
            "limited",
        ])
        .ok();
    let pids_max = std::fs::read_to_string(cgroup_dir("pids", &id).join("pids.max")).unwrap();
    assert_eq!(pids_max.trim(), "50");
    let cpu_dir = cgroup_dir("cpu", &id);
    if cpu_dir.join("cpu.cfs_quota_us").exists() {
        assert_eq!(read_u64(cpu_dir.join("cpu.cfs_quota_us")), 50_000);
    } else {
        let max = std::fs::read_to_string(cpu_dir.join("cpu.max")).unwrap();
        assert_eq!(max.trim(), "50000 100000");
    }
    let inspected = daemon
        .docker(&[
            "inspect",
            "-f",
            "{{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
            "limited",
        ])
        .ok()
        .out();
    assert_eq!(inspected, "500000000 50 on-failure:2");
    // Kept across a daemon restart (the record was saved).
    let mut daemon = daemon;
    daemon.restart();
    let inspected = daemon
        .docker(&["inspect", "-f", "{{.HostConfig.Memory}}", "limited"])
        .ok()
        .out();
    assert_eq!(inspected, (64u64 << 20).to_string());
    // Bad values: dockerd's 400s, nothing changed.
    for (args, wanted) in [
        (vec!["--cpus", "99"], "Range of CPUs is from 0.01 to"),
        (
            vec!["--memory", "1k"],
            "Minimum memory limit allowed is 6MB",
        ),
        (
            vec!["--blkio-weight", "5"],
            "Range of blkio weight is from 10 to 1000",
        ),
        (
            vec!["--memory", "512m"],
            "Memory limit should be smaller than already set memoryswap limit",
        ),
    ] {
        let mut command = vec!["update"];
        command.extend(args.iter().copied());
        command.push("limited");
        let failed = daemon.docker(&command);
        assert_ne!(failed.code, 0, "{args:?}");
        assert!(
            failed.stderr.contains(wanted),
            "{args:?}: {}",
            failed.stderr
        );
    }
    assert_eq!(read_u64(limit_file), 64 << 20);
    let (status, body) = http(
        &daemon,
        "POST",
        "/containers/limited/update",
        Some(r#"{"NanoCpus": 99000000000}"#),
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = http(
        &daemon,
        "POST",
        "/containers/limited/update",
        Some(r#"{"Memory": "lots"}"#),
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = http(
        &daemon,
        "POST",
        "/containers/limited/update",
        Some(r#"{"CpuShares": 512}"#),
    );
    assert_eq!(status, 200, "{body}");
    assert!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["Warnings"].is_null());
    let (status, body) = http(
        &daemon,
        "POST",
        "/containers/nope/update",
        Some(r#"{"CpuShares": 512}"#),
    );
    assert_eq!(status, 404, "{body}");
    assert_eq!(message(&body), "No such container: nope");
}

#[test]
fn rename_moves_the_name_and_refuses_a_taken_one() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    daemon
        .docker(&["run", "-d", "--name", "first", "busybox", "sleep", "1000"])
        .ok();
    daemon
        .docker(&["create", "--name", "second", "busybox", "true"])
        .ok();
    let id = container_id(&daemon, "first");
    daemon.docker(&["rename", "first", "renamed"]).ok();
    assert_eq!(container_id(&daemon, "renamed"), id);
    let names = daemon.docker(&["ps", "--format", "{{.Names}}"]).ok().out();
    assert_eq!(names, "renamed");
    assert_ne!(daemon.docker(&["inspect", "first"]).code, 0);
    // The old name is free again.
    daemon
        .docker(&["create", "--name", "first", "busybox", "true"])
        .ok();
    let taken = daemon.docker(&["rename", "renamed", "second"]);
    assert_ne!(taken.code, 0);
    assert!(
        taken
            .stderr
            .contains("The container name \"/second\" is already in use"),
        "{}",
        taken.stderr
    );
    let (status, body) = http(
        &daemon,
        "POST",
        "/containers/renamed/rename?name=second",
        None,
    );
    assert_eq!(status, 409, "{body}");
    let (status, body) = http(
        &daemon,
        "POST",
        "/containers/renamed/rename?name=a%20b",
        None,
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = http(&daemon, "POST", "/containers/nope/rename?name=x1", None);
    assert_eq!(status, 404, "{body}");
    let events = daemon
        .docker(&[
            "events",
            "--since",
            "0",
            "--until",
            &format!("{}", chrono_now() + 1),
            "--filter",
            "event=rename",
            "--format",
            "{{.Actor.Attributes.oldName}} {{.Actor.Attributes.name}}",
        ])
        .ok()
        .out();
    assert_eq!(events, "/first renamed");
    // The renamed container still stops by its new name.
    daemon.docker(&["stop", "-t", "1", "renamed"]).ok();
}

#[test]
fn sizes_system_df_and_prune() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    daemon
        .docker(&[
            "run",
            "-d",
            "--name",
            "writer",
            "busybox",
            "sh",
            "-c",
            "dd if=/dev/zero of=/big bs=1024 count=300 2>/dev/null",
        ])
        .ok();
    daemon.docker(&["wait", "writer"]).ok();
    daemon
        .docker(&["run", "-d", "--name", "runner", "busybox", "sleep", "1000"])
        .ok();
    let sizes = daemon
        .docker(&["ps", "-a", "--size", "--format", "{{.Names}}|{{.Size}}"])
        .ok()
        .out();
    let writer = sizes
        .lines()
        .find_map(|l| l.strip_prefix("writer|"))
        .unwrap_or_else(|| panic!("{sizes}"));
    assert!(writer.starts_with("307kB (virtual "), "{sizes}");
    // Through the API: SizeRootFs = the image's size + SizeRw.
    let (status, body) = http(&daemon, "GET", "/containers/json?all=1&size=1", None);
    assert_eq!(status, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let image_size = daemon
        .docker(&["image", "inspect", "-f", "{{.Size}}", "busybox"])
        .ok()
        .out()
        .parse::<i64>()
        .unwrap();
    for container in list.as_array().unwrap() {
        let rw = container["SizeRw"].as_i64().unwrap();
        assert_eq!(container["SizeRootFs"].as_i64().unwrap(), image_size + rw);
    }

    let df = daemon.docker(&["system", "df"]).ok().out();
    let rows: Vec<Vec<&str>> = df.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0][0], "TYPE", "{df}");
    assert_eq!(rows[1][..3], ["Images", "1", "1"], "{df}");
    assert_eq!(rows[2][..3], ["Containers", "2", "1"], "{df}");
    assert_eq!(rows[2][3], "307.2kB", "{df}");
    assert_eq!(rows[2][4], "307.2kB", "{df}");
    assert_eq!(rows[3][..4], ["Local", "Volumes", "0", "0"], "{df}");
    assert_eq!(rows[4][..2], ["Build", "Cache"], "{df}");
    let verbose = daemon.docker(&["system", "df", "-v"]).ok().out();
    for wanted in [
        "Images space usage:",
        "Containers space usage:",
        "Local Volumes space usage:",
        "Build cache usage: 0B",
        "writer",
        "runner",
    ] {
        assert!(verbose.contains(wanted), "{wanted} missing:\n{verbose}");
    }
    let image_row = verbose
        .lines()
        .find(|l| l.starts_with("busybox"))
        .unwrap_or_else(|| panic!("{verbose}"));
    let image_row: Vec<&str> = image_row.split_whitespace().collect();
    assert_eq!(image_row.last(), Some(&"2"), "CONTAINERS column: {verbose}");
    let (status, body) = http(&daemon, "GET", "/system/df", None);
    assert_eq!(status, 200);
    let usage: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(usage["LayersSize"].as_i64().unwrap(), image_size);
    assert_eq!(usage["Images"][0]["SharedSize"], 0);
    assert_eq!(usage["Volumes"], serde_json::json!([]));
    assert_eq!(usage["BuildCache"], serde_json::json!([]));

    let writer_id = container_id(&daemon, "writer");
    let prune = daemon.docker(&["system", "prune", "-f"]).ok().out();
    assert!(prune.contains("Deleted Containers:"), "{prune}");
    assert!(prune.contains(&writer_id), "{prune}");
    assert!(prune.contains("Total reclaimed space: 307.2kB"), "{prune}");
    let left = daemon
        .docker(&["ps", "-a", "--format", "{{.Names}}"])
        .ok()
        .out();
    assert_eq!(left, "runner");
    // Nothing left to prune: zero reclaimed.
    let (status, body) = http(&daemon, "POST", "/containers/prune", None);
    assert_eq!(status, 200);
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["SpaceReclaimed"], 0);
}

#[test]
fn bad_input_is_answered_like_dockerd_and_the_daemon_keeps_serving() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    for (method, path, body) in [
        ("GET", "/containers/nope/stats?stream=false", None),
        ("GET", "/containers/nope/top", None),
        ("POST", "/containers/nope/pause", None),
        ("POST", "/containers/nope/unpause", None),
        ("POST", "/containers/nope/update", Some("{}")),
    ] {
        let (status, reply) = http(&daemon, method, path, body);
        assert_eq!(status, 404, "{method} {path}: {reply}");
        assert_eq!(message(&reply), "No such container: nope");
    }
    for args in [
        vec!["stats", "--no-stream", "nope"],
        vec!["top", "nope"],
        vec!["pause", "nope"],
        vec!["update", "--memory", "64m", "nope"],
        vec!["rename", "nope", "other"],
    ] {
        let failed = daemon.docker(&args);
        assert_ne!(failed.code, 0, "{args:?}");
        assert!(
            failed.stderr.contains("No such container: nope"),
            "{args:?}: {}",
            failed.stderr
        );
    }
    daemon
        .docker(&["create", "--name", "stopped", "busybox", "true"])
        .ok();
    let (status, body) = http(&daemon, "POST", "/containers/stopped/pause", None);
    assert_eq!(status, 409, "{body}");
    let (status, body) = http(&daemon, "POST", "/containers/stopped/unpause", None);
    assert_eq!(status, 409, "{body}");
    let (status, body) = http(
        &daemon,
        "GET",
        "/containers/stopped/stats?stream=true&one-shot=true",
        None,
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = http(&daemon, "POST", "/containers/stopped/update", Some("{nope"));
    assert_eq!(status, 400, "{body}");
    let (status, body) = http(&daemon, "POST", "/containers/stopped/rename", None);
    assert_eq!(status, 400, "{body}");
    assert_eq!(message(&body), "Neither old nor new names may be empty");
    let (status, body) = http(
        &daemon,
        "GET",
        "/containers/stopped/top?ps_args=-o%20comm%3DPID",
        None,
    );
    assert_eq!(status, 400, "{body}");
    // Update of a stopped container changes only its record.
    daemon
        .docker(&["update", "--cpu-shares", "256", "stopped"])
        .ok();
    let shares = daemon
        .docker(&["inspect", "-f", "{{.HostConfig.CpuShares}}", "stopped"])
        .ok()
        .out();
    assert_eq!(shares, "256");
    // Still serving.
    daemon.docker(&["version"]).ok();
    daemon.docker(&["run", "-d", "busybox", "true"]).ok();
}
