//! `volume create`, `volume ls`, `volume inspect`, `volume rm`, `volume prune`, with docker's
//! flags, table, `--format` fields and messages.

use std::collections::{BTreeMap, HashMap};

use clap::Args;
use client::Client;
use serde_json::{Value, json};

use crate::app::{CmdResult, Failure, confirm, describe, inspect_each, parse_filters};
use crate::format;
use crate::units::human_size;

/// Default `volume ls` format.
pub const VOLUMES_FORMAT: &str = "table {{.Driver}}\t{{.Name}}";

/// `volume create`.
#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    /// Specify volume driver name
    #[arg(short = 'd', long, default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume
    #[arg(long)]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    /// Specify volume name
    #[arg(long, hide = true)]
    pub name: Option<String>,
    /// The volume's name (a random one when absent)
    pub volume: Option<String>,
}

/// `volume ls`.
#[derive(Debug, Clone, Args)]
pub struct LsArgs {
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short = 'f', long)]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Only display volume names
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// `volume inspect`.
#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Volumes
    #[arg(required = true)]
    pub volumes: Vec<String>,
}

/// `volume rm`.
#[derive(Debug, Clone, Args)]
pub struct RmArgs {
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Volumes
    #[arg(required = true)]
    pub volumes: Vec<String>,
}

/// `volume prune`.
#[derive(Debug, Clone, Args)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long)]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

/// `KEY=VALUE` options and labels (a bare key has an empty value).
fn pairs(values: &[String]) -> HashMap<String, String> {
    values
        .iter()
        .map(|v| match v.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (v.to_string(), String::new()),
        })
        .collect()
}

/// `volume create`: prints the name.
pub async fn create(c: &Client, a: CreateArgs) -> CmdResult {
    let name = match (&a.name, &a.volume) {
        (Some(flag), Some(positional)) if flag != positional => {
            return Err(Failure::new(
                "Conflicting options: either specify --name or provide positional arg, not both",
            ));
        }
        (Some(name), _) | (None, Some(name)) => name.clone(),
        (None, None) => String::new(),
    };
    let volume = c
        .volume_create(&json!({
            "Name": name,
            "Driver": a.driver,
            "DriverOpts": pairs(&a.opt),
            "Labels": pairs(&a.label),
        }))
        .await?;
    println!("{}", volume["Name"].as_str().unwrap_or_default());
    Ok(0)
}

/// Column titles of the volume row model.
pub fn volume_headers() -> HashMap<&'static str, &'static str> {
    HashMap::from([
        ("Name", "VOLUME NAME"),
        ("Driver", "DRIVER"),
        ("Scope", "SCOPE"),
        ("Mountpoint", "MOUNTPOINT"),
        ("Labels", "LABELS"),
        ("Links", "LINKS"),
        ("Size", "SIZE"),
        ("CreatedAt", "CREATED AT"),
    ])
}

