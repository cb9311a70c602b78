//! Container commands other than run/create: start, stop, restart, kill, rm, ps, logs, wait,
//! inspect (containers and images), prune.

use bytes::Bytes;
use clap::Args;
use client::containers::{AttachOptions, ListOptions, LogsOptions};
use client::{Client, stream};
use serde_json::Value;

use crate::app::{CmdResult, Failure, confirm, describe, inspect_each, parse_filters};
use crate::attach;
use crate::format::{self, PS_FORMAT, ps_headers};
use crate::units::human_size;

/// `start`.
#[derive(Debug, Clone, Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Containers
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `stop` and `restart`.
#[derive(Debug, Clone, Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time", alias = "timeout")]
    pub time: Option<i64>,
    /// Containers
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `kill`.
#[derive(Debug, Clone, Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long)]
    pub signal: Option<String>,
    /// Containers
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `rm`.
#[derive(Debug, Clone, Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Containers
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `ps`.
#[derive(Debug, Clone, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", default_value_t = -1)]
    pub last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long)]
    pub filter: Vec<String>,
    /// Format output using a Go template ("table", "json" or a template)
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub size: bool,
}

/// `logs`.
#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m")
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp or relative time
    #[arg(long)]
    pub until: Option<String>,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Container
    pub container: String,
}

/// `wait`.
#[derive(Debug, Clone, Args)]
pub struct WaitArgs {
    /// Containers
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `inspect`.
#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// Format output using a Go template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Return JSON for specified type
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long)]
    pub size: bool,
    /// Objects
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// `container prune`.
#[derive(Debug, Clone, Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long)]
    pub filter: Vec<String>,
}

