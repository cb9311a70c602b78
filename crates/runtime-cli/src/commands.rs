//! The commands of `berth-runtime`, with runc's names and flags.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use runtime::{CgroupPathStyle, CreateOptions, ExecFlags, ExecOptions, Runtime};

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container; its program waits for `start`.
    Create {
        #[command(flatten)]
        create: CreateArgs,
    },
    /// Start a created container.
    Start { id: String },
    /// Print the state of a container as JSON.
    State { id: String },
    /// Send a signal (default SIGTERM) to the container's init.
    Kill {
        /// Signal every process of the container.
        #[arg(short, long)]
        all: bool,
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a container and what it holds.
    Delete {
        /// Kill a running container first.
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Create and start a container; without --detach wait for it and return its exit code.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Return once the container started.
        #[arg(short, long)]
        detach: bool,
        /// Accepted for runc compatibility.
        #[arg(long, hide = true)]
        keep: bool,
    },
    /// Run a new process inside a container.
    Exec {
        /// Path to a process.json (replaces the command line arguments).
        #[arg(short, long)]
        process: Option<PathBuf>,
        #[arg(short = 't', long)]
        tty: bool,
        #[arg(long = "console-socket")]
        console_socket: Option<PathBuf>,
        #[arg(long)]
        cwd: Option<PathBuf>,
        /// KEY=VALUE, repeatable.
        #[arg(short, long)]
        env: Vec<String>,
        /// UID[:GID].
        #[arg(short, long)]
        user: Option<String>,
        /// Additional gid, repeatable.
        #[arg(short = 'g', long = "additional-gids")]
        additional_gids: Vec<u32>,
        /// Capability to add, repeatable.
        #[arg(short, long = "cap")]
        cap: Vec<String>,
        #[arg(long = "no-new-privs")]
        no_new_privs: bool,
        #[arg(short, long)]
        detach: bool,
        #[arg(long = "pid-file")]
        pid_file: Option<PathBuf>,
        #[arg(long = "preserve-fds", default_value_t = 0)]
        preserve_fds: u32,
        /// Accepted for runc compatibility.
        #[arg(long = "process-label", hide = true)]
        process_label: Option<String>,
        /// Accepted for runc compatibility.
        #[arg(long = "apparmor", hide = true)]
        apparmor: Option<String>,
        id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// List containers.
    List {
        #[arg(short, long, default_value = "table")]
        format: String,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Processes of a container (table: `ps` output filtered to the container).
    Ps {
        #[arg(short, long, default_value = "table")]
        format: String,
        id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Freeze every process of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Write a default config.json.
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        #[arg(long)]
        rootless: bool,
    },
    /// Print the features this runtime supports (runtime-spec features.md) as JSON.
    Features,
}

/// Flags shared by `create` and `run`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    /// Accepted for runc compatibility.
    #[arg(long = "no-new-keyring", hide = true)]
    no_new_keyring: bool,
    id: String,
}

impl CreateArgs {
    fn options(&self) -> CreateOptions {
        CreateOptions {
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            console_socket: self.console_socket.clone(),
            pid_file: self.pid_file.clone(),
            no_pivot: self.no_pivot,
            preserve_fds: self.preserve_fds,
        }
    }
}

/// Runs a command; returns the process exit code.
pub fn run(command: &Command, root: &Path, systemd_cgroup: bool) -> Result<i32> {
    if matches!(
        command,
        Command::Create { .. } | Command::Run { .. } | Command::Exec { .. }
    ) {
        // CVE-2019-5736: never enter a container from the on-disk binary.
        runtime::sealed_exe::ensure_sealed()?;
    }
    let style = if systemd_cgroup {
        CgroupPathStyle::Systemd
    } else {
        CgroupPathStyle::Cgroupfs
    };
    let runtime = || Runtime::new(root, style);
    match command {
        Command::Create { create } => {
            runtime()?.create(&create.options())?;
        }
        Command::Start { id } => {
            runtime()?.start(id)?;
        }
        Command::State { id } => {
            let state = runtime()?.state(id)?;
            println!("{}", serde_json::to_string_pretty(&state)?);
        }
        Command::Kill { all, id, signal } => {
            let signal = runtime::parse_signal(signal)?;
            runtime()?.kill(id, signal, *all)?;
        }
        Command::Delete { force, id } => {
            runtime()?.delete(id, *force)?;
        }
        Command::Run { create, detach, .. } => {
            return Ok(runtime()?.run(&create.options(), *detach)?);
        }
        Command::Exec {
            process,
            tty,
            console_socket,
            cwd,
            env,
            user,
            additional_gids,
            cap,
            no_new_privs,
            detach,
            pid_file,
            preserve_fds,
            id,
            args,
            ..
        } => {
            let runtime = runtime()?;
            let process = match process {
                Some(path) => {
                    let text = std::fs::read(path)
                        .with_context(|| format!("read process file {}", path.display()))?;
                    serde_json::from_slice(&text)
                        .with_context(|| format!("invalid process file {}", path.display()))?
                }
                None => runtime.exec_process_from_flags(
                    id,
                    &ExecFlags {
                        args: args.clone(),
                        env: env.clone(),
                        cwd: cwd.clone(),
                        user: user.clone(),
                        additional_gids: additional_gids.clone(),
                        tty: *tty,
                        no_new_privileges: *no_new_privs,
                        capabilities: cap.clone(),
                    },
                )?,
            };
            return Ok(runtime.exec(&ExecOptions {
                id: id.clone(),
                process,
                console_socket: console_socket.clone(),
                pid_file: pid_file.clone(),
                detach: *detach,
                preserve_fds: *preserve_fds,
            })?);
        }
        Command::List { format, quiet } => list(&runtime()?, format, *quiet)?,
        Command::Ps {
            format,
            id,
            ps_args,
        } => ps(&runtime()?, format, id, ps_args)?,
        Command::Pause { id } => runtime()?.pause(id)?,
        Command::Resume { id } => runtime()?.resume(id)?,
        Command::Spec { bundle, rootless } => spec(bundle, *rootless)?,
        Command::Features => println!("{}", serde_json::to_string_pretty(&features())?),
    }
    Ok(0)
}

fn list(runtime: &Runtime, format: &str, quiet: bool) -> Result<()> {
    let containers = runtime.list()?;
    let mut out = std::io::stdout().lock();
    if quiet {
        for container in &containers {
            writeln!(out, "{}", container.id)?;
        }
        return Ok(());
    }
    match format {
        "json" => writeln!(out, "{}", serde_json::to_string(&containers)?)?,
        "table" => {
            let rows: Vec<[String; 6]> = containers
                .iter()
                .map(|c| {
                    [
                        c.id.clone(),
                        c.pid.to_string(),
                        c.status.to_string(),
                        c.bundle.display().to_string(),
                        c.created
                            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                        c.owner.clone(),
                    ]
                })
                .collect();
            let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from);
            write_table(&mut out, &header, &rows)?;
        }
        other => bail!("invalid format {other:?} (table or json)"),
    }
    Ok(())
}