/// One row of `volume ls` (docker's volume formatter): labels as sorted `k=v` joined by
/// commas, links and size `N/A` outside `system df`.
pub fn volume_row(volume: &Value) -> Value {
    let labels: BTreeMap<String, String> = volume["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let usage = &volume["UsageData"];
    let (links, size) = match (usage["RefCount"].as_i64(), usage["Size"].as_i64()) {
        (Some(refs), Some(size)) => (
            refs.to_string(),
            if size < 0 {
                "N/A".to_string()
            } else {
                human_size(size as f64)
            },
        ),
        _ => ("N/A".into(), "N/A".into()),
    };
    json!({
        "Name": volume["Name"],
        "Driver": volume["Driver"],
        "Scope": volume["Scope"],
        "Mountpoint": volume["Mountpoint"],
        "Labels": labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
        "Links": links,
        "Size": size,
        "CreatedAt": volume["CreatedAt"],
    })
}

/// `volume ls`.
pub async fn ls(c: &Client, a: LsArgs) -> CmdResult {
    let list = c.volume_list(&parse_filters(&a.filter)?).await?;
    for warning in list["Warnings"].as_array().into_iter().flatten() {
        eprintln!("{}", warning.as_str().unwrap_or_default());
    }
    let mut volumes: Vec<Value> = list["Volumes"].as_array().cloned().unwrap_or_default();
    volumes.sort_by(|x, y| {
        x["Name"]
            .as_str()
            .unwrap_or_default()
            .cmp(y["Name"].as_str().unwrap_or_default())
    });
    let format = if a.quiet {
        "{{.Name}}".to_string()
    } else {
        match a.format.as_deref() {
            None | Some("") | Some("table") => VOLUMES_FORMAT.to_string(),
            Some(f) => f.to_string(),
        }
    };
    let rows: Vec<Value> = volumes.iter().map(volume_row).collect();
    print!(
        "{}",
        format::render(&format, &rows, &volume_headers(), true)?
    );
    Ok(0)
}

/// `volume inspect`: the indented JSON array, or one `--format` output per volume.
pub async fn inspect(c: &Client, a: InspectArgs) -> CmdResult {
    inspect_each(&a.volumes, a.format.as_deref(), |name| async move {
        c.volume_inspect_raw(name).await.map_err(Failure::from)
    })
    .await
}

/// `volume rm`: prints each removed name; reports failures and goes on.
pub async fn rm(c: &Client, a: RmArgs) -> CmdResult {
    let mut failed = false;
    for name in &a.volumes {
        match c.volume_remove(name, a.force).await {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("{}", describe(&e));
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// The prompt of `volume prune`.
pub fn prune_warning(all: bool) -> &'static str {
    if all {
        "WARNING! This will remove all local volumes not used by at least one container."
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    }
}

/// `volume prune`.
pub async fn prune(c: &Client, a: PruneArgs) -> CmdResult {
    let mut filters = parse_filters(&a.filter)?;
    // Before API 1.42 prune took every unused volume, and knew no `all` filter.
    let all_by_default = client::version_less(c.api_version(), "1.42");
    if a.all && !all_by_default {
        if filters.contains_key("all") {
            return Err(Failure::new(
                "conflicting options: cannot specify both --all and --filter all=1",
            ));
        }
        filters.insert("all".into(), vec!["true".into()]);
    }
    if !a.force && !confirm(prune_warning(a.all || all_by_default)) {
        return Ok(0);
    }
    let report = c.prune("volumes", &filters).await?;
    let deleted: Vec<&str> = report["VolumesDeleted"]
        .as_array()
        .map(|v| v.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Volumes:");
        for name in deleted {
            println!("{name}");
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human_size(report["SpaceReclaimed"].as_f64().unwrap_or(0.0))
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_as_docker_formats_them() {
        let volume = json!({
            "Name": "data", "Driver": "local", "Scope": "local", "Mountpoint": "/v/data/_data",
            "Labels": {"z": "1", "a": ""}, "CreatedAt": "2026-01-01T00:00:00Z", "Options": null
        });
        let row = volume_row(&volume);
        assert_eq!(row["Labels"], "a=,z=1");
        assert_eq!(row["Links"], "N/A");
        assert_eq!(row["Size"], "N/A");
        let rendered = format::render(
            VOLUMES_FORMAT,
            std::slice::from_ref(&row),
            &volume_headers(),
            true,
        )
        .unwrap();
        assert_eq!(rendered, "DRIVER    VOLUME NAME\nlocal     data\n");
        let with_usage = volume_row(&json!({
            "Name": "x", "Labels": null, "UsageData": {"RefCount": 2, "Size": 5000}
        }));
        assert_eq!(with_usage["Links"], "2");
        assert_eq!(with_usage["Size"], "5kB");
        assert_eq!(with_usage["Labels"], "");
        assert_eq!(
            pairs(&["a=b".into(), "c".into(), "o=size=1m".into()]),
            HashMap::from([
                ("a".to_string(), "b".to_string()),
                ("c".into(), "".into()),
                ("o".into(), "size=1m".into())
            ])
        );
    }
}
