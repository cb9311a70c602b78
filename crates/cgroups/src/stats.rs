//! Resource usage of a cgroup, read from v1 or v2 files wherever each controller lives.
//! Counters a host lacks stay 0 (limits `None`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::cgroup::{Cgroup, ControllerDir};
use crate::error::Result;
use crate::fs::{self, parse_flat_keyed, read_u64};

/// Usage of all controllers of one cgroup.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Stats {
    /// CPU time and throttling.
    pub cpu: CpuStats,
    /// Memory usage and limits.
    pub memory: MemoryStats,
    /// Process counts.
    pub pids: PidsStats,
    /// Block I/O counters.
    pub blkio: BlkioStats,
    /// Huge page usage by page size ("2MB").
    pub hugetlb: BTreeMap<String, HugetlbStats>,
}

/// CPU time in nanoseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct CpuStats {
    /// Total CPU time.
    pub usage_total_ns: u64,
    /// Time in user mode.
    pub usage_user_ns: u64,
    /// Time in kernel mode.
    pub usage_system_ns: u64,
    /// Per-CPU total (v1 cpuacct only; empty on v2).
    pub per_cpu_ns: Vec<u64>,
    /// CFS bandwidth throttling.
    pub throttling: ThrottlingStats,
}

/// CFS bandwidth throttling counters (sched-bwc.rst "Statistics").
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ThrottlingStats {
    /// Enforcement periods elapsed.
    pub periods: u64,
    /// Periods in which the cgroup was throttled.
    pub throttled_periods: u64,
    /// Total throttled time in nanoseconds.
    pub throttled_time_ns: u64,
}

/// Memory usage in bytes.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct MemoryStats {
    /// Current usage (v1 memory.usage_in_bytes, v2 memory.current).
    pub usage: u64,
    /// Peak usage (v1 memory.max_usage_in_bytes, v2 memory.peak where present).
    pub max_usage: u64,
    /// Limit; `None` for unlimited.
    pub limit: Option<u64>,
    /// Swap usage: v1 memory+swap usage (memsw), v2 swap alone (memory.swap.current).
    pub swap_usage: u64,
    /// Swap limit in the same terms; `None` for unlimited or unknown.
    pub swap_limit: Option<u64>,
    /// Processes the OOM killer killed in this cgroup (v1 memory.oom_control `oom_kill`,
    /// Linux 4.13+; v2 memory.events `oom_kill`): how an engine tells that a container was
    /// OOM-killed.
    pub oom_kills: u64,
    /// memory.stat as is. On v2, v1 names are added where a v2 field means the same
    /// (`cache` = file, `rss` = anon), so consumers computing "usage minus cache" work on both.
    pub stat: BTreeMap<String, u64>,
}

/// Process counts.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PidsStats {
    /// pids.current.
    pub current: u64,
    /// pids.max; `None` for max.
    pub limit: Option<u64>,
}

/// Block I/O, per device.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct BlkioStats {
    /// Bytes moved (v1 op names Read/Write/Sync/Async/Discard/Total; v2 read/write/discard).
    pub io_service_bytes: Vec<BlkioEntry>,
    /// Operations done, same ops.
    pub io_serviced: Vec<BlkioEntry>,
}

/// One device counter.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct BlkioEntry {
    /// Device major number.
    pub major: u64,
    /// Device minor number.
    pub minor: u64,
    /// Operation.
    pub op: String,
    /// Counter value.
    pub value: u64,
}

/// Huge page usage for one page size, in bytes.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct HugetlbStats {
    /// Current usage.
    pub usage: u64,
    /// Peak usage (v1 only).
    pub max_usage: u64,
    /// Allocations refused by the limit.
    pub failcnt: u64,
}

/// A limit file value: huge v1 "unlimited" sentinels and "max" read as `None`.
fn limit(path: &Path) -> Option<u64> {
    // v1 reports "no limit" as PAGE_COUNTER_MAX pages, about 2^63 rounded to pages.
    read_u64(path).filter(|v| *v < (1 << 62))
}

/// One value of a flat keyed file, 0 when the file or key is absent.
fn keyed(path: &Path, key: &str) -> Result<u64> {
    let text = fs::read_opt(path)?.unwrap_or_default();
    Ok(parse_flat_keyed(&text)
        .into_iter()
        .find(|(k, _)| k == key)
        .map_or(0, |(_, v)| v))
}

