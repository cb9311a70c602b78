//! `run` and `create`: the container options, the create body, and the foreground flow of
//! `run` (create, attach, wait, start, copy output, exit with the container's status), as in
//! the docker CLI's `run` command.

use std::collections::HashMap;

use clap::Args;
use client::Client;
use client::containers::AttachOptions;
use client::models::{ContainerCreateBody, ContainerWaitResponse, HostConfig};

use crate::app::{CmdResult, Endpoint, Failure, connect, describe};
use crate::{attach, mounts, options};

/// Options shared by `run` and `create`.
#[derive(Debug, Clone, Args)]
pub struct ContainerOptions {
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label")]
    pub label: Vec<String>,
    /// Container host name
    #[arg(short = 'h', long = "hostname")]
    pub hostname: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long = "tty")]
    pub tty: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long = "interactive")]
    pub interactive: bool,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Memory limit
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// Ulimit options
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Add Linux capabilities
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Security Options
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long)]
    pub mount: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from")]
    pub volumes_from: Vec<String>,
    /// Optional volume driver for the container
    #[arg(long = "volume-driver")]
    pub volume_driver: Option<String>,
    /// Connect a container to a network
    #[arg(long = "network", alias = "net")]
    pub network: Option<String>,
    /// Signal to stop the container
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout")]
    pub stop_timeout: Option<i64>,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    pub restart: Option<String>,
    /// Runtime to use for this container
    #[arg(long)]
    pub runtime: Option<String>,
    /// Ports, addresses, aliases, DNS and hosts entries.
    #[command(flatten)]
    pub net: crate::netopts::NetworkFlags,
    /// Image, then the command and its arguments
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "IMAGE [COMMAND] [ARG...]"
    )]
    pub args: Vec<String>,
}

/// `berth create`.
#[derive(Debug, Clone, Args)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    /// The container's options.
    #[command(flatten)]
    pub opts: ContainerOptions,
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

/// `berth run`.
#[derive(Debug, Clone, Args)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short = 'd', long = "detach")]
    pub detach: bool,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long)]
    pub rm: bool,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, num_args = 0..=1, default_missing_value = "true", require_equals = true, action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// The container's options.
    #[command(flatten)]
    pub opts: ContainerOptions,
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

fn some_vec(v: &[String]) -> Option<Vec<String>> {
    if v.is_empty() { None } else { Some(v.to_vec()) }
}

