//! Bind propagation rules (mount_namespaces(7)), as dockerd applies them when it builds a
//! container's spec (moby daemon/oci_linux.go): a `shared`/`rshared` bind needs a shared source
//! mount and makes the container's root `rshared`; a `slave`/`rslave` bind needs a shared or
//! slave source and makes it `rslave` (unless already shared). A bind of the daemon's data root
//! or of a parent of it defaults to `rslave`, falling back silently when the source cannot be.

use std::path::Path;

use crate::error::{Error, Result};
use crate::mountinfo::{MountInfo, containing};
use crate::mountpoint::{MountKind, MountPoint};

/// The propagation a bind gets when the request names none: `rslave` for the data root or one
/// of its parents (so that mounts made there later, such as other containers' root
/// filesystems, reach the container only as slaves), else `rprivate`.
pub fn default_propagation(source: &Path, data_root: &Path) -> &'static str {
    if data_root.starts_with(source) {
        "rslave"
    } else {
        crate::spec::DEFAULT_PROPAGATION
    }
}

/// What the container's root propagation must become for its binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RootPropagation {
    Slave,
    Shared,
}

impl RootPropagation {
    /// The `linux.rootfsPropagation` word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Slave => "rslave",
            Self::Shared => "rshared",
        }
    }
}

/// Checks one mount point's propagation against the host's mount table and returns what it
/// needs of the root propagation. `data_root` is the daemon's.
pub fn check(
    point: &MountPoint,
    mounts: &[MountInfo],
    data_root: &Path,
) -> Result<Option<RootPropagation>> {
    if point.kind != MountKind::Bind {
        return Ok(None);
    }
    let source = Path::new(&point.source);
    let Some(holder) = containing(mounts, source) else {
        return Ok(None);
    };
    match point.propagation.as_str() {
        "shared" | "rshared" => {
            if !holder.is_shared() {
                return Err(Error::InvalidMount(format!(
                    "path {} is mounted on {} but it is not a shared mount",
                    source.display(),
                    holder.mount_point.display()
                )));
            }
            Ok(Some(RootPropagation::Shared))
        }
        "slave" | "rslave" => {
            if holder.is_shared() || holder.is_slave() {
                return Ok(Some(RootPropagation::Slave));
            }
            let in_data_root = data_root.starts_with(source) || source.starts_with(data_root);
            if in_data_root && !point.propagation_given {
                // The rslave was our default, not the user's: keep the old private behaviour.
                return Ok(None);
            }
            Err(Error::InvalidMount(format!(
                "path {} is mounted on {} but it is not a shared or slave mount",
                source.display(),
                holder.mount_point.display()
            )))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mountinfo::parse;
    use crate::spec::parse_bind;

    const TABLE: &str = "\
27 1 254:0 / / rw - ext4 /dev/vda rw
40 27 0:50 / /shared rw shared:5 - tmpfs tmpfs rw
41 27 0:51 / /slave rw master:5 - tmpfs tmpfs rw
";

    fn point(raw: &str) -> MountPoint {
        MountPoint::from_request(&parse_bind(raw, "").unwrap(), None)
    }

    #[test]
    fn propagation_table() {
        let mounts = parse(TABLE);
        let data_root = Path::new("/var/lib/berth");
        for (raw, expected) in [
            ("/shared/x:/x:rshared", Ok(Some(RootPropagation::Shared))),
            ("/shared/x:/x:rslave", Ok(Some(RootPropagation::Slave))),
            ("/slave/x:/x:slave", Ok(Some(RootPropagation::Slave))),
            ("/shared/x:/x", Ok(None)),
            (
                "/slave/x:/x:shared",
                Err("path /slave/x is mounted on /slave but it is not a shared mount"),
            ),
            (
                "/srv:/x:rshared",
                Err("path /srv is mounted on / but it is not a shared mount"),
            ),
            (
                "/srv:/x:rslave",
                Err("path /srv is mounted on / but it is not a shared or slave mount"),
            ),
        ] {
            let got = check(&point(raw), &mounts, data_root).map_err(|e| e.to_string());
            assert_eq!(got, expected.map_err(str::to_string), "{raw}");
        }
        // The data root's parents default to rslave, and fall back quietly when private.
        assert_eq!(default_propagation(Path::new("/var"), data_root), "rslave");
        assert_eq!(
            default_propagation(Path::new("/srv"), data_root),
            "rprivate"
        );
        let mut defaulted = point("/var:/x");
        defaulted.propagation = "rslave".into();
        assert_eq!(check(&defaulted, &mounts, data_root).unwrap(), None);
        assert!(check(&point("/var:/x:rslave"), &mounts, data_root).is_err());
    }
}
