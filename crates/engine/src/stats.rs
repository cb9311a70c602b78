//! Resource usage statistics (`GET /containers/{id}/stats`, `docker stats`).
//!
//! Every sample is read from the container's cgroup (`/berth/<id>` in each hierarchy, v1, v2 or
//! hybrid) with the `cgroups` crate and written in dockerd's JSON shape (Engine API
//! "ContainerStats"): `read`/`preread`, `cpu_stats`/`precpu_stats`, `memory_stats`,
//! `pids_stats`, `blkio_stats`, `networks`. Clients compute from it:
//! - CPU % = Δ`cpu_usage.total_usage` / Δ`system_cpu_usage` × `online_cpus` × 100, so
//!   `system_cpu_usage` is the host's CPU time in nanoseconds (the first line of /proc/stat,
//!   in USER_HZ ticks, proc(5));
//! - memory = `usage` − `stats.total_inactive_file` (v1) or − `stats.inactive_file` (v2): the
//!   cgroup's `memory.stat` goes out unchanged so both keys are there on their version;
//! - network I/O sums `networks` (the container's interfaces but `lo`).
//!
//! A stream sends one sample a second, each with the previous CPU figures as `precpu_stats`.
//! `stream=false` primes the CPU figures first (one second) as dockerd does, unless
//! `one-shot=true` asks for a single sample at once.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::error::Result;
use crate::record::{Status, ZERO_TIME};
use crate::{ContainerEntry, Engine};

/// Time between two samples of a stream, as dockerd's collector.
const INTERVAL: Duration = Duration::from_secs(1);

/// One stats sample in dockerd's JSON shape. Go's encoder writes every field of this struct
/// (empty lists as `null`), so these fields are always present.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct StatsSample {
    pub read: String,
    pub preread: String,
    pub pids_stats: PidsStats,
    pub blkio_stats: BlkioStats,
    pub num_procs: u32,
    pub storage_stats: StorageStats,
    pub cpu_stats: CpuStats,
    pub precpu_stats: CpuStats,
    pub memory_stats: MemoryStats,
    pub name: String,
    pub id: String,
    /// Omitted when the container has no network interface but `lo`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub networks: Option<BTreeMap<String, NetworkStats>>,
}

/// `pids_stats`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct PidsStats {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    /// 0 when unlimited.
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

/// `blkio_stats`: cgroup v1 fills both lists, v2 has no "serviced" counts beside `io.stat`'s
/// `rios`/`wios`, which go in the same list. The other v1 lists of dockerd stay `null`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct BlkioStats {
    pub io_service_bytes_recursive: Option<Vec<BlkioEntry>>,
    pub io_serviced_recursive: Option<Vec<BlkioEntry>>,
    pub io_queue_recursive: Option<Vec<BlkioEntry>>,
    pub io_service_time_recursive: Option<Vec<BlkioEntry>>,
    pub io_wait_time_recursive: Option<Vec<BlkioEntry>>,
    pub io_merged_recursive: Option<Vec<BlkioEntry>>,
    pub io_time_recursive: Option<Vec<BlkioEntry>>,
    pub sectors_recursive: Option<Vec<BlkioEntry>>,
}

/// One device counter of `blkio_stats`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

/// `storage_stats` (Windows only: always empty here).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct StorageStats {}

/// `cpu_stats` and `precpu_stats`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CpuStats {
    pub cpu_usage: CpuUsage,
    #[serde(skip_serializing_if = "is_zero")]
    pub system_cpu_usage: u64,
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub online_cpus: u32,
    pub throttling_data: ThrottlingData,
}

/// `cpu_usage`, nanoseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CpuUsage {
    pub total_usage: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_usage: Vec<u64>,
    pub usage_in_kernelmode: u64,
    pub usage_in_usermode: u64,
}

/// `throttling_data`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ThrottlingData {
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time: u64,
}

/// `memory_stats`, bytes. Every field is `omitempty` in dockerd.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct MemoryStats {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_usage: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub stats: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "is_zero")]
    pub failcnt: u64,
    /// The cgroup's limit, or the host's memory when that is lower (unlimited cgroups).
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

/// One interface of `networks`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct NetworkStats {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

fn is_zero_u32(value: &u32) -> bool {
    *value == 0
}

/// The host's cgroup hierarchies, detected once (mounts do not move under a running daemon).
pub(crate) fn hierarchies() -> Option<&'static cgroups::Hierarchies> {
    static HIERARCHIES: OnceLock<Option<cgroups::Hierarchies>> = OnceLock::new();
    HIERARCHIES
        .get_or_init(|| cgroups::Hierarchies::detect().ok())
        .as_ref()
}

