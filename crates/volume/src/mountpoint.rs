//! A container's mount points as they are kept in its record (dockerd's `MountPoints` of
//! config.v2.json), shown by inspect (`Mounts`), and described as the mounts its runtime
//! performs. Pure: the host paths come from the caller.

use serde::{Deserialize, Serialize};

use crate::spec::MountRequest;

/// What a mount point mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    /// A host path.
    Bind,
    /// A volume (named or anonymous).
    #[default]
    Volume,
    /// A fresh tmpfs.
    Tmpfs,
}

impl MountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bind => "bind",
            Self::Volume => "volume",
            Self::Tmpfs => "tmpfs",
        }
    }
}

/// One mount of a container, resolved at create: its volume exists, its name is known.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MountPoint {
    pub kind: MountKind,
    /// The volume's name (volumes only).
    pub name: String,
    /// Bind: the host path. Volume: its mount point when known (as inspect shows it).
    pub source: String,
    pub destination: String,
    /// The volume's driver (volumes only).
    pub driver: String,
    /// Inspect's `Mode`: the `-v` mode text, `z` for a local named volume given without one.
    pub mode: String,
    pub rw: bool,
    /// Bind propagation (`rprivate`...); empty for volumes and tmpfs.
    pub propagation: String,
    /// The request named the propagation (else it is the default, which may fall back).
    pub propagation_given: bool,
    /// Copy the image's content into the volume while it is empty (once, at create).
    pub copy_data: bool,
    /// The request named its source (a bind, or `name:/path`): never removed with the
    /// container. Anonymous volumes are removed by `rm -v` and `--rm`.
    pub named: bool,
    /// Create a missing bind source at start (`-v`), instead of failing (`--mount`).
    pub create_source: bool,
    /// `volume-subpath`.
    pub subpath: String,
    /// `bind-nonrecursive`.
    pub non_recursive: bool,
    /// tmpfs data (`size=1m`, `mode=700`).
    pub tmpfs_options: Vec<String>,
}

impl MountPoint {
    /// The mount point of a request; `volume` is the volume's (name, driver, mount point)
    /// for volumes.
    pub fn from_request(request: &MountRequest, volume: Option<(&str, &str, &str)>) -> Self {
        let (name, driver, source) = match volume {
            Some((name, driver, mountpoint)) => {
                (name.to_string(), driver.to_string(), mountpoint.to_string())
            }
            None => (String::new(), String::new(), request.source.clone()),
        };
        let mut mode = request.mode.clone();
        // dockerd's setBindModeIfNull: local named volumes are relabeled ("z") by default.
        if request.kind == MountKind::Volume
            && driver == "local"
            && mode.is_empty()
            && !request.implicit
        {
            mode = "z".into();
        }
        Self {
            kind: request.kind,
            name,
            source: if request.kind == MountKind::Tmpfs {
                String::new()
            } else {
                source
            },
            destination: request.destination.clone(),
            driver,
            mode,
            rw: !request.read_only,
            propagation: request.propagation.clone(),
            propagation_given: request.propagation_given,
            copy_data: request.kind == MountKind::Volume && request.copy_data,
            named: !request.source.is_empty(),
            create_source: request.create_source,
            subpath: request.subpath.clone(),
            non_recursive: request.non_recursive,
            tmpfs_options: request.tmpfs_options.clone(),
        }
    }

    /// The copy `--volumes-from` makes for another container: same mount, no copy-up, no
    /// mode text, read-only when asked.
    pub fn borrowed(&self, writable: bool) -> Self {
        Self {
            rw: self.rw && writable,
            mode: String::new(),
            copy_data: false,
            ..self.clone()
        }
    }

    /// Inspect's `Mounts` entry.
    pub fn model(&self) -> bollard_stubs::models::MountPoint {
        let volume = self.kind == MountKind::Volume;
        bollard_stubs::models::MountPoint {
            typ: Some(self.kind.as_str().to_string()),
            name: volume.then(|| self.name.clone()),
            source: Some(self.source.clone()),
            destination: Some(self.destination.clone()),
            driver: volume.then(|| self.driver.clone()),
            mode: Some(self.mode.clone()),
            rw: Some(self.rw),
            propagation: Some(self.propagation.clone()),
        }
    }

