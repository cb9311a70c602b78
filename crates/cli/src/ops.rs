//! Operations on an existing container: `top`, `pause`, `unpause`, `rename`, `update`,
//! `export`, `diff`, `commit` (docker's flags and output).

use std::io::IsTerminal;

use clap::Args;
use client::Client;
use client::containers::CommitOptions;
use client::models::ContainerUpdateBody;

use crate::app::{CmdResult, Failure};
use crate::container::each;
use crate::options;
use crate::tabwriter::TabWriter;

/// `top`.
#[derive(Debug, Clone, Args)]
pub struct TopArgs {
    /// Container
    pub container: String,
    /// Options of ps(1)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ps OPTIONS"
    )]
    pub ps_args: Vec<String>,
}

/// `pause` and `unpause`.
#[derive(Debug, Clone, Args)]
pub struct ContainersArgs {
    /// Containers
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `rename`.
#[derive(Debug, Clone, Args)]
pub struct RenameArgs {
    /// Container
    pub container: String,
    /// New name
    pub new_name: String,
}

/// `update`.
#[derive(Debug, Clone, Args)]
pub struct UpdateArgs {
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    /// Limit the CPU real-time period in microseconds
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<i64>,
    /// Limit the CPU real-time runtime in microseconds
    #[arg(long = "cpu-rt-runtime")]
    pub cpu_rt_runtime: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<f64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    pub restart: Option<String>,
    /// Containers
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Container
    pub container: String,
}

/// `diff`.
#[derive(Debug, Clone, Args)]
pub struct DiffArgs {
    /// Container
    pub container: String,
}

/// `commit`.
#[derive(Debug, Clone, Args)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long)]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change")]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Pause container during commit
    #[arg(short = 'p', long = "pause", default_value_t = true, num_args = 0..=1, default_missing_value = "true", require_equals = true, action = clap::ArgAction::Set)]
    pub pause: bool,
    /// Do not pause container during commit
    #[arg(long = "no-pause")]
    pub no_pause: bool,
    /// Container
    pub container: String,
    /// Repository and tag of the new image
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

/// The table of `top`: the titles, then one row per process, aligned as docker does
/// (`tabwriter.NewWriter(out, 20, 1, 3, ' ', 0)`).
pub fn top_table(titles: &[String], processes: &[Vec<String>]) -> String {
    let mut text = titles.join("\t");
    text.push('\n');
    for p in processes {
        text.push_str(&p.join("\t"));
        text.push('\n');
    }
    TabWriter {
        min_width: 20,
        padding: 3,
    }
    .format(&text)
}

/// `top`.
pub async fn top(c: &Client, a: TopArgs) -> CmdResult {
    let ps_args = (!a.ps_args.is_empty()).then(|| a.ps_args.join(" "));
    let r = c.container_top(&a.container, ps_args.as_deref()).await?;
    print!(
        "{}",
        top_table(
            &r.titles.unwrap_or_default(),
            &r.processes.unwrap_or_default()
        )
    );
    Ok(0)
}

/// `pause`.
pub async fn pause(c: &Client, a: ContainersArgs) -> CmdResult {
    each(
        &a.containers,
        |n| async move { c.container_pause(&n).await },
    )
    .await
}

/// `unpause`.
pub async fn unpause(c: &Client, a: ContainersArgs) -> CmdResult {
    each(
        &a.containers,
        |n| async move { c.container_unpause(&n).await },
    )
    .await
}

/// `rename`.
pub async fn rename(c: &Client, a: RenameArgs) -> CmdResult {
    let (old, new) = (a.container.trim(), a.new_name.trim());
    if old.is_empty() || new.is_empty() {
        return Err(Failure::new(
            "Error: Neither old nor new names may be empty",
        ));
    }
    c.container_rename(old, new).await?;
    Ok(0)
}

/// The body of `update` for these flags; None when no flag was given.
pub fn update_body(a: &UpdateArgs) -> Result<Option<ContainerUpdateBody>, String> {
    let size = |v: &Option<String>| v.as_deref().map(options::ram_in_bytes).transpose();
    let body = ContainerUpdateBody {
        blkio_weight: a.blkio_weight,
        cpu_period: a.cpu_period,
        cpu_quota: a.cpu_quota,
        cpu_realtime_period: a.cpu_rt_period,
        cpu_realtime_runtime: a.cpu_rt_runtime,
        cpu_shares: a.cpu_shares,
        nano_cpus: a.cpus.map(|c| (c * 1e9).round() as i64),
        cpuset_cpus: a.cpuset_cpus.clone(),
        cpuset_mems: a.cpuset_mems.clone(),
        memory: size(&a.memory)?,
        memory_reservation: size(&a.memory_reservation)?,
        memory_swap: size(&a.memory_swap)?,
        pids_limit: a.pids_limit,
        restart_policy: a
            .restart
            .as_deref()
            .map(options::restart_policy)
            .transpose()?,
        ..Default::default()
    };
    if body == ContainerUpdateBody::default() {
        return Ok(None);
    }
    Ok(Some(body))
}

/// `update`.
pub async fn update(c: &Client, a: UpdateArgs) -> CmdResult {
    let body = update_body(&a).map_err(Failure::new)?.ok_or_else(|| {
        Failure::new("you must provide one or more flags when using this command")
    })?;
    each(&a.containers, |n| {
        let body = body.clone();
        async move {
            for w in c.container_update(&n, &body).await? {
                eprintln!("{w}");
            }
            Ok(())
        }
    })
    .await
}

/// `export`.
pub async fn export(c: &Client, a: ExportArgs) -> CmdResult {
    if a.output.is_none() && std::io::stdout().is_terminal() {
        return Err(Failure::new(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ));
    }
    let mut body = c.container_export(&a.container).await?;
    match &a.output {
        Some(path) => {
            let mut file = tokio::fs::File::create(path)
                .await
                .map_err(|e| Failure::new(format!("failed to export container: {e}")))?;
            tokio::io::copy(&mut body, &mut file).await?;
            tokio::io::AsyncWriteExt::flush(&mut file).await?;
        }
        None => {
            let mut out = tokio::io::stdout();
            tokio::io::copy(&mut body, &mut out).await?;
            tokio::io::AsyncWriteExt::flush(&mut out).await?;
        }
    }
    Ok(0)
}

/// The letter of a change kind (0 modified, 1 added, 2 deleted; strings accepted too).
pub fn change_letter(kind: &serde_json::Value) -> &'static str {
    match kind {
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(1) => "A",
            Some(2) => "D",
            _ => "C",
        },
        serde_json::Value::String(s) => match s.as_str() {
            "A" | "1" => "A",
            "D" | "2" => "D",
            _ => "C",
        },
        _ => "C",
    }
}