/// The cgroup of a container: the engine puts every container at `/berth/<id>`
/// (lifecycle.rs, the spec's cgroupsPath).
pub(crate) fn container_cgroup(id: &str) -> Result<cgroups::Cgroup> {
    let hierarchies = hierarchies()
        .ok_or_else(|| crate::Error::internal("no cgroup hierarchy is mounted on this host"))?;
    cgroups::Cgroup::new(hierarchies, &format!("/berth/{id}"))
        .map_err(|e| crate::Error::new(e.kind(), e.to_string()))
}

/// The host's CPU time in nanoseconds: the sum of the `cpu` line of /proc/stat (proc(5):
/// user, nice, system, idle, iowait, irq, softirq, steal; guest time is already in user),
/// converted from USER_HZ ticks.
fn system_cpu_usage() -> u64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks = parse_proc_stat_cpu(&text);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as u64 } else { 100 };
    ticks.saturating_mul(1_000_000_000 / hz)
}

fn parse_proc_stat_cpu(text: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with("cpu "))
        .map(|line| {
            line.split_whitespace()
                .skip(1)
                .take(8)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0)
}

fn online_cpus() -> u32 {
    // SAFETY: sysconf has no preconditions.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if online > 0 { online as u32 } else { 1 }
}

/// `/proc/<pid>/net/dev` (proc(5)): the interfaces of the network namespace of that process,
/// `lo` left out as dockerd reports only the container's endpoints.
fn parse_net_dev(text: &str) -> BTreeMap<String, NetworkStats> {
    let mut interfaces = BTreeMap::new();
    // Two header lines, then "name: rx bytes packets errs drop fifo frame compressed
    // multicast tx bytes packets errs drop fifo colls carrier compressed".
    for line in text.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.is_empty() || name == "lo" {
            continue;
        }
        let values: Vec<u64> = counters
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        if values.len() < 12 {
            continue;
        }
        interfaces.insert(
            name.to_string(),
            NetworkStats {
                rx_bytes: values[0],
                rx_packets: values[1],
                rx_errors: values[2],
                rx_dropped: values[3],
                tx_bytes: values[8],
                tx_packets: values[9],
                tx_errors: values[10],
                tx_dropped: values[11],
            },
        );
    }
    interfaces
}

fn blkio_entries(entries: &[cgroups::BlkioEntry]) -> Option<Vec<BlkioEntry>> {
    Some(
        entries
            .iter()
            .map(|e| BlkioEntry {
                major: e.major,
                minor: e.minor,
                op: e.op.clone(),
                value: e.value,
            })
            .collect(),
    )
}

/// What a sample needs to know of the container.
#[derive(Debug, Clone)]
struct Subject {
    id: String,
    name: String,
    pid: i32,
    /// `host` and `none` networks report no interfaces (dockerd has no endpoint for them).
    own_network: bool,
}

/// Reads one sample now (blocking: cgroup and proc files). CPU "pre" figures are the caller's.
fn read_sample(subject: &Subject) -> StatsSample {
    let stats = container_cgroup(&subject.id)
        .ok()
        .and_then(|cgroup| cgroup.stats().ok())
        .unwrap_or_default();
    let host_memory = crate::system::memory_total().max(0) as u64;
    let limit = match stats.memory.limit {
        Some(limit) if host_memory == 0 || limit < host_memory => limit,
        _ => host_memory,
    };
    let networks = if subject.own_network && subject.pid > 0 {
        std::fs::read_to_string(format!("/proc/{}/net/dev", subject.pid))
            .ok()
            .map(|text| parse_net_dev(&text))
            .filter(|interfaces| !interfaces.is_empty())
    } else {
        None
    };
    StatsSample {
        read: crate::record::now_rfc3339(),
        preread: ZERO_TIME.to_string(),
        pids_stats: PidsStats {
            current: stats.pids.current,
            limit: stats.pids.limit.unwrap_or(0),
        },
        blkio_stats: BlkioStats {
            io_service_bytes_recursive: blkio_entries(&stats.blkio.io_service_bytes),
            io_serviced_recursive: blkio_entries(&stats.blkio.io_serviced),
            ..Default::default()
        },
        num_procs: 0,
        storage_stats: StorageStats {},
        cpu_stats: CpuStats {
            cpu_usage: CpuUsage {
                total_usage: stats.cpu.usage_total_ns,
                percpu_usage: stats.cpu.per_cpu_ns.clone(),
                usage_in_kernelmode: stats.cpu.usage_system_ns,
                usage_in_usermode: stats.cpu.usage_user_ns,
            },
            system_cpu_usage: system_cpu_usage(),
            online_cpus: online_cpus(),
            throttling_data: ThrottlingData {
                periods: stats.cpu.throttling.periods,
                throttled_periods: stats.cpu.throttling.throttled_periods,
                throttled_time: stats.cpu.throttling.throttled_time_ns,
            },
        },
        precpu_stats: CpuStats::default(),
        memory_stats: MemoryStats {
            usage: stats.memory.usage,
            max_usage: stats.memory.max_usage,
            stats: stats.memory.stat.clone(),
            failcnt: 0,
            limit,
        },
        name: format!("/{}", subject.name),
        id: subject.id.clone(),
        networks,
    }
}

