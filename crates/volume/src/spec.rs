//! What a container asks to mount, parsed and checked as dockerd does (moby
//! volume/mounts/linux_parser.go): `HostConfig.Binds` (`-v src:dst[:mode]`), `HostConfig.Mounts`
//! (`--mount`), `HostConfig.VolumesFrom` and the anonymous volumes of `Config.Volumes`. Pure:
//! strings and API models in, [`MountRequest`]s out. Looking up or creating the volumes, and
//! checking that a bind source exists, is the caller's part.

use std::collections::HashMap;
use std::path::{Component, Path};

use bollard_stubs::models::{Mount, MountType};

use crate::error::{Error, Result};
use crate::mountpoint::MountKind;

/// Bind propagation when none is asked (moby: DefaultPropagationMode).
pub const DEFAULT_PROPAGATION: &str = "rprivate";

/// One mount a container asks for, before its volume exists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MountRequest {
    pub kind: MountKind,
    /// Bind: the host path. Volume: its name; empty for an anonymous volume.
    pub source: String,
    /// Absolute, cleaned.
    pub destination: String,
    pub read_only: bool,
    /// The `-v` mode text as given (`ro,rshared`); empty for `--mount` and `Config.Volumes`.
    pub mode: String,
    /// Bind propagation (given or [`DEFAULT_PROPAGATION`]); empty for volumes and tmpfs.
    pub propagation: String,
    /// Whether the propagation was asked for (dockerd picks `rslave` itself for a bind of a
    /// parent of its data root when it was not).
    pub propagation_given: bool,
    /// Copy the image's content into a new, empty volume (not with `nocopy`).
    pub copy_data: bool,
    /// Volume driver ("" = the daemon's default, `local`).
    pub driver: String,
    /// Options for the driver when the volume is created here.
    pub driver_options: HashMap<String, String>,
    /// Labels of a volume created here.
    pub labels: HashMap<String, String>,
    /// `volume-subpath`: a relative path inside the volume to mount instead of its root.
    pub subpath: String,
    /// `bind-nonrecursive`: a plain bind, without the submounts of the source.
    pub non_recursive: bool,
    /// `-v` creates a missing host directory; `--mount` refuses it.
    pub create_source: bool,
    /// tmpfs mount data (`size=64m`, `mode=1777`).
    pub tmpfs_options: Vec<String>,
    /// From `Config.Volumes` (the image's `VOLUME`, `docker run -v /path`), not from Binds or
    /// Mounts: dockerd gives these no default mode.
    pub implicit: bool,
}

impl MountRequest {
    /// An anonymous volume at `destination` (`Config.Volumes`, the image's `VOLUME`).
    pub fn anonymous(destination: &str, driver: &str) -> Self {
        Self {
            kind: MountKind::Volume,
            destination: clean(destination),
            copy_data: true,
            driver: driver.to_string(),
            implicit: true,
            ..Default::default()
        }
    }
}

fn invalid_spec(raw: &str) -> Error {
    Error::InvalidMount(format!("invalid volume specification: '{raw}'"))
}

fn invalid_mode(mode: &str) -> Error {
    Error::InvalidMount(format!("invalid mode: {mode}"))
}

/// `invalid mount config for type "bind": CAUSE`.
fn mount_config(kind: &str, cause: impl std::fmt::Display) -> Error {
    Error::InvalidMount(format!("invalid mount config for type {kind:?}: {cause}"))
}

const PROPAGATIONS: [&str; 6] = [
    "private", "rprivate", "slave", "rslave", "shared", "rshared",
];

/// dockerd's `ValidMountMode`: comma-separated words, at most one of each group: rw|ro,
/// z|Z, a propagation, nocopy, a consistency (accepted and ignored on Linux).
pub fn valid_mode(mode: &str) -> bool {
    if mode.is_empty() {
        return true;
    }
    let mut counts = [0usize; 5];
    for word in mode.split(',') {
        let group = match word {
            "rw" | "ro" => 0,
            "z" | "Z" => 1,
            w if PROPAGATIONS.contains(&w) => 2,
            "nocopy" => 3,
            "consistent" | "cached" | "delegated" => 4,
            _ => return false,
        };
        counts[group] += 1;
    }
    counts.iter().all(|c| *c <= 1)
}

