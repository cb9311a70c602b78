//! The container's root filesystem and generated files: the overlay of the image's layers
//! mounted at `containers/<id>/rootfs` while it runs (/etc/hostname, /etc/hosts and
//! /etc/resolv.conf: see `sandbox`).

use std::path::PathBuf;

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
    if volume::mountinfo::is_mount_point(&target) {
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
    while volume::mountinfo::is_mount_point(&target) {
        if rustix::mount::unmount(&target, rustix::mount::UnmountFlags::DETACH).is_err() {
            break;
        }
    }
}