impl Cgroup {
    /// Reads the usage counters of every controller present.
    pub fn stats(&self) -> Result<Stats> {
        Ok(Stats {
            cpu: self.cpu_stats()?,
            memory: self.memory_stats()?,
            pids: self.pids_stats(),
            blkio: self.blkio_stats()?,
            hugetlb: self.hugetlb_stats()?,
        })
    }

    fn cpu_stats(&self) -> Result<CpuStats> {
        let mut cpu = CpuStats::default();
        if let Some(dir) = self.v1_dir("cpuacct") {
            cpu.usage_total_ns = read_u64(&dir.join("cpuacct.usage")).unwrap_or(0);
            cpu.usage_user_ns = read_u64(&dir.join("cpuacct.usage_user")).unwrap_or(0);
            cpu.usage_system_ns = read_u64(&dir.join("cpuacct.usage_sys")).unwrap_or(0);
            if let Some(text) = fs::read_opt(&dir.join("cpuacct.usage_percpu"))? {
                cpu.per_cpu_ns = text
                    .split_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect();
            }
        }
        // v2 keeps basic CPU accounting in every cgroup's cpu.stat, controller or not.
        let v2_stat = match self.unified_dir() {
            Some(dir) => fs::read_opt(&dir.join("cpu.stat"))?,
            None => None,
        };
        if self.v1_dir("cpuacct").is_none()
            && let Some(text) = &v2_stat
        {
            for (key, value) in parse_flat_keyed(text) {
                match key.as_str() {
                    "usage_usec" => cpu.usage_total_ns = value * 1000,
                    "user_usec" => cpu.usage_user_ns = value * 1000,
                    "system_usec" => cpu.usage_system_ns = value * 1000,
                    _ => {}
                }
            }
        }
        match self.locate("cpu") {
            Some(ControllerDir::V1(dir)) => {
                if let Some(text) = fs::read_opt(&dir.join("cpu.stat"))? {
                    for (key, value) in parse_flat_keyed(&text) {
                        match key.as_str() {
                            "nr_periods" => cpu.throttling.periods = value,
                            "nr_throttled" => cpu.throttling.throttled_periods = value,
                            "throttled_time" => cpu.throttling.throttled_time_ns = value,
                            _ => {}
                        }
                    }
                }
            }
            Some(ControllerDir::V2(_)) => {
                for (key, value) in parse_flat_keyed(v2_stat.as_deref().unwrap_or_default()) {
                    match key.as_str() {
                        "nr_periods" => cpu.throttling.periods = value,
                        "nr_throttled" => cpu.throttling.throttled_periods = value,
                        "throttled_usec" => cpu.throttling.throttled_time_ns = value * 1000,
                        _ => {}
                    }
                }
            }
            None => {}
        }
        Ok(cpu)
    }

    fn memory_stats(&self) -> Result<MemoryStats> {
        let mut memory = MemoryStats::default();
        match self.locate("memory") {
            Some(ControllerDir::V1(dir)) => {
                memory.usage = read_u64(&dir.join("memory.usage_in_bytes")).unwrap_or(0);
                memory.max_usage = read_u64(&dir.join("memory.max_usage_in_bytes")).unwrap_or(0);
                memory.limit = limit(&dir.join("memory.limit_in_bytes"));
                memory.swap_usage = read_u64(&dir.join("memory.memsw.usage_in_bytes")).unwrap_or(0);
                memory.swap_limit = limit(&dir.join("memory.memsw.limit_in_bytes"));
                memory.oom_kills = keyed(&dir.join("memory.oom_control"), "oom_kill")?;
                if let Some(text) = fs::read_opt(&dir.join("memory.stat"))? {
                    memory.stat = parse_flat_keyed(&text).into_iter().collect();
                }
            }
            Some(ControllerDir::V2(dir)) => {
                memory.usage = read_u64(&dir.join("memory.current")).unwrap_or(0);
                memory.max_usage = read_u64(&dir.join("memory.peak")).unwrap_or(0);
                memory.limit = limit(&dir.join("memory.max"));
                memory.swap_usage = read_u64(&dir.join("memory.swap.current")).unwrap_or(0);
                memory.swap_limit = limit(&dir.join("memory.swap.max"));
                memory.oom_kills = keyed(&dir.join("memory.events"), "oom_kill")?;
                if let Some(text) = fs::read_opt(&dir.join("memory.stat"))? {
                    memory.stat = parse_flat_keyed(&text).into_iter().collect();
                    for (v1, v2) in [("cache", "file"), ("rss", "anon")] {
                        if let Some(value) = memory.stat.get(v2).copied() {
                            memory.stat.entry(v1.to_string()).or_insert(value);
                        }
                    }
                }
            }
            None => {}
        }
        Ok(memory)
    }