    /// The mount the runtime performs for this mount point, with `source` the host path to
    /// bind (the volume's path, a subpath, or the bind source; ignored for tmpfs).
    pub fn container_mount(&self, source: &str) -> ContainerMount {
        match self.kind {
            MountKind::Tmpfs => {
                // dockerd's defaults for tmpfs mounts, then the request's data.
                let mut options: Vec<String> = ["noexec", "nosuid", "nodev", "rprivate"]
                    .iter()
                    .map(|o| o.to_string())
                    .collect();
                options.extend(self.tmpfs_options.iter().cloned());
                if !self.rw && !options.iter().any(|o| o == "ro") {
                    options.push("ro".into());
                }
                ContainerMount {
                    destination: self.destination.clone(),
                    kind: "tmpfs".into(),
                    source: "tmpfs".into(),
                    options,
                }
            }
            MountKind::Bind | MountKind::Volume => {
                let mut options =
                    vec![if self.non_recursive { "bind" } else { "rbind" }.to_string()];
                if !self.rw {
                    options.push("ro".into());
                }
                if !self.propagation.is_empty() {
                    options.push(self.propagation.clone());
                }
                ContainerMount {
                    destination: self.destination.clone(),
                    kind: "bind".into(),
                    source: source.to_string(),
                    options,
                }
            }
        }
    }
}

/// A mount as the OCI runtime spec's `mounts` entries take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerMount {
    pub destination: String,
    /// `bind` or `tmpfs`.
    pub kind: String,
    pub source: String,
    pub options: Vec<String>,
}

/// Orders mounts so that a parent is mounted before what is mounted inside it (dockerd sorts
/// by the number of path components of the destination).
pub fn sort_by_depth(mounts: &mut [ContainerMount]) {
    mounts.sort_by_key(|m| m.destination.split('/').filter(|p| !p.is_empty()).count());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{parse_bind, parse_tmpfs};

    #[test]
    fn inspect_fields_as_dockerd_fills_them() {
        let named = parse_bind("data:/d", "").unwrap();
        let point = MountPoint::from_request(&named, Some(("data", "local", "/v/data/_data")));
        let model = point.model();
        assert_eq!(model.mode.as_deref(), Some("z"));
        assert_eq!(model.name.as_deref(), Some("data"));
        assert_eq!(model.driver.as_deref(), Some("local"));
        assert_eq!(model.source.as_deref(), Some("/v/data/_data"));
        assert_eq!(model.rw, Some(true));
        assert!(point.named && point.copy_data);

        let ro = parse_bind("data:/d:ro", "").unwrap();
        let point = MountPoint::from_request(&ro, Some(("data", "local", "/m")));
        assert_eq!((point.mode.as_str(), point.rw), ("ro", false));

        let anonymous = MountRequest::anonymous("/anon", "");
        let point = MountPoint::from_request(&anonymous, Some(("f00", "local", "/m")));
        assert_eq!(point.mode, "");
        assert!(!point.named);

        let bind = parse_bind("/srv:/s:ro,rshared", "").unwrap();
        let point = MountPoint::from_request(&bind, None);
        let model = point.model();
        assert_eq!(model.name, None);
        assert_eq!(model.driver, None);
        assert_eq!(model.source.as_deref(), Some("/srv"));
        assert_eq!(model.mode.as_deref(), Some("ro,rshared"));
        assert_eq!(model.propagation.as_deref(), Some("rshared"));
        assert_eq!(model.rw, Some(false));

        let borrowed = point.borrowed(true);
        assert_eq!((borrowed.mode.as_str(), borrowed.rw), ("", false));
        let writable = MountPoint::from_request(&parse_bind("/a:/b", "").unwrap(), None);
        assert!(!writable.borrowed(false).rw);
    }

    #[test]
    fn runtime_mounts() {
        let bind = MountPoint::from_request(&parse_bind("/srv:/s:ro,rshared", "").unwrap(), None);
        let mount = bind.container_mount("/srv");
        assert_eq!(mount.kind, "bind");
        assert_eq!(mount.options, ["rbind", "ro", "rshared"]);
        let volume =
            MountPoint::from_request(&parse_bind("v:/v", "").unwrap(), Some(("v", "local", "/m")));
        assert_eq!(volume.container_mount("/m").options, ["rbind"]);
        let tmpfs = MountPoint::from_request(&parse_tmpfs("/t", "size=1m").unwrap(), None);
        let mount = tmpfs.container_mount("");
        assert_eq!(mount.kind, "tmpfs");
        assert_eq!(
            mount.options,
            ["noexec", "nosuid", "nodev", "rprivate", "size=1m"]
        );
        let mut mounts = vec![
            bind.container_mount("/x"),
            ContainerMount {
                destination: "/a/b/c".into(),
                ..mount.clone()
            },
            ContainerMount {
                destination: "/a".into(),
                ..mount.clone()
            },
        ];
        sort_by_depth(&mut mounts);
        let order: Vec<&str> = mounts.iter().map(|m| m.destination.as_str()).collect();
        assert_eq!(order, ["/s", "/a", "/a/b/c"]);
    }
}
