//! Which namespaces a container gets (OCI config-linux.md "Namespaces"): new ones are unshared,
//! ones given by path are joined with setns(2). The user namespace comes first in both cases,
//! so every other new namespace is owned by it.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, open};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Result, sys};

/// The namespace types in the order they are joined: user first (it decides the privileges for
/// the rest), mount last (joining it changes the root and the paths of the others).
pub const JOIN_ORDER: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::User,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Time,
    LinuxNamespaceType::Mount,
];

/// The clone flag of a namespace type.
pub fn clone_flag(kind: LinuxNamespaceType) -> CloneFlags {
    CloneFlags::from_bits_retain(kind as i32)
}

/// The /proc/PID/ns/ file name of a namespace type.
pub fn proc_name(kind: LinuxNamespaceType) -> &'static str {
    match kind {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// The namespace part of a spec, validated.
#[derive(Debug, Clone)]
pub struct NamespacePlan {
    /// Namespaces to join, in [`JOIN_ORDER`].
    pub join: Vec<(LinuxNamespaceType, PathBuf)>,
    /// Flags of the namespaces to create, without the user namespace.
    pub create: CloneFlags,
    /// A new user namespace is created (its id maps are written by the runtime).
    pub new_user: bool,
}

impl NamespacePlan {
    /// Reads and checks the spec's namespaces: no type twice, paths absolute.
    pub fn from_spec(spec: &Spec) -> Result<Self> {
        let mut plan = Self {
            join: Vec::new(),
            create: CloneFlags::empty(),
            new_user: false,
        };
        let mut seen = Vec::new();
        let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().clone());
        for namespace in namespaces.unwrap_or_default() {
            let kind = namespace.typ();
            if seen.contains(&kind) {
                return Err(Error::InvalidSpec(format!(
                    "namespace {} is listed twice",
                    proc_name(kind)
                )));
            }
            seen.push(kind);
            match namespace.path() {
                Some(path) => {
                    if !path.is_absolute() {
                        return Err(Error::InvalidSpec(format!(
                            "namespace path {path:?} must be absolute"
                        )));
                    }
                    plan.join.push((kind, path.clone()));
                }
                None if kind == LinuxNamespaceType::User => plan.new_user = true,
                None => plan.create |= clone_flag(kind),
            }
        }
        plan.join
            .sort_by_key(|(kind, _)| JOIN_ORDER.iter().position(|k| k == kind));
        Ok(plan)
    }

    /// Whether the container has its own namespace of this type (new or joined).
    pub fn has(&self, kind: LinuxNamespaceType) -> bool {
        (kind == LinuxNamespaceType::User && self.new_user)
            || self.create.contains(clone_flag(kind))
            || self.join.iter().any(|(k, _)| *k == kind)
    }
}

/// An open namespace file, ready for setns.
#[derive(Debug)]
pub struct NamespaceFile {
    pub kind: LinuxNamespaceType,
    pub fd: OwnedFd,
}

/// Opens a namespace file; opened up front, since joining one (mount) changes what paths mean.
pub fn open_namespace(kind: LinuxNamespaceType, path: &Path) -> Result<NamespaceFile> {
    let fd = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).map_err(sys(
        format!("open {} namespace {}", proc_name(kind), path.display()),
    ))?;
    Ok(NamespaceFile { kind, fd })
}

/// Joins an opened namespace.
pub fn join(namespace: &NamespaceFile) -> Result<()> {
    setns(namespace.fd.as_fd(), clone_flag(namespace.kind))
        .map_err(sys(format!("join {} namespace", proc_name(namespace.kind))))
}

/// Creates the namespaces of `flags` for the calling process (a new pid or time namespace
/// applies to its next child).
pub fn create(flags: CloneFlags) -> Result<()> {
    if flags.is_empty() {
        return Ok(());
    }
    unshare(flags).map_err(sys(format!("unshare namespaces {flags:?}")))
}

/// Whether two processes share the namespace of this type (same inode of /proc/PID/ns/NAME).
pub fn same_namespace(kind: LinuxNamespaceType, pid_a: &str, pid_b: &str) -> bool {
    let name = proc_name(kind);
    let a = std::fs::read_link(format!("/proc/{pid_a}/ns/{name}"));
    let b = std::fs::read_link(format!("/proc/{pid_b}/ns/{name}"));
    matches!((a, b), (Ok(a), Ok(b)) if a == b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxBuilder, LinuxNamespaceBuilder, SpecBuilder};

    fn spec_with(namespaces: Vec<(LinuxNamespaceType, Option<&str>)>) -> Spec {
        let namespaces = namespaces
            .into_iter()
            .map(|(kind, path)| {
                let builder = LinuxNamespaceBuilder::default().typ(kind);
                match path {
                    Some(path) => builder.path(path).build().unwrap(),
                    None => builder.build().unwrap(),
                }
            })
            .collect::<Vec<_>>();
        SpecBuilder::default()
            .linux(
                LinuxBuilder::default()
                    .namespaces(namespaces)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    }

    #[test]
    fn plans_new_and_joined_namespaces_user_first() {
        let plan = NamespacePlan::from_spec(&spec_with(vec![
            (LinuxNamespaceType::Mount, Some("/proc/1/ns/mnt")),
            (LinuxNamespaceType::Pid, None),
            (LinuxNamespaceType::User, None),
            (LinuxNamespaceType::Network, Some("/run/netns/x")),
        ]))
        .unwrap();
        assert!(plan.new_user);
        assert_eq!(plan.create, CloneFlags::CLONE_NEWPID);
        let kinds: Vec<_> = plan.join.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            kinds,
            vec![LinuxNamespaceType::Network, LinuxNamespaceType::Mount]
        );
        assert!(plan.has(LinuxNamespaceType::Mount) && !plan.has(LinuxNamespaceType::Uts));
    }

    #[test]
    fn refuses_duplicates_and_relative_paths() {
        let twice = spec_with(vec![
            (LinuxNamespaceType::Pid, None),
            (LinuxNamespaceType::Pid, None),
        ]);
        assert!(NamespacePlan::from_spec(&twice).is_err());
        let relative = spec_with(vec![(LinuxNamespaceType::Network, Some("run/netns/x"))]);
        assert!(NamespacePlan::from_spec(&relative).is_err());
    }
}