/// The create body of docker's `run`/`create` for these options.
pub fn create_body(
    o: &ContainerOptions,
    attach: bool,
    auto_remove: bool,
) -> Result<ContainerCreateBody, String> {
    let image = o.args[0].clone();
    let cmd = &o.args[1..];
    let env: Vec<String> = o.env.iter().filter_map(|e| options::env_entry(e)).collect();
    let labels: HashMap<String, String> = o
        .label
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect();
    let ulimits = o
        .ulimit
        .iter()
        .map(|u| options::ulimit(u))
        .collect::<Result<Vec<_>, _>>()?;
    let tmpfs: HashMap<String, String> = o.tmpfs.iter().map(|t| options::tmpfs(t)).collect();
    let mut binds = Vec::new();
    let mut anonymous = Vec::new();
    for flag in &o.volume {
        match mounts::parse_volume_flag(flag)
            .map_err(|e| format!("invalid argument \"{flag}\" for \"-v, --volume\" flag: {e}"))?
        {
            mounts::VolumeFlag::Bind(bind) => binds.push(bind),
            mounts::VolumeFlag::Anonymous(path) => anonymous.push(path),
        }
    }
    let mount_list = o
        .mount
        .iter()
        .map(|m| {
            mounts::parse_mount(m)
                .map_err(|e| format!("invalid argument \"{m}\" for \"--mount\" flag: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let memory = o.memory.as_deref().map(options::ram_in_bytes).transpose()?;
    let memory_swap = o
        .memory_swap
        .as_deref()
        .map(options::ram_in_bytes)
        .transpose()?;
    let nano_cpus = o.cpus.map(|c| (c * 1e9).round() as i64);
    let restart = o
        .restart
        .as_deref()
        .map(options::restart_policy)
        .transpose()?;
    if auto_remove
        && restart.as_ref().and_then(|r| r.name).is_some_and(|n| {
            n != client::models::RestartPolicyNameEnum::NO
                && n != client::models::RestartPolicyNameEnum::EMPTY
        })
    {
        return Err("Conflicting options: --restart and --rm".into());
    }
    let host_config = HostConfig {
        auto_remove: Some(auto_remove),
        init: if o.init { Some(true) } else { None },
        readonly_rootfs: Some(o.read_only),
        nano_cpus,
        memory,
        memory_swap,
        pids_limit: o.pids_limit,
        cpuset_cpus: o.cpuset_cpus.clone(),
        cpu_shares: o.cpu_shares,
        blkio_weight: o.blkio_weight,
        ulimits: if ulimits.is_empty() {
            None
        } else {
            Some(ulimits)
        },
        cap_add: some_vec(&o.cap_add),
        cap_drop: some_vec(&o.cap_drop),
        privileged: Some(o.privileged),
        security_opt: some_vec(&o.security_opt),
        tmpfs: if tmpfs.is_empty() { None } else { Some(tmpfs) },
        binds: some_vec(&binds),
        mounts: if mount_list.is_empty() {
            None
        } else {
            Some(mount_list)
        },
        volumes_from: some_vec(&o.volumes_from),
        volume_driver: o.volume_driver.clone(),
        network_mode: Some(o.network.clone().unwrap_or_else(|| "default".into())),
        restart_policy: restart,
        runtime: o.runtime.clone(),
        ..Default::default()
    };
    let mut body = ContainerCreateBody {
        image: Some(image),
        cmd: if cmd.is_empty() {
            None
        } else {
            Some(cmd.to_vec())
        },
        // `--entrypoint ""` resets the image's entrypoint.
        entrypoint: o.entrypoint.as_ref().map(|e| vec![e.clone()]),
        hostname: o.hostname.clone(),
        user: o.user.clone(),
        working_dir: o.workdir.clone(),
        env: if env.is_empty() { None } else { Some(env) },
        labels: if labels.is_empty() {
            None
        } else {
            Some(labels)
        },
        tty: Some(o.tty),
        open_stdin: Some(o.interactive),
        stdin_once: Some(o.interactive && attach),
        attach_stdin: Some(o.interactive && attach),
        attach_stdout: Some(attach),
        attach_stderr: Some(attach),
        stop_signal: o.stop_signal.clone(),
        stop_timeout: o.stop_timeout,
        volumes: some_vec(&anonymous),
        host_config: Some(host_config),
        ..Default::default()
    };
    o.net
        .apply(&mut body, o.network.as_deref().unwrap_or("default"))?;
    Ok(body)
}

/// The exit status docker gives to a failed start (run.go `runStartContainerErr`): 127 when
/// the command was not found, 126 when it cannot be executed, else 125.
pub fn start_error_status(message: &str) -> i32 {
    if message.contains("executable file not found")
        || message.contains("no such file or directory")
        || message.contains("system error: exec")
    {
        127
    } else if message.contains("permission denied") || message.contains("is a directory") {
        126
    } else {
        125
    }
}

fn run_failure(e: client::Error, verb: &str) -> Failure {
    Failure::new(format!(
        "berth: {}\n\nRun 'berth {verb} --help' for more information",
        describe(&e)
    ))
    .with_status(125)
}

/// Creates the container, pulling the image first when the daemon does not have it.
async fn create_container(
    c: &Client,
    name: Option<&str>,
    body: &ContainerCreateBody,
) -> Result<String, client::Error> {
    match c.container_create(name, body).await {
        Ok(r) => {
            for w in &r.warnings {
                eprintln!("WARNING: {w}");
            }
            Ok(r.id)
        }
        Err(e) if e.status() == Some(404) && e.to_string().contains("image") => {
            let mut image = body.image.clone().unwrap_or_default();
            if !image.contains('@') && options::split_repo_tag(&image).1.is_empty() {
                image.push_str(":latest");
            }
            eprintln!("Unable to find image '{image}' locally");
            let (repo, tag) = options::split_repo_tag(&image);
            let tag = if tag.is_empty() { "latest".into() } else { tag };
            let progress = c.image_pull(&repo, Some(&tag)).await?;
            crate::image::print_progress(progress, true)
                .await
                .map_err(|f| client::Error::Daemon {
                    status: 500,
                    message: f.message,
                })?;
            let r = c.container_create(name, body).await?;
            Ok(r.id)
        }
        Err(e) => Err(e),
    }
}

/// `berth create`: prints the new container's ID.
pub async fn create(host: &Endpoint, a: CreateArgs) -> CmdResult {
    let body = create_body(&a.opts, false, false)
        .map_err(|m| Failure::new(format!("berth: {m}")).with_status(125))?;
    let c = connect(host).await.map_err(|f| f.with_status(125))?;
    let id = create_container(&c, a.opts.name.as_deref(), &body)
        .await
        .map_err(|e| run_failure(e, "create"))?;
    println!("{id}");
    Ok(0)
}

/// `berth run`.
pub async fn run(host: &Endpoint, a: RunArgs) -> CmdResult {
    let attach = !a.detach;
    let mut body = create_body(&a.opts, attach, a.rm)
        .map_err(|m| Failure::new(format!("berth: {m}")).with_status(125))?;
    // API >= 1.42 takes the initial TTY size in the create body, so the first output is
    // already formatted for our terminal (older daemons ignore it; the resize follows).
    if a.opts.tty
        && let (Some((h, w)), Some(hc)) =
            (crate::system::terminal_size(), body.host_config.as_mut())
    {
        hc.console_size = Some(vec![h as usize, w as usize]);
    }
    if attach {
        attach::check_tty(a.opts.interactive, a.opts.tty)?;
    }
    let c = connect(host).await.map_err(|f| f.with_status(125))?;
    let id = create_container(&c, a.opts.name.as_deref(), &body)
        .await
        .map_err(|e| run_failure(e, "run"))?;
    if a.detach {
        c.container_start(&id).await.map_err(|e| {
            let status = start_error_status(&e.to_string());
            run_failure(e, "run").with_status(status)
        })?;
        println!("{id}");
        return Ok(0);
    }

    // Attach before start so no output is lost, and register the wait before start so a
    // fast exit (or the removal of --rm) is not missed.
    let stdin = a.opts.interactive;
    let (keys, keys_flag) = attach::detach_keys_of(a.detach_keys.as_deref())?;
    let hijacked = c
        .container_attach_with(
            &id,
            &AttachOptions {
                stream: true,
                stdin,
                stdout: true,
                stderr: true,
                logs: false,
                detach_keys: keys_flag,
            },
        )
        .await
        .map_err(|e| run_failure(e, "run"))?;
    let condition = if a.rm { "removed" } else { "next-exit" };
    let waiter = register_wait(&c, &id, condition)
        .await
        .map_err(|e| run_failure(e, "run"))?;
    // The session (and the raw terminal) begins before start, so the first byte is seen.
    let session = attach::Session::begin(
        hijacked,
        attach::SessionOptions {
            tty: a.opts.tty,
            stdin,
            detach_keys: keys,
        },
    );
    // The signal proxy is in place before the process runs, so no signal meant for it kills
    // us instead; docker disables it with a TTY (ctrl-c is then a byte for the container).
    let _signals = (a.sig_proxy && !a.opts.tty).then(|| attach::proxy_signals(&c, &id));
    if let Err(e) = c.container_start(&id).await {
        drop(session);
        waiter.abort();
        let status = start_error_status(&e.to_string());
        return Err(run_failure(e, "run").with_status(status));
    }
    let _resizer = if a.opts.tty {
        attach::follow_terminal_size(&c, attach::ResizeTarget::Container(id.clone()))
    } else {
        None
    };

    match session.finish().await {
        Ok(attach::SessionEnd::Detached) => {
            waiter.abort();
            return Ok(0);
        }
        Ok(attach::SessionEnd::OutputEnded) => {}
        Err(e) => eprintln!("berth: error reading the container's output: {e}"),
    }
    let result = match waiter.await {
        Ok(r) => r,
        Err(e) => {
            return Err(Failure::new(format!("berth: wait task failed: {e}")).with_status(125));
        }
    };
    match result {
        Ok(w) => {
            if let Some(msg) = w.error.and_then(|e| e.message).filter(|m| !m.is_empty()) {
                eprintln!("berth: {msg}");
                return Ok(125);
            }
            Ok(w.status_code as i32)
        }
        Err(e) => Err(run_failure(e, "run")),
    }
}

/// Sends `POST /containers/{id}/wait` in a task and returns once the daemon has answered
/// the status line (dockerd flushes it at once, so the wait is registered before start) or
/// after a short grace period for a daemon that answers only at the exit, so that `run` never
/// deadlocks on it.
async fn register_wait(
    c: &Client,
    id: &str,
    condition: &'static str,
) -> Result<tokio::task::JoinHandle<Result<ContainerWaitResponse, client::Error>>, client::Error> {
    let (accepted_tx, accepted_rx) = tokio::sync::oneshot::channel::<bool>();
    let (c, id) = (c.clone(), id.to_string());
    let task = tokio::spawn(async move {
        match c.container_wait(&id, Some(condition)).await {
            Ok(handle) => {
                let _ = accepted_tx.send(true);
                handle.result().await
            }
            Err(e) => {
                let _ = accepted_tx.send(false);
                Err(e)
            }
        }
    });
    match tokio::time::timeout(std::time::Duration::from_secs(2), accepted_rx).await {
        Ok(Ok(false)) => match task.await {
            Ok(Err(e)) => Err(e),
            _ => Err(client::Error::NotUpgraded(0)),
        },
        _ => Ok(task),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        run: RunArgs,
    }

    #[test]
    fn flags_stop_at_the_image() {
        let t = T::try_parse_from([
            "run", "--rm", "-e", "A=1", "-h", "box", "busybox", "ls", "-l", "--rm",
        ])
        .unwrap();
        assert!(t.run.rm);
        assert_eq!(t.run.opts.args, ["busybox", "ls", "-l", "--rm"]);
        let body = create_body(&t.run.opts, true, true).unwrap();
        assert_eq!(body.hostname.as_deref(), Some("box"));
        assert_eq!(body.env, Some(vec!["A=1".to_string()]));
        assert_eq!(body.host_config.unwrap().auto_remove, Some(true));
    }

    #[test]
    fn start_errors() {
        assert_eq!(
            start_error_status("exec: \"nope\": executable file not found in $PATH"),
            127
        );
        assert_eq!(start_error_status("exec /etc: permission denied"), 126);
        assert_eq!(start_error_status("cgroup failure"), 125);
    }
}
