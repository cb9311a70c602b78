//! blockIO: OCI `linux.resources.blockIO` onto v1 blkio (cgroup-v1/blkio-controller.rst) or
//! v2 io (cgroup-v2.rst "IO").

use std::collections::BTreeMap;
use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxThrottleDevice};

use crate::cgroup::{Cgroup, ControllerDir};
use crate::error::{Error, Result};
use crate::fs;

/// v1 blkio weight (10..=1000) to v2 io.weight (1..=10000), the runtime-spec's linear map.
pub fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    let weight = u64::from(weight.clamp(10, 1000));
    1 + (weight - 10) * 9999 / 990
}

fn throttles(
    block_io: &LinuxBlockIo,
) -> [(
    &'static str,
    &'static str,
    &Option<Vec<LinuxThrottleDevice>>,
); 4] {
    [
        (
            "blkio.throttle.read_bps_device",
            "rbps",
            block_io.throttle_read_bps_device(),
        ),
        (
            "blkio.throttle.write_bps_device",
            "wbps",
            block_io.throttle_write_bps_device(),
        ),
        (
            "blkio.throttle.read_iops_device",
            "riops",
            block_io.throttle_read_iops_device(),
        ),
        (
            "blkio.throttle.write_iops_device",
            "wiops",
            block_io.throttle_write_iops_device(),
        ),
    ]
}

fn requested(block_io: &LinuxBlockIo) -> bool {
    block_io.weight().is_some()
        || block_io.leaf_weight().is_some()
        || block_io
            .weight_device()
            .as_ref()
            .is_some_and(|d| !d.is_empty())
        || throttles(block_io)
            .iter()
            .any(|(_, _, d)| d.as_ref().is_some_and(|d| !d.is_empty()))
}

pub(crate) fn apply(cgroup: &Cgroup, block_io: &LinuxBlockIo) -> Result<()> {
    match cgroup.locate("blkio").or_else(|| cgroup.locate("io")) {
        Some(ControllerDir::V1(dir)) => apply_v1(&dir, block_io),
        Some(ControllerDir::V2(dir)) => apply_v2(&dir, block_io),
        None if requested(block_io) => Err(Error::Unsupported("the blkio/io controller".into())),
        None => Ok(()),
    }
}

/// The first of `names` that exists in `dir`: CFQ's files (`blkio.weight`) are gone since
/// Linux 5.0, BFQ offers `blkio.bfq.weight` instead.
fn first_existing(dir: &Path, names: &[&str]) -> Option<std::path::PathBuf> {
    names.iter().map(|n| dir.join(n)).find(|p| fs::exists(p))
}

fn apply_v1(dir: &Path, block_io: &LinuxBlockIo) -> Result<()> {
    if let Some(weight) = block_io.weight() {
        let file = first_existing(dir, &["blkio.weight", "blkio.bfq.weight"])
            .ok_or_else(|| Error::Unsupported("blockIO.weight (no blkio.weight file)".into()))?;
        fs::write(&file, &weight.to_string())?;
    }
    if let Some(leaf) = block_io.leaf_weight() {
        let file = first_existing(dir, &["blkio.leaf_weight"])
            .ok_or_else(|| Error::Unsupported("blockIO.leafWeight".into()))?;
        fs::write(&file, &leaf.to_string())?;
    }
    for device in block_io.weight_device().iter().flatten() {
        let (major, minor) = (device.major(), device.minor());
        if let Some(weight) = device.weight() {
            let file = first_existing(dir, &["blkio.weight_device", "blkio.bfq.weight_device"])
                .ok_or_else(|| Error::Unsupported("blockIO.weightDevice".into()))?;
            fs::write(&file, &format!("{major}:{minor} {weight}"))?;
        }
        if let Some(leaf) = device.leaf_weight() {
            let file = first_existing(dir, &["blkio.leaf_weight_device"])
                .ok_or_else(|| Error::Unsupported("blockIO.weightDevice.leafWeight".into()))?;
            fs::write(&file, &format!("{major}:{minor} {leaf}"))?;
        }
    }
    for (file, _, devices) in throttles(block_io) {
        for device in devices.iter().flatten() {
            let line = format!("{}:{} {}", device.major(), device.minor(), device.rate());
            fs::write(&dir.join(file), &line)?;
        }
    }
    Ok(())
}