/// `diff`: `C /path`, `A /path`, `D /path` per change.
pub async fn diff(c: &Client, a: DiffArgs) -> CmdResult {
    let changes = c.container_changes(&a.container).await?;
    let mut out = String::new();
    for ch in &changes {
        out.push_str(&format!(
            "{} {}\n",
            change_letter(&ch["Kind"]),
            ch["Path"].as_str().unwrap_or_default()
        ));
    }
    print!("{out}");
    Ok(0)
}

/// `commit`: prints the new image's ID.
pub async fn commit(c: &Client, a: CommitArgs) -> CmdResult {
    let (repo, tag) = match a.reference.as_deref().filter(|r| !r.is_empty()) {
        Some(r) => {
            let (repo, tag) = options::split_repo_tag(r);
            (Some(repo), (!tag.is_empty()).then_some(tag))
        }
        None => (None, None),
    };
    let id = c
        .container_commit(&CommitOptions {
            container: a.container.clone(),
            repo,
            tag,
            comment: a.message.clone(),
            author: a.author.clone(),
            pause: a.pause && !a.no_pause,
            changes: a.change.clone(),
        })
        .await?;
    println!("{id}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct U {
        #[command(flatten)]
        update: UpdateArgs,
    }

    #[test]
    fn update_flags_to_body() {
        let u = U::try_parse_from([
            "update",
            "-m",
            "64m",
            "--memory-swap",
            "-1",
            "--cpus",
            "1.5",
            "--pids-limit",
            "20",
            "--restart",
            "on-failure:3",
            "c1",
        ])
        .unwrap();
        let b = update_body(&u.update).unwrap().unwrap();
        assert_eq!(b.memory, Some(64 << 20));
        assert_eq!(b.memory_swap, Some(-1));
        assert_eq!(b.nano_cpus, Some(1_500_000_000));
        assert_eq!(b.pids_limit, Some(20));
        assert_eq!(b.restart_policy.unwrap().maximum_retry_count, Some(3));
        let none = U::try_parse_from(["update", "c1"]).unwrap();
        assert_eq!(update_body(&none.update).unwrap(), None);
    }

    #[test]
    fn top_is_aligned() {
        let t = top_table(
            &["UID".into(), "PID".into(), "CMD".into()],
            &[vec!["root".into(), "4242".into(), "sleep 100".into()]],
        );
        assert_eq!(
            t,
            "UID                 PID                 CMD\nroot                4242                sleep 100\n"
        );
    }

    #[test]
    fn change_kinds() {
        assert_eq!(change_letter(&serde_json::json!(0)), "C");
        assert_eq!(change_letter(&serde_json::json!(1)), "A");
        assert_eq!(change_letter(&serde_json::json!(2)), "D");
    }
}