/// A mode's read-write-ness: writable unless it says `ro`.
fn mode_writable(mode: &str) -> bool {
    !mode.split(',').any(|w| w == "ro")
}

fn mode_propagation(mode: &str) -> Option<&str> {
    mode.split(',').find(|w| PROPAGATIONS.contains(w))
}

fn mode_nocopy(mode: &str) -> bool {
    mode.split(',').any(|w| w == "nocopy")
}

/// Lexical cleaning of a path (Go's `filepath.Clean` for absolute paths).
pub fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str().unwrap_or_default()),
            Component::ParentDir if parts.pop().is_none() && !path.starts_with('/') => {
                parts.push("..");
            }
            _ => {}
        }
    }
    let joined = parts.join("/");
    if path.starts_with('/') {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".into()
    } else {
        joined
    }
}

fn validate_absolute(path: &str) -> std::result::Result<(), String> {
    if path.starts_with('/') {
        Ok(())
    } else {
        Err(format!(
            "invalid mount path: '{path}' mount path must be absolute"
        ))
    }
}

fn validate_not_root(path: &str) -> std::result::Result<(), String> {
    if clean(path) == "/" {
        Err("invalid specification: destination can't be '/'".into())
    } else {
        Ok(())
    }
}

/// Go's `filepath.IsLocal`: relative, non-empty, and not leaving its base lexically.
pub fn is_local(path: &str) -> bool {
    if path.is_empty() || path.starts_with('/') {
        return false;
    }
    let mut depth = 0i32;
    for component in Path::new(path).components() {
        match component {
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Component::Normal(_) => depth += 1,
            _ => {}
        }
    }
    true
}

/// Parses one `HostConfig.Binds` entry: `dst`, `src:dst` or `src:dst:mode`. A source that
/// is an absolute path is a bind, anything else names a volume. `volume_driver` is
/// `HostConfig.VolumeDriver`.
pub fn parse_bind(raw: &str, volume_driver: &str) -> Result<MountRequest> {
    let parts: Vec<&str> = raw.splitn(4, ':').collect();
    if parts[0].is_empty() {
        return Err(invalid_spec(raw));
    }
    let (source, target, mode) = match parts.as_slice() {
        [target] => ("", *target, ""),
        [source, target] => {
            // "dst:mode" is not a volume: a volume cannot have a mode without a source.
            if valid_mode(target) {
                return Err(invalid_spec(raw));
            }
            (*source, *target, "")
        }
        [source, target, mode] => (*source, *target, *mode),
        _ => return Err(invalid_spec(raw)),
    };
    if !valid_mode(mode) {
        return Err(invalid_mode(mode));
    }
    let kind = if source.starts_with('/') {
        MountKind::Bind
    } else {
        MountKind::Volume
    };
    let wrap = |error: Error| match error {
        Error::InvalidMount(cause) => {
            Error::InvalidMount(format!("invalid volume specification: '{raw}': {cause}"))
        }
        other => other,
    };
    let kind_name = kind.as_str();
    validate_target(kind_name, target).map_err(wrap)?;
    let propagation = mode_propagation(mode);
    let nocopy = mode_nocopy(mode);
    let mut request = MountRequest {
        kind,
        destination: clean(target),
        read_only: !mode_writable(mode),
        mode: mode.to_string(),
        ..Default::default()
    };
    match kind {
        MountKind::Bind => {
            if nocopy {
                return Err(wrap(mount_config(
                    kind_name,
                    "field VolumeOptions must not be specified",
                )));
            }
            request.source = clean(source);
            request.propagation = propagation.unwrap_or(DEFAULT_PROPAGATION).to_string();
            request.propagation_given = propagation.is_some();
            request.create_source = true;
        }
        MountKind::Volume => {
            if propagation.is_some() {
                return Err(wrap(mount_config(
                    kind_name,
                    "field BindOptions must not be specified",
                )));
            }
            request.source = source.to_string();
            request.copy_data = !nocopy;
            request.driver = volume_driver.to_string();
        }
        MountKind::Tmpfs => unreachable!("binds are binds or volumes"),
    }
    Ok(request)
}

