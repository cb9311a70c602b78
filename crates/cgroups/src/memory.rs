//! memory: OCI `linux.resources.memory` onto the v1 memory controller
//! (cgroup-v1/memory.rst) or the v2 one (cgroup-v2.rst "Memory").

use oci_spec::runtime::LinuxMemory;

use crate::cgroup::{Cgroup, ControllerDir};
use crate::error::{Error, Result};
use crate::fs;

/// `Some(v)` for a value the spec sets; 0 means unset here as in Docker and runc, because a
/// zero memory limit would kill the container at once.
fn set(value: Option<i64>) -> Option<i64> {
    value.filter(|v| *v != 0)
}

/// v1 and v2 write -1 as "no limit": v1 accepts "-1", v2 wants "max".
fn v2_limit(value: i64) -> String {
    if value < 0 {
        "max".to_string()
    } else {
        value.to_string()
    }
}

fn requested(memory: &LinuxMemory) -> bool {
    set(memory.limit()).is_some()
        || set(memory.reservation()).is_some()
        || set(memory.swap()).is_some()
        || memory.swappiness().is_some()
        || memory.disable_oom_killer() == Some(true)
        || memory.kernel_tcp().is_some()
}

pub(crate) fn apply(cgroup: &Cgroup, memory: &LinuxMemory) -> Result<()> {
    match cgroup.locate("memory") {
        Some(ControllerDir::V1(dir)) => apply_v1(&dir, memory),
        Some(ControllerDir::V2(dir)) => apply_v2(&dir, memory),
        None if requested(memory) => Err(Error::Unsupported("the memory controller".into())),
        None => Ok(()),
    }
}

fn apply_v1(dir: &std::path::Path, memory: &LinuxMemory) -> Result<()> {
    let limit_file = dir.join("memory.limit_in_bytes");
    let memsw_file = dir.join("memory.memsw.limit_in_bytes");
    let limit = set(memory.limit());
    // memsw is memory+swap, so OCI's swap (also memory+swap) goes there unchanged. Without
    // swap accounting (swapaccount=0, CONFIG_MEMCG_SWAP off) the file is absent: skip it.
    let swap = set(memory.swap()).filter(|_| fs::exists(&memsw_file));
    if let Some(swap) = swap
        && let Some(limit) = limit
        && swap >= 0
        && limit >= 0
        && swap < limit
    {
        return Err(Error::invalid(
            "memory.swap",
            format!("memory+swap {swap} is below the memory limit {limit}"),
        ));
    }
    match (limit, swap) {
        (Some(limit), Some(swap)) => {
            // The kernel keeps memsw >= limit at every step (memory.rst 2.5), so a raise of
            // memsw goes first and a lowering goes last.
            let current_memsw = fs::read(&memsw_file)?
                .trim()
                .parse::<i64>()
                .unwrap_or(i64::MAX);
            if swap < 0 || swap > current_memsw {
                fs::write(&memsw_file, &swap.to_string())?;
                fs::write(&limit_file, &limit.to_string())?;
            } else {
                fs::write(&limit_file, &limit.to_string())?;
                fs::write(&memsw_file, &swap.to_string())?;
            }
        }
        (Some(limit), None) => fs::write(&limit_file, &limit.to_string())?,
        (None, Some(swap)) => fs::write(&memsw_file, &swap.to_string())?,
        (None, None) => {}
    }
    if let Some(reservation) = set(memory.reservation()) {
        fs::write(
            &dir.join("memory.soft_limit_in_bytes"),
            &reservation.to_string(),
        )?;
    }
    if let Some(swappiness) = memory.swappiness() {
        if swappiness > 100 {
            return Err(Error::invalid(
                "memory.swappiness",
                format!("{swappiness} is not within 0-100"),
            ));
        }
        fs::write(&dir.join("memory.swappiness"), &swappiness.to_string())?;
    }
    if let Some(disable) = memory.disable_oom_killer() {
        let file = dir.join("memory.oom_control");
        // Writing 0 where the file is absent would fail for a default: only insist when asked.
        if disable || fs::exists(&file) {
            fs::write(&file, if disable { "1" } else { "0" })?;
        }
    }
    if let Some(tcp) = memory.kernel_tcp() {
        let file = dir.join("memory.kmem.tcp.limit_in_bytes");
        if !fs::exists(&file) {
            return Err(Error::Unsupported("memory.kernelTCP".into()));
        }
        fs::write(&file, &tcp.to_string())?;
    }
    // memory.kernel is deprecated by the runtime spec and the kernel rejects writes to
    // memory.kmem.limit_in_bytes since 5.16: ignored, as other runtimes do.
    Ok(())
}

/// v2 keeps swap separately (memory.swap.max) while OCI gives memory+swap.
fn v2_swap(limit: Option<i64>, swap: i64) -> Result<String> {
    if swap < 0 {
        return Ok("max".into());
    }
    match limit {
        Some(limit) if limit > 0 => {
            if swap < limit {
                Err(Error::invalid(
                    "memory.swap",
                    format!("memory+swap {swap} is below the memory limit {limit}"),
                ))
            } else {
                Ok((swap - limit).to_string())
            }
        }
        _ => Err(Error::invalid(
            "memory.swap",
            "a swap limit needs a memory limit on cgroup v2",
        )),
    }
}