/// Left-aligned columns separated by at least three spaces, as runc's tabwriter prints them.
fn write_table<const N: usize>(
    out: &mut impl Write,
    header: &[String; N],
    rows: &[[String; N]],
) -> Result<()> {
    let mut widths = header.clone().map(|h| h.len());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    for row in std::iter::once(header).chain(rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (cell, width))| {
                if i + 1 == N {
                    cell.clone()
                } else {
                    format!("{cell:width$}   ")
                }
            })
            .collect();
        writeln!(out, "{}", line.concat())?;
    }
    Ok(())
}

fn ps(runtime: &Runtime, format: &str, id: &str, ps_args: &[String]) -> Result<()> {
    let pids = runtime.pids(id)?;
    match format {
        "json" => println!("{}", serde_json::to_string(&pids)?),
        "table" => {
            let args: Vec<String> = if ps_args.is_empty() {
                vec!["-ef".into()]
            } else {
                ps_args.to_vec()
            };
            let output = std::process::Command::new("ps")
                .args(&args)
                .output()
                .context("run ps")?;
            if !output.status.success() {
                bail!(
                    "ps {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&output.stderr).trim()
                );
            }
            let text = String::from_utf8_lossy(&output.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or_default();
            let pid_column = header
                .split_whitespace()
                .position(|c| c == "PID")
                .context("ps output has no PID column")?;
            println!("{header}");
            for line in lines {
                let pid = line
                    .split_whitespace()
                    .nth(pid_column)
                    .and_then(|p| p.parse::<i32>().ok());
                if pid.is_some_and(|pid| pids.contains(&pid)) {
                    println!("{line}");
                }
            }
        }
        other => bail!("invalid format {other:?} (table or json)"),
    }
    Ok(())
}

/// Writes a default config.json, as `runc spec` does: a terminal shell in a busybox-like root.
fn spec(bundle: &Path, rootless: bool) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        bail!("file {} exists, remove it first", path.display());
    }
    let mut spec = oci_spec::runtime::Spec::default();
    spec.set_version(runtime::bundle::OCI_VERSION.into());
    spec.set_hostname(Some("berth".into()));
    if let Some(process) = spec.process_mut() {
        process.set_terminal(Some(true));
    }
    if let Some(root) = spec.root_mut() {
        root.set_readonly(Some(true));
    }
    if rootless {
        use oci_spec::runtime::{LinuxIdMappingBuilder, LinuxNamespace, LinuxNamespaceType};
        let map = |host: u32| {
            LinuxIdMappingBuilder::default()
                .container_id(0u32)
                .host_id(host)
                .size(1u32)
                .build()
        };
        // SAFETY: getuid/getgid cannot fail and touch no memory.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        if let Some(linux) = spec.linux_mut() {
            let mut namespaces = linux.namespaces().clone().unwrap_or_default();
            namespaces.retain(|n| n.typ() != LinuxNamespaceType::Network);
            let mut user = LinuxNamespace::default();
            user.set_typ(LinuxNamespaceType::User);
            namespaces.push(user);
            linux.set_namespaces(Some(namespaces));
            linux.set_uid_mappings(Some(vec![map(uid)?]));
            linux.set_gid_mappings(Some(vec![map(gid)?]));
            linux.set_resources(None);
        }
    }
    let text = serde_json::to_string_pretty(&spec)?;
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    Ok(())
}

