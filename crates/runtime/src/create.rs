//! `create`: sets the container up and leaves its init waiting on the exec fifo.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid};

use crate::bundle::Bundle;
use crate::channel::{self, ChildMessage};
use crate::container::Runtime;
use crate::error::{Error, Result, sys};
use crate::hooks::{self, HookPoint};
use crate::init::{self, InitContext};
use crate::spawn;
use crate::state::{ContainerRecord, Status, process_start_time};

/// Options of `create` (and of `run`).
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master when process.terminal is set.
    pub console_socket: Option<PathBuf>,
    /// File that receives the init's pid.
    pub pid_file: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root.
    pub no_pivot: bool,
    /// Descriptors 3..3+N passed through to the container's program.
    pub preserve_fds: u32,
}

/// What `create` leaves behind on failure, undone by [`Cleanup::undo`].
struct Cleanup<'a> {
    runtime: &'a Runtime,
    id: &'a str,
    cgroup: Option<cgroups::Cgroup>,
    init_pid: Option<i32>,
}

impl Cleanup<'_> {
    /// Kills what was started and removes the cgroup and the state directory; returns the
    /// first error with any cleanup failure appended, so neither is lost.
    fn undo(self, error: Error) -> Error {
        let mut problems = Vec::new();
        if let Some(pid) = self.init_pid {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
        }
        if let Some(cgroup) = &self.cgroup {
            let _ = cgroup.kill_all(libc::SIGKILL);
            if let Err(e) = cgroup.destroy() {
                problems.push(format!("remove cgroup: {e}"));
            }
        }
        if let Err(e) = self.runtime.root.remove(self.id) {
            problems.push(e.to_string());
        }
        if problems.is_empty() {
            error
        } else {
            Error::Child(format!("{error} (cleanup: {})", problems.join("; ")))
        }
    }
}

impl Runtime {
    /// `create`: returns once the container's init is set up and waiting for `start`.
    /// Nothing is left behind when it fails.
    pub fn create(&self, options: &CreateOptions) -> Result<ContainerRecord> {
        let bundle = Bundle::load(&options.bundle)?;
        crate::state::validate_id(&options.id)?;
        if let Some(socket) = &options.console_socket
            && !socket.is_absolute()
        {
            return Err(Error::InvalidArgument(format!(
                "console socket {socket:?} must be an absolute path"
            )));
        }
        let cgroup_path = self.cgroup_path(
            &options.id,
            bundle
                .spec
                .linux()
                .as_ref()
                .and_then(|l| l.cgroups_path().as_deref()),
        )?;
        let hierarchies = cgroups::Hierarchies::detect()?;
        let cgroup = cgroups::Cgroup::new(&hierarchies, &cgroup_path)?;
        self.root.reserve(&options.id)?;
        let mut cleanup = Cleanup {
            runtime: self,
            id: &options.id,
            cgroup: None,
            init_pid: None,
        };
        match self.create_reserved(options, bundle, cgroup, cgroup_path, &mut cleanup) {
            Ok(record) => Ok(record),
            Err(error) => Err(cleanup.undo(error)),
        }
    }

    fn create_reserved(
        &self,
        options: &CreateOptions,
        bundle: Bundle,
        cgroup: cgroups::Cgroup,
        cgroup_path: String,
        cleanup: &mut Cleanup<'_>,
    ) -> Result<ContainerRecord> {
        let fifo = self.root.exec_fifo(&options.id);
        make_exec_fifo(&fifo, &bundle)?;
        become_subreaper()?;

        let seccomp = self.prepare_seccomp(&bundle.spec)?;
        // The cgroup comes first: the intermediate is born in its cgroup2 directory and joins
        // the v1 hierarchies as its first step (spawn.rs), so the init inherits every
        // membership and nothing waits on the kernel's migration lock.
        cleanup.cgroup = Some(cgroup.clone());
        cgroup.create()?;
        cgroup.apply(&resources_with_default_devices(&bundle.spec))?;
        let unified = cgroup.open_unified()?;
        let (parent, child) = channel::pair()?;
        let context = InitContext {
            seccomp: std::cell::Cell::new(seccomp),
            id: &options.id,
            bundle: &bundle,
            cgroup: &cgroup,
            channel: child,
            exec_fifo: fifo,
            console_socket: options.console_socket.clone(),
            no_pivot: options.no_pivot,
            preserve_fds: options.preserve_fds,
        };
        // SAFETY: the verbs that fork are documented to run in a single-threaded process.
        let forked = unsafe { spawn::fork_into(unified.as_ref().map(|fd| fd.as_fd())) }?;
        let intermediate = match forked {
            ForkResult::Child => {
                drop(parent);
                init::intermediate_main(context)
            }
            ForkResult::Parent { child } => child,
        };
        drop(context);
        drop(unified);

        let mut init_pid = None;
        let mut record = None;
        let outcome = (|| -> Result<()> {
            loop {
                match parent.expect_next("that it is ready")? {
                    ChildMessage::IdMappingRequest => {
                        write_id_maps(&bundle, intermediate.as_raw())?;
                        parent.id_mapping_done()?;
                    }
                    ChildMessage::Pid(pid) => {
                        init_pid = Some(pid);
                        cleanup.init_pid = Some(pid);
                        let _ = waitpid(intermediate, None);
                        record = Some(ContainerRecord {
                            id: options.id.clone(),
                            pid,
                            pid_start_time: process_start_time(pid).unwrap_or_default(),
                            bundle: bundle.dir.clone(),
                            rootfs: bundle.rootfs.clone(),
                            cgroup_path: cgroup_path.clone(),
                            created: chrono::Utc::now(),
                            spec: bundle.spec.clone(),
                        });
                    }
                    ChildMessage::RuntimeHooksRequest => {
                        let record = record.as_ref().ok_or_else(|| {
                            Error::Child("hooks requested before the init pid".into())
                        })?;
                        let state = self.hook_state(record, Status::Creating);
                        for point in [HookPoint::Prestart, HookPoint::CreateRuntime] {
                            hooks::run(&hooks::of(&bundle.spec, point), point, &state)?;
                        }
                        parent.runtime_hooks_done()?;
                    }
                    ChildMessage::Ready => return Ok(()),
                    ChildMessage::Failed(message) => return Err(Error::Child(message)),
                }
            }
        })();
        if init_pid.is_none() {
            let _ = waitpid(intermediate, None);
        }
        outcome?;
        let record = record.ok_or_else(|| Error::Child("init never reported its pid".into()))?;
        self.root.save(&record)?;
        if let Some(pid_file) = &options.pid_file {
            write_pid_file(pid_file, record.pid)?;
        }
        Ok(record)
    }
}

