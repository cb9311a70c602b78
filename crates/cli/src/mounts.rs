//! The mount flags of `run`/`create` as the docker CLI reads them before any request:
//! `--mount` (a CSV of key=value fields into a `HostConfig.Mounts` entry, unknown keys
//! refused) and `-v` (a spec with a source goes to `HostConfig.Binds`, a bare container path
//! to `Config.Volumes`; a relative host path starting with `.` is made absolute). The daemon
//! checks the rest.

use std::collections::HashMap;

use client::models::{
    Mount, MountBindOptions, MountBindOptionsPropagationEnum, MountTmpfsOptions, MountType,
    MountVolumeOptions, MountVolumeOptionsDriverConfig,
};

use crate::options::ram_in_bytes;

/// Docker's boolean field values: a bare key is true.
fn parse_bool(key: &str, value: Option<&str>) -> Result<bool, String> {
    match value {
        None => Ok(true),
        Some("true" | "1" | "t" | "T" | "TRUE" | "True") => Ok(true),
        Some("false" | "0" | "f" | "F" | "FALSE" | "False") => Ok(false),
        Some(other) => Err(format!(
            "invalid value for {key}: {other}: strconv.ParseBool: parsing {other:?}: invalid syntax"
        )),
    }
}

fn key_value(field: &str, value: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some((k, v)) => Ok((k.to_string(), v.to_string())),
        None => Err(format!("invalid field '{field}' must be a key=value pair")),
    }
}

