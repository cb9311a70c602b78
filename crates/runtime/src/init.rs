//! The forked side of `create`: the intermediate process and the container's init.
//!
//! Both run in a forked copy of a single-threaded runtime process and end in `_exit` or
//! `execve`; they never return into the caller.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;
use nix::unistd::{ForkResult, Gid, Uid, fork, setresgid, setresuid, setsid};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::bundle::Bundle;
use crate::channel::ChildEnd;
use crate::error::{Error, Result, sys};
use crate::hooks::{self, HookPoint};
use crate::namespaces::{self, NamespaceFile};
use crate::{console, process, rootfs};

/// What the forked side needs from the runtime process.
pub struct InitContext<'a> {
    pub id: &'a str,
    pub bundle: &'a Bundle,
    /// The container's cgroup, created and limited; the intermediate is born in its cgroup2
    /// directory and joins its v1 hierarchies first thing.
    pub cgroup: &'a cgroups::Cgroup,
    pub channel: ChildEnd,
    pub exec_fifo: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub preserve_fds: u32,
    /// The spec's seccomp filter, prepared before the fork; taken by the init.
    pub seccomp: std::cell::Cell<Option<crate::seccomp::PreparedFilter>>,
}

/// Body of the intermediate process: joins and creates namespaces, forks the init.
pub fn intermediate_main(context: InitContext<'_>) -> ! {
    let code = match intermediate_steps(&context) {
        Ok(()) => 0,
        Err(error) => {
            context.channel.failed(&error);
            1
        }
    };
    // SAFETY: _exit ends this forked process without running the parent's atexit handlers or
    // destructors, which belong to the runtime process.
    unsafe { libc::_exit(code) }
}

fn intermediate_steps(context: &InitContext<'_>) -> Result<()> {
    // As root of the host's user namespace still, which the cgroup files belong to. The init
    // forked below inherits the membership, and its cgroup namespace is rooted there.
    context.cgroup.join_v1_as_current_thread()?;
    let plan = &context.bundle.namespaces;
    let to_join: Vec<NamespaceFile> = plan
        .join
        .iter()
        .map(|(kind, path)| namespaces::open_namespace(*kind, path))
        .collect::<Result<_>>()?;
    let (user, others): (Vec<_>, Vec<_>) = to_join
        .iter()
        .partition(|ns| ns.kind == LinuxNamespaceType::User);
    for namespace in &user {
        namespaces::join(namespace)?;
    }
    if plan.new_user {
        namespaces::create(nix::sched::CloneFlags::CLONE_NEWUSER)?;
        context.channel.request_id_mapping()?;
    }
    if plan.new_user || !user.is_empty() {
        become_namespace_root()?;
    }
    for namespace in &others {
        namespaces::join(namespace)?;
    }
    // A new cgroup namespace is rooted at the creator's cgroup (cgroup_namespaces(7)): this
    // process is in the container's cgroup already.
    namespaces::create(plan.create)?;
    // SAFETY: this process is a forked copy of a single-threaded process, so the child may
    // keep using the allocator and the rest of the Rust runtime.
    match unsafe { fork() }.map_err(sys("fork init"))? {
        ForkResult::Child => init_main(context),
        ForkResult::Parent { child } => context.channel.report_pid(child.as_raw()),
    }
}

fn become_namespace_root() -> Result<()> {
    setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
        .map_err(sys("become root in the user namespace (gid)"))?;
    setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
        .map_err(sys("become root in the user namespace (uid)"))
}

/// Body of the container's init process.
fn init_main(context: &InitContext<'_>) -> ! {
    let error = match init_steps(context) {
        Ok(prepared) => {
            let error = prepared.exec();
            // After `ready` the runtime may be gone: stderr is the container's.
            eprintln!("berth-runtime: {error}");
            // SAFETY: see intermediate_main.
            unsafe { libc::_exit(127) }
        }
        Err(error) => error,
    };
    context.channel.failed(&error);
    // SAFETY: see intermediate_main.
    unsafe { libc::_exit(1) }
}

