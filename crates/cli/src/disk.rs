//! `system df` (disk usage summary, `-v` per object) and `system prune`, with docker's
//! tables, figures and confirmation prompt.

use std::collections::HashMap;

use clap::Args;
use client::Client;
use client::models::{ContainerSummary, ImageSummary};
use serde_json::{Value, json};

use crate::app::{CmdResult, Failure, confirm, parse_filters};
use crate::format::{self, container_row, image_rows, render};
use crate::units::{ago, human_size, human_size4};

/// Docker's `system df` format.
pub const DF_FORMAT: &str =
    "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}";

/// `system df`.
#[derive(Debug, Clone, Args)]
pub struct DfArgs {
    /// Format output using a custom template ("table", "json" or a Go template)
    #[arg(long)]
    pub format: Option<String>,
    /// Show detailed information on space usage
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

/// `system prune`.
#[derive(Debug, Clone, Args)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long)]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    pub volumes: bool,
}

fn i(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// "SIZE (PCT%)" as docker's df prints a reclaimable amount (integer percent of the total).
pub fn reclaimable_text(reclaimable: i64, total: i64) -> String {
    if total > 0 {
        format!(
            "{} ({}%)",
            human_size4(reclaimable as f64),
            reclaimable * 100 / total
        )
    } else {
        human_size4(reclaimable as f64)
    }
}

/// The four summary rows of `system df` from the daemon's `/system/df` answer.
pub fn df_rows(df: &Value) -> Vec<Value> {
    let empty = Vec::new();
    let images = df["Images"].as_array().unwrap_or(&empty);
    let containers = df["Containers"].as_array().unwrap_or(&empty);
    let volumes = df["Volumes"].as_array().unwrap_or(&empty);
    let cache = df["BuildCache"].as_array().unwrap_or(&empty);

    let images_size = i(&df["LayersSize"]);
    let active_images = images.iter().filter(|m| i(&m["Containers"]) > 0).count();
    let used: i64 = images
        .iter()
        .filter(|m| i(&m["Containers"]) > 0)
        .filter(|m| i(&m["Size"]) != -1 && i(&m["SharedSize"]) != -1)
        .map(|m| i(&m["Size"]) - i(&m["SharedSize"]))
        .sum();

    let active_container = |c: &&Value| {
        let s = c["State"].as_str().unwrap_or_default();
        s.contains("running") || s.contains("paused") || s.contains("restarting")
    };
    let containers_size: i64 = containers.iter().map(|c| i(&c["SizeRw"])).sum();
    let containers_reclaimable: i64 = containers
        .iter()
        .filter(|c| !active_container(c))
        .map(|c| i(&c["SizeRw"]))
        .sum();

    let volume_size = |v: &Value| i(&v["UsageData"]["Size"]).max(0);
    let volumes_size: i64 = volumes.iter().map(volume_size).sum();
    let volumes_active = volumes
        .iter()
        .filter(|v| i(&v["UsageData"]["RefCount"]) > 0)
        .count();
    let volumes_reclaimable: i64 = volumes
        .iter()
        .filter(|v| i(&v["UsageData"]["RefCount"]) == 0)
        .map(volume_size)
        .sum();

    let unshared = |b: &&Value| b["Shared"].as_bool() != Some(true);
    let cache_size: i64 = cache.iter().filter(unshared).map(|b| i(&b["Size"])).sum();
    let cache_active = cache
        .iter()
        .filter(|b| b["InUse"].as_bool() == Some(true))
        .count();
    let cache_reclaimable: i64 = cache
        .iter()
        .filter(unshared)
        .filter(|b| b["InUse"].as_bool() != Some(true))
        .map(|b| i(&b["Size"]))
        .sum();

    vec![
        json!({
            "Type": "Images",
            "TotalCount": images.len().to_string(),
            "Active": active_images.to_string(),
            "Size": human_size4(images_size as f64),
            "Reclaimable": reclaimable_text(images_size - used, images_size),
        }),
        json!({
            "Type": "Containers",
            "TotalCount": containers.len().to_string(),
            "Active": containers.iter().filter(active_container).count().to_string(),
            "Size": human_size4(containers_size as f64),
            "Reclaimable": reclaimable_text(containers_reclaimable, containers_size),
        }),
        json!({
            "Type": "Local Volumes",
            "TotalCount": volumes.len().to_string(),
            "Active": volumes_active.to_string(),
            "Size": human_size4(volumes_size as f64),
            "Reclaimable": reclaimable_text(volumes_reclaimable, volumes_size),
        }),
        json!({
            "Type": "Build Cache",
            "TotalCount": cache.len().to_string(),
            "Active": cache_active.to_string(),
            "Size": human_size4(cache_size as f64),
            "Reclaimable": human_size4(cache_reclaimable as f64),
        }),
    ]
}

fn headers() -> HashMap<&'static str, &'static str> {
    HashMap::from([
        ("Type", "TYPE"),
        ("TotalCount", "TOTAL"),
        ("Active", "ACTIVE"),
        ("Size", "SIZE"),
        ("Reclaimable", "RECLAIMABLE"),
    ])
}

/// `system df`.
pub async fn df(c: &Client, a: DfArgs) -> CmdResult {
    let data = c.system_df().await?;
    if !a.verbose {
        let f = match a.format.as_deref() {
            None | Some("") | Some("table") => DF_FORMAT,
            Some(f) => f,
        };
        print!("{}", render(f, &df_rows(&data), &headers(), true)?);
        return Ok(0);
    }
    print!("{}", verbose(&data)?);
    Ok(0)
}

/// The `-v` report: images, containers, volumes and build cache, one table each.
pub fn verbose(data: &Value) -> Result<String, Failure> {
    let now = format::now_unix();
    let mut out = String::from("Images space usage:\n\n");
    let images: Vec<ImageSummary> =
        serde_json::from_value(data["Images"].clone()).unwrap_or_default();
    let rows: Vec<Value> = images
        .iter()
        .flat_map(|m| image_rows(m, true, false, now))
        .collect();
    out.push_str(&render(
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}",
        &rows,
        &format::image_headers(),
        true,
    )?);
    out.push_str("\nContainers space usage:\n\n");
    let mut containers: Vec<ContainerSummary> =
        serde_json::from_value(data["Containers"].clone()).unwrap_or_default();
    // docker does not show the virtual size here.
    for c in &mut containers {
        c.size_root_fs = None;
    }
    let rows: Vec<Value> = containers
        .iter()
        .map(|c| container_row(c, true, now))
        .collect();
    out.push_str(&render(
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}",
        &rows,
        &format::ps_headers(),
        true,
    )?);
    out.push_str("\nLocal Volumes space usage:\n\n");
    let empty = Vec::new();
    let rows: Vec<Value> = data["Volumes"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|v| {
            let size = i(&v["UsageData"]["Size"]);
            json!({
                "Name": v["Name"].as_str().unwrap_or_default(),
                "Links": i(&v["UsageData"]["RefCount"]).to_string(),
                "Size": if size < 0 { "N/A".to_string() } else { human_size(size as f64) },
            })
        })
        .collect();
    out.push_str(&render(
        "table {{.Name}}\t{{.Links}}\t{{.Size}}",
        &rows,
        &HashMap::from([
            ("Name", "VOLUME NAME"),
            ("Links", "LINKS"),
            ("Size", "SIZE"),
        ]),
        true,
    )?);
    let cache = data["BuildCache"].as_array().unwrap_or(&empty);
    let cache_total: i64 = cache
        .iter()
        .filter(|b| b["Shared"].as_bool() != Some(true))
        .map(|b| i(&b["Size"]))
        .sum();
    out.push_str(&format!(
        "\nBuild cache usage: {}\n\n",
        human_size(cache_total as f64)
    ));
    let since = |v: &Value| {
        v.as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| ago(t.timestamp(), now))
            .unwrap_or_default()
    };
    let rows: Vec<Value> = cache
        .iter()
        .map(|b| {
            json!({
                "ID": b["ID"].as_str().unwrap_or_default(),
                "CacheType": b["Type"].as_str().unwrap_or_default(),
                "Size": human_size(i(&b["Size"]) as f64),
                "CreatedSince": since(&b["CreatedAt"]),
                "LastUsedSince": since(&b["LastUsedAt"]),
                "UsageCount": i(&b["UsageCount"]).to_string(),
                "Shared": b["Shared"].as_bool().unwrap_or(false).to_string(),
            })
        })
        .collect();
    out.push_str(&render(
        "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}",
        &rows,
        &HashMap::from([
            ("ID", "CACHE ID"),
            ("CacheType", "CACHE TYPE"),
            ("Size", "SIZE"),
            ("CreatedSince", "CREATED"),
            ("LastUsedSince", "LAST USED"),
            ("UsageCount", "USAGE"),
            ("Shared", "SHARED"),
        ]),
        true,
    )?);
    Ok(out)
}