/// Parses one `--mount` value into the API's Mount.
pub fn parse_mount(text: &str) -> Result<Mount, String> {
    let mut mount = Mount {
        typ: Some(MountType::VOLUME),
        ..Default::default()
    };
    let mut bind = MountBindOptions::default();
    let mut volume = MountVolumeOptions::default();
    let mut tmpfs = MountTmpfsOptions::default();
    let (mut has_bind, mut has_volume, mut has_tmpfs) = (false, false, false);
    let mut driver = MountVolumeOptionsDriverConfig::default();
    let mut driver_options: HashMap<String, String> = HashMap::new();
    let mut labels: HashMap<String, String> = HashMap::new();
    for field in text.split(',').filter(|f| !f.is_empty()) {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), Some(v)),
            None => (field.to_lowercase(), None),
        };
        let need = |value: Option<&str>| {
            value
                .map(str::to_string)
                .ok_or_else(|| format!("invalid field '{field}' must be a key=value pair"))
        };
        match key.as_str() {
            "type" => {
                mount.typ = Some(match need(value)?.to_lowercase().as_str() {
                    "bind" => MountType::BIND,
                    "volume" => MountType::VOLUME,
                    "tmpfs" => MountType::TMPFS,
                    "npipe" => MountType::NPIPE,
                    "cluster" => MountType::CLUSTER,
                    "image" => MountType::IMAGE,
                    other => return Err(format!("invalid mount type: {other:?}")),
                })
            }
            "source" | "src" => mount.source = Some(need(value)?),
            "target" | "dst" | "destination" => mount.target = Some(need(value)?),
            "readonly" | "ro" => mount.read_only = Some(parse_bool(&key, value)?),
            "consistency" => mount.consistency = Some(need(value)?),
            "bind-propagation" => {
                has_bind = true;
                let word = need(value)?.to_lowercase();
                bind.propagation = Some(match word.as_str() {
                    "private" => MountBindOptionsPropagationEnum::PRIVATE,
                    "rprivate" => MountBindOptionsPropagationEnum::RPRIVATE,
                    "shared" => MountBindOptionsPropagationEnum::SHARED,
                    "rshared" => MountBindOptionsPropagationEnum::RSHARED,
                    "slave" => MountBindOptionsPropagationEnum::SLAVE,
                    "rslave" => MountBindOptionsPropagationEnum::RSLAVE,
                    _ => return Err(format!("invalid propagation mode: {word}")),
                });
            }
            "bind-nonrecursive" => {
                has_bind = true;
                bind.non_recursive = Some(parse_bool(&key, value)?);
            }
            "bind-recursive" => {
                has_bind = true;
                match need(value)?.as_str() {
                    "enabled" => {}
                    "disabled" => bind.non_recursive = Some(true),
                    "writable" => bind.read_only_non_recursive = Some(true),
                    "readonly" => bind.read_only_force_recursive = Some(true),
                    other => {
                        return Err(format!(
                            "invalid value for {key}: {other} (must be \"enabled\", \"disabled\", \"writable\", or \"readonly\")"
                        ));
                    }
                }
            }
            "bind-create-src" => {
                has_bind = true;
                bind.create_mountpoint = Some(parse_bool(&key, value)?);
            }
            "volume-nocopy" => {
                has_volume = true;
                volume.no_copy = Some(parse_bool(&key, value)?);
            }
            "volume-label" => {
                has_volume = true;
                let (k, v) = key_value(field, &need(value)?)?;
                labels.insert(k, v);
            }
            "volume-driver" => {
                has_volume = true;
                driver.name = Some(need(value)?);
            }
            "volume-opt" => {
                has_volume = true;
                let (k, v) = key_value(field, &need(value)?)?;
                driver_options.insert(k, v);
            }
            "volume-subpath" => {
                has_volume = true;
                volume.subpath = Some(need(value)?);
            }
            "tmpfs-size" => {
                has_tmpfs = true;
                let text = need(value)?;
                tmpfs.size_bytes = Some(
                    ram_in_bytes(&text).map_err(|_| format!("invalid value for {key}: {text}"))?,
                );
            }
            "tmpfs-mode" => {
                has_tmpfs = true;
                let text = need(value)?;
                tmpfs.mode = Some(
                    i64::from_str_radix(&text, 8)
                        .map_err(|_| format!("invalid value for {key}: {text}"))?,
                );
            }
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    let kind = mount.typ.expect("a type");
    if mount.target.as_deref().is_none_or(str::is_empty) {
        return Err("target is required".into());
    }
    let kind_name = kind.to_string();
    if has_bind && kind != MountType::BIND {
        return Err(format!(
            "cannot mix 'bind-*' options with mount type '{kind_name}'"
        ));
    }
    if has_volume && kind != MountType::VOLUME {
        return Err(format!(
            "cannot mix 'volume-*' options with mount type '{kind_name}'"
        ));
    }
    if has_tmpfs && kind != MountType::TMPFS {
        return Err(format!(
            "cannot mix 'tmpfs-*' options with mount type '{kind_name}'"
        ));
    }
    if has_bind {
        mount.bind_options = Some(bind);
    }
    if has_volume {
        if !driver_options.is_empty() {
            driver.options = Some(driver_options);
        }
        if driver.name.is_some() || driver.options.is_some() {
            volume.driver_config = Some(driver);
        }
        if !labels.is_empty() {
            volume.labels = Some(labels);
        }
        mount.volume_options = Some(volume);
    }
    if has_tmpfs {
        mount.tmpfs_options = Some(tmpfs);
    }
    Ok(mount)
}

/// Where a `-v` value goes: `HostConfig.Binds` (it names a source), or `Config.Volumes` (a
/// bare container path: an anonymous volume).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeFlag {
    Bind(String),
    Anonymous(String),
}

