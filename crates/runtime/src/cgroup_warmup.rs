//! Starts the kernel's cgroup-migration lock on its way to writer mode early, so that moving the
//! container's init into its cgroup does not wait for a full RCU grace period.
//!
//! Why: every write to a `cgroup.procs` file takes `cgroup_threadgroup_rwsem`, a per-CPU
//! rw-semaphore, for writing (kernel/cgroup/cgroup.c, `cgroup_attach_lock`). Its writer side
//! first switches readers to the slow path through `rcu_sync_enter()`, which waits for an RCU
//! grace period when the semaphore was idle (kernel/rcu/sync.c): about 12 ms here, measured
//! as the first `cgroup.procs` write of each container. A writer that arrives while another one
//! is waiting shares that grace period, and one that arrives within a grace period after the
//! last writer left does not wait at all (the state is still "passed"). So a throw-away writer
//! started as soon as the cgroup exists makes the real join, which can only start once the
//! init's pid is known, wait only for what is left of the grace period.
//!
//! The writer holds `cgroup_mutex` while it waits (`cgroup_procs_write_start` locks the cgroup
//! before `cgroup_attach_lock`), so nothing that creates cgroups or writes their files may
//! follow it: that work would wait for the grace period too.
//!
//! The warm-up is a forked child that writes "0" (itself) into the `cgroup.procs` of the
//! cgroup it already is in: a migration to the same cgroup moves nothing, but takes the lock.
//! It is best effort: any failure only means no head start. Hosts whose cgroup hierarchies are
//! mounted with `favordynmods` keep the semaphore in writer mode and never wait.

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, fork};

/// The forked warm-up writer; reaped when dropped.
#[derive(Debug)]
pub(crate) struct Warmup {
    pid: Pid,
}

impl Drop for Warmup {
    fn drop(&mut self) {
        // Its write finishes within one grace period, which the caller's own join has waited
        // for by the time this runs; on early errors this waits at most that long.
        let _ = waitpid(self.pid, None);
    }
}

/// Forks the warm-up writer. None when this process's cgroup file cannot be found or opened,
/// or the fork fails. The caller must be single-threaded (it forks).
pub(crate) fn start(hierarchies: &cgroups::Hierarchies) -> Option<Warmup> {
    let membership = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = own_procs_file(&membership, hierarchies)?;
    // Opened here so that the child only has to write(2) and _exit(2).
    let file = OpenOptions::new().write(true).open(path).ok()?;
    // SAFETY: the runtime's verbs run in a single-threaded process; the child calls only the
    // async-signal-safe write(2) and _exit(2).
    match unsafe { fork() }.ok()? {
        ForkResult::Child => {
            // SAFETY: write on an open descriptor from a valid two-byte buffer; _exit ends the
            // child without running the parent's destructors or atexit handlers.
            unsafe {
                libc::write(file.as_raw_fd(), b"0\n".as_ptr().cast(), 2);
                libc::_exit(0)
            }
        }
        ForkResult::Parent { child } => Some(Warmup { pid: child }),
    }
}

/// The `cgroup.procs` file of the caller's own cgroup in one hierarchy, from the text of
/// `/proc/self/cgroup` ("ID:CONTROLLERS:PATH" lines, cgroups(7)): the first v1 hierarchy whose
/// mount is known, else the cgroup2 hierarchy (the lock is shared by all hierarchies).
fn own_procs_file(membership: &str, hierarchies: &cgroups::Hierarchies) -> Option<PathBuf> {
    let mut unified = None;
    for line in membership.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_id), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let relative = Path::new(path.trim_start_matches('/'));
        if controllers.is_empty() {
            unified = hierarchies
                .unified_mount()
                .map(|mount| mount.join(relative).join("cgroup.procs"));
            continue;
        }
        let mount = controllers
            .split(',')
            .find_map(|controller| hierarchies.v1_mount(controller));
        if let Some(mount) = mount {
            return Some(mount.join(relative).join("cgroup.procs"));
        }
    }
    unified
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTINFO: &str = "\
30 23 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw
32 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,cpu,cpuacct
33 30 0:29 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,pids
";

    #[test]
    fn finds_the_own_cgroup_in_a_v1_hierarchy_first() {
        let hierarchies =
            cgroups::Hierarchies::from_mountinfo(HYBRID_MOUNTINFO, Path::new("/")).unwrap();
        let membership = "0::/daemon\n5:pids:/system/daemon\n4:cpu,cpuacct:/daemon\n";
        assert_eq!(
            own_procs_file(membership, &hierarchies),
            Some(PathBuf::from(
                "/sys/fs/cgroup/pids/system/daemon/cgroup.procs"
            ))
        );
        // A line whose hierarchy is not mounted is skipped; the root cgroup works.
        let membership = "9:name=elogind:/x\n0::/\n4:cpu,cpuacct:/\n";
        assert_eq!(
            own_procs_file(membership, &hierarchies),
            Some(PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/cgroup.procs"))
        );
    }

    #[test]
    fn falls_back_to_cgroup2() {
        let unified = "40 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n";
        let hierarchies = cgroups::Hierarchies::from_mountinfo(unified, Path::new("/")).unwrap();
        assert_eq!(
            own_procs_file("0::/user.slice/x\n", &hierarchies),
            Some(PathBuf::from("/sys/fs/cgroup/user.slice/x/cgroup.procs"))
        );
        assert_eq!(own_procs_file("garbage\n", &hierarchies), None);
    }
}
