//! cgroup limits: memory (OOM kill), pids, cpu quota.
//! Needs root; see tests/common/mod.rs.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

const MIB: i64 = 1024 * 1024;

/// Allocating past a 32 MiB limit (swap limited to the same) gets the
/// process OOM-killed (SIGKILL: 128 + 9), while a small allocation works.
#[test]
fn memory_limit_oom_kills() {
    // busybox tail keeps the whole newline-free input in memory.
    let mut c = Container::new(
        "oom",
        &[
            "sh",
            "-c",
            "head -c 8m /dev/zero | tail | wc -c; head -c 100m /dev/zero | tail >/dev/null",
        ],
    );
    c.resources().insert(
        "memory".into(),
        json!({ "limit": 32 * MIB, "swap": 32 * MIB }),
    );
    let out = c.run();
    assert_eq!(
        out.lines().first().map(String::as_str),
        Some("8388608"),
        "{out:?}"
    );
    assert_eq!(out.code(), 137, "expected an OOM kill: {out:?}");
    assert_nothing_left(&c);
}

/// The memory limit is visible in the container's cgroup.
#[test]
fn memory_limit_is_set_on_the_cgroup() {
    let mut c = Container::new("memcg", &["sleep", "60"]);
    c.resources().insert(
        "memory".into(),
        json!({ "limit": 48 * MIB, "swap": 48 * MIB }),
    );
    c.create_and_start();
    let dir = cgroup_dir_of(c.pid(), "memory").expect("memory cgroup");
    let limit = std::fs::read_to_string(dir.join("memory.limit_in_bytes"))
        .or_else(|_| std::fs::read_to_string(dir.join("memory.max")))
        .expect("memory limit file");
    assert_eq!(limit.trim(), (48 * MIB).to_string());
}

/// A pids limit of 10 stops a loop that forks 20 background sleeps: some
/// forks work, then the shell reports "can't fork" (busybox ash gives up
/// the script at the first failed fork).
#[test]
fn pids_limit_stops_a_fork_loop() {
    let mut c = Container::new(
        "pids",
        &[
            "sh",
            "-c",
            "for i in $(seq 1 20); do sleep 2 & echo started $i; done 2>&1",
        ],
    );
    c.resources().insert("pids".into(), json!({ "limit": 10 }));
    let out = c.run();
    let text = out.stdout.clone() + &out.stderr;
    let failures = text.matches("can't fork").count();
    let started = out
        .lines()
        .iter()
        .filter(|l| l.starts_with("started "))
        .count();
    assert!(
        failures >= 1,
        "no fork failed under a pids limit of 10: {out:?}"
    );
    assert!(
        (3..10).contains(&started),
        "{started} sleeps started: {out:?}"
    );
    assert_ne!(out.code(), 0, "{out:?}");
}

/// A quota of 50000/100000 keeps a busy loop near half a core. A behaviour
/// check with a wide tolerance, not a benchmark.
#[test]
fn cpu_quota_holds_a_busy_loop_near_half_a_core() {
    let mut c = Container::new("cpu", &["sh", "-c", "while :; do :; done"]);
    c.resources()
        .insert("cpu".into(), json!({ "quota": 50000, "period": 100000 }));
    c.create_and_start();
    let pid = c.pid();
    std::thread::sleep(Duration::from_millis(300));
    let (t0, u0) = (Instant::now(), cpu_usage_ns(pid));
    std::thread::sleep(Duration::from_secs(2));
    let (wall, used) = (
        t0.elapsed().as_nanos() as f64,
        (cpu_usage_ns(pid) - u0) as f64,
    );
    let share = used / wall;
    assert!(
        (0.3..=0.7).contains(&share),
        "busy loop used {share:.2} of a core under a 0.5 quota"
    );
}
