//! The container's root filesystem and generated files: the overlay of the image's layers
//! mounted at `containers/<id>/rootfs` while it runs, /etc/hostname, /etc/hosts and
//! /etc/resolv.conf, and the seccomp profile named in `--security-opt`.

use std::path::{Path, PathBuf};

use bollard_stubs::models::HostConfig;

use crate::EngineConfig;
use crate::error::{Error, Result};

/// Where the rootfs of a container is mounted.
pub fn mount_point(config: &EngineConfig, id: &str) -> PathBuf {
    config.containers_root().join(id).join("rootfs")
}

/// Performs the snapshot's mounts (data from the image store) at the mount point.
pub fn mount(config: &EngineConfig, id: &str, mounts: &[content::Mount]) -> Result<PathBuf> {
    let target = mount_point(config, id);
    std::fs::create_dir_all(&target)?;
    if is_mounted(&target) {
        return Ok(target);
    }
    for mount in mounts {
        let (flags, data) = mount.flags_and_data();
        let destination = target.join(mount.target.strip_prefix("/").unwrap_or(&mount.target));
        rustix::mount::mount(
            mount.source.as_path(),
            destination.as_path(),
            mount.kind.as_str(),
            flags,
            if data.is_empty() {
                None
            } else {
                Some(std::ffi::CString::new(data).map_err(|e| Error::internal(e.to_string()))?)
            }
            .as_deref(),
        )
        .map_err(|e| Error::internal(format!("mount rootfs of {id}: {e}")))?;
    }
    Ok(target)
}

/// Unmounts the rootfs (detached, so a busy mount cannot block removal).
pub fn unmount(config: &EngineConfig, id: &str) {
    let target = mount_point(config, id);
    while is_mounted(&target) {
        if rustix::mount::unmount(&target, rustix::mount::UnmountFlags::DETACH).is_err() {
            break;
        }
    }
}

fn is_mounted(path: &Path) -> bool {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let wanted = path.display().to_string();
    text.lines()
        .any(|line| line.split(' ').nth(4) == Some(wanted.as_str()))
}

/// Writes hostname, hosts and resolv.conf into the container's directory; returns the files
/// with the destinations they are bind-mounted to.
pub fn write_etc_files(
    config: &EngineConfig,
    id: &str,
    hostname: &str,
    host_config: &HostConfig,
) -> Result<Vec<(PathBuf, &'static str)>> {
    let dir = config.containers_root().join(id);
    let network = host_config.network_mode.as_deref().unwrap_or("bridge");
    let host_network = network == "host";
    let hostname_file = dir.join("hostname");
    let hosts_file = dir.join("hosts");
    let resolv_file = dir.join("resolv.conf");
    let hostname = if host_network {
        nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        hostname.to_string()
    };
    std::fs::write(&hostname_file, format!("{hostname}\n"))?;
    let mut hosts = if host_network {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n".to_string()
    };
    for extra in host_config.extra_hosts.iter().flatten() {
        if let Some((name, address)) = extra.split_once(':') {
            hosts.push_str(&format!("{address}\t{name}\n"));
        }
    }
    std::fs::write(&hosts_file, hosts)?;
    let mut resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    if network != "host" {
        // Loopback resolvers of the host are unreachable from the container's namespace.
        resolv = resolv
            .lines()
            .filter(|l| !(l.starts_with("nameserver") && (l.contains("127.") || l.contains("::1"))))
            .map(|l| format!("{l}\n"))
            .collect();
    }
    if let Some(servers) = host_config.dns.as_ref().filter(|d| !d.is_empty()) {
        resolv = resolv
            .lines()
            .filter(|l| !l.starts_with("nameserver"))
            .map(|l| format!("{l}\n"))
            .collect();
        for server in servers {
            resolv.push_str(&format!("nameserver {server}\n"));
        }
    }
    std::fs::write(&resolv_file, resolv)?;
    Ok(vec![
        (hostname_file, "/etc/hostname"),
        (hosts_file, "/etc/hosts"),
        (resolv_file, "/etc/resolv.conf"),
    ])
}
