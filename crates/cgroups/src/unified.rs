//! unified: the runtime-spec's cgroup v2 pass-through (`linux.resources.unified`), key =
//! interface file name, value = what to write.

use std::collections::HashMap;

use crate::cgroup::Cgroup;
use crate::error::{Error, Result};
use crate::fs;
use crate::hierarchy::Layout;

pub(crate) fn apply(cgroup: &Cgroup, unified: &HashMap<String, String>) -> Result<()> {
    if unified.is_empty() {
        return Ok(());
    }
    let dir = cgroup
        .unified_dir()
        .ok_or_else(|| Error::Unsupported("linux.resources.unified without cgroup v2".into()))?;
    let enabled = cgroup.v2_controllers();
    let mut keys: Vec<_> = unified.keys().collect();
    keys.sort();
    for key in keys {
        if key.is_empty() || key.contains('/') || key.starts_with('.') {
            return Err(Error::invalid(
                "unified",
                format!("{key:?} is not a cgroup file name"),
            ));
        }
        // The spec reserves `unified` for cgroup v2 hosts. A hybrid host still accepts keys of
        // controllers that cgroup2 serves there (hugetlb here) and of cgroup core files.
        let controller = key.split('.').next().unwrap_or_default();
        let allowed = match cgroup.layout() {
            Layout::Unified => true,
            Layout::Hybrid => controller == "cgroup" || enabled.iter().any(|c| c == controller),
            Layout::Legacy => false,
        };
        if !allowed {
            return Err(Error::Unsupported(format!(
                "unified key {key} on a cgroup v1 host"
            )));
        }
        let path = dir.join(key);
        if !fs::exists(&path) {
            return Err(Error::Unsupported(format!("cgroup v2 file {key}")));
        }
        fs::write(&path, &unified[key])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn unified_host_passes_through() {
        let host = FakeHost::unified();
        host.mkcg("/u");
        let cg = Cgroup::new(&host.hierarchies(), "/u").unwrap();
        apply(&cg, &map(&[("memory.max", "1000"), ("pids.max", "5")])).unwrap();
        assert_eq!(
            host.writes(),
            vec![
                ("u/memory.max".into(), "1000".into()),
                ("u/pids.max".into(), "5".into())
            ]
        );
        assert!(apply(&cg, &map(&[("../x", "1")])).is_err());
        assert_eq!(
            apply(&cg, &map(&[("memory.nope", "1")]))
                .unwrap_err()
                .kind(),
            types::ErrorKind::Unsupported
        );
    }

    #[test]
    fn hybrid_host_accepts_only_v2_controllers() {
        let host = FakeHost::hybrid();
        host.mkcg("/u");
        let cg = Cgroup::new(&host.hierarchies(), "/u").unwrap();
        apply(&cg, &map(&[("hugetlb.2MB.max", "2097152")])).unwrap();
        assert_eq!(
            host.writes(),
            vec![("unified/u/hugetlb.2MB.max".into(), "2097152".into())]
        );
        assert_eq!(
            apply(&cg, &map(&[("memory.max", "1")])).unwrap_err().kind(),
            types::ErrorKind::Unsupported
        );
        apply(&cg, &HashMap::new()).unwrap();
    }
}