/// The sample dockerd answers for a container that does not run: zero figures, name and id.
fn empty_sample(subject: &Subject) -> StatsSample {
    StatsSample {
        read: ZERO_TIME.to_string(),
        preread: ZERO_TIME.to_string(),
        name: format!("/{}", subject.name),
        id: subject.id.clone(),
        ..Default::default()
    }
}

/// Serialises a sample as one line of the answer.
fn line(sample: &StatsSample) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(sample).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

impl Engine {
    /// `GET /containers/{id}/stats?stream&one-shot`: the samples as JSON lines, in a channel
    /// that a task fills until the stream ends (one sample without `stream`), the receiver is
    /// dropped, or the container is removed.
    pub async fn stats(
        &self,
        name_or_id: &str,
        stream: bool,
        one_shot: bool,
    ) -> Result<mpsc::Receiver<Vec<u8>>> {
        let entry = self.find(name_or_id)?;
        let (sender, receiver) = mpsc::channel(4);
        let subject = subject_of(&entry).await;
        let running = entry.record.lock().await.state.status.is_running();
        if !running && !stream {
            let _ = sender.send(line(&empty_sample(&subject))).await;
            return Ok(receiver);
        }
        tokio::spawn(stream_samples(entry, sender, stream, one_shot));
        Ok(receiver)
    }
}

async fn subject_of(entry: &Arc<ContainerEntry>) -> Subject {
    let record = entry.record.lock().await;
    let network = record.host_config.network_mode.as_deref().unwrap_or("");
    Subject {
        id: record.id.clone(),
        name: record.name.clone(),
        pid: record.state.pid,
        own_network: !matches!(network, "host" | "none") && !network.starts_with("container:"),
    }
}

async fn stream_samples(
    entry: Arc<ContainerEntry>,
    sender: mpsc::Sender<Vec<u8>>,
    stream: bool,
    one_shot: bool,
) {
    let removed = entry.status.subscribe();
    let mut previous: Option<StatsSample> = None;
    // Without a stream and without one-shot, the first sample only primes the CPU figures.
    let mut priming = !stream && !one_shot;
    loop {
        if removed.borrow().removed || sender.is_closed() {
            return;
        }
        let subject = subject_of(&entry).await;
        let status = entry.record.lock().await.state.status;
        if status.is_running() && status != Status::Restarting {
            let sample = tokio::task::spawn_blocking(move || read_sample(&subject))
                .await
                .unwrap_or_default();
            let mut out = sample.clone();
            if let Some(previous) = &previous {
                out.precpu_stats = previous.cpu_stats.clone();
                out.preread = previous.read.clone();
            }
            previous = Some(sample);
            if priming {
                priming = false;
            } else {
                if sender.send(line(&out)).await.is_err() {
                    return;
                }
                if !stream {
                    return;
                }
            }
        } else if !stream {
            let _ = sender.send(line(&empty_sample(&subject))).await;
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = sender.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_sums_the_first_eight_fields() {
        let text = "cpu  10 20 30 40 50 60 70 80 90 100\ncpu0 1 2 3 4 5 6 7 8 9 10\n";
        assert_eq!(parse_proc_stat_cpu(text), 360);
        assert_eq!(parse_proc_stat_cpu(""), 0);
    }

    #[test]
    fn net_dev_skips_lo_and_headers() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0\n  \
eth0:    5338      36    1    2    0     0          0         0      648       8    3    4    0     0       0          0\n";
        let interfaces = parse_net_dev(text);
        assert_eq!(interfaces.len(), 1);
        assert_eq!(
            interfaces["eth0"],
            NetworkStats {
                rx_bytes: 5338,
                rx_packets: 36,
                rx_errors: 1,
                rx_dropped: 2,
                tx_bytes: 648,
                tx_packets: 8,
                tx_errors: 3,
                tx_dropped: 4,
            }
        );
    }

    #[test]
    fn json_shape_matches_dockerd() {
        let subject = Subject {
            id: "abc".into(),
            name: "web".into(),
            pid: 0,
            own_network: false,
        };
        let value = serde_json::to_value(empty_sample(&subject)).unwrap();
        for key in [
            "read",
            "preread",
            "pids_stats",
            "blkio_stats",
            "num_procs",
            "storage_stats",
            "cpu_stats",
            "precpu_stats",
            "memory_stats",
            "name",
            "id",
        ] {
            assert!(value.get(key).is_some(), "{key} missing");
        }
        assert!(value.get("networks").is_none());
        assert_eq!(value["name"], "/web");
        assert_eq!(value["memory_stats"], serde_json::json!({}));
        assert!(value["blkio_stats"]["io_service_bytes_recursive"].is_null());
        assert_eq!(value["cpu_stats"]["cpu_usage"]["total_usage"], 0);
        assert!(value["cpu_stats"]["throttling_data"].is_object());
    }
}
