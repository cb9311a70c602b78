//! `exec`: runs another process in a live container. The runtime forks an intermediate that
//! joins the container's cgroup and every namespace of its init (user first), then forks the
//! process itself, so it is inside the container's pid namespace.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, fork, setsid};
use oci_spec::runtime::{LinuxNamespaceType, Process};

use crate::channel::{self, ChildEnd, ChildMessage};
use crate::container::Runtime;
use crate::create::{become_subreaper, write_pid_file};
use crate::error::{Error, Result, sys};
use crate::namespaces::{self, NamespaceFile};
use crate::state::{ContainerRecord, Status};
use crate::{console, process, reap};

/// Options of `exec`.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    pub id: String,
    /// The whole process: from `--process`, or the container's own process with args and flags
    /// replaced (see [`Runtime::exec_process_from_flags`]).
    pub process: Process,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub detach: bool,
    pub preserve_fds: u32,
}

/// Flags of `exec` without `--process`.
#[derive(Debug, Clone, Default)]
pub struct ExecFlags {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: Option<PathBuf>,
    /// "uid[:gid]".
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub tty: bool,
    pub no_new_privileges: bool,
    pub capabilities: Vec<String>,
}

impl Runtime {
    /// Builds the exec'd process from the container's own process and the command-line flags.
    pub fn exec_process_from_flags(&self, id: &str, flags: &ExecFlags) -> Result<Process> {
        let record = self.root.load(id)?;
        let mut process = record.spec.process().clone().unwrap_or_default();
        if flags.args.is_empty() {
            return Err(Error::InvalidArgument("exec needs a command to run".into()));
        }
        process.set_args(Some(flags.args.clone()));
        process.set_terminal(Some(flags.tty));
        let mut env = process.env().clone().unwrap_or_default();
        for entry in &flags.env {
            let key = entry.split('=').next().unwrap_or_default();
            env.retain(|existing| existing.split('=').next() != Some(key));
            env.push(entry.clone());
        }
        process.set_env(Some(env));
        if let Some(cwd) = &flags.cwd {
            process.set_cwd(cwd.clone());
        }
        if let Some(user) = &flags.user {
            let (uid, gid) = user.split_once(':').unwrap_or((user, "0"));
            let parse = |v: &str| {
                v.parse::<u32>()
                    .map_err(|_| Error::InvalidArgument(format!("invalid --user {user:?}")))
            };
            let mut spec_user = process.user().clone();
            spec_user.set_uid(parse(uid)?);
            spec_user.set_gid(parse(gid)?);
            process.set_user(spec_user);
        }
        if !flags.additional_gids.is_empty() {
            let mut spec_user = process.user().clone();
            spec_user.set_additional_gids(Some(flags.additional_gids.clone()));
            process.set_user(spec_user);
        }
        if flags.no_new_privileges {
            process.set_no_new_privileges(Some(true));
        }
        if !flags.capabilities.is_empty() {
            let mut caps = process.capabilities().clone().unwrap_or_default();
            for name in &flags.capabilities {
                let full = if name.starts_with("CAP_") {
                    name.clone()
                } else {
                    format!("CAP_{name}")
                };
                let capability: oci_spec::runtime::Capability =
                    serde_json::from_value(serde_json::Value::String(full)).map_err(|_| {
                        Error::InvalidArgument(format!("unknown capability {name:?}"))
                    })?;
                let add = |set: &mut std::collections::HashSet<oci_spec::runtime::Capability>| {
                    set.insert(capability);
                };
                let mut bounding = caps.bounding().clone().unwrap_or_default();
                add(&mut bounding);
                caps.set_bounding(Some(bounding));
                let mut effective = caps.effective().clone().unwrap_or_default();
                add(&mut effective);
                caps.set_effective(Some(effective));
                let mut permitted = caps.permitted().clone().unwrap_or_default();
                add(&mut permitted);
                caps.set_permitted(Some(permitted));
            }
            process.set_capabilities(Some(caps));
        }
        Ok(process)
    }

