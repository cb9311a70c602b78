//! cpu and cpuset: OCI `linux.resources.cpu` onto v1 cpu/cpuset (cgroup-v1/cpusets.rst,
//! scheduler/sched-bwc.rst, sched-rt-group.rst) or v2 cpu/cpuset (cgroup-v2.rst "CPU",
//! "Cpuset").

use std::path::Path;

use oci_spec::runtime::LinuxCpu;

use crate::cgroup::{Cgroup, ControllerDir};
use crate::error::{Error, Result};
use crate::fs;

/// cgroup v1 shares (2..=262144, default 1024) to v2 weight (1..=10000, default 100), the
/// linear map the runtime-spec's cgroup v2 conversion table gives.
pub fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

fn cpu_requested(cpu: &LinuxCpu) -> bool {
    cpu.shares().is_some_and(|s| s != 0)
        || cpu.quota().is_some_and(|q| q != 0)
        || cpu.period().is_some_and(|p| p != 0)
        || cpu.burst().is_some()
        || cpu.idle().is_some()
        || cpu.realtime_runtime().is_some()
        || cpu.realtime_period().is_some()
}

fn nonempty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

pub(crate) fn apply(cgroup: &Cgroup, cpu: &LinuxCpu) -> Result<()> {
    let cpus = nonempty(cpu.cpus());
    let mems = nonempty(cpu.mems());
    if cpus.is_some() || mems.is_some() {
        let dir = match cgroup.locate("cpuset") {
            Some(ControllerDir::V1(dir) | ControllerDir::V2(dir)) => dir,
            None => return Err(Error::Unsupported("the cpuset controller".into())),
        };
        // Both versions name the files alike; v1 mounted with noprefix lacks "cpuset.".
        let prefix = if fs::exists(&dir.join("cpuset.cpus")) {
            "cpuset."
        } else {
            ""
        };
        if let Some(cpus) = cpus {
            fs::write(&dir.join(format!("{prefix}cpus")), cpus)?;
        }
        if let Some(mems) = mems {
            fs::write(&dir.join(format!("{prefix}mems")), mems)?;
        }
    }
    match cgroup.locate("cpu") {
        Some(ControllerDir::V1(dir)) => apply_v1(&dir, cpu),
        Some(ControllerDir::V2(dir)) => apply_v2(&dir, cpu),
        None if cpu_requested(cpu) => Err(Error::Unsupported("the cpu controller".into())),
        None => Ok(()),
    }
}

/// Writes an optional feature file, Unsupported naming `what` when the kernel lacks it.
fn write_feature(dir: &Path, file: &str, what: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    if !fs::exists(&path) {
        return Err(Error::Unsupported(what.to_string()));
    }
    fs::write(&path, value)
}

fn apply_v1(dir: &Path, cpu: &LinuxCpu) -> Result<()> {
    if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
        fs::write(&dir.join("cpu.shares"), &shares.to_string())?;
    }
    let period = cpu.period().filter(|p| *p != 0);
    let quota = cpu.quota().filter(|q| *q != 0);
    let period_file = dir.join("cpu.cfs_period_us");
    let quota_file = dir.join("cpu.cfs_quota_us");
    match (period, quota) {
        (Some(period), Some(quota)) => {
            // The kernel checks quota/period against the parent at each write; when the new
            // period does not fit with the old quota, the other order works.
            if fs::write(&period_file, &period.to_string()).is_err() {
                fs::write(&quota_file, &quota.to_string())?;
                fs::write(&period_file, &period.to_string())?;
            } else {
                fs::write(&quota_file, &quota.to_string())?;
            }
        }
        (Some(period), None) => fs::write(&period_file, &period.to_string())?,
        (None, Some(quota)) => fs::write(&quota_file, &quota.to_string())?,
        (None, None) => {}
    }
    if let Some(burst) = cpu.burst() {
        write_feature(dir, "cpu.cfs_burst_us", "cpu.burst", &burst.to_string())?;
    }
    if let Some(idle) = cpu.idle() {
        write_feature(dir, "cpu.idle", "cpu.idle", &idle.to_string())?;
    }
    // sched-rt-group.rst: the runtime must fit the period, so the period goes first.
    if let Some(period) = cpu.realtime_period() {
        write_feature(
            dir,
            "cpu.rt_period_us",
            "cpu.realtimePeriod",
            &period.to_string(),
        )?;
    }
    if let Some(runtime) = cpu.realtime_runtime() {
        write_feature(
            dir,
            "cpu.rt_runtime_us",
            "cpu.realtimeRuntime",
            &runtime.to_string(),
        )?;
    }
    Ok(())
}

