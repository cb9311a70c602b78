//! The last steps before the user's program runs, shared by a container's init and by exec'd
//! processes: limits, identity, capabilities, seccomp, working directory, and the execve itself.
//!
//! Order (as the kernel requires): rlimits and oom score while still privileged; the bounding
//! set; the group list, gid and uid with `PR_SET_KEEPCAPS` so the permitted set survives the
//! uid change; then the capability sets. Seccomp is loaded before the identity change when
//! no_new_privileges is off (loading needs CAP_SYS_ADMIN then) and as close to execve as
//! possible when it is on.

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid, setgroups, setresgid, setresuid};
use oci_spec::runtime::Process;

use crate::error::{Error, Result, sys};
use crate::{capabilities, rlimits, seccomp};

/// Used when the process environment has no PATH.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A process ready for execve, with seccomp possibly still to load.
#[derive(Debug)]
pub struct PreparedProcess {
    program: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    late_seccomp: Option<seccomp::PreparedFilter>,
}

/// Applies the process settings to the calling process (already inside the container's root).
pub fn prepare(
    process: &Process,
    seccomp_filter: Option<seccomp::PreparedFilter>,
) -> Result<PreparedProcess> {
    if let Some(limits) = process.rlimits() {
        rlimits::apply(limits)?;
    }
    if let Some(score) = process.oom_score_adj() {
        rlimits::set_oom_score_adj(score)?;
    }
    apply_lsm_labels(process)?;
    // The containment check needs getcwd, which the spec's seccomp filter may deny: check
    // while no filter is loaded, and chdir again after the identity change below.
    change_directory(process.cwd())?;
    let no_new_privileges = process.no_new_privileges().unwrap_or(false);
    if no_new_privileges {
        // SAFETY: prctl with PR_SET_NO_NEW_PRIVS takes integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(Error::sys(
                "set no_new_privileges",
                std::io::Error::last_os_error(),
            ));
        }
    }
    let mut late_seccomp = None;
    if let Some(filter) = seccomp_filter {
        if no_new_privileges {
            late_seccomp = Some(filter);
        } else {
            filter.load()?;
        }
    }
    if let Some(caps) = process.capabilities() {
        capabilities::drop_bounding_set(caps)?;
    }
    switch_user(process)?;
    if let Some(caps) = process.capabilities() {
        capabilities::apply(caps)?;
    }
    let umask = process.user().umask().unwrap_or(0o022);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        umask as libc::mode_t,
    ));
    // As the container's user now (a directory only root may enter fails here, as in runc).
    nix::unistd::chdir(process.cwd())
        .map_err(sys(format!("chdir to cwd {}", process.cwd().display())))?;

    let env: Vec<String> = process.env().clone().unwrap_or_default();
    let args = process.args().clone().unwrap_or_default();
    let program = find_program(&args[0], &env)?;
    Ok(PreparedProcess {
        program: c_string(program.as_os_str().as_encoded_bytes())?,
        argv: args
            .iter()
            .map(|a| c_string(a.as_bytes()))
            .collect::<Result<_>>()?,
        envp: env
            .iter()
            .map(|e| c_string(e.as_bytes()))
            .collect::<Result<_>>()?,
        late_seccomp,
    })
}

impl PreparedProcess {
    /// Loads a late seccomp filter and replaces the process image. Returns only on failure.
    pub fn exec(self) -> Error {
        reset_signals();
        if let Some(filter) = &self.late_seccomp {
            match filter.load() {
                Ok(listener) => drop::<Option<OwnedFd>>(listener),
                Err(error) => return error,
            }
        }
        match nix::unistd::execve(&self.program, &self.argv, &self.envp) {
            Err(errno) => Error::sys(format!("exec {:?}", self.program), errno),
        }
    }
}

/// Ignored signals and the signal mask survive execve: give the program the defaults (the Rust
/// runtime ignores SIGPIPE, and the runtime may have blocked signals it forwards).
fn reset_signals() {
    use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, signal, sigprocmask};
    // SAFETY: installing SIG_DFL runs no handler code.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

fn c_string(bytes: &[u8]) -> Result<CString> {
    CString::new(bytes).map_err(|_| Error::InvalidSpec("a NUL byte in process args or env".into()))
}

