//! Linux capabilities of the container process (config-linux.md is silent; process.md,
//! "capabilities", and capabilities(7)).
//!
//! Two steps, in this order, in the container's init process:
//! 1. [`drop_bounding_set`] while init still has `CAP_SETPCAP` (before the uid change):
//!    `PR_CAPBSET_DROP` needs it, and a capability dropped from the bounding set can never be
//!    regained, even through a set-uid-root or file-capability binary (capabilities(7),
//!    "Capability bounding set").
//! 2. [`apply`] after `setgid`/`setuid` with `PR_SET_KEEPCAPS` set: the uid change cleared the
//!    effective set, `apply` installs effective/permitted/inheritable with one `capset(2)` and then
//!    raises the ambient set, which is what survives `execve` of a non-privileged binary.
//!
//! A set missing from the spec (`None`) is treated as empty: the spec says capabilities not in
//! the arrays are removed, and an absent array lists none.
//!
//! Capabilities are addressed by their kernel index. A capability that the spec names but the
//! running kernel does not know (e.g. `CAP_CHECKPOINT_RESTORE` on a kernel older than 5.9) is
//! skipped with a debug log, so one spec runs on old and new kernels alike; capabilities that the
//! kernel knows but no library names yet are still dropped from the bounding set.

use std::collections::HashSet;

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

use crate::{Error, Result};

/// Highest capability index that a 64-bit capability mask can hold.
const MAX_CAP_INDEX: u8 = 63;

/// `_LINUX_CAPABILITY_VERSION_3` from `<linux/capability.h>`: two 32-bit words per set.
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Drops from the bounding set every capability not in `caps.bounding` (capabilities(7),
/// `PR_CAPBSET_DROP` in prctl(2)). Needs `CAP_SETPCAP` in the effective set. Capabilities named
/// by the spec but unknown to the running kernel are skipped with a debug log.
pub fn drop_bounding_set(caps: &LinuxCapabilities) -> Result<()> {
    let last = last_cap();
    let keep = kernel_mask(caps.bounding().as_ref(), last, "bounding");
    for index in 0..=last {
        if keep & (1u64 << index) != 0 {
            continue;
        }
        // Dropping what is already gone is a no-op, but reading first keeps the call count
        // (and the errors of a process without CAP_SETPCAP) to what actually changes.
        if bounding_has(index)? {
            prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(index), 0).map_err(|e| {
                Error::sys(format!("drop {} from the bounding set", cap_name(index)), e)
            })?;
        }
    }
    Ok(())
}

/// Sets the effective, permitted and inheritable sets to the spec's (one `capset(2)`), then
/// clears the ambient set and raises each ambient capability of the spec.
///
/// Called after `setuid`/`setgid` with `PR_SET_KEEPCAPS`. An ambient capability that is not in
/// both the permitted and inheritable sets cannot be raised (the kernel refuses with EPERM,
/// prctl(2) `PR_CAP_AMBIENT_RAISE`): it is skipped with a warning, as other runtimes do, rather
/// than failing the container. A kernel without ambient capabilities (before 4.3) gets a warning
/// if the spec asks for any.
pub fn apply(caps: &LinuxCapabilities) -> Result<()> {
    let last = last_cap();
    let effective = kernel_mask(caps.effective().as_ref(), last, "effective");
    let permitted = kernel_mask(caps.permitted().as_ref(), last, "permitted");
    let inheritable = kernel_mask(caps.inheritable().as_ref(), last, "inheritable");
    let ambient = kernel_mask(caps.ambient().as_ref(), last, "ambient");

    capset(effective, permitted, inheritable)?;

    if let Err(err) = prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as _, 0) {
        if err.raw_os_error() == Some(libc::EINVAL) {
            if ambient != 0 {
                tracing::debug!("kernel has no ambient capabilities, ignoring the ambient set");
            }
            return Ok(());
        }
        return Err(Error::sys("clear the ambient capability set", err));
    }

    for index in indexes(ambient) {
        let bit = 1u64 << index;
        if permitted & inheritable & bit == 0 {
            tracing::debug!(
                capability = %cap_name(index),
                "ambient capability is not both permitted and inheritable, not raising it"
            );
            continue;
        }
        prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_RAISE as _,
            libc::c_ulong::from(index),
        )
        .map_err(|e| Error::sys(format!("raise ambient capability {}", cap_name(index)), e))?;
    }
    Ok(())
}

