//! `stats`: live resource usage of containers, as docker's `container stats`: a table
//! redrawn in place every half second while streaming, or printed once with `--no-stream`;
//! the figures computed from the daemon's stats JSON as docker does (CPU % from the deltas
//! against the previous sample, memory without the inactive file cache, summed network and
//! block I/O).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::{Arc, Mutex};

use clap::Args;
use client::Client;
use client::containers::ListOptions;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::app::{CmdResult, describe};
use crate::format::{render, truncate_id};
use crate::units::{bytes_size, human_size};

/// Docker's default `stats` format.
pub const STATS_FORMAT: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

/// `stats`.
#[derive(Debug, Clone, Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Format output using a custom template ("table", "json" or a Go template)
    #[arg(long)]
    pub format: Option<String>,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Containers
    pub containers: Vec<String>,
}

/// Column titles of the stats row model.
pub fn stats_headers() -> HashMap<&'static str, &'static str> {
    HashMap::from([
        ("Container", "CONTAINER"),
        ("ID", "CONTAINER ID"),
        ("Name", "NAME"),
        ("CPUPerc", "CPU %"),
        ("MemUsage", "MEM USAGE / LIMIT"),
        ("MemPerc", "MEM %"),
        ("NetIO", "NET I/O"),
        ("BlockIO", "BLOCK I/O"),
        ("PIDs", "PIDS"),
    ])
}

fn u(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// CPU usage in percent of one CPU (docker's `calculateCPUPercentUnix`): the container's
/// CPU time delta over the system's, times the number of online CPUs.
pub fn cpu_percent(s: &Value) -> f64 {
    let cpu = &s["cpu_stats"];
    let pre = &s["precpu_stats"];
    let cpu_delta = u(&cpu["cpu_usage"]["total_usage"]) - u(&pre["cpu_usage"]["total_usage"]);
    let system_delta = u(&cpu["system_cpu_usage"]) - u(&pre["system_cpu_usage"]);
    let mut online = u(&cpu["online_cpus"]);
    if online == 0.0 {
        online = cpu["cpu_usage"]["percpu_usage"]
            .as_array()
            .map(|a| a.len() as f64)
            .unwrap_or(0.0);
    }
    if system_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / system_delta * online * 100.0
    } else {
        0.0
    }
}

/// Memory in use without the page cache that can be dropped (docker's
/// `calculateMemUsageUnixNoCache`: cgroup v1 `total_inactive_file`, v2 `inactive_file`).
pub fn memory_usage(s: &Value) -> f64 {
    let m = &s["memory_stats"];
    let usage = u(&m["usage"]);
    if let Some(v) = m["stats"]["total_inactive_file"].as_f64()
        && v < usage
    {
        return usage - v;
    }
    if let Some(v) = m["stats"]["inactive_file"].as_f64()
        && v < usage
    {
        return usage - v;
    }
    usage
}

/// Bytes read and written (sums of the recursive service-bytes entries).
pub fn block_io(s: &Value) -> (f64, f64) {
    let (mut read, mut write) = (0.0, 0.0);
    if let Some(entries) = s["blkio_stats"]["io_service_bytes_recursive"].as_array() {
        for e in entries {
            match e["op"].as_str().map(str::to_ascii_lowercase).as_deref() {
                Some("read") => read += u(&e["value"]),
                Some("write") => write += u(&e["value"]),
                _ => {}
            }
        }
    }
    (read, write)
}

/// Bytes received and sent over every interface.
pub fn network_io(s: &Value) -> (f64, f64) {
    let (mut rx, mut tx) = (0.0, 0.0);
    if let Some(nets) = s["networks"].as_object() {
        for n in nets.values() {
            rx += u(&n["rx_bytes"]);
            tx += u(&n["tx_bytes"]);
        }
    }
    (rx, tx)
}

