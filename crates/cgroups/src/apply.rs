//! [`Cgroup::apply`]: every section of OCI `linux.resources` onto its controller.

use oci_spec::runtime::LinuxResources;

use crate::cgroup::Cgroup;
use crate::error::Result;
use crate::{blkio, cpu, devices, hugetlb, memory, network, pids, unified};

impl Cgroup {
    /// Writes the limits of `resources` (runtime-spec config-linux.md "Control groups").
    ///
    /// Sections left unset are not touched, so this also serves `update`. A controller this
    /// host lacks is skipped when the section asks for nothing; when it asks for a value, the
    /// error is Unsupported and names the controller. `unified` goes last so that its raw
    /// cgroup v2 values win. The cgroup must exist ([`Cgroup::create`]).
    pub fn apply(&self, resources: &LinuxResources) -> Result<()> {
        if let Some(cpu) = resources.cpu() {
            cpu::apply(self, cpu)?;
        }
        if let Some(memory) = resources.memory() {
            memory::apply(self, memory)?;
        }
        if let Some(pids) = resources.pids() {
            pids::apply(self, pids)?;
        }
        if let Some(block_io) = resources.block_io() {
            blkio::apply(self, block_io)?;
        }
        if let Some(limits) = resources.hugepage_limits() {
            hugetlb::apply(self, limits)?;
        }
        if let Some(network) = resources.network() {
            network::apply_network(self, network)?;
        }
        if let Some(rdma) = resources.rdma() {
            network::apply_rdma(self, rdma)?;
        }
        if let Some(rules) = resources.devices() {
            devices::apply(self, rules)?;
        }
        if let Some(unified) = resources.unified() {
            unified::apply(self, unified)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;

    #[test]
    fn whole_resources_on_hybrid() {
        let host = FakeHost::hybrid();
        host.mkcg("/a");
        let cg = Cgroup::new(&host.hierarchies(), "/a").unwrap();
        let resources: LinuxResources = serde_json::from_str(
            r#"{
                "memory": {"limit": 104857600},
                "cpu": {"shares": 256},
                "pids": {"limit": 50},
                "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
                "devices": [{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]
            }"#,
        )
        .unwrap();
        cg.apply(&resources).unwrap();
        assert_eq!(
            host.writes(),
            vec![
                ("cpu/a/cpu.shares".into(), "256".into()),
                ("memory/a/memory.limit_in_bytes".into(), "104857600".into()),
                ("pids/a/pids.max".into(), "50".into()),
                ("unified/a/hugetlb.2MB.max".into(), "0".into()),
                ("devices/a/devices.deny".into(), "a".into()),
                ("devices/a/devices.allow".into(), "c 1:3 rwm".into()),
            ]
        );
        // Empty resources touch nothing.
        host.clear_writes();
        cg.apply(&LinuxResources::default()).unwrap();
        assert!(host.writes().is_empty());
    }
}