/// Names of all capabilities known to the running kernel, `CAP_...` form, sorted by kernel
/// index (for the `features` command). Capabilities beyond the ones the `caps` crate names are
/// left out: there is no name to give them.
pub fn known() -> Vec<String> {
    let last = last_cap();
    let mut all: Vec<caps::Capability> = caps::all()
        .into_iter()
        .filter(|c| c.index() <= last)
        .collect();
    all.sort_by_key(|c| c.index());
    all.into_iter().map(|c| c.to_string()).collect()
}

/// The kernel's capability of a spec capability.
///
/// An exhaustive match on purpose: a new variant in oci-spec fails the build here instead of
/// being silently ignored.
fn to_kernel(cap: Capability) -> caps::Capability {
    use caps::Capability as K;
    match cap {
        Capability::AuditControl => K::CAP_AUDIT_CONTROL,
        Capability::AuditRead => K::CAP_AUDIT_READ,
        Capability::AuditWrite => K::CAP_AUDIT_WRITE,
        Capability::BlockSuspend => K::CAP_BLOCK_SUSPEND,
        Capability::Bpf => K::CAP_BPF,
        Capability::CheckpointRestore => K::CAP_CHECKPOINT_RESTORE,
        Capability::Chown => K::CAP_CHOWN,
        Capability::DacOverride => K::CAP_DAC_OVERRIDE,
        Capability::DacReadSearch => K::CAP_DAC_READ_SEARCH,
        Capability::Fowner => K::CAP_FOWNER,
        Capability::Fsetid => K::CAP_FSETID,
        Capability::IpcLock => K::CAP_IPC_LOCK,
        Capability::IpcOwner => K::CAP_IPC_OWNER,
        Capability::Kill => K::CAP_KILL,
        Capability::Lease => K::CAP_LEASE,
        Capability::LinuxImmutable => K::CAP_LINUX_IMMUTABLE,
        Capability::MacAdmin => K::CAP_MAC_ADMIN,
        Capability::MacOverride => K::CAP_MAC_OVERRIDE,
        Capability::Mknod => K::CAP_MKNOD,
        Capability::NetAdmin => K::CAP_NET_ADMIN,
        Capability::NetBindService => K::CAP_NET_BIND_SERVICE,
        Capability::NetBroadcast => K::CAP_NET_BROADCAST,
        Capability::NetRaw => K::CAP_NET_RAW,
        Capability::Perfmon => K::CAP_PERFMON,
        Capability::Setgid => K::CAP_SETGID,
        Capability::Setfcap => K::CAP_SETFCAP,
        Capability::Setpcap => K::CAP_SETPCAP,
        Capability::Setuid => K::CAP_SETUID,
        Capability::SysAdmin => K::CAP_SYS_ADMIN,
        Capability::SysBoot => K::CAP_SYS_BOOT,
        Capability::SysChroot => K::CAP_SYS_CHROOT,
        Capability::SysModule => K::CAP_SYS_MODULE,
        Capability::SysNice => K::CAP_SYS_NICE,
        Capability::SysPacct => K::CAP_SYS_PACCT,
        Capability::SysPtrace => K::CAP_SYS_PTRACE,
        Capability::SysRawio => K::CAP_SYS_RAWIO,
        Capability::SysResource => K::CAP_SYS_RESOURCE,
        Capability::SysTime => K::CAP_SYS_TIME,
        Capability::SysTtyConfig => K::CAP_SYS_TTY_CONFIG,
        Capability::Syslog => K::CAP_SYSLOG,
        Capability::WakeAlarm => K::CAP_WAKE_ALARM,
    }
}

/// The 64-bit kernel mask of a spec set, without the capabilities above `last` (logged).
fn kernel_mask(set: Option<&Capabilities>, last: u8, set_name: &str) -> u64 {
    let mut mask = 0u64;
    // A HashSet iterates in random order; sort so that the debug logs are stable.
    let mut kernel: Vec<caps::Capability> = set
        .into_iter()
        .flatten()
        .map(|c| to_kernel(*c))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    kernel.sort_by_key(|c| c.index());
    for cap in kernel {
        if cap.index() > last {
            tracing::debug!(capability = %cap, set = set_name, "capability unknown to the running kernel, skipped");
            continue;
        }
        mask |= cap.bitmask();
    }
    mask
}