    fn pids_stats(&self) -> PidsStats {
        match self.locate("pids") {
            Some(ControllerDir::V1(dir) | ControllerDir::V2(dir)) => PidsStats {
                current: read_u64(&dir.join("pids.current")).unwrap_or(0),
                limit: read_u64(&dir.join("pids.max")),
            },
            None => PidsStats::default(),
        }
    }

    fn blkio_stats(&self) -> Result<BlkioStats> {
        let mut blkio = BlkioStats::default();
        match self.locate("blkio").or_else(|| self.locate("io")) {
            Some(ControllerDir::V1(dir)) => {
                // The throttle files count all I/O whatever the scheduler; the _recursive
                // variants include descendant cgroups.
                let pick =
                    |names: &[&str]| names.iter().map(|n| dir.join(n)).find(|p| fs::exists(p));
                if let Some(path) = pick(&[
                    "blkio.throttle.io_service_bytes_recursive",
                    "blkio.throttle.io_service_bytes",
                ]) {
                    blkio.io_service_bytes = parse_v1_blkio(&fs::read(&path)?);
                }
                if let Some(path) = pick(&[
                    "blkio.throttle.io_serviced_recursive",
                    "blkio.throttle.io_serviced",
                ]) {
                    blkio.io_serviced = parse_v1_blkio(&fs::read(&path)?);
                }
            }
            Some(ControllerDir::V2(dir)) => {
                if let Some(text) = fs::read_opt(&dir.join("io.stat"))? {
                    (blkio.io_service_bytes, blkio.io_serviced) = parse_io_stat(&text);
                }
            }
            None => {}
        }
        Ok(blkio)
    }

    fn hugetlb_stats(&self) -> Result<BTreeMap<String, HugetlbStats>> {
        let mut sizes = BTreeMap::new();
        let (dir, v1) = match self.locate("hugetlb") {
            Some(ControllerDir::V1(dir)) => (dir, true),
            Some(ControllerDir::V2(dir)) => (dir, false),
            None => return Ok(sizes),
        };
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(_) => return Ok(sizes),
        };
        let usage_suffix = if v1 { ".usage_in_bytes" } else { ".current" };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(size) = name
                .strip_prefix("hugetlb.")
                .and_then(|n| n.strip_suffix(usage_suffix))
                .filter(|s| !s.contains('.'))
            else {
                continue;
            };
            let stats = if v1 {
                HugetlbStats {
                    usage: read_u64(&entry.path()).unwrap_or(0),
                    max_usage: read_u64(&dir.join(format!("hugetlb.{size}.max_usage_in_bytes")))
                        .unwrap_or(0),
                    failcnt: read_u64(&dir.join(format!("hugetlb.{size}.failcnt"))).unwrap_or(0),
                }
            } else {
                let events =
                    fs::read_opt(&dir.join(format!("hugetlb.{size}.events")))?.unwrap_or_default();
                HugetlbStats {
                    usage: read_u64(&entry.path()).unwrap_or(0),
                    max_usage: 0,
                    failcnt: parse_flat_keyed(&events)
                        .into_iter()
                        .find(|(k, _)| k == "max")
                        .map_or(0, |(_, v)| v),
                }
            };
            sizes.insert(size.to_string(), stats);
        }
        Ok(sizes)
    }
}

/// v1 blkio stats: "MAJ:MIN Op value" lines plus a final "Total value" line (skipped).
fn parse_v1_blkio(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let device = parts.next()?;
            let op = parts.next()?;
            let value = parts.next()?.parse().ok()?;
            let (major, minor) = device.split_once(':')?;
            Some(BlkioEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op: op.to_string(),
                value,
            })
        })
        .collect()
}