fn validate_target(kind: &str, target: &str) -> Result<()> {
    if target.is_empty() {
        return Err(mount_config(kind, "field Target must not be empty"));
    }
    validate_not_root(target).map_err(|cause| mount_config(kind, cause))?;
    validate_absolute(target).map_err(|cause| mount_config(kind, cause))
}

/// The tmpfs data of `--mount type=tmpfs` (moby's ConvertTmpfsOptions): `size=` with the
/// largest unit that divides it, `mode=` in octal, `ro` when read-only.
pub fn tmpfs_data(size_bytes: i64, mode: i64, read_only: bool) -> Vec<String> {
    let mut data = Vec::new();
    if size_bytes != 0 {
        let (mut size, mut suffix) = (size_bytes, "");
        for (unit, divisor) in [("g", 1i64 << 30), ("m", 1 << 20), ("k", 1 << 10)] {
            if size_bytes % divisor == 0 {
                size = size_bytes / divisor;
                suffix = unit;
                break;
            }
        }
        data.push(format!("size={size}{suffix}"));
    }
    if mode != 0 {
        data.push(format!("mode={mode:o}"));
    }
    if read_only {
        data.push("ro".into());
    }
    data
}

/// Parses and checks one `HostConfig.Mounts` entry (`--mount`). `volume_driver` is
/// `HostConfig.VolumeDriver`, used when the entry names no driver.
pub fn parse_mount(mount: &Mount, volume_driver: &str) -> Result<MountRequest> {
    let kind = match mount.typ {
        Some(MountType::BIND) => MountKind::Bind,
        Some(MountType::VOLUME) => MountKind::Volume,
        Some(MountType::TMPFS) => MountKind::Tmpfs,
        other => {
            let name = other.map(|t| t.to_string()).unwrap_or_default();
            return Err(mount_config(&name, "mount type unknown"));
        }
    };
    let kind_name = kind.as_str();
    let target = mount.target.clone().unwrap_or_default();
    let source = mount.source.clone().unwrap_or_default();
    let read_only = mount.read_only.unwrap_or(false);
    validate_target(kind_name, &target)?;
    let fail = |cause: &str| Err(mount_config(kind_name, cause));
    let mut request = MountRequest {
        kind,
        destination: clean(&target),
        read_only,
        ..Default::default()
    };
    match kind {
        MountKind::Bind => {
            if source.is_empty() {
                return fail("field Source must not be empty");
            }
            if mount.volume_options.is_some() {
                return fail("field VolumeOptions must not be specified");
            }
            if mount.tmpfs_options.is_some() {
                return fail("field TmpfsOptions must not be specified");
            }
            validate_absolute(&source).map_err(|cause| mount_config(kind_name, cause))?;
            let options = mount.bind_options.clone().unwrap_or_default();
            let propagation = options
                .propagation
                .map(|p| p.to_string())
                .filter(|p| !p.is_empty());
            request.source = clean(&source);
            request.propagation_given = propagation.is_some();
            request.propagation = propagation.unwrap_or_else(|| DEFAULT_PROPAGATION.into());
            request.non_recursive = options.non_recursive.unwrap_or(false);
            // Only with bind-create-mountpoint (API >= 1.42) may a missing source be made.
            request.create_source = options.create_mountpoint.unwrap_or(false);
        }
        MountKind::Volume => {
            if mount.bind_options.is_some() {
                return fail("field BindOptions must not be specified");
            }
            if mount.tmpfs_options.is_some() {
                return fail("field TmpfsOptions must not be specified");
            }
            let options = mount.volume_options.clone().unwrap_or_default();
            let subpath = options.subpath.clone().unwrap_or_default();
            if !subpath.is_empty() {
                if source.is_empty() {
                    return fail("must not set Subpath when using anonymous volumes");
                }
                if !is_local(&subpath) {
                    return fail("subpath must be a relative path within the volume");
                }
            }
            if read_only && source.is_empty() {
                return fail("must not set ReadOnly mode when using anonymous volumes");
            }
            let driver = options.driver_config.clone().unwrap_or_default();
            request.source = source;
            request.copy_data = !options.no_copy.unwrap_or(false);
            request.driver = driver
                .name
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| volume_driver.to_string());
            request.driver_options = driver.options.unwrap_or_default();
            request.labels = options.labels.unwrap_or_default();
            request.subpath = subpath;
        }
        MountKind::Tmpfs => {
            if mount.bind_options.is_some() {
                return fail("field BindOptions must not be specified");
            }
            if mount.volume_options.is_some() {
                return fail("field VolumeOptions must not be specified");
            }
            if !source.is_empty() {
                return fail("field Source must not be specified");
            }
            let options = mount.tmpfs_options.clone().unwrap_or_default();
            let size = options.size_bytes.unwrap_or(0);
            if size < 0 {
                return fail("invalid tmpfs size: must not be negative");
            }
            request.tmpfs_options = tmpfs_data(size, options.mode.unwrap_or(0), read_only);
        }
    }
    Ok(request)
}