/// Group list, gid, then uid, keeping the permitted capabilities across the uid change so the
/// spec's sets can be applied after it (capabilities(7), "Effect of user ID changes").
fn switch_user(process: &Process) -> Result<()> {
    let user = process.user();
    // SAFETY: prctl with PR_SET_KEEPCAPS takes integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    let mut groups: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|gid| Gid::from_raw(*gid))
        .collect();
    groups.dedup();
    match setgroups(&groups) {
        Ok(()) => {}
        // In a user namespace whose setgroups file says "deny", an empty list is all we want.
        Err(nix::errno::Errno::EPERM) if groups.is_empty() => {}
        Err(errno) => return Err(Error::sys("setgroups", errno)),
    }
    let gid = Gid::from_raw(user.gid());
    setresgid(gid, gid, gid).map_err(sys(format!("setgid {gid}")))?;
    let uid = Uid::from_raw(user.uid());
    setresuid(uid, uid, uid).map_err(sys(format!("setuid {uid}")))?;
    // SAFETY: prctl with PR_SET_KEEPCAPS takes integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    Ok(())
}

/// chdir into the working directory and check it is inside the container's root: a leaked
/// descriptor of a host directory (e.g. cwd = /proc/self/fd/N) would otherwise give the
/// container the host's filesystem (CVE-2024-21626). The kernel reports a cwd outside the
/// process root as "(unreachable)/...".
fn change_directory(cwd: &Path) -> Result<()> {
    nix::unistd::chdir(cwd).map_err(sys(format!("chdir to cwd {}", cwd.display())))?;
    let actual = nix::unistd::getcwd().map_err(sys("getcwd"))?;
    if !actual.is_absolute() || actual.starts_with("(unreachable)") {
        return Err(Error::InvalidArgument(format!(
            "cwd {} resolves outside the container",
            cwd.display()
        )));
    }
    Ok(())
}

/// Resolves the program as execvp would, with the PATH of the process environment.
fn find_program(name: &str, env: &[String]) -> Result<PathBuf> {
    if name.contains('/') {
        return Ok(PathBuf::from(name));
    }
    let path = env
        .iter()
        .find_map(|entry| entry.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(name);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    Err(Error::InvalidArgument(format!(
        "exec: {name:?}: executable file not found in $PATH"
    )))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// AppArmor and SELinux labels are applied only where the kernel has that LSM; elsewhere they
/// are accepted and ignored, as the spec allows for unsupported platform features.
fn apply_lsm_labels(process: &Process) -> Result<()> {
    if let Some(profile) = process
        .apparmor_profile()
        .as_ref()
        .filter(|p| !p.is_empty())
    {
        let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|v| v.trim() == "Y");
        if enabled {
            write_attr("/proc/self/attr/apparmor/exec", &format!("exec {profile}"))
                .or_else(|_| write_attr("/proc/self/attr/exec", &format!("exec {profile}")))?;
        } else {
            tracing::debug!("apparmor is not enabled; profile {profile} ignored");
        }
    }
    if let Some(label) = process.selinux_label().as_ref().filter(|l| !l.is_empty()) {
        if Path::new("/sys/fs/selinux/enforce").exists() {
            write_attr("/proc/self/attr/exec", label)?;
        } else {
            tracing::debug!("selinux is not enabled; label {label} ignored");
        }
    }
    Ok(())
}

fn write_attr(path: &str, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(sys(format!("write {path}")))
}

/// Marks every descriptor from 3 up close-on-exec, except `preserved` ones right after the
/// standard streams (LISTEN_FDS-style passing), so nothing of the runtime leaks into the
/// container's program.
pub fn close_on_exec_from(first: u32) -> Result<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags on descriptors.
    let result = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if result != 0 {
        return Err(Error::sys("close_range", std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_programs_on_the_process_path() {
        assert_eq!(find_program("/x/y", &[]).unwrap(), PathBuf::from("/x/y"));
        let found = find_program("sh", &["PATH=/nonexistent:/bin".into()]).unwrap();
        assert_eq!(found, PathBuf::from("/bin/sh"));
        let error = find_program("no-such-program-here", &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("executable file not found"), "{error}");
    }
}
