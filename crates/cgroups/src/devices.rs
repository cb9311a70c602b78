//! devices: OCI `linux.resources.devices` onto the v1 devices controller
//! (cgroup-v1/devices.rst) or, without it, a cgroup v2 eBPF device filter ([`crate::bpf`]).

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::bpf::{self, ProgramRule};
use crate::cgroup::{Cgroup, ControllerDir};
use crate::error::{Error, Result};
use crate::fs;

/// A validated device rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeviceRule {
    allow: bool,
    /// 'a', 'b', 'c' or 'p'. 'u' (unbuffered char) is 'c' to the kernel.
    kind: char,
    major: Option<u32>,
    minor: Option<u32>,
    /// Subset of "rwm", in that order.
    access: String,
}

impl DeviceRule {
    pub(crate) fn from_spec(rule: &LinuxDeviceCgroup) -> Result<Self> {
        let kind = match rule.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => 'a',
            LinuxDeviceType::B => 'b',
            LinuxDeviceType::C | LinuxDeviceType::U => 'c',
            LinuxDeviceType::P => 'p',
        };
        let number = |n: Option<i64>, what: &str| -> Result<Option<u32>> {
            match n {
                None => Ok(None),
                // Negative numbers are the wildcard in runc's own configs.
                Some(n) if n < 0 => Ok(None),
                Some(n) if n <= i64::from(i32::MAX) => Ok(Some(n as u32)),
                Some(n) => Err(Error::invalid(
                    format!("devices.{what}"),
                    format!("{n} out of range"),
                )),
            }
        };
        let access_text = rule.access().as_deref().unwrap_or("rwm");
        let access_text = if access_text.is_empty() {
            "rwm"
        } else {
            access_text
        };
        if let Some(bad) = access_text.chars().find(|c| !"rwm".contains(*c)) {
            return Err(Error::invalid(
                "devices.access",
                format!("unknown access {bad:?}"),
            ));
        }
        let access: String = "rwm".chars().filter(|c| access_text.contains(*c)).collect();
        Ok(Self {
            allow: rule.allow(),
            kind,
            major: number(rule.major(), "major")?,
            minor: number(rule.minor(), "minor")?,
            access,
        })
    }

    /// The devices.allow/devices.deny line: `type major:minor access`.
    pub(crate) fn v1_line(&self) -> String {
        let num = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
        format!(
            "{} {}:{} {}",
            self.kind,
            num(self.major),
            num(self.minor),
            self.access
        )
    }

    /// The rule for the eBPF program; `None` for FIFOs, which the device controller never
    /// sees (it checks only block and character devices).
    pub(crate) fn program_rule(&self) -> Option<ProgramRule> {
        let dev_type = match self.kind {
            'a' => None,
            'b' => Some(bpf::DEV_BLOCK),
            'c' => Some(bpf::DEV_CHAR),
            _ => return None,
        };
        let access = self.access.chars().fold(0, |acc, c| {
            acc | match c {
                'r' => bpf::ACC_READ,
                'w' => bpf::ACC_WRITE,
                _ => bpf::ACC_MKNOD,
            }
        });
        Some(ProgramRule {
            allow: self.allow,
            dev_type,
            major: self.major,
            minor: self.minor,
            access,
        })
    }
}

pub(crate) fn apply(cgroup: &Cgroup, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    let rules = rules
        .iter()
        .map(DeviceRule::from_spec)
        .collect::<Result<Vec<_>>>()?;
    match cgroup.locate("devices") {
        Some(ControllerDir::V1(dir)) => {
            // Start from deny-all, then replay the rules in order (devices.rst section 2).
            fs::write(&dir.join("devices.deny"), "a")?;
            for rule in rules.iter().filter(|r| r.kind != 'p') {
                let file = if rule.allow {
                    "devices.allow"
                } else {
                    "devices.deny"
                };
                fs::write(&dir.join(file), &rule.v1_line())?;
            }
            Ok(())
        }
        // cgroup2 has no "devices" in cgroup.controllers: the filter is always possible.
        Some(ControllerDir::V2(dir)) => install(&dir, &rules),
        // No v1 devices hierarchy: cgroup2, where mounted (unified hosts, or hybrid ones
        // lacking the v1 controller), enforces the rules with a filter on the cgroup2 side;
        // the process joined that hierarchy too in add_process.
        None => match cgroup.unified_dir() {
            Some(dir) => install(&dir, &rules),
            // A legacy host without the devices hierarchy: nothing can enforce rules; skip.
            None => Ok(()),
        },
    }
}

fn install(dir: &std::path::Path, rules: &[DeviceRule]) -> Result<()> {
    let program_rules: Vec<ProgramRule> =
        rules.iter().filter_map(DeviceRule::program_rule).collect();
    bpf::install_device_filter(dir, &bpf::device_program(&program_rules))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;

    #[test]
    fn v1_deny_all_then_rules_in_order() {
        let host = FakeHost::hybrid();
        host.mkcg("/d");
        let cg = Cgroup::new(&host.hierarchies(), "/d").unwrap();
        let rules: Vec<LinuxDeviceCgroup> = serde_json::from_str(
            r#"[{"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"},
                {"allow": true, "type": "c", "major": 136, "access": "wr"},
                {"allow": false, "type": "b", "major": 8, "minor": 0},
                {"allow": true, "type": "p"}]"#,
        )
        .unwrap();
        apply(&cg, &rules).unwrap();
        assert_eq!(
            host.writes(),
            vec![
                ("devices/d/devices.deny".into(), "a".into()),
                ("devices/d/devices.deny".into(), "a *:* rwm".into()),
                ("devices/d/devices.allow".into(), "c 1:3 rw".into()),
                ("devices/d/devices.allow".into(), "c 136:* rw".into()),
                ("devices/d/devices.deny".into(), "b 8:0 rwm".into()),
            ]
        );
        let bad: Vec<LinuxDeviceCgroup> =
            serde_json::from_str(r#"[{"allow": true, "access": "rx"}]"#).unwrap();
        assert_eq!(
            apply(&cg, &bad).unwrap_err().kind(),
            types::ErrorKind::InvalidArgument
        );
    }

    #[test]
    fn legacy_host_without_devices_skips() {
        let host = FakeHost::hybrid();
        host.mkcg("/d");
        let h = host.hierarchies().without("devices").without_unified();
        let cg = Cgroup::new(&h, "/d").unwrap();
        apply(
            &cg,
            &serde_json::from_str::<Vec<LinuxDeviceCgroup>>(r#"[{"allow": true}]"#).unwrap(),
        )
        .unwrap();
        assert!(host.writes().is_empty());
    }

    #[test]
    fn program_rules() {
        let rule: LinuxDeviceCgroup = serde_json::from_str(
            r#"{"allow": false, "type": "u", "major": 1, "minor": 3, "access": "w"}"#,
        )
        .unwrap();
        let r = DeviceRule::from_spec(&rule)
            .unwrap()
            .program_rule()
            .unwrap();
        assert_eq!(
            r,
            ProgramRule {
                allow: false,
                dev_type: Some(bpf::DEV_CHAR),
                major: Some(1),
                minor: Some(3),
                access: bpf::ACC_WRITE
            }
        );
    }
}