/// The row of one stats sample (docker's `StatsEntry` fields, formatted as its table).
pub fn stats_row(container: &str, s: &Value, trunc: bool) -> Value {
    let id = s["id"].as_str().unwrap_or(container);
    let name = s["name"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches('/');
    let mem = memory_usage(s);
    let limit = u(&s["memory_stats"]["limit"]);
    let mem_percent = if limit > 0.0 {
        mem / limit * 100.0
    } else {
        0.0
    };
    let (rx, tx) = network_io(s);
    let (read, write) = block_io(s);
    json!({
        "Container": container,
        "ID": if trunc { truncate_id(id) } else { id.to_string() },
        "Name": if name.is_empty() { "--".to_string() } else { name.to_string() },
        "CPUPerc": format!("{:.2}%", cpu_percent(s)),
        "MemUsage": format!("{} / {}", bytes_size(mem), bytes_size(limit)),
        "MemPerc": format!("{mem_percent:.2}%"),
        "NetIO": format!("{} / {}", human_size(rx), human_size(tx)),
        "BlockIO": format!("{} / {}", human_size(read), human_size(write)),
        "PIDs": format!("{}", s["pids_stats"]["current"].as_u64().unwrap_or(0)),
    })
}

/// The row of a container without figures (docker shows `--`).
fn empty_row(container: &str, trunc: bool) -> Value {
    json!({
        "Container": container,
        "ID": if trunc { truncate_id(container) } else { container.to_string() },
        "Name": "--",
        "CPUPerc": "--",
        "MemUsage": "-- / --",
        "MemPerc": "--",
        "NetIO": "--",
        "BlockIO": "--",
        "PIDs": "--",
    })
}

/// The containers to show when none were named: running ones (all with `-a`).
async fn listed(c: &Client, all: bool) -> Result<Vec<String>, client::Error> {
    let list = c
        .container_list(&ListOptions {
            all,
            ..Default::default()
        })
        .await?;
    Ok(list.into_iter().filter_map(|s| s.id).collect())
}

/// `stats`.
pub async fn stats(c: &Client, a: StatsArgs) -> CmdResult {
    let format = match a.format.as_deref() {
        None | Some("") | Some("table") => STATS_FORMAT.to_string(),
        Some(f) => f.to_string(),
    };
    let trunc = !a.no_trunc;
    let named = !a.containers.is_empty();
    if a.no_stream {
        let names = if named {
            a.containers.clone()
        } else {
            listed(c, a.all).await?
        };
        let mut rows = Vec::new();
        let mut failed = false;
        for n in &names {
            let shown = if named { n.clone() } else { truncate_id(n) };
            match one_sample(c, n).await {
                Ok(s) => rows.push(stats_row(&shown, &s, trunc)),
                Err(e) => {
                    eprintln!("{}", describe(&e));
                    failed = true;
                }
            }
        }
        if failed && rows.is_empty() {
            return Ok(1);
        }
        print!("{}", render(&format, &rows, &stats_headers(), true)?);
        return Ok(if failed { 1 } else { 0 });
    }

    // Streaming: one collector per container keeps its latest row; the table is redrawn
    // every 500 ms (docker's refresh), the cursor sent home and stale lines cleared.
    let rows: Arc<Mutex<BTreeMap<String, Value>>> = Arc::default();
    let mut collectors: HashMap<String, crate::attach::TaskGuard> = HashMap::new();
    if named {
        // Named containers must exist: fail at once as docker does.
        for n in &a.containers {
            c.container_inspect(n).await?;
        }
    }
    let mut first = true;
    let mut last_list = std::time::Instant::now() - std::time::Duration::from_secs(10);
    loop {
        if !named && last_list.elapsed() >= std::time::Duration::from_secs(1) {
            last_list = std::time::Instant::now();
            let ids = listed(c, a.all).await?;
            collectors.retain(|id, _| ids.contains(id));
            if let Ok(mut r) = rows.lock() {
                r.retain(|id, _| ids.contains(id));
            }
            for id in ids {
                collectors
                    .entry(id.clone())
                    .or_insert_with(|| collect(c, &id, rows.clone(), trunc, true));
            }
        } else if named && first {
            for n in &a.containers {
                let task = collect(c, n, rows.clone(), trunc, false);
                collectors.insert(n.clone(), task);
            }
        }
        let snapshot: Vec<Value> = {
            let r = rows.lock().map(|r| r.clone()).unwrap_or_default();
            if named {
                a.containers
                    .iter()
                    .map(|n| r.get(n).cloned().unwrap_or_else(|| empty_row(n, trunc)))
                    .collect()
            } else {
                r.into_values().collect()
            }
        };
        let table = render(&format, &snapshot, &stats_headers(), true)?;
        let mut screen = String::new();
        if first {
            screen.push_str("\x1b[2J");
        }
        screen.push_str("\x1b[H");
        for line in table.lines() {
            screen.push_str(line);
            screen.push_str("\x1b[K\n");
        }
        screen.push_str("\x1b[J");
        let mut out = std::io::stdout().lock();
        if out
            .write_all(screen.as_bytes())
            .and_then(|_| out.flush())
            .is_err()
        {
            return Ok(0);
        }
        drop(out);
        first = false;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// One sample (`stream=false`: the daemon answers once it has two samples for the CPU delta).
async fn one_sample(c: &Client, name: &str) -> Result<Value, client::Error> {
    let body = c.container_stats(name, false).await?;
    let mut lines = BufReader::new(body).lines();
    match lines.next_line().await? {
        Some(line) => Ok(serde_json::from_str(&line)?),
        None => Ok(Value::Null),
    }
}

/// Follows the stats stream of one container into `rows` (keyed by the name it was given);
/// the row is dropped when the stream ends if `drop_at_end` (listed containers that stop).
fn collect(
    c: &Client,
    name: &str,
    rows: Arc<Mutex<BTreeMap<String, Value>>>,
    trunc: bool,
    drop_at_end: bool,
) -> crate::attach::TaskGuard {
    let (c, name) = (c.clone(), name.to_string());
    crate::attach::TaskGuard::spawn(async move {
        if let Ok(body) = c.container_stats(&name, true).await {
            let mut lines = BufReader::new(body).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(s) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                // Listed containers are shown by their short ID, as docker does.
                let display = if drop_at_end {
                    truncate_id(&name)
                } else {
                    name.clone()
                };
                if let Ok(mut r) = rows.lock() {
                    r.insert(name.clone(), stats_row(&display, &s, trunc));
                }
            }
        }
        if drop_at_end && let Ok(mut r) = rows.lock() {
            r.remove(&name);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        json!({
            "id": "0123456789abcdef0123",
            "name": "/web",
            "cpu_stats": {"cpu_usage": {"total_usage": 3_000_000u64}, "system_cpu_usage": 20_000_000u64, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 1_000_000u64}, "system_cpu_usage": 10_000_000u64},
            "memory_stats": {"usage": 10_485_760u64, "limit": 104_857_600u64, "stats": {"total_inactive_file": 2_097_152u64}},
            "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 648}, "eth1": {"rx_bytes": 500, "tx_bytes": 0}},
            "blkio_stats": {"io_service_bytes_recursive": [
                {"major": 8, "minor": 0, "op": "Read", "value": 4096},
                {"major": 8, "minor": 0, "op": "Write", "value": 8192},
                {"major": 8, "minor": 0, "op": "Total", "value": 12288}
            ]},
            "pids_stats": {"current": 3}
        })
    }

    #[test]
    fn docker_figures() {
        let s = sample();
        assert!((cpu_percent(&s) - 40.0).abs() < 1e-9);
        assert_eq!(memory_usage(&s), 8_388_608.0);
        assert_eq!(network_io(&s), (2000.0, 648.0));
        assert_eq!(block_io(&s), (4096.0, 8192.0));
        let row = stats_row("web", &s, true);
        assert_eq!(row["ID"], "0123456789ab");
        assert_eq!(row["Name"], "web");
        assert_eq!(row["CPUPerc"], "40.00%");
        assert_eq!(row["MemUsage"], "8MiB / 100MiB");
        assert_eq!(row["MemPerc"], "8.00%");
        assert_eq!(row["NetIO"], "2kB / 648B");
        assert_eq!(row["BlockIO"], "4.1kB / 8.19kB");
        assert_eq!(row["PIDs"], "3");
    }

    #[test]
    fn cgroup_v2_inactive_file_and_no_limit() {
        let s = json!({"memory_stats": {"usage": 1000, "stats": {"inactive_file": 100}}});
        assert_eq!(memory_usage(&s), 900.0);
        let row = stats_row("x", &s, true);
        assert_eq!(row["MemPerc"], "0.00%");
        assert_eq!(row["CPUPerc"], "0.00%");
    }

    #[test]
    fn table_titles() {
        let out = render(
            STATS_FORMAT,
            &[stats_row("web", &sample(), true)],
            &stats_headers(),
            true,
        )
        .unwrap();
        let first = out.lines().next().unwrap();
        assert!(
            first.starts_with("CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %"),
            "{first}"
        );
    }
}
