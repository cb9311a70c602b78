//! What the host's cgroups can limit: the booleans `docker info` reports (MemoryLimit,
//! SwapLimit, CpuCfsQuota...) and that the engine checks before accepting a `docker run` flag.

use std::path::Path;

use serde::Serialize;

use crate::fs;
use crate::hierarchy::Hierarchies;

/// Which limits the host supports. Probed from the interface files of the hierarchy roots
/// (v1) or from the controllers cgroup2 offers (v2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HostFeatures {
    /// Memory limits (memory controller).
    pub memory_limit: bool,
    /// Swap limits (v1 memsw files / v2 memory.swap.max; off without swap accounting).
    pub swap_limit: bool,
    /// Memory reservation (soft limit / memory.low).
    pub memory_reservation: bool,
    /// Swappiness (v1 only).
    pub memory_swappiness: bool,
    /// OOM killer disabling (v1 only).
    pub oom_kill_disable: bool,
    /// CFS quota.
    pub cpu_cfs_quota: bool,
    /// CFS period.
    pub cpu_cfs_period: bool,
    /// CPU shares / weight.
    pub cpu_shares: bool,
    /// Realtime period and runtime (v1, CONFIG_RT_GROUP_SCHED).
    pub cpu_realtime: bool,
    /// cpuset cpus/mems.
    pub cpuset: bool,
    /// pids limit.
    pub pids_limit: bool,
    /// Block I/O weight.
    pub blkio_weight: bool,
    /// Per-device block I/O weight.
    pub blkio_weight_device: bool,
    /// Block I/O throttling (bps and iops per device).
    pub blkio_throttle: bool,
    /// Freezing (pause/unpause).
    pub freezer: bool,
    /// Huge page limits.
    pub hugetlb: bool,
}

impl Hierarchies {
    /// Probes what this host can limit.
    pub fn features(&self) -> HostFeatures {
        let v1 = |controller: &str, file: &str| {
            self.v1_mount(controller)
                .is_some_and(|m| fs::exists(&m.join(file)))
        };
        let v1_any = |controller: &str, files: &[&str]| files.iter().any(|f| v1(controller, f));
        let v2 = self.unified_controllers();
        let v2_has = |c: &str| v2.iter().any(|x| x == c);
        let v2_swap = || {
            // memory.swap.max exists only below the root; look at our own cgroup, else trust
            // the kernel's swap accounting default (on since 6.1 whenever swap is compiled in).
            own_v2_dir(self)
                .map(|d| fs::exists(&d.join("memory.swap.max")))
                .unwrap_or(true)
        };
        let memory_v1 = self.v1_mount("memory").is_some();
        let memory_v2 = !memory_v1 && v2_has("memory");
        let cpu_v1 = self.v1_mount("cpu").is_some();
        let cpu_v2 = !cpu_v1 && v2_has("cpu");
        let blkio_v1 = self.v1_mount("blkio").is_some();
        let io_v2 = !blkio_v1 && v2_has("io");
        HostFeatures {
            memory_limit: memory_v1 || memory_v2,
            swap_limit: v1("memory", "memory.memsw.limit_in_bytes") || (memory_v2 && v2_swap()),
            memory_reservation: memory_v1 || memory_v2,
            memory_swappiness: v1("memory", "memory.swappiness"),
            oom_kill_disable: v1("memory", "memory.oom_control"),
            cpu_cfs_quota: v1("cpu", "cpu.cfs_quota_us") || cpu_v2,
            cpu_cfs_period: v1("cpu", "cpu.cfs_period_us") || cpu_v2,
            cpu_shares: v1("cpu", "cpu.shares") || cpu_v2,
            cpu_realtime: v1("cpu", "cpu.rt_runtime_us"),
            cpuset: self.v1_mount("cpuset").is_some() || v2_has("cpuset"),
            pids_limit: self.v1_mount("pids").is_some() || v2_has("pids"),
            // Weight files exist only below the root (and only with CFQ or BFQ): probed on
            // the root's own files for CFQ, else assumed from BFQ's stats files.
            blkio_weight: v1_any("blkio", &["blkio.weight", "blkio.bfq.io_service_bytes"]) || io_v2,
            blkio_weight_device: v1_any(
                "blkio",
                &["blkio.weight_device", "blkio.bfq.io_service_bytes"],
            ) || io_v2,
            blkio_throttle: v1("blkio", "blkio.throttle.read_bps_device") || io_v2,
            freezer: self.v1_mount("freezer").is_some() || self.unified_mount().is_some(),
            hugetlb: self.v1_mount("hugetlb").is_some() || v2_has("hugetlb"),
        }
    }
}

/// This process's own cgroup2 directory, when it is not the root.
fn own_v2_dir(hierarchies: &Hierarchies) -> Option<std::path::PathBuf> {
    let mount = hierarchies.unified_mount()?;
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    let rel = path.trim_start_matches('/');
    (!rel.is_empty()).then(|| Path::new(mount).join(rel))
}

#[cfg(test)]
mod tests {
    use crate::testing::FakeHost;

    #[test]
    fn hybrid_fake_host() {
        let host = FakeHost::hybrid();
        let f = host.hierarchies().features();
        assert!(f.memory_limit && f.swap_limit && f.oom_kill_disable && f.memory_swappiness);
        assert!(f.cpu_cfs_quota && f.cpu_shares && f.cpu_realtime && f.cpuset && f.pids_limit);
        assert!(f.blkio_throttle && f.freezer && f.hugetlb);
        std::fs::remove_file(host.path("memory/memory.memsw.limit_in_bytes")).unwrap();
        assert!(!host.hierarchies().features().swap_limit);
        assert!(!host.hierarchies().without("pids").features().pids_limit);
    }

    #[test]
    fn unified_fake_host() {
        let f = FakeHost::unified().hierarchies().features();
        assert!(f.memory_limit && f.cpu_cfs_quota && f.pids_limit && f.blkio_weight && f.hugetlb);
        assert!(!f.memory_swappiness && !f.oom_kill_disable && !f.cpu_realtime);
    }
}
