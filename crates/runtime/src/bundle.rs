//! An OCI bundle (runtime-spec bundle.md): a directory with config.json and the root
//! filesystem. Everything that can be checked before creating anything is checked here, so a
//! bad bundle leaves nothing behind.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::error::{Error, Result};
use crate::namespaces::NamespacePlan;

/// Newest runtime-spec version this runtime implements.
pub const OCI_VERSION_MAX: &str = "1.3.0";
/// Version written into state and `spec` output.
pub const OCI_VERSION: &str = "1.2.0";

/// A loaded and validated bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Absolute path of the bundle directory.
    pub dir: PathBuf,
    pub spec: Spec,
    /// Absolute path of the root filesystem.
    pub rootfs: PathBuf,
    pub namespaces: NamespacePlan,
}

impl Bundle {
    /// Loads `dir/config.json` and validates it.
    pub fn load(dir: &Path) -> Result<Self> {
        let dir = std::path::absolute(dir)
            .map_err(|e| Error::InvalidArgument(format!("bundle {dir:?}: {e}")))?;
        let config = dir.join("config.json");
        let text = std::fs::read(&config)
            .map_err(|e| Error::InvalidSpec(format!("cannot read {}: {e}", config.display())))?;
        let spec: Spec = serde_json::from_slice(&text)
            .map_err(|e| Error::InvalidSpec(format!("{}: {e}", config.display())))?;
        Self::from_spec(dir, spec)
    }

    /// Validates an already parsed spec of a bundle at `dir`.
    pub fn from_spec(dir: PathBuf, spec: Spec) -> Result<Self> {
        check_version(spec.version())?;
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| Error::InvalidSpec("root is missing".into()))?;
        let rootfs = if root.path().is_absolute() {
            root.path().clone()
        } else {
            dir.join(root.path())
        };
        if !rootfs.is_dir() {
            return Err(Error::InvalidSpec(format!(
                "rootfs {} does not exist or is not a directory",
                rootfs.display()
            )));
        }
        let process = spec
            .process()
            .as_ref()
            .ok_or_else(|| Error::InvalidSpec("process is missing".into()))?;
        if process.args().as_ref().is_none_or(|args| args.is_empty()) {
            return Err(Error::InvalidSpec("process.args must not be empty".into()));
        }
        if !process.cwd().is_absolute() {
            return Err(Error::InvalidSpec(format!(
                "process.cwd {:?} must be an absolute path",
                process.cwd()
            )));
        }
        for mount in spec.mounts().iter().flatten() {
            if !mount.destination().is_absolute() {
                return Err(Error::InvalidSpec(format!(
                    "mount destination {:?} must be an absolute path",
                    mount.destination()
                )));
            }
        }
        let namespaces = NamespacePlan::from_spec(&spec)?;
        use oci_spec::runtime::LinuxNamespaceType as Kind;
        if !namespaces.has(Kind::Mount) {
            return Err(Error::InvalidSpec("a mount namespace is required".into()));
        }
        if (spec.hostname().is_some() || spec.domainname().is_some()) && !namespaces.has(Kind::Uts)
        {
            return Err(Error::InvalidSpec(
                "hostname or domainname needs a private uts namespace".into(),
            ));
        }
        let linux = spec.linux().as_ref();
        let has_maps =
            linux.is_some_and(|l| l.uid_mappings().as_ref().is_some_and(|m| !m.is_empty()));
        if namespaces.new_user && !has_maps {
            return Err(Error::InvalidSpec(
                "a new user namespace needs uidMappings".into(),
            ));
        }
        for path in linux
            .iter()
            .flat_map(|l| l.masked_paths().iter().chain(l.readonly_paths().iter()))
            .flatten()
        {
            if !path.starts_with('/') {
                return Err(Error::InvalidSpec(format!(
                    "path {path:?} must be absolute"
                )));
            }
        }
        Ok(Self {
            dir,
            spec,
            rootfs,
            namespaces,
        })
    }
}

/// Accepts 1.x versions up to [`OCI_VERSION_MAX`] (with pre-release or build suffixes).
fn check_version(version: &str) -> Result<()> {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<u64> = core
        .split('.')
        .filter_map(|part| part.parse().ok())
        .collect();
    let supported = match parts.as_slice() {
        [1, minor, _] => *minor <= 3,
        _ => false,
    };
    if supported {
        Ok(())
    } else {
        Err(Error::InvalidSpec(format!(
            "unsupported ociVersion {version:?} (supported: 1.0.0 to {OCI_VERSION_MAX})"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        for good in ["1.0.0", "1.0.2-dev", "1.2.0", "1.3.0", "1.1.0+dev"] {
            check_version(good).unwrap();
        }
        for bad in ["", "2.0.0", "1.4.0", "0.9.0", "one"] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
    }

    fn bundle_with(config: &str) -> Result<Bundle> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        std::fs::write(dir.path().join("config.json"), config).unwrap();
        Bundle::load(dir.path())
    }

    const GOOD: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
        "process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}},
        "linux":{"namespaces":[{"type":"mount"},{"type":"pid"}]}}"#;

    #[test]
    fn loads_a_good_bundle_and_refuses_bad_ones() {
        bundle_with(GOOD).unwrap();
        let cases = [
            ("{not json", "config.json"),
            (
                &GOOD.replace("\"pid\"", "\"bogus\""),
                "unknown variant `bogus`",
            ),
            (&GOOD.replace("rootfs", "missing"), "does not exist"),
            (
                &GOOD.replace("\"cwd\":\"/\"", "\"cwd\":\"rel\""),
                "absolute",
            ),
            (
                &GOOD.replace("{\"type\":\"mount\"},", ""),
                "mount namespace",
            ),
            (&GOOD.replace("\"sh\"", ""), "args"),
        ];
        for (config, expected) in cases {
            let error = bundle_with(config).unwrap_err().to_string();
            assert!(
                error.contains(expected),
                "{error} should mention {expected}"
            );
        }
    }
}