/// Classifies a `-v` value as the docker CLI does, making a `./relative` host path absolute.
pub fn parse_volume_flag(text: &str) -> Result<VolumeFlag, String> {
    let parts: Vec<&str> = text.split(':').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!(
            "invalid spec: {text}: empty section between colons"
        ));
    }
    if parts.len() > 3 {
        return Err(format!("invalid spec: {text}: too many colons"));
    }
    if parts.len() == 1 {
        return Ok(VolumeFlag::Anonymous(text.to_string()));
    }
    let (source, rest) = text.split_once(':').expect("a colon");
    if source.starts_with('.')
        && let Ok(cwd) = std::env::current_dir()
    {
        let absolute = cwd.join(source);
        let cleaned = absolute.components().collect::<std::path::PathBuf>();
        return Ok(VolumeFlag::Bind(format!("{}:{rest}", cleaned.display())));
    }
    Ok(VolumeFlag::Bind(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_fields_table() {
        let bind = parse_mount(
            "type=bind,src=/srv,dst=/s,readonly,bind-propagation=rshared,bind-nonrecursive",
        )
        .unwrap();
        assert_eq!(bind.typ, Some(MountType::BIND));
        assert_eq!(bind.source.as_deref(), Some("/srv"));
        assert_eq!(bind.target.as_deref(), Some("/s"));
        assert_eq!(bind.read_only, Some(true));
        let options = bind.bind_options.unwrap();
        assert_eq!(
            options.propagation,
            Some(MountBindOptionsPropagationEnum::RSHARED)
        );
        assert_eq!(options.non_recursive, Some(true));

        let volume = parse_mount(
            "source=data,target=/d,volume-nocopy,volume-subpath=a/b,volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-driver=local,volume-label=k=v,ro=false",
        )
        .unwrap();
        assert_eq!(volume.typ, Some(MountType::VOLUME));
        assert_eq!(volume.read_only, Some(false));
        let options = volume.volume_options.unwrap();
        assert_eq!(options.no_copy, Some(true));
        assert_eq!(options.subpath.as_deref(), Some("a/b"));
        assert_eq!(options.labels.unwrap()["k"], "v");
        let driver = options.driver_config.unwrap();
        assert_eq!(driver.name.as_deref(), Some("local"));
        assert_eq!(driver.options.unwrap()["device"], "tmpfs");

        let tmpfs =
            parse_mount("type=tmpfs,destination=/t,tmpfs-size=64m,tmpfs-mode=1770").unwrap();
        let options = tmpfs.tmpfs_options.unwrap();
        assert_eq!(options.size_bytes, Some(64 << 20));
        assert_eq!(options.mode, Some(0o1770));
    }

    #[test]
    fn mount_errors_table() {
        for (text, message) in [
            (
                "type=bind,src=/tmp,dst=/x,foo=bar",
                "unexpected key 'foo' in 'foo=bar'",
            ),
            ("src=foo", "target is required"),
            (
                "type=bind,source,dst=/x",
                "invalid field 'source' must be a key=value pair",
            ),
            ("type=weird,dst=/x", "invalid mount type: \"weird\""),
            (
                "type=bind,src=/a,dst=/x,volume-nocopy",
                "cannot mix 'volume-*' options with mount type 'bind'",
            ),
            (
                "type=volume,dst=/x,bind-propagation=shared",
                "cannot mix 'bind-*' options with mount type 'volume'",
            ),
            (
                "type=volume,dst=/x,tmpfs-size=1m",
                "cannot mix 'tmpfs-*' options with mount type 'volume'",
            ),
            (
                "type=bind,src=/a,dst=/x,bind-propagation=sideways",
                "invalid propagation mode: sideways",
            ),
            (
                "type=tmpfs,dst=/x,tmpfs-mode=9",
                "invalid value for tmpfs-mode: 9",
            ),
            ("dst=/x,readonly=maybe", "invalid value for readonly: maybe"),
        ] {
            let error = parse_mount(text).unwrap_err();
            assert!(error.starts_with(message), "{text}: {error}");
        }
    }

    #[test]
    fn volume_flags() {
        assert_eq!(
            parse_volume_flag("/anon"),
            Ok(VolumeFlag::Anonymous("/anon".into()))
        );
        assert_eq!(
            parse_volume_flag("data:/d:ro"),
            Ok(VolumeFlag::Bind("data:/d:ro".into()))
        );
        assert_eq!(
            parse_volume_flag("/srv:/s"),
            Ok(VolumeFlag::Bind("/srv:/s".into()))
        );
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            parse_volume_flag("./sub:/s"),
            Ok(VolumeFlag::Bind(format!(
                "{}:/s",
                cwd.join("sub").display()
            )))
        );
        assert_eq!(
            parse_volume_flag(":/x").unwrap_err(),
            "invalid spec: :/x: empty section between colons"
        );
        assert!(parse_volume_flag("a:b:c:d").is_err());
    }
}
