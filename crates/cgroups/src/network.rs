//! network and rdma: OCI `linux.resources.network` onto v1 net_cls/net_prio
//! (cgroup-v1/net_cls.rst, net_prio.rst; no v2 equivalent), and `rdma` onto `rdma.max`
//! (cgroup-v1/rdma.rst, cgroup-v2.rst "RDMA").

use std::collections::HashMap;

use oci_spec::runtime::{LinuxNetwork, LinuxRdma};

use crate::cgroup::{Cgroup, ControllerDir};
use crate::error::{Error, Result};
use crate::fs;

fn v1_only(cgroup: &Cgroup, controller: &str) -> Result<std::path::PathBuf> {
    match cgroup.locate(controller) {
        Some(ControllerDir::V1(dir)) => Ok(dir),
        _ => Err(Error::Unsupported(format!("the {controller} controller"))),
    }
}

pub(crate) fn apply_network(cgroup: &Cgroup, network: &LinuxNetwork) -> Result<()> {
    if let Some(class_id) = network.class_id() {
        let dir = v1_only(cgroup, "net_cls")?;
        fs::write(&dir.join("net_cls.classid"), &class_id.to_string())?;
    }
    let priorities = network.priorities().as_deref().unwrap_or_default();
    if !priorities.is_empty() {
        let dir = v1_only(cgroup, "net_prio")?;
        for priority in priorities {
            let name = priority.name();
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(Error::invalid(
                    "network.priorities.name",
                    format!("{name:?}"),
                ));
            }
            fs::write(
                &dir.join("net_prio.ifpriomap"),
                &format!("{name} {}", priority.priority()),
            )?;
        }
    }
    Ok(())
}

pub(crate) fn apply_rdma(cgroup: &Cgroup, rdma: &HashMap<String, LinuxRdma>) -> Result<()> {
    let wanted: Vec<_> = rdma
        .iter()
        .filter(|(_, l)| l.hca_handles().is_some() || l.hca_objects().is_some())
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let dir = match cgroup.locate("rdma") {
        Some(ControllerDir::V1(dir) | ControllerDir::V2(dir)) => dir,
        None => return Err(Error::Unsupported("the rdma controller".into())),
    };
    let mut devices: Vec<_> = wanted;
    devices.sort_by(|a, b| a.0.cmp(b.0));
    for (device, limit) in devices {
        if device.is_empty() || device.contains(char::is_whitespace) {
            return Err(Error::invalid("rdma device", format!("{device:?}")));
        }
        let mut line = device.clone();
        if let Some(handles) = limit.hca_handles() {
            line.push_str(&format!(" hca_handle={handles}"));
        }
        if let Some(objects) = limit.hca_objects() {
            line.push_str(&format!(" hca_object={objects}"));
        }
        fs::write(&dir.join("rdma.max"), &line)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;

    #[test]
    fn network_needs_v1_controllers() {
        let host = FakeHost::hybrid();
        host.mkcg("/n");
        let cg = Cgroup::new(&host.hierarchies(), "/n").unwrap();
        apply_network(&cg, &serde_json::from_str("{}").unwrap()).unwrap();
        let err = apply_network(
            &cg,
            &serde_json::from_str(r#"{"classID": 1048577}"#).unwrap(),
        )
        .unwrap_err();
        assert_eq!(err.kind(), types::ErrorKind::Unsupported);
        assert!(err.to_string().contains("net_cls"));
    }

    #[test]
    fn rdma_v2() {
        let host = FakeHost::unified();
        host.mkcg("/r");
        let cg = Cgroup::new(&host.hierarchies(), "/r").unwrap();
        let rdma: HashMap<String, LinuxRdma> =
            serde_json::from_str(r#"{"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}}"#).unwrap();
        apply_rdma(&cg, &rdma).unwrap();
        assert_eq!(
            host.writes(),
            vec![(
                "r/rdma.max".into(),
                "mlx5_1 hca_handle=3 hca_object=10000".into()
            )]
        );
    }
}