/// v2 io.stat: "MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=.. dbytes=.. dios=..".
fn parse_io_stat(text: &str) -> (Vec<BlkioEntry>, Vec<BlkioEntry>) {
    let (mut bytes, mut ios) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let Some((major, minor)) = parts.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        for pair in parts {
            let Some((key, value)) = pair.split_once('=') else {
                continue;
            };
            let Ok(value) = value.parse() else { continue };
            let (list, op) = match key {
                "rbytes" => (&mut bytes, "read"),
                "wbytes" => (&mut bytes, "write"),
                "dbytes" => (&mut bytes, "discard"),
                "rios" => (&mut ios, "read"),
                "wios" => (&mut ios, "write"),
                "dios" => (&mut ios, "discard"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value,
            });
        }
    }
    (bytes, ios)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;

    #[test]
    fn v1_stats_from_the_fake_tree() {
        let host = FakeHost::hybrid();
        host.mkcg("/s");
        std::fs::write(host.path("unified/s/hugetlb.2MB.current"), "2097152").unwrap();
        std::fs::write(host.path("unified/s/hugetlb.2MB.events"), "max 3\n").unwrap();
        let cg = Cgroup::new(&host.hierarchies(), "/s").unwrap();
        let stats = cg.stats().unwrap();
        assert_eq!(stats.cpu.usage_total_ns, 3000);
        assert_eq!(stats.cpu.usage_user_ns, 2000);
        assert_eq!(stats.cpu.per_cpu_ns, vec![1000, 2000]);
        assert_eq!(
            stats.cpu.throttling,
            ThrottlingStats {
                periods: 10,
                throttled_periods: 3,
                throttled_time_ns: 5000
            }
        );
        assert_eq!(stats.memory.usage, 4096);
        assert_eq!(stats.memory.max_usage, 8192);
        assert_eq!(stats.memory.limit, None);
        assert_eq!(stats.memory.stat["inactive_file"], 50);
        assert_eq!(stats.memory.oom_kills, 2);
        assert_eq!(
            stats.pids,
            PidsStats {
                current: 3,
                limit: None
            }
        );
        assert_eq!(stats.blkio.io_service_bytes.len(), 3);
        assert_eq!(
            stats.blkio.io_service_bytes[1],
            BlkioEntry {
                major: 254,
                minor: 0,
                op: "Write".into(),
                value: 8192
            }
        );
        assert_eq!(stats.blkio.io_serviced.len(), 2);
        assert_eq!(
            stats.hugetlb["2MB"],
            HugetlbStats {
                usage: 2097152,
                max_usage: 0,
                failcnt: 3
            }
        );
        assert!(
            serde_json::to_string(&stats)
                .unwrap()
                .contains("\"usage_total_ns\":3000")
        );
    }

    #[test]
    fn v2_stats_from_the_fake_tree() {
        let host = FakeHost::unified();
        host.mkcg("/s");
        std::fs::write(host.path("s/memory.max"), "1048576").unwrap();
        std::fs::write(host.path("s/pids.max"), "10").unwrap();
        let cg = Cgroup::new(&host.hierarchies(), "/s").unwrap();
        let stats = cg.stats().unwrap();
        assert_eq!(stats.cpu.usage_total_ns, 30_000);
        assert_eq!(stats.cpu.usage_system_ns, 10_000);
        assert_eq!(stats.cpu.throttling.throttled_time_ns, 7000);
        assert_eq!(stats.memory.limit, Some(1048576));
        assert_eq!(stats.memory.stat["cache"], 100);
        assert_eq!(stats.memory.stat["rss"], 200);
        assert_eq!(stats.memory.oom_kills, 1);
        assert_eq!(
            stats.pids,
            PidsStats {
                current: 2,
                limit: Some(10)
            }
        );
        assert_eq!(
            stats.blkio.io_service_bytes,
            vec![
                BlkioEntry {
                    major: 254,
                    minor: 0,
                    op: "read".into(),
                    value: 4096
                },
                BlkioEntry {
                    major: 254,
                    minor: 0,
                    op: "write".into(),
                    value: 8192
                },
                BlkioEntry {
                    major: 254,
                    minor: 0,
                    op: "discard".into(),
                    value: 0
                },
            ]
        );
        assert_eq!(
            stats.hugetlb.len(),
            1,
            "only 2MB has a .current file in the fake"
        );
    }
}
