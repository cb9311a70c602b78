//! Forking a child straight into a cgroup2 cgroup.
//!
//! clone3(2) with `CLONE_INTO_CGROUP` (Linux 5.7) creates the child in the cgroup whose
//! directory descriptor it is given. Unlike a later write of the child's pid to
//! `cgroup.procs`, that takes no write lock on the kernel's `cgroup_threadgroup_rwsem`, whose
//! first writer after a quiet moment waits for an RCU grace period (6 to 20 ms here). The v1
//! hierarchies of a hybrid host are joined by the child itself, cheaply as well
//! ([`cgroups::Cgroup::join_v1_as_current_thread`]).

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::unistd::{ForkResult, Pid, fork};

use crate::error::{Error, Result, sys};

/// `struct clone_args` of <linux/sched.h>, up to `cgroup` (CLONE_ARGS_SIZE_VER2, 88 bytes).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `CLONE_INTO_CGROUP` (<linux/sched.h>).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Forks like fork(2); with `cgroup2`, the child is born in that cgroup2 directory.
///
/// When the kernel has no clone3 (before 5.3) or no `CLONE_INTO_CGROUP` (before 5.7), this
/// falls back to fork(2) and the child moves itself into the cgroup (`cgroup.procs`).
///
/// # Safety
/// As for fork(2): the caller must be single-threaded, since the child continues with a copy
/// of its memory.
pub(crate) unsafe fn fork_into(cgroup2: Option<BorrowedFd<'_>>) -> Result<ForkResult> {
    let Some(directory) = cgroup2 else {
        // SAFETY: the caller is single-threaded (this function's contract).
        return unsafe { fork() }.map_err(sys("fork"));
    };
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: directory.as_raw_fd() as u64,
        ..Default::default()
    };
    // SAFETY: without CLONE_VM the child gets a copy of this single-threaded process, as with
    // fork(2); `args` is a valid clone_args of the size passed. The C library does not see
    // this fork, so it runs no atfork handlers (nothing here registers any) and the child's
    // thread descriptor keeps the parent's cached thread id; glibc's raise(3) and abort(3)
    // ask the kernel for the calling thread's id instead (glibc 2.34 and later), and nothing
    // in the runtime reads that cache.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match pid {
        0 => Ok(ForkResult::Child),
        pid if pid > 0 => Ok(ForkResult::Parent {
            child: Pid::from_raw(pid as i32),
        }),
        _ => match Errno::last() {
            Errno::ENOSYS | Errno::E2BIG | Errno::EINVAL => {
                // SAFETY: the caller is single-threaded (this function's contract).
                match unsafe { fork() }.map_err(sys("fork"))? {
                    ForkResult::Child => {
                        join_by_pid(directory)?;
                        Ok(ForkResult::Child)
                    }
                    parent => Ok(parent),
                }
            }
            errno => Err(Error::sys(
                "clone3 into the container's cgroup",
                std::io::Error::from(errno),
            )),
        },
    }
}

/// Moves the calling process into the cgroup2 directory (the slow way, see the module
/// documentation).
fn join_by_pid(directory: BorrowedFd<'_>) -> Result<()> {
    let procs = rustix::fs::openat(
        directory,
        "cgroup.procs",
        rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| Error::sys("open cgroup.procs", std::io::Error::from(e)))?;
    rustix::io::write(&procs, b"0")
        .map_err(|e| Error::sys("join the cgroup2 cgroup", std::io::Error::from(e)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;
    use crate::test_support::{exited_ok, in_child};

    /// The child is in the cgroup from its first instruction; without a directory this is a
    /// plain fork.
    #[test]
    fn child_is_born_in_the_cgroup() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let Ok(hierarchies) = cgroups::Hierarchies::detect() else {
            return;
        };
        let Some(mount) = hierarchies.unified_mount().map(|m| m.to_path_buf()) else {
            return;
        };
        let name = format!("berth-test/spawn-{}", std::process::id());
        let dir = mount.join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        let directory = std::fs::File::open(&dir).unwrap();
        let expected = format!("0::/{name}");
        exited_ok(in_child(|| {
            // SAFETY: in_child runs this in a forked, single-threaded process.
            match unsafe { fork_into(Some(directory.as_fd())) } {
                Ok(ForkResult::Child) => {
                    let membership = std::fs::read_to_string("/proc/self/cgroup").unwrap();
                    let code = if membership.lines().any(|l| l == expected) {
                        0
                    } else {
                        3
                    };
                    // SAFETY: _exit ends the grandchild without unwinding into the harness.
                    unsafe { libc::_exit(code) }
                }
                Ok(ForkResult::Parent { child }) => match nix::sys::wait::waitpid(child, None) {
                    Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => code,
                    _ => 4,
                },
                Err(_) => 2,
            }
        }));
        exited_ok(in_child(|| {
            // SAFETY: as above.
            match unsafe { fork_into(None) } {
                // SAFETY: as above.
                Ok(ForkResult::Child) => unsafe { libc::_exit(0) },
                Ok(ForkResult::Parent { child }) => match nix::sys::wait::waitpid(child, None) {
                    Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => 0,
                    _ => 4,
                },
                Err(_) => 2,
            }
        }));
        std::fs::remove_dir(&dir).unwrap();
    }
}
