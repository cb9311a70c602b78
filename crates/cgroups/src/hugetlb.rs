//! hugepageLimits: onto `hugetlb.<size>.limit_in_bytes` (cgroup-v1/hugetlb.rst) or
//! `hugetlb.<size>.max` (cgroup-v2.rst "HugeTLB"). On a hybrid host the controller often lives
//! in cgroup2 only.

use oci_spec::runtime::LinuxHugepageLimit;

use crate::cgroup::{Cgroup, ControllerDir};
use crate::error::{Error, Result};
use crate::fs;

pub(crate) fn apply(cgroup: &Cgroup, limits: &[LinuxHugepageLimit]) -> Result<()> {
    if limits.is_empty() {
        return Ok(());
    }
    let (dir, suffix) = match cgroup.locate("hugetlb") {
        Some(ControllerDir::V1(dir)) => (dir, "limit_in_bytes"),
        Some(ControllerDir::V2(dir)) => (dir, "max"),
        None => return Err(Error::Unsupported("the hugetlb controller".into())),
    };
    for limit in limits {
        let size = limit.page_size();
        if size.is_empty() || !size.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(Error::invalid(
                "hugepageLimits.pageSize",
                format!("{size:?}"),
            ));
        }
        let file = dir.join(format!("hugetlb.{size}.{suffix}"));
        if !fs::exists(&file) {
            return Err(Error::Unsupported(format!("hugepage size {size}")));
        }
        let value = match (limit.limit(), suffix) {
            (l, "max") if l < 0 => "max".to_string(),
            (l, _) => l.to_string(),
        };
        fs::write(&file, &value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;

    #[test]
    fn hybrid_uses_cgroup2() {
        let host = FakeHost::hybrid();
        host.mkcg("/h");
        let cg = Cgroup::new(&host.hierarchies(), "/h").unwrap();
        let limits: Vec<LinuxHugepageLimit> = serde_json::from_str(
            r#"[{"pageSize": "2MB", "limit": 4194304}, {"pageSize": "1GB", "limit": -1}]"#,
        )
        .unwrap();
        apply(&cg, &limits).unwrap();
        assert_eq!(
            host.writes(),
            vec![
                ("unified/h/hugetlb.2MB.max".into(), "4194304".into()),
                ("unified/h/hugetlb.1GB.max".into(), "max".into()),
            ]
        );
        let bad: Vec<LinuxHugepageLimit> =
            serde_json::from_str(r#"[{"pageSize": "64KB", "limit": 1}]"#).unwrap();
        assert_eq!(
            apply(&cg, &bad).unwrap_err().kind(),
            types::ErrorKind::Unsupported
        );
        let bad: Vec<LinuxHugepageLimit> =
            serde_json::from_str(r#"[{"pageSize": "../x", "limit": 1}]"#).unwrap();
        assert_eq!(
            apply(&cg, &bad).unwrap_err().kind(),
            types::ErrorKind::InvalidArgument
        );
    }
}