fn apply_v2(dir: &Path, block_io: &LinuxBlockIo) -> Result<()> {
    if block_io.leaf_weight().is_some()
        || block_io
            .weight_device()
            .iter()
            .flatten()
            .any(|d| d.leaf_weight().is_some())
    {
        return Err(Error::Unsupported(
            "blockIO leaf weights on cgroup v2".into(),
        ));
    }
    // io.bfq.weight keeps BFQ's own 1..1000 range, the same as v1's: only io.weight (1..10000)
    // needs the conversion.
    let bfq = dir.join("io.bfq.weight");
    let weight_file = |w: u16| -> Result<(std::path::PathBuf, u64)> {
        if fs::exists(&bfq) {
            Ok((bfq.clone(), u64::from(w)))
        } else if fs::exists(&dir.join("io.weight")) {
            Ok((dir.join("io.weight"), blkio_weight_to_io_weight(w)))
        } else {
            Err(Error::Unsupported(
                "blockIO.weight (no io.weight file)".into(),
            ))
        }
    };
    if let Some(weight) = block_io.weight() {
        let (file, value) = weight_file(weight)?;
        fs::write(&file, &format!("default {value}"))?;
    }
    for device in block_io.weight_device().iter().flatten() {
        if let Some(weight) = device.weight() {
            let (file, value) = weight_file(weight)?;
            fs::write(
                &file,
                &format!("{}:{} {value}", device.major(), device.minor()),
            )?;
        }
    }
    // io.max takes every limit of one device on one line; 0 means "no limit" as in v1.
    let mut per_device: BTreeMap<(i64, i64), Vec<String>> = BTreeMap::new();
    for (_, key, devices) in throttles(block_io) {
        for device in devices.iter().flatten() {
            let value = if device.rate() == 0 {
                "max".to_string()
            } else {
                device.rate().to_string()
            };
            per_device
                .entry((device.major(), device.minor()))
                .or_default()
                .push(format!("{key}={value}"));
        }
    }
    for ((major, minor), limits) in per_device {
        fs::write(
            &dir.join("io.max"),
            &format!("{major}:{minor} {}", limits.join(" ")),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;

    const BLKIO: &str = r#"{
        "weight": 500,
        "weightDevice": [{"major": 254, "minor": 0, "weight": 300}],
        "throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": 1048576}],
        "throttleWriteBpsDevice": [{"major": 254, "minor": 0, "rate": 2097152}],
        "throttleReadIOPSDevice": [{"major": 254, "minor": 0, "rate": 100}],
        "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 0}]
    }"#;

    #[test]
    fn weight_conversion() {
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10000);
    }

    #[test]
    fn v1_files_bfq() {
        let host = FakeHost::hybrid();
        host.mkcg("/b");
        let cg = Cgroup::new(&host.hierarchies(), "/b").unwrap();
        apply(&cg, &serde_json::from_str(BLKIO).unwrap()).unwrap();
        assert_eq!(
            host.writes(),
            vec![
                ("blkio/b/blkio.bfq.weight".into(), "500".into()),
                ("blkio/b/blkio.bfq.weight_device".into(), "254:0 300".into()),
                (
                    "blkio/b/blkio.throttle.read_bps_device".into(),
                    "254:0 1048576".into()
                ),
                (
                    "blkio/b/blkio.throttle.write_bps_device".into(),
                    "254:0 2097152".into()
                ),
                (
                    "blkio/b/blkio.throttle.read_iops_device".into(),
                    "254:0 100".into()
                ),
                (
                    "blkio/b/blkio.throttle.write_iops_device".into(),
                    "8:0 0".into()
                ),
            ]
        );
        assert!(apply(&cg, &serde_json::from_str(r#"{"leafWeight": 10}"#).unwrap()).is_err());
    }

    #[test]
    fn v2_files() {
        let host = FakeHost::unified();
        host.mkcg("/b");
        let cg = Cgroup::new(&host.hierarchies(), "/b").unwrap();
        apply(&cg, &serde_json::from_str(BLKIO).unwrap()).unwrap();
        assert_eq!(
            host.writes(),
            vec![
                ("b/io.weight".into(), "default 4950".into()),
                ("b/io.weight".into(), "254:0 2930".into()),
                ("b/io.max".into(), "8:0 wiops=max".into()),
                (
                    "b/io.max".into(),
                    "254:0 rbps=1048576 wbps=2097152 riops=100".into()
                ),
            ]
        );
        host.clear_writes();
        std::fs::write(host.path("b/io.bfq.weight"), "default 100").unwrap();
        apply(&cg, &serde_json::from_str(r#"{"weight": 500}"#).unwrap()).unwrap();
        assert_eq!(
            host.writes(),
            vec![("b/io.bfq.weight".into(), "default 500".into())]
        );
    }
}