fn apply_v2(dir: &std::path::Path, memory: &LinuxMemory) -> Result<()> {
    let limit = set(memory.limit());
    if let Some(swap) = set(memory.swap()) {
        let value = v2_swap(limit, swap)?;
        let file = dir.join("memory.swap.max");
        // Absent without swap accounting, like memsw on v1.
        if fs::exists(&file) {
            fs::write(&file, &value)?;
        }
    }
    if let Some(limit) = limit {
        if memory.check_before_update() == Some(true) && limit > 0 {
            let current = fs::read_u64(&dir.join("memory.current")).unwrap_or(0);
            if current >= limit as u64 {
                return Err(Error::invalid(
                    "memory.limit",
                    format!("{limit} is not above the current usage {current}"),
                ));
            }
        }
        fs::write(&dir.join("memory.max"), &v2_limit(limit))?;
    }
    if let Some(reservation) = set(memory.reservation()) {
        fs::write(&dir.join("memory.low"), &v2_limit(reservation))?;
    }
    // swappiness and disableOOMKiller have no cgroup v2 interface; ignored there.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;

    fn memory(json: &str) -> LinuxMemory {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn v1_raise_writes_memsw_first_and_lower_writes_it_last() {
        let host = FakeHost::hybrid();
        host.mkcg("/m");
        let cg = Cgroup::new(&host.hierarchies(), "/m").unwrap();
        std::fs::write(host.path("memory/m/memory.memsw.limit_in_bytes"), "1000").unwrap();
        apply(&cg, &memory(r#"{"limit": 2000, "swap": 4000, "reservation": 1500, "swappiness": 10, "disableOOMKiller": true}"#)).unwrap();
        assert_eq!(
            host.writes(),
            vec![
                ("memory/m/memory.memsw.limit_in_bytes".into(), "4000".into()),
                ("memory/m/memory.limit_in_bytes".into(), "2000".into()),
                ("memory/m/memory.soft_limit_in_bytes".into(), "1500".into()),
                ("memory/m/memory.swappiness".into(), "10".into()),
                ("memory/m/memory.oom_control".into(), "1".into()),
            ]
        );
        host.clear_writes();
        apply(&cg, &memory(r#"{"limit": 500, "swap": 600}"#)).unwrap();
        assert_eq!(
            host.writes(),
            vec![
                ("memory/m/memory.limit_in_bytes".into(), "500".into()),
                ("memory/m/memory.memsw.limit_in_bytes".into(), "600".into()),
            ]
        );
        host.clear_writes();
        apply(&cg, &memory(r#"{"limit": -1, "swap": -1}"#)).unwrap();
        assert_eq!(
            host.writes()[0],
            ("memory/m/memory.memsw.limit_in_bytes".into(), "-1".into())
        );
    }

    #[test]
    fn v1_without_swap_accounting_skips_memsw() {
        let host = FakeHost::hybrid();
        host.mkcg("/m");
        std::fs::remove_file(host.path("memory/m/memory.memsw.limit_in_bytes")).unwrap();
        let cg = Cgroup::new(&host.hierarchies(), "/m").unwrap();
        apply(&cg, &memory(r#"{"limit": 2000, "swap": 4000}"#)).unwrap();
        assert_eq!(
            host.writes(),
            vec![("memory/m/memory.limit_in_bytes".into(), "2000".into())]
        );
    }

    #[test]
    fn v1_rejects_bad_values() {
        let host = FakeHost::hybrid();
        host.mkcg("/m");
        let cg = Cgroup::new(&host.hierarchies(), "/m").unwrap();
        assert!(apply(&cg, &memory(r#"{"limit": 2000, "swap": 1000}"#)).is_err());
        assert!(apply(&cg, &memory(r#"{"swappiness": 101}"#)).is_err());
    }

    #[test]
    fn v2_swap_is_swap_minus_limit() {
        let host = FakeHost::unified();
        host.mkcg("/m");
        let cg = Cgroup::new(&host.hierarchies(), "/m").unwrap();
        apply(
            &cg,
            &memory(r#"{"limit": 1000, "swap": 3000, "reservation": 500, "swappiness": 5}"#),
        )
        .unwrap();
        assert_eq!(
            host.writes(),
            vec![
                ("m/memory.swap.max".into(), "2000".into()),
                ("m/memory.max".into(), "1000".into()),
                ("m/memory.low".into(), "500".into()),
            ]
        );
        host.clear_writes();
        apply(&cg, &memory(r#"{"limit": -1, "swap": -1}"#)).unwrap();
        assert_eq!(
            host.writes(),
            vec![
                ("m/memory.swap.max".into(), "max".into()),
                ("m/memory.max".into(), "max".into())
            ]
        );
        assert!(apply(&cg, &memory(r#"{"swap": 3000}"#)).is_err());
        // checkBeforeUpdate: usage is 4096 in the fake.
        assert!(
            apply(
                &cg,
                &memory(r#"{"limit": 4000, "checkBeforeUpdate": true}"#)
            )
            .is_err()
        );
    }

    #[test]
    fn absent_controller_is_skipped_unless_requested() {
        let host = FakeHost::hybrid();
        let h = host.hierarchies().without("memory");
        host.mkcg("/m");
        let cg = Cgroup::new(&h, "/m").unwrap();
        apply(&cg, &memory(r#"{}"#)).unwrap();
        let err = apply(&cg, &memory(r#"{"limit": 10}"#)).unwrap_err();
        assert_eq!(err.kind(), types::ErrorKind::Unsupported);
        assert!(err.to_string().contains("memory"));
    }
}
