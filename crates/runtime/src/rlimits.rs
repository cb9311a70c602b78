//! Resource limits and the OOM score of the container process (config.md, "POSIX process":
//! `rlimits` and `oomScoreAdj`; setrlimit(2), proc(5) `/proc/pid/oom_score_adj`).
//!
//! Both need `CAP_SYS_RESOURCE` for some values (raising a hard limit above the current one,
//! `RLIMIT_NOFILE` above `fs.nr_open`, lowering `oom_score_adj`). Some hosts run the runtime
//! without it (a container engine inside a container, or a bounding set without it): rather
//! than refusing to start the container, the limit is clamped to what the process may set and
//! a warning says so.

use std::io::Write;

use nix::errno::Errno;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use oci_spec::runtime::{PosixRlimit, PosixRlimitType};

use crate::{Error, Result};

/// Applies each rlimit of the spec with setrlimit(2).
///
/// Unknown names cannot reach this function (they fail the spec's parsing); a soft limit
/// above the hard one is an InvalidArgument error. When raising a hard limit fails with EPERM
/// (no `CAP_SYS_RESOURCE`), the current hard limit is kept, the soft limit is set to
/// `min(requested soft, current hard)`, and a warning is logged.
pub fn apply(rlimits: &[PosixRlimit]) -> Result<()> {
    for rlimit in rlimits {
        let (name, resource) = resource(rlimit.typ());
        let (soft, hard) = (rlimit.soft(), rlimit.hard());
        if soft > hard {
            return Err(Error::InvalidArgument(format!(
                "rlimit {name}: soft limit {soft} is above the hard limit {hard}"
            )));
        }
        match setrlimit(resource, soft, hard) {
            Ok(()) => {}
            Err(Errno::EPERM) => {
                let (_, current_hard) =
                    getrlimit(resource).map_err(crate::error::sys(format!("getrlimit {name}")))?;
                let clamped_soft = soft.min(current_hard);
                tracing::warn!(
                    rlimit = name,
                    requested_soft = soft,
                    requested_hard = hard,
                    hard = current_hard,
                    soft = clamped_soft,
                    "not allowed to set this hard limit (no CAP_SYS_RESOURCE?), keeping the \
                     current hard limit"
                );
                setrlimit(resource, clamped_soft, current_hard)
                    .map_err(crate::error::sys(format!("setrlimit {name}")))?;
            }
            Err(e) => return Err(Error::sys(format!("setrlimit {name}"), e)),
        }
    }
    Ok(())
}

/// Writes `value` to `/proc/self/oom_score_adj` (-1000..=1000).
///
/// Lowering the score below its current value needs `CAP_SYS_RESOURCE` (proc(5)); without it
/// the kernel answers EACCES, and a negative value refused that way is logged and ignored, so
/// that e.g. `--oom-score-adj=-500` does not make the container unstartable on such hosts.
pub fn set_oom_score_adj(value: i32) -> Result<()> {
    if !(-1000..=1000).contains(&value) {
        return Err(Error::InvalidArgument(format!(
            "oom_score_adj {value} is out of range (-1000 to 1000)"
        )));
    }
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open("/proc/self/oom_score_adj")?;
        // One write: procfs parses the whole value from a single write(2).
        file.write_all(value.to_string().as_bytes())
    };
    match write() {
        Ok(()) => Ok(()),
        Err(e)
            if value < 0 && matches!(e.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM)) =>
        {
            tracing::warn!(
                oom_score_adj = value,
                error = %e,
                "not allowed to lower oom_score_adj (no CAP_SYS_RESOURCE?), ignoring it"
            );
            Ok(())
        }
        Err(e) => Err(Error::sys(format!("write oom_score_adj {value}"), e)),
    }
}