/// Parses `HostConfig.VolumesFrom` (`container[:ro|rw]`): the container and whether its
/// mounts stay writable (ro makes them all read-only).
pub fn parse_volumes_from(raw: &str) -> Result<(String, bool)> {
    if raw.is_empty() {
        return Err(Error::InvalidMount(
            "volumes-from specification cannot be an empty string".into(),
        ));
    }
    let (container, mode) = raw.split_once(':').unwrap_or((raw, ""));
    if mode.is_empty() {
        return Ok((container.to_string(), true));
    }
    // Propagation and copy modes are not for mounts taken from another container.
    if !valid_mode(mode) || mode_propagation(mode).is_some() || mode_nocopy(mode) {
        return Err(invalid_mode(mode));
    }
    Ok((container.to_string(), mode_writable(mode)))
}

/// The `HostConfig.Tmpfs` entries (`--tmpfs /path:opts`) as requests.
pub fn parse_tmpfs(destination: &str, options: &str) -> Result<MountRequest> {
    validate_absolute(destination).map_err(Error::InvalidMount)?;
    Ok(MountRequest {
        kind: MountKind::Tmpfs,
        destination: clean(destination),
        tmpfs_options: options
            .split(',')
            .filter(|o| !o.is_empty())
            .map(str::to_string)
            .collect(),
        read_only: options.split(',').any(|o| o == "ro"),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_stubs::models::{
        MountBindOptions, MountBindOptionsPropagationEnum, MountTmpfsOptions, MountVolumeOptions,
        MountVolumeOptionsDriverConfig,
    };

    #[test]
    fn modes() {
        for ok in [
            "",
            "ro",
            "rw",
            "z",
            "Z",
            "ro,z",
            "rshared",
            "ro,rslave",
            "nocopy",
            "rw,nocopy",
            "Z,ro",
            "cached",
        ] {
            assert!(valid_mode(ok), "{ok}");
        }
        for bad in [
            "bogus",
            "ro,rw",
            "z,Z",
            "shared,rslave",
            "nocopy,nocopy",
            "ro,",
        ] {
            assert!(!valid_mode(bad), "{bad}");
        }
    }

    #[test]
    fn binds_table() {
        // (raw, kind, source, destination, read_only, propagation, copy_data)
        for (raw, kind, source, destination, ro, propagation, copy) in [
            ("/anon", MountKind::Volume, "", "/anon", false, "", true),
            ("data:/d", MountKind::Volume, "data", "/d", false, "", true),
            (
                "data:/d:ro",
                MountKind::Volume,
                "data",
                "/d",
                true,
                "",
                true,
            ),
            (
                "data:/d:nocopy",
                MountKind::Volume,
                "data",
                "/d",
                false,
                "",
                false,
            ),
            (
                "data:/d/:z",
                MountKind::Volume,
                "data",
                "/d",
                false,
                "",
                true,
            ),
            (
                "/host:/h",
                MountKind::Bind,
                "/host",
                "/h",
                false,
                "rprivate",
                false,
            ),
            (
                "/host/../x/:/h:ro,rshared",
                MountKind::Bind,
                "/x",
                "/h",
                true,
                "rshared",
                false,
            ),
            (
                "/host:/h:Z,rw,slave",
                MountKind::Bind,
                "/host",
                "/h",
                false,
                "slave",
                false,
            ),
        ] {
            let request = parse_bind(raw, "").unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(request.kind, kind, "{raw}");
            assert_eq!(request.source, source, "{raw}");
            assert_eq!(request.destination, destination, "{raw}");
            assert_eq!(request.read_only, ro, "{raw}");
            assert_eq!(request.propagation, propagation, "{raw}");
            assert_eq!(request.copy_data, copy, "{raw}");
            assert_eq!(request.create_source, kind == MountKind::Bind, "{raw}");
        }
        let driven = parse_bind("data:/d", "myplugin").unwrap();
        assert_eq!(driven.driver, "myplugin");
        assert_eq!(parse_bind("/h:/d", "myplugin").unwrap().driver, "");
    }

    #[test]
    fn bad_binds_get_dockerds_messages() {
        for (raw, message) in [
            (":/x", "invalid volume specification: ':/x'"),
            ("/foo:rw", "invalid volume specification: '/foo:rw'"),
            ("a:b:c:d", "invalid volume specification: 'a:b:c:d'"),
            ("foo:/x:bogus", "invalid mode: bogus"),
            ("/tmp:/x:ro,rw", "invalid mode: ro,rw"),
            (
                "/tmp/x:relative",
                "invalid volume specification: '/tmp/x:relative': invalid mount config for type \"bind\": invalid mount path: 'relative' mount path must be absolute",
            ),
            (
                "foo:/",
                "invalid volume specification: 'foo:/': invalid mount config for type \"volume\": invalid specification: destination can't be '/'",
            ),
            (
                "/h:/x:nocopy",
                "invalid volume specification: '/h:/x:nocopy': invalid mount config for type \"bind\": field VolumeOptions must not be specified",
            ),
            (
                "foo:/x:rshared",
                "invalid volume specification: 'foo:/x:rshared': invalid mount config for type \"volume\": field BindOptions must not be specified",
            ),
        ] {
            let error = parse_bind(raw, "").unwrap_err();
            assert_eq!(error.to_string(), message, "{raw}");
            assert_eq!(error.kind(), types::ErrorKind::InvalidArgument);
        }
    }

    fn mount(kind: MountType, source: &str, target: &str) -> Mount {
        Mount {
            typ: Some(kind),
            source: (!source.is_empty()).then(|| source.to_string()),
            target: Some(target.to_string()),
            ..Default::default()
        }
    }

    #[test]
    fn mounts_table() {
        let bind = Mount {
            read_only: Some(true),
            bind_options: Some(MountBindOptions {
                propagation: Some(MountBindOptionsPropagationEnum::RSLAVE),
                non_recursive: Some(true),
                ..Default::default()
            }),
            ..mount(MountType::BIND, "/srv/", "/x/")
        };
        let request = parse_mount(&bind, "").unwrap();
        assert_eq!(
            (
                request.kind,
                request.source.as_str(),
                request.destination.as_str()
            ),
            (MountKind::Bind, "/srv", "/x")
        );
        assert!(request.read_only && request.non_recursive && request.propagation_given);
        assert_eq!(request.propagation, "rslave");
        assert!(!request.create_source);
        let plain = parse_mount(&mount(MountType::BIND, "/srv", "/x"), "").unwrap();
        assert_eq!(plain.propagation, "rprivate");
        assert!(!plain.propagation_given);

        let volume = Mount {
            volume_options: Some(MountVolumeOptions {
                no_copy: Some(true),
                subpath: Some("a/b".into()),
                labels: Some(HashMap::from([("k".into(), "v".into())])),
                driver_config: Some(MountVolumeOptionsDriverConfig {
                    name: Some("testplugin".into()),
                    options: Some(HashMap::from([("size".into(), "1".into())])),
                }),
            }),
            ..mount(MountType::VOLUME, "data", "/d")
        };
        let request = parse_mount(&volume, "ignored").unwrap();
        assert_eq!(request.kind, MountKind::Volume);
        assert_eq!(request.source, "data");
        assert!(!request.copy_data);
        assert_eq!(request.subpath, "a/b");
        assert_eq!(request.driver, "testplugin");
        assert_eq!(request.driver_options["size"], "1");
        assert_eq!(request.labels["k"], "v");
        assert_eq!(
            parse_mount(&mount(MountType::VOLUME, "", "/d"), "drv")
                .unwrap()
                .driver,
            "drv"
        );

        let tmpfs = Mount {
            tmpfs_options: Some(MountTmpfsOptions {
                size_bytes: Some(1 << 20),
                mode: Some(0o1770),
                ..Default::default()
            }),
            ..mount(MountType::TMPFS, "", "/t")
        };
        assert_eq!(
            parse_mount(&tmpfs, "").unwrap().tmpfs_options,
            ["size=1m", "mode=1770"]
        );
    }

    #[test]
    fn bad_mounts_get_dockerds_messages() {
        let subpath = |path: &str, source: &str| Mount {
            volume_options: Some(MountVolumeOptions {
                subpath: Some(path.into()),
                ..Default::default()
            }),
            ..mount(MountType::VOLUME, source, "/d")
        };
        for (given, message) in [
            (
                mount(MountType::BIND, "", "/x"),
                "invalid mount config for type \"bind\": field Source must not be empty",
            ),
            (
                mount(MountType::BIND, "/x", ""),
                "invalid mount config for type \"bind\": field Target must not be empty",
            ),
            (
                mount(MountType::BIND, "rel", "/x"),
                "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute",
            ),
            (
                mount(MountType::TMPFS, "/tmp", "/x"),
                "invalid mount config for type \"tmpfs\": field Source must not be specified",
            ),
            (
                mount(MountType::VOLUME, "v", "/"),
                "invalid mount config for type \"volume\": invalid specification: destination can't be '/'",
            ),
            (
                subpath("../up", "v"),
                "invalid mount config for type \"volume\": subpath must be a relative path within the volume",
            ),
            (
                subpath("/abs", "v"),
                "invalid mount config for type \"volume\": subpath must be a relative path within the volume",
            ),
            (
                subpath("a", ""),
                "invalid mount config for type \"volume\": must not set Subpath when using anonymous volumes",
            ),
            (
                Mount {
                    read_only: Some(true),
                    ..mount(MountType::VOLUME, "", "/x")
                },
                "invalid mount config for type \"volume\": must not set ReadOnly mode when using anonymous volumes",
            ),
            (
                Mount {
                    bind_options: Some(MountBindOptions::default()),
                    ..mount(MountType::VOLUME, "v", "/x")
                },
                "invalid mount config for type \"volume\": field BindOptions must not be specified",
            ),
            (
                mount(MountType::NPIPE, "x", "/x"),
                "invalid mount config for type \"npipe\": mount type unknown",
            ),
        ] {
            let error = parse_mount(&given, "").unwrap_err();
            assert_eq!(error.to_string(), message, "{given:?}");
        }
    }

    #[test]
    fn volumes_from_and_tmpfs() {
        assert_eq!(parse_volumes_from("c").unwrap(), ("c".into(), true));
        assert_eq!(parse_volumes_from("c:ro").unwrap(), ("c".into(), false));
        assert_eq!(parse_volumes_from("c:rw").unwrap(), ("c".into(), true));
        for bad in ["c:bad", "c:rshared", "c:nocopy"] {
            assert!(
                parse_volumes_from(bad)
                    .unwrap_err()
                    .to_string()
                    .starts_with("invalid mode: "),
                "{bad}"
            );
        }
        assert!(parse_volumes_from("").is_err());
        let tmpfs = parse_tmpfs("/run/", "size=1m,mode=700").unwrap();
        assert_eq!(tmpfs.destination, "/run");
        assert_eq!(tmpfs.tmpfs_options, ["size=1m", "mode=700"]);
        assert!(parse_tmpfs("rel", "").is_err());
    }

    #[test]
    fn paths() {
        assert_eq!(clean("/a/b/../c/./"), "/a/c");
        assert_eq!(clean("/"), "/");
        assert_eq!(clean("/.."), "/");
        assert!(is_local("a/b"));
        assert!(is_local("a/../b"));
        assert!(!is_local("a/../../b"));
        assert!(!is_local("/a"));
        assert!(!is_local(""));
        assert_eq!(tmpfs_data(3072, 0, false), ["size=3k"]);
        assert_eq!(tmpfs_data(1536, 0, false), ["size=1536"]);
        assert_eq!(
            tmpfs_data(1000, 0o755, true),
            ["size=1000", "mode=755", "ro"]
        );
        assert_eq!(tmpfs_data(2 << 30, 0, false), ["size=2g"]);
    }
}
