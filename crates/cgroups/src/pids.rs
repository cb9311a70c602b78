//! pids: OCI `linux.resources.pids` onto `pids.max` (cgroup-v1/pids.rst, same file in v2).

use oci_spec::runtime::LinuxPids;

use crate::cgroup::{Cgroup, ControllerDir};
use crate::error::{Error, Result};
use crate::fs;

/// The `pids.max` value: a positive limit as is, 0 or negative as "max" (Docker sends 0 and
/// -1 for "unlimited").
pub(crate) fn pids_max(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".to_string()
    }
}

pub(crate) fn apply(cgroup: &Cgroup, pids: &LinuxPids) -> Result<()> {
    match cgroup.locate("pids") {
        Some(ControllerDir::V1(dir) | ControllerDir::V2(dir)) => {
            fs::write(&dir.join("pids.max"), &pids_max(pids.limit()))
        }
        None if pids.limit() > 0 => Err(Error::Unsupported("the pids controller".into())),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;

    #[test]
    fn limits() {
        let host = FakeHost::hybrid();
        host.mkcg("/p");
        let cg = Cgroup::new(&host.hierarchies(), "/p").unwrap();
        for (limit, want) in [(100, "100"), (0, "max"), (-1, "max")] {
            host.clear_writes();
            apply(
                &cg,
                &serde_json::from_str(&format!(r#"{{"limit": {limit}}}"#)).unwrap(),
            )
            .unwrap();
            assert_eq!(host.writes(), vec![("pids/p/pids.max".into(), want.into())]);
        }
        let cg = Cgroup::new(&host.hierarchies().without("pids"), "/p").unwrap();
        apply(&cg, &serde_json::from_str(r#"{"limit": -1}"#).unwrap()).unwrap();
        assert!(apply(&cg, &serde_json::from_str(r#"{"limit": 5}"#).unwrap()).is_err());
    }
}