    /// `exec`: returns the process's exit code, or 0 when detached (after it started).
    pub fn exec(&self, options: &ExecOptions) -> Result<i32> {
        let record = self.root.load(&options.id)?;
        let status = self.status(&record);
        if !matches!(status, Status::Running | Status::Created | Status::Paused) {
            return Err(Error::FailedPrecondition(format!(
                "cannot exec in a {status} container"
            )));
        }
        if !options.process.cwd().is_absolute() {
            return Err(Error::InvalidArgument(
                "process.cwd must be an absolute path".into(),
            ));
        }
        if options.process.args().as_ref().is_none_or(|a| a.is_empty()) {
            return Err(Error::InvalidArgument(
                "process.args must not be empty".into(),
            ));
        }
        let terminal = options.process.terminal().unwrap_or(false);
        let console_socket = match (&options.console_socket, terminal) {
            (Some(path), true) => Some(console::connect_console_socket(path)?),
            (None, true) => {
                return Err(Error::InvalidArgument(
                    "a terminal was asked for but no --console-socket was given".into(),
                ));
            }
            _ => None,
        };
        let cgroup = self.cgroup_of(&record)?;
        let namespaces = namespaces_of(&record)?;
        if !options.detach {
            become_subreaper()?;
        }
        let seccomp = self.prepare_seccomp(&record.spec)?;
        let unified = cgroup.open_unified()?;
        let (parent, child) = channel::pair()?;
        // Born in the container's cgroup2 directory; the v1 hierarchies are joined by the
        // intermediate (see spawn.rs for why neither writes a pid to cgroup.procs).
        // SAFETY: the verbs that fork are documented to run in a single-threaded process.
        let forked = unsafe { crate::spawn::fork_into(unified.as_ref().map(|fd| fd.as_fd())) }?;
        drop(unified);
        let intermediate = match forked {
            ForkResult::Child => {
                drop(parent);
                exec_intermediate(
                    &cgroup,
                    &namespaces,
                    options,
                    console_socket,
                    seccomp,
                    child,
                )
            }
            ForkResult::Parent { child } => child,
        };
        drop(child);
        drop(console_socket);
        let first = parent.expect_next("its pid");
        let _ = waitpid(intermediate, None);
        let pid = match first? {
            ChildMessage::Pid(pid) => pid,
            other => return Err(Error::Child(format!("unexpected message {other:?}"))),
        };
        // End of file means execve succeeded (the channel is close-on-exec).
        if let Err(error) = parent.next() {
            let _ = waitpid(nix::unistd::Pid::from_raw(pid), None);
            return Err(error);
        }
        if let Some(pid_file) = &options.pid_file {
            write_pid_file(pid_file, pid)?;
        }
        if options.detach {
            return Ok(0);
        }
        let signals = reap::block_signals()?;
        reap::wait_forwarding(pid, &signals)
    }
}

/// The container init's namespaces that differ from ours, opened, in join order.
fn namespaces_of(record: &ContainerRecord) -> Result<Vec<NamespaceFile>> {
    let init = record.pid.to_string();
    namespaces::JOIN_ORDER
        .iter()
        .filter(|kind| !namespaces::same_namespace(**kind, &init, "self"))
        .filter(|kind| {
            // The time namespace of a process applies to its children only: skip when absent.
            **kind != LinuxNamespaceType::Time
                || std::path::Path::new(&format!("/proc/{init}/ns/time")).exists()
        })
        .map(|kind| {
            let path = PathBuf::from(format!("/proc/{init}/ns/{}", namespaces::proc_name(*kind)));
            namespaces::open_namespace(*kind, &path)
        })
        .collect()
}

fn exec_intermediate(
    cgroup: &cgroups::Cgroup,
    namespaces: &[NamespaceFile],
    options: &ExecOptions,
    console_socket: Option<OwnedFd>,
    seccomp: Option<crate::seccomp::PreparedFilter>,
    channel: ChildEnd,
) -> ! {
    let result = (|| -> Result<()> {
        cgroup.join_v1_as_current_thread()?;
        for namespace in namespaces {
            namespaces::join(namespace)?;
        }
        // SAFETY: forked copy of a single-threaded process, see Runtime::exec.
        match unsafe { fork() }.map_err(sys("fork exec process"))? {
            ForkResult::Child => exec_child(options, console_socket, seccomp, &channel),
            ForkResult::Parent { child } => channel.report_pid(child.as_raw()),
        }
    })();
    let code = match result {
        Ok(()) => 0,
        Err(error) => {
            channel.failed(&error);
            1
        }
    };
    // SAFETY: _exit ends this forked process without running the runtime's destructors.
    unsafe { libc::_exit(code) }
}

fn exec_child(
    options: &ExecOptions,
    console_socket: Option<OwnedFd>,
    seccomp: Option<crate::seccomp::PreparedFilter>,
    channel: &ChildEnd,
) -> ! {
    let error = match (|| -> Result<process::PreparedProcess> {
        if console_socket.is_some() {
            setsid().map_err(sys("setsid"))?;
        }
        process::close_on_exec_from(3 + options.preserve_fds)?;
        if let Some(socket) = console_socket {
            let (master, slave) = console::open_pty()?;
            if let Some(size) = options.process.console_size() {
                console::set_window_size(
                    master.as_fd(),
                    size.height() as u16,
                    size.width() as u16,
                )?;
            }
            console::send_master(socket.as_fd(), master.as_fd())?;
            drop(master);
            console::attach_stdio(slave)?;
        }
        process::prepare(&options.process, seccomp)
    })() {
        Ok(prepared) => prepared.exec(),
        Err(error) => error,
    };
    channel.failed(&error);
    // SAFETY: see exec_intermediate.
    unsafe { libc::_exit(127) }
}