/// The indexes of the bits set in `mask`, lowest first.
fn indexes(mask: u64) -> impl Iterator<Item = u8> {
    (0..=MAX_CAP_INDEX).filter(move |i| mask & (1u64 << i) != 0)
}

/// `CAP_...` name of a kernel index, or `CAP_<index>` for one no library names yet.
fn cap_name(index: u8) -> String {
    caps::all()
        .into_iter()
        .find(|c| c.index() == index)
        .map(|c| c.to_string())
        .unwrap_or_else(|| format!("CAP_{index}"))
}

/// Whether the bounding set holds capability `index`; `Ok(false)` too for an index the kernel
/// does not know.
fn bounding_has(index: u8) -> Result<bool> {
    match bounding_read(index) {
        Ok(has) => Ok(has),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(false),
        Err(e) => Err(Error::sys(
            format!("read {} in the bounding set", cap_name(index)),
            e,
        )),
    }
}

/// `prctl(PR_CAPBSET_READ, index)`; EINVAL means the kernel does not know the capability.
fn bounding_read(index: u8) -> std::io::Result<bool> {
    prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(index), 0).map(|rc| rc == 1)
}

/// prctl(2) with two integer arguments; the unused trailing ones are passed as zero, as the
/// capability options require (`PR_CAP_AMBIENT` fails with EINVAL otherwise).
fn prctl(option: libc::c_int, arg2: libc::c_ulong, arg3: libc::c_ulong) -> std::io::Result<i32> {
    // Zeros typed as unsigned long: prctl is variadic, and an untyped `0` would be passed as a
    // 32-bit int whose upper register half the kernel might read as garbage.
    let zero: libc::c_ulong = 0;
    // SAFETY: the capability options of prctl take integer arguments only and touch no memory
    // of ours.
    let rc = unsafe { libc::prctl(option, arg2, arg3, zero, zero) };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Highest capability index of the running kernel (`/proc/sys/kernel/cap_last_cap`), found by
/// probing `PR_CAPBSET_READ`, which answers EINVAL past it: works without /proc, which init may
/// not have yet.
fn last_cap() -> u8 {
    let mut last = 0;
    for index in 0..=MAX_CAP_INDEX {
        match bounding_read(index) {
            Ok(_) => last = index,
            Err(_) => break,
        }
    }
    last
}

/// Header of capget(2)/capset(2), `struct __user_cap_header_struct`.
#[repr(C)]
struct CapUserHeader {
    version: u32,
    pid: libc::c_int,
}

/// One 32-bit word of each set, `struct __user_cap_data_struct`; version 3 uses two of them.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapUserData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Sets the three base sets of the calling thread in one capset(2) call, so that no
/// intermediate state (e.g. effective not a subset of permitted) is ever asked for.
fn capset(effective: u64, permitted: u64, inheritable: u64) -> Result<()> {
    let header = CapUserHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let word = |mask: u64, high: bool| {
        if high {
            (mask >> 32) as u32
        } else {
            mask as u32
        }
    };
    let data = [false, true].map(|high| CapUserData {
        effective: word(effective, high),
        permitted: word(permitted, high),
        inheritable: word(inheritable, high),
    });
    // SAFETY: the header and the two data words are valid, properly laid out (repr(C)) for
    // capset(2) version 3 and live until the call returns; the kernel only reads them.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) };
    if rc != 0 {
        return Err(Error::sys(
            "set the effective, permitted and inheritable capabilities",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use nix::sys::stat::{Mode, SFlag};
    use nix::sys::wait::WaitStatus;
    use oci_spec::runtime::LinuxCapabilitiesBuilder;

    use super::*;
    use crate::test_support::in_child;

    /// All spec capabilities, parsed from the kernel names the `caps` crate knows.
    fn all_spec_caps() -> Vec<Capability> {
        caps::all()
            .into_iter()
            .map(|c| serde_json::from_str(&format!("\"{c}\"")).expect("oci-spec parses it"))
            .collect()
    }

    #[test]
    fn spec_capabilities_map_to_the_same_kernel_name() {
        for cap in all_spec_caps() {
            assert_eq!(to_kernel(cap).to_string(), format!("CAP_{cap}"));
        }
    }

    #[test]
    fn mask_skips_capabilities_above_the_last_one() {
        let set: Capabilities = [Capability::Chown, Capability::CheckpointRestore].into();
        // CAP_CHECKPOINT_RESTORE is 40: a kernel whose last capability is 39 lacks it.
        assert_eq!(kernel_mask(Some(&set), 39, "test"), 1);
        assert_eq!(kernel_mask(Some(&set), 40, "test"), 1 | (1 << 40));
        assert_eq!(kernel_mask(None, 40, "test"), 0);
    }

    #[test]
    fn known_lists_the_kernel_capabilities() {
        let known = known();
        assert!(known.contains(&"CAP_CHOWN".to_string()));
        assert!(known.contains(&"CAP_SYS_ADMIN".to_string()));
        assert_eq!(known.first().map(String::as_str), Some("CAP_CHOWN"));
        assert!(known.len() <= usize::from(last_cap()) + 1);
    }

    /// Reads one `Cap*:` line of /proc/self/status.
    fn status_mask(field: &str) -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with(field)).unwrap();
        u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
    }

    #[test]
    fn dropped_capabilities_are_gone_and_others_stay() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o000))
            .unwrap();
        let node = dir.path().join("null");

        let status = in_child(|| {
            // Keep what this process has (this host may lack some, e.g. CAP_SYS_RESOURCE),
            // minus CAP_CHOWN and CAP_MKNOD.
            let permitted = status_mask("CapPrm:");
            let keep: Capabilities = all_spec_caps()
                .into_iter()
                .filter(|c| !matches!(c, Capability::Chown | Capability::Mknod))
                .filter(|c| permitted & to_kernel(*c).bitmask() != 0)
                .collect();
            let ambient: Capabilities = [Capability::NetBindService].into();
            let spec = LinuxCapabilitiesBuilder::default()
                .bounding(keep.clone())
                .effective(keep.clone())
                .permitted(keep.clone())
                .inheritable(keep)
                .ambient(ambient)
                .build()
                .unwrap();
            if drop_bounding_set(&spec).is_err() {
                return 2;
            }
            if apply(&spec).is_err() {
                return 3;
            }
            let chown_bit = 1u64 << caps::Capability::CAP_CHOWN.index();
            let mknod_bit = 1u64 << caps::Capability::CAP_MKNOD.index();
            for field in ["CapBnd:", "CapEff:", "CapPrm:"] {
                if status_mask(field) & (chown_bit | mknod_bit) != 0 {
                    return 4;
                }
            }
            if status_mask("CapAmb:") != 1u64 << caps::Capability::CAP_NET_BIND_SERVICE.index() {
                return 5;
            }
            match nix::unistd::chown(&file, Some(1000.into()), Some(1000.into())) {
                Err(nix::errno::Errno::EPERM) => {}
                _ => return 6,
            }
            let dev = nix::sys::stat::makedev(1, 3);
            match nix::sys::stat::mknod(&node, SFlag::S_IFCHR, Mode::from_bits_truncate(0o600), dev)
            {
                Err(nix::errno::Errno::EPERM) => {}
                _ => return 7,
            }
            // A capability that was kept still works: CAP_DAC_OVERRIDE reads a mode-000 file.
            if std::fs::read(&file).ok().as_deref() != Some(b"x".as_slice()) {
                return 8;
            }
            0
        });
        assert_eq!(status, WaitStatus::Exited(status.pid().unwrap(), 0));
        assert_eq!(std::fs::metadata(&file).unwrap().uid(), 0);
        assert!(!node.exists());
    }

    #[test]
    fn ambient_capability_not_inheritable_is_skipped() {
        let status = in_child(|| {
            let permitted = status_mask("CapPrm:");
            let all: Capabilities = all_spec_caps()
                .into_iter()
                .filter(|c| permitted & to_kernel(*c).bitmask() != 0)
                .collect();
            let spec = LinuxCapabilitiesBuilder::default()
                .bounding(all.clone())
                .effective(all.clone())
                .permitted(all)
                .inheritable(Capabilities::new())
                .ambient(Capabilities::from([Capability::Kill]))
                .build()
                .unwrap();
            match apply(&spec) {
                Ok(()) if status_mask("CapAmb:") == 0 && status_mask("CapInh:") == 0 => 0,
                Ok(()) => 1,
                Err(_) => 2,
            }
        });
        assert_eq!(status, WaitStatus::Exited(status.pid().unwrap(), 0));
    }
}