/// Every step up to the wait on the exec fifo; returns the process ready for execve.
fn init_steps(context: &InitContext<'_>) -> Result<process::PreparedProcess> {
    let spec = &context.bundle.spec;
    let process_spec = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::InvalidSpec("process is missing".into()))?;
    setsid().map_err(sys("setsid"))?;
    let terminal = process_spec.terminal().unwrap_or(false);
    let console_socket = match (&context.console_socket, terminal) {
        (Some(path), true) => Some(console::connect_console_socket(path)?),
        (None, true) => {
            return Err(Error::InvalidArgument(
                "process.terminal is true but no --console-socket was given".into(),
            ));
        }
        _ => None,
    };
    // Opened as O_PATH before the pivot, reopened for writing through /proc/self/fd after it.
    let fifo = open(
        &context.exec_fifo,
        OFlag::O_PATH | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("open exec fifo"))?;

    set_host_and_domain_name(spec)?;
    let plan = &context.bundle.namespaces;
    rootfs::prepare_rootfs(
        spec,
        &context.bundle.rootfs,
        plan.has(LinuxNamespaceType::User),
    )?;

    let runtime_hooks = !hooks::of(spec, HookPoint::Prestart).is_empty()
        || !hooks::of(spec, HookPoint::CreateRuntime).is_empty();
    if runtime_hooks {
        context.channel.request_runtime_hooks()?;
    }
    let create_container = hooks::of(spec, HookPoint::CreateContainer);
    if !create_container.is_empty() {
        hooks::run(
            &create_container,
            HookPoint::CreateContainer,
            &hook_state(context),
        )?;
    }

    let no_pivot = context.no_pivot;
    rootfs::enter_rootfs(&context.bundle.rootfs, no_pivot)?;
    apply_sysctls(spec)?;
    rootfs::finalize_rootfs(spec)?;
    // From here on no runtime descriptor may reach the user's program.
    process::close_on_exec_from(3 + context.preserve_fds)?;

    if let Some(socket) = console_socket {
        let (master, slave) = console::open_pty()?;
        if let Some(size) = process_spec.console_size() {
            console::set_window_size(master.as_fd(), size.height() as u16, size.width() as u16)?;
        }
        console::send_master(socket.as_fd(), master.as_fd())?;
        drop(master);
        console::attach_stdio(slave)?;
    }

    let prepared = process::prepare(process_spec, context.seccomp.take())?;
    context.channel.ready()?;
    wait_for_start(&fifo)?;

    let start_container = hooks::of(spec, HookPoint::StartContainer);
    if !start_container.is_empty() {
        hooks::run(
            &start_container,
            HookPoint::StartContainer,
            &hook_state(context),
        )?;
    }
    Ok(prepared)
}

/// Blocks until `start` opens the fifo for reading (the open of a fifo's write end waits for a
/// reader), then writes one byte so `start` knows the init went on.
fn wait_for_start(fifo: &OwnedFd) -> Result<()> {
    let path = format!("/proc/self/fd/{}", fifo.as_raw_fd());
    let writer = open(
        Path::new(&path),
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("open exec fifo for writing"))?;
    nix::unistd::write(&writer, b"0").map_err(sys("write exec fifo"))?;
    Ok(())
}

fn set_host_and_domain_name(spec: &Spec) -> Result<()> {
    if let Some(hostname) = spec.hostname().as_ref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(hostname).map_err(sys("sethostname"))?;
    }
    if let Some(domain) = spec.domainname().as_ref().filter(|d| !d.is_empty()) {
        // SAFETY: the pointer and length describe the bytes of a live &str.
        let result = unsafe { libc::setdomainname(domain.as_ptr().cast(), domain.len()) };
        if result != 0 {
            return Err(Error::sys("setdomainname", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// linux.sysctl, written through the container's own /proc after the pivot.
fn apply_sysctls(spec: &Spec) -> Result<()> {
    let Some(sysctls) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    for (key, value) in sysctls {
        if key.contains("..") || key.contains('/') && key.contains('.') {
            return Err(Error::InvalidSpec(format!("invalid sysctl {key:?}")));
        }
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        std::fs::write(&path, value).map_err(sys(format!("sysctl {key}")))?;
    }
    Ok(())
}

/// State passed to hooks that run inside the container.
fn hook_state(context: &InitContext<'_>) -> oci_spec::runtime::State {
    let mut state = oci_spec::runtime::State::default();
    state.set_version(crate::bundle::OCI_VERSION.into());
    state.set_id(context.id.into());
    state.set_status(oci_spec::runtime::ContainerState::Creating);
    state.set_pid(Some(std::process::id() as i32));
    state.set_bundle(context.bundle.dir.clone());
    state.set_annotations(context.bundle.spec.annotations().clone());
    state
}