/// The spec's name and the kernel resource of an rlimit type.
fn resource(typ: PosixRlimitType) -> (&'static str, Resource) {
    match typ {
        PosixRlimitType::RlimitCpu => ("RLIMIT_CPU", Resource::RLIMIT_CPU),
        PosixRlimitType::RlimitFsize => ("RLIMIT_FSIZE", Resource::RLIMIT_FSIZE),
        PosixRlimitType::RlimitData => ("RLIMIT_DATA", Resource::RLIMIT_DATA),
        PosixRlimitType::RlimitStack => ("RLIMIT_STACK", Resource::RLIMIT_STACK),
        PosixRlimitType::RlimitCore => ("RLIMIT_CORE", Resource::RLIMIT_CORE),
        PosixRlimitType::RlimitRss => ("RLIMIT_RSS", Resource::RLIMIT_RSS),
        PosixRlimitType::RlimitNproc => ("RLIMIT_NPROC", Resource::RLIMIT_NPROC),
        PosixRlimitType::RlimitNofile => ("RLIMIT_NOFILE", Resource::RLIMIT_NOFILE),
        PosixRlimitType::RlimitMemlock => ("RLIMIT_MEMLOCK", Resource::RLIMIT_MEMLOCK),
        PosixRlimitType::RlimitAs => ("RLIMIT_AS", Resource::RLIMIT_AS),
        PosixRlimitType::RlimitLocks => ("RLIMIT_LOCKS", Resource::RLIMIT_LOCKS),
        PosixRlimitType::RlimitSigpending => ("RLIMIT_SIGPENDING", Resource::RLIMIT_SIGPENDING),
        PosixRlimitType::RlimitMsgqueue => ("RLIMIT_MSGQUEUE", Resource::RLIMIT_MSGQUEUE),
        PosixRlimitType::RlimitNice => ("RLIMIT_NICE", Resource::RLIMIT_NICE),
        PosixRlimitType::RlimitRtprio => ("RLIMIT_RTPRIO", Resource::RLIMIT_RTPRIO),
        PosixRlimitType::RlimitRttime => ("RLIMIT_RTTIME", Resource::RLIMIT_RTTIME),
    }
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::PosixRlimitBuilder;

    use super::*;
    use crate::test_support::{exited_ok, in_child};

    fn nofile(soft: u64, hard: u64) -> PosixRlimit {
        PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .soft(soft)
            .hard(hard)
            .build()
            .unwrap()
    }

    /// Whether this process has CAP_SYS_RESOURCE (bit 24) in its effective set.
    fn has_sys_resource() -> bool {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("CapEff:")).unwrap();
        let mask = u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap();
        mask & (1 << 24) != 0
    }

    #[test]
    fn names_follow_the_spec() {
        let parsed: PosixRlimit =
            serde_json::from_str(r#"{"type": "RLIMIT_RTTIME", "soft": 1, "hard": 2}"#).unwrap();
        assert_eq!(resource(parsed.typ()).0, "RLIMIT_RTTIME");
        assert!(
            serde_json::from_str::<PosixRlimit>(r#"{"type": "RLIMIT_BOGUS", "hard": 1}"#).is_err()
        );
    }

    #[test]
    fn soft_above_hard_is_invalid() {
        assert!(matches!(
            apply(&[nofile(20, 10)]),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn lowers_then_tolerates_raising_the_hard_limit() {
        exited_ok(in_child(|| {
            if apply(&[nofile(100, 200)]).is_err() {
                return 2;
            }
            if getrlimit(Resource::RLIMIT_NOFILE) != Ok((100, 200)) {
                return 3;
            }
            // Above the current hard limit: allowed with CAP_SYS_RESOURCE, clamped without.
            if apply(&[nofile(500, 1000)]).is_err() {
                return 4;
            }
            let expected = if has_sys_resource() {
                (500, 1000)
            } else {
                (200, 200)
            };
            if getrlimit(Resource::RLIMIT_NOFILE) != Ok(expected) {
                return 5;
            }
            0
        }));
    }

    #[test]
    fn oom_score_adj_is_written_or_tolerated() {
        exited_ok(in_child(|| {
            let read = || std::fs::read_to_string("/proc/self/oom_score_adj").unwrap();
            if set_oom_score_adj(500).is_err() || read().trim() != "500" {
                return 2;
            }
            if set_oom_score_adj(-500).is_err() {
                return 3;
            }
            let expected = if has_sys_resource() { "-500" } else { "500" };
            if read().trim() != expected {
                return 4;
            }
            if !matches!(set_oom_score_adj(2000), Err(Error::InvalidArgument(_))) {
                return 5;
            }
            0
        }));
    }
}