/// The fifo the init blocks on. Owned by the container's root and writable by anyone (mode set
/// after mkfifo, which the umask would narrow), since the init opens it after switching to the
/// container's user.
fn make_exec_fifo(path: &Path, bundle: &Bundle) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o622))
        .map_err(sys("create exec fifo"))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o622))
        .map_err(sys("chmod exec fifo"))?;
    let linux = bundle.spec.linux().as_ref();
    let host_id = |maps: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| {
        maps.into_iter()
            .flatten()
            .find(|m| m.container_id() == 0)
            .map(|m| m.host_id())
    };
    let uid = host_id(linux.and_then(|l| l.uid_mappings().as_ref()));
    let gid = host_id(linux.and_then(|l| l.gid_mappings().as_ref()));
    if uid.is_some() || gid.is_some() {
        nix::unistd::chown(
            path,
            uid.map(nix::unistd::Uid::from_raw),
            gid.map(nix::unistd::Gid::from_raw),
        )
        .map_err(sys("chown exec fifo"))?;
    }
    Ok(())
}

/// The spec's resources with the devices every container needs allowed after the spec's own
/// rules: mknod of any device, the default devices of config-linux.md, the pty devices, and
/// the devices the spec creates. Without them a spec's usual "deny all" rule would make
/// /dev/null unusable.
fn resources_with_default_devices(
    spec: &oci_spec::runtime::Spec,
) -> oci_spec::runtime::LinuxResources {
    use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
    let linux = spec.linux().as_ref();
    let mut resources = linux
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    let mut rules = resources.devices().clone().unwrap_or_default();
    let rule = |typ: LinuxDeviceType, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut rule = LinuxDeviceCgroup::default();
        rule.set_allow(true);
        rule.set_typ(Some(typ));
        rule.set_major(major);
        rule.set_minor(minor);
        rule.set_access(Some(access.into()));
        rule
    };
    rules.push(rule(LinuxDeviceType::C, None, None, "m"));
    rules.push(rule(LinuxDeviceType::B, None, None, "m"));
    // null, zero, full, random, urandom, tty, console, ptmx, and every pts slave.
    for (major, minor) in [
        (1, Some(3)),
        (1, Some(5)),
        (1, Some(7)),
        (1, Some(8)),
        (1, Some(9)),
        (5, Some(0)),
        (5, Some(1)),
        (5, Some(2)),
        (136, None),
    ] {
        rules.push(rule(LinuxDeviceType::C, Some(major), minor, "rwm"));
    }
    for device in linux
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
    {
        let typ = match device.typ() {
            LinuxDeviceType::U => LinuxDeviceType::C,
            other => other,
        };
        if typ == LinuxDeviceType::P {
            continue;
        }
        rules.push(rule(typ, Some(device.major()), Some(device.minor()), "rwm"));
    }
    resources.set_devices(Some(rules));
    resources
}

/// Makes the calling process the reaper of its orphaned descendants, so the init (whose parent,
/// the intermediate, exits) can be waited for.
pub(crate) fn become_subreaper() -> Result<()> {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(Error::sys(
            "become child subreaper",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Writes uid_map and gid_map of the process that created the user namespace
/// (user_namespaces(7): written once, by a process with CAP_SETUID/CAP_SETGID in the parent
/// namespace).
fn write_id_maps(bundle: &Bundle, pid: i32) -> Result<()> {
    let linux = bundle.spec.linux().as_ref();
    let format = |maps: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| -> String {
        maps.into_iter()
            .flatten()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect()
    };
    let uid_map = format(linux.and_then(|l| l.uid_mappings().as_ref()));
    let gid_map = format(linux.and_then(|l| l.gid_mappings().as_ref()));
    std::fs::write(format!("/proc/{pid}/uid_map"), uid_map).map_err(sys("write uid_map"))?;
    if !gid_map.is_empty() {
        std::fs::write(format!("/proc/{pid}/gid_map"), gid_map).map_err(sys("write gid_map"))?;
    }
    Ok(())
}

/// Writes the pid file atomically, as engines poll for it.
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = std::path::absolute(path).map_err(sys("pid file path"))?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    let temporary = dir.join(format!(
        ".{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    std::fs::write(&temporary, pid.to_string()).map_err(sys("write pid file"))?;
    std::fs::rename(&temporary, &path).map_err(sys("rename pid file"))
}