/// The warning `system prune` asks to confirm (docker's wording).
pub fn prune_warning(all: bool, volumes: bool) -> String {
    let mut w = String::from(
        "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n",
    );
    if volumes {
        w.push_str("  - all anonymous volumes not used by at least one container\n");
    }
    if all {
        w.push_str("  - all images without at least one container associated to them\n  - all build cache\n");
    } else {
        w.push_str("  - all dangling images\n  - unused build cache\n");
    }
    w
}

/// Runs one prune; a daemon without that endpoint (404) or feature (501) counts as nothing
/// pruned.
async fn prune_one(
    c: &Client,
    kind: &str,
    filters: &client::Filters,
) -> Result<Option<Value>, client::Error> {
    match c.prune(kind, filters).await {
        Ok(v) => Ok(Some(v)),
        Err(e) if matches!(e.status(), Some(404) | Some(501)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `system prune`.
pub async fn prune(c: &Client, a: SystemPruneArgs) -> CmdResult {
    if !a.force && !confirm(&prune_warning(a.all, a.volumes)) {
        return Ok(0);
    }
    let filters = parse_filters(&a.filter)?;
    let mut total = 0i64;
    let mut out = String::new();
    let list = |v: &Value, key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    if let Some(r) = prune_one(c, "containers", &filters).await? {
        let ids = list(&r, "ContainersDeleted");
        if !ids.is_empty() {
            out.push_str("Deleted Containers:\n");
            for id in ids {
                out.push_str(&format!("{id}\n"));
            }
            out.push('\n');
        }
        total += i(&r["SpaceReclaimed"]);
    }
    if a.volumes
        && let Some(r) = prune_one(c, "volumes", &filters).await?
    {
        let names = list(&r, "VolumesDeleted");
        if !names.is_empty() {
            out.push_str("Deleted Volumes:\n");
            for n in names {
                out.push_str(&format!("{n}\n"));
            }
            out.push('\n');
        }
        total += i(&r["SpaceReclaimed"]);
    }
    if let Some(r) = prune_one(c, "networks", &filters).await? {
        let names = list(&r, "NetworksDeleted");
        if !names.is_empty() {
            out.push_str("Deleted Networks:\n");
            for n in names {
                out.push_str(&format!("{n}\n"));
            }
            out.push('\n');
        }
    }
    let mut image_filters = filters.clone();
    image_filters.insert(
        "dangling".into(),
        vec![if a.all { "false" } else { "true" }.into()],
    );
    if let Some(r) = prune_one(c, "images", &image_filters).await? {
        if let Some(items) = r["ImagesDeleted"].as_array()
            && !items.is_empty()
        {
            out.push_str("Deleted Images:\n");
            for item in items {
                if let Some(u) = item["Untagged"].as_str() {
                    out.push_str(&format!("untagged: {u}\n"));
                }
                if let Some(d) = item["Deleted"].as_str() {
                    out.push_str(&format!("deleted: {d}\n"));
                }
            }
            out.push('\n');
        }
        total += i(&r["SpaceReclaimed"]);
    }
    let mut cache_filters = filters.clone();
    if a.all {
        cache_filters.insert("all".into(), vec!["true".into()]);
    }
    if let Some(r) = prune_one(c, "build", &cache_filters).await? {
        let ids = list(&r, "CachesDeleted");
        if !ids.is_empty() {
            out.push_str("Deleted build cache objects:\n");
            for id in ids {
                out.push_str(&format!("{id}\n"));
            }
            out.push('\n');
        }
        total += i(&r["SpaceReclaimed"]);
    }
    out.push_str(&format!(
        "Total reclaimed space: {}\n",
        human_size(total as f64)
    ));
    print!("{out}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_figures() {
        let df = json!({
            "LayersSize": 10_000_000,
            "Images": [
                {"Id": "sha256:a", "Containers": 1, "Size": 4_000_000, "SharedSize": 0},
                {"Id": "sha256:b", "Containers": 0, "Size": 6_000_000, "SharedSize": 0}
            ],
            "Containers": [
                {"Id": "1", "State": "running", "SizeRw": 100},
                {"Id": "2", "State": "exited", "SizeRw": 300}
            ],
            "Volumes": [],
            "BuildCache": null
        });
        let rows = df_rows(&df);
        assert_eq!(rows[0]["TotalCount"], "2");
        assert_eq!(rows[0]["Active"], "1");
        assert_eq!(rows[0]["Size"], "10MB");
        assert_eq!(rows[0]["Reclaimable"], "6MB (60%)");
        assert_eq!(rows[1]["Active"], "1");
        assert_eq!(rows[1]["Size"], "400B");
        assert_eq!(rows[1]["Reclaimable"], "300B (75%)");
        assert_eq!(rows[2]["Reclaimable"], "0B");
        assert_eq!(rows[3]["Size"], "0B");
        let table = render(DF_FORMAT, &rows, &headers(), true).unwrap();
        assert!(
            table.starts_with("TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\nImages          2         1         10MB      6MB (60%)\n"),
            "{table}"
        );
    }

    #[test]
    fn prune_wording() {
        let w = prune_warning(true, true);
        assert!(w.contains("all anonymous volumes"));
        assert!(w.contains("all images without at least one container"));
        assert!(prune_warning(false, false).contains("all dangling images"));
    }
}