/// Runs `op` on each name, printing the name on success and the error otherwise; exit 1 when
/// any failed (docker's behaviour for multi-container verbs).
pub(crate) async fn each<F, Fut>(names: &[String], op: F) -> CmdResult
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), client::Error>>,
{
    let mut failed = false;
    for n in names {
        match op(n.clone()).await {
            Ok(()) => println!("{n}"),
            Err(e) => {
                eprintln!("{}", describe(&e));
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// `start`: with `-a` or `-i`, attaches (stdin too with `-i`), starts, follows the terminal
/// size and exits with the container's status; 0 after a detach.
pub async fn start(c: &Client, a: StartArgs) -> CmdResult {
    if !a.attach && !a.interactive {
        return each(
            &a.containers,
            |n| async move { c.container_start(&n).await },
        )
        .await;
    }
    if a.containers.len() > 1 {
        return Err(Failure::new(
            "you cannot start and attach multiple containers at once",
        ));
    }
    let info = c.container_inspect(&a.containers[0]).await?;
    let id = info["Id"].as_str().unwrap_or(&a.containers[0]).to_string();
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = a.interactive && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    attach::check_tty(stdin, tty)?;
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
        .await?;
    let waiter = c.container_wait(&id, Some("next-exit")).await?;
    let session = attach::Session::begin(
        hijacked,
        attach::SessionOptions {
            tty,
            stdin,
            detach_keys: keys,
        },
    );
    let _signals = (!tty).then(|| attach::proxy_signals(c, &id));
    if let Err(e) = c.container_start(&id).await {
        drop(session);
        let status = crate::run::start_error_status(&e.to_string());
        return Err(Failure::new(describe(&e)).with_status(if status == 125 { 1 } else { status }));
    }
    let _resizer = if tty {
        attach::follow_terminal_size(c, attach::ResizeTarget::Container(id.clone()))
    } else {
        None
    };
    match session.finish().await {
        Ok(attach::SessionEnd::Detached) => return Ok(0),
        Ok(attach::SessionEnd::OutputEnded) => {}
        Err(e) => eprintln!("{e}"),
    }
    Ok(waiter.result().await?.status_code as i32)
}

/// `stop` / `restart`.
pub async fn stop(c: &Client, a: StopArgs, restart: bool) -> CmdResult {
    each(&a.containers, |n| async move {
        if restart {
            c.container_restart(&n, a.time).await
        } else {
            c.container_stop(&n, a.time).await
        }
    })
    .await
}

/// `kill`.
pub async fn kill(c: &Client, a: KillArgs) -> CmdResult {
    let signal = a.signal.clone();
    each(&a.containers, |n| {
        let signal = signal.clone();
        async move { c.container_kill(&n, signal.as_deref()).await }
    })
    .await
}

/// `rm`.
pub async fn rm(c: &Client, a: RmArgs) -> CmdResult {
    each(&a.containers, |n| async move {
        c.container_remove(&n, a.force, a.volumes).await
    })
    .await
}

/// `ps`.
pub async fn ps(c: &Client, a: PsArgs) -> CmdResult {
    let format = if a.quiet {
        "{{.ID}}".to_string()
    } else {
        match a.format.as_deref() {
            None | Some("") | Some("table") => {
                let mut f = PS_FORMAT.to_string();
                if a.size {
                    f.push_str("\t{{.Size}}");
                }
                f
            }
            Some(f) => f.to_string(),
        }
    };
    let limit = if a.latest {
        Some(1)
    } else if a.last > 0 {
        Some(a.last)
    } else {
        None
    };
    let opts = ListOptions {
        all: a.all || limit.is_some(),
        limit,
        // docker requests sizes when the template uses .Size, which `{{json .}}` does.
        size: a.size || format.contains(".Size") || format.contains("json .}}") || format == "json",
        filters: parse_filters(&a.filter)?,
    };
    let list = c.container_list(&opts).await?;
    let now = format::now_unix();
    let rows: Vec<Value> = list
        .iter()
        .map(|s| format::container_row(s, !a.no_trunc, now))
        .collect();
    print!("{}", format::render(&format, &rows, &ps_headers(), true)?);
    Ok(0)
}

/// `logs`.
pub async fn logs(c: &Client, a: LogsArgs) -> CmdResult {
    let info = c.container_inspect(&a.container).await?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let now = format::now_unix();
    let opts = LogsOptions {
        follow: a.follow,
        timestamps: a.timestamps,
        since: a
            .since
            .as_deref()
            .map(|s| crate::options::timestamp(s, now)),
        until: a
            .until
            .as_deref()
            .map(|s| crate::options::timestamp(s, now)),
        tail: Some(a.tail.clone()),
    };
    let body = c.container_logs(&a.container, &opts).await?;
    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    if tty {
        stream::raw_copy(body, &mut stdout).await?;
    } else {
        stream::demux_copy(body, &mut stdout, &mut stderr).await?;
    }
    Ok(0)
}

/// `wait`: prints each exit status.
pub async fn wait(c: &Client, a: WaitArgs) -> CmdResult {
    let mut failed = false;
    for n in &a.containers {
        let r = async { c.container_wait(n, None).await?.result().await }.await;
        match r {
            Ok(w) => println!("{}", w.status_code),
            Err(e) => {
                eprintln!("{}", describe(&e));
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// Fetches the raw JSON of a container or image (`kind` restricts the search).
async fn inspect_one(
    c: &Client,
    name: &str,
    kind: Option<&str>,
    size: bool,
) -> Result<Bytes, Failure> {
    let not_found = |e: &client::Error| e.status() == Some(404);
    if kind.is_none() || kind == Some("container") {
        match c.container_inspect_raw(name, size).await {
            Ok(b) => return Ok(b),
            Err(e) if not_found(&e) && kind.is_none() => {}
            Err(e) if not_found(&e) => {
                return Err(Failure::new(format!("Error: No such container: {name}")));
            }
            Err(e) => return Err(e.into()),
        }
    }
    if kind.is_none() || kind == Some("image") {
        match c.image_inspect_raw(name).await {
            Ok(b) => return Ok(b),
            Err(e) if not_found(&e) && kind.is_none() => {}
            Err(e) if not_found(&e) => {
                return Err(Failure::new(format!("Error: No such image: {name}")));
            }
            Err(e) => return Err(e.into()),
        }
    }
    if kind.is_none() || kind == Some("volume") {
        match c.volume_inspect_raw(name).await {
            Ok(b) => return Ok(b),
            Err(e) if not_found(&e) && kind.is_none() => {}
            Err(e) if not_found(&e) => {
                return Err(Failure::new(format!("Error: No such volume: {name}")));
            }
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(k) = kind
        && k != "container"
        && k != "image"
        && k != "volume"
    {
        return Err(Failure::new(format!(
            "\"{k}\" is not a valid value for --type"
        )));
    }
    Err(Failure::new(format!("Error: No such object: {name}")))
}

/// `inspect`, `container inspect`, `image inspect`: the daemon's JSON as an indented array,
/// or one `--format` output per object.
pub async fn inspect(c: &Client, a: InspectArgs, kind: Option<&str>) -> CmdResult {
    let kind = kind.or(a.kind.as_deref());
    inspect_each(&a.names, a.format.as_deref(), |name| {
        inspect_one(c, name, kind, a.size)
    })
    .await
}

/// `container prune`.
pub async fn prune(c: &Client, a: PruneArgs) -> CmdResult {
    if !a.force && !confirm("WARNING! This will remove all stopped containers.") {
        return Ok(0);
    }
    let r = c.container_prune(&parse_filters(&a.filter)?).await?;
    let deleted = r.containers_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Containers:");
        for d in deleted {
            println!("{d}");
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human_size(r.space_reclaimed.unwrap_or(0) as f64)
    );
    Ok(0)
}