/// runtime-spec features.md.
fn features() -> serde_json::Value {
    use runtime::{capabilities, seccomp};
    let namespaces = [
        "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
    ];
    let seccomp_enabled = true;
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": runtime::bundle::OCI_VERSION_MAX,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": namespaces,
            "capabilities": capabilities::known(),
            "cgroup": { "v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false },
            "seccomp": {
                "enabled": seccomp_enabled,
                "actions": seccomp::supported_actions(),
                "operators": seccomp::supported_operators(),
                "archs": seccomp::supported_archs(),
                "knownFlags": seccomp::supported_flags(),
                "supportedFlags": seccomp::supported_flags(),
            },
            "apparmor": { "enabled": std::path::Path::new("/sys/module/apparmor").exists() },
            "selinux": { "enabled": std::path::Path::new("/sys/fs/selinux/enforce").exists() },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": false } },
        },
        "annotations": {
            "org.opencontainers.runc.checkpoint.enabled": "false",
            "io.berth.runtime.version": env!("CARGO_PKG_VERSION"),
        },
    })
}

/// Mount options understood in spec mounts (for `features`).
const MOUNT_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "lazytime",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "rbind",
    "relatime",
    "remount",
    "ro",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
    "rw",
    "shared",
    "slave",
    "strictatime",
    "suid",
    "sync",
    "symfollow",
    "tmpcopyup",
    "unbindable",
];