fn apply_v2(dir: &Path, cpu: &LinuxCpu) -> Result<()> {
    if cpu.realtime_runtime().is_some() || cpu.realtime_period().is_some() {
        return Err(Error::Unsupported(
            "realtime cpu scheduling on cgroup v2".into(),
        ));
    }
    if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
        fs::write(
            &dir.join("cpu.weight"),
            &shares_to_weight(shares).to_string(),
        )?;
    }
    let period = cpu.period().filter(|p| *p != 0);
    let quota = cpu.quota().filter(|q| *q != 0);
    if period.is_some() || quota.is_some() {
        // cpu.max is "$MAX $PERIOD"; a period alone keeps the current quota.
        let quota_text = match quota {
            Some(q) if q > 0 => q.to_string(),
            Some(_) => "max".to_string(),
            None => fs::read(&dir.join("cpu.max"))?
                .split_whitespace()
                .next()
                .unwrap_or("max")
                .to_string(),
        };
        let value = match period {
            Some(p) => format!("{quota_text} {p}"),
            None => quota_text,
        };
        fs::write(&dir.join("cpu.max"), &value)?;
    }
    if let Some(burst) = cpu.burst() {
        write_feature(dir, "cpu.max.burst", "cpu.burst", &burst.to_string())?;
    }
    if let Some(idle) = cpu.idle() {
        write_feature(dir, "cpu.idle", "cpu.idle", &idle.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;

    fn cpu(json: &str) -> LinuxCpu {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn weight_conversion() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1), 1);
    }

    #[test]
    fn v1_files() {
        let host = FakeHost::hybrid();
        host.mkcg("/c");
        let cg = Cgroup::new(&host.hierarchies(), "/c").unwrap();
        apply(&cg, &cpu(r#"{"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0", "idle": 1}"#)).unwrap();
        assert_eq!(
            host.writes(),
            vec![
                ("cpuset/c/cpuset.cpus".into(), "0".into()),
                ("cpuset/c/cpuset.mems".into(), "0".into()),
                ("cpu/c/cpu.shares".into(), "512".into()),
                ("cpu/c/cpu.cfs_period_us".into(), "100000".into()),
                ("cpu/c/cpu.cfs_quota_us".into(), "50000".into()),
                ("cpu/c/cpu.idle".into(), "1".into()),
            ]
        );
        host.clear_writes();
        apply(&cg, &cpu(r#"{"quota": -1}"#)).unwrap();
        assert_eq!(
            host.writes(),
            vec![("cpu/c/cpu.cfs_quota_us".into(), "-1".into())]
        );
    }

    #[test]
    fn v1_realtime_needs_the_files() {
        let host = FakeHost::hybrid();
        host.mkcg("/c");
        std::fs::remove_file(host.path("cpu/c/cpu.rt_runtime_us")).unwrap();
        let cg = Cgroup::new(&host.hierarchies(), "/c").unwrap();
        apply(&cg, &cpu("{}")).unwrap();
        let err = apply(&cg, &cpu(r#"{"realtimeRuntime": 1000}"#)).unwrap_err();
        assert_eq!(err.kind(), types::ErrorKind::Unsupported);
    }

    #[test]
    fn v2_files() {
        let host = FakeHost::unified();
        host.mkcg("/c");
        let cg = Cgroup::new(&host.hierarchies(), "/c").unwrap();
        apply(
            &cg,
            &cpu(r#"{"shares": 1024, "quota": 50000, "period": 100000, "burst": 1000}"#),
        )
        .unwrap();
        assert_eq!(
            host.writes(),
            vec![
                ("c/cpu.weight".into(), "39".into()),
                ("c/cpu.max".into(), "50000 100000".into()),
                ("c/cpu.max.burst".into(), "1000".into()),
            ]
        );
        host.clear_writes();
        apply(&cg, &cpu(r#"{"quota": -1, "period": 20000}"#)).unwrap();
        assert_eq!(
            host.writes(),
            vec![("c/cpu.max".into(), "max 20000".into())]
        );
        host.clear_writes();
        std::fs::write(host.path("c/cpu.max"), "30000 100000\n").unwrap();
        apply(&cg, &cpu(r#"{"period": 50000}"#)).unwrap();
        assert_eq!(
            host.writes(),
            vec![("c/cpu.max".into(), "30000 50000".into())]
        );
        assert!(apply(&cg, &cpu(r#"{"realtimePeriod": 1}"#)).is_err());
    }

    #[test]
    fn absent_cpu_controller() {
        let host = FakeHost::hybrid();
        host.mkcg("/c");
        let cg = Cgroup::new(&host.hierarchies().without("cpu"), "/c").unwrap();
        apply(&cg, &cpu(r#"{"shares": 0}"#)).unwrap();
        assert_eq!(
            apply(&cg, &cpu(r#"{"shares": 2}"#)).unwrap_err().kind(),
            types::ErrorKind::Unsupported
        );
    }
}
