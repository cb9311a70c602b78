//! `network create/ls/inspect/rm/prune/connect/disconnect` and `port`, with docker's flags,
//! tables, `--format` and messages.

use std::collections::HashMap;

use clap::{Args, Subcommand};
use client::Client;
use client::models::{
    EndpointIpamConfig, EndpointSettings, Ipam, IpamConfig, NetworkConnectRequest,
    NetworkCreateRequest, NetworkDisconnectRequest, NetworkSummary,
};
use serde_json::Value;

use crate::app::{CmdResult, Failure, confirm, describe, inspect_each, parse_filters};
use crate::format;

/// `network ...`.
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network
    Create(CreateArgs),
    /// List networks
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more networks
    Inspect(InspectArgs),
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove all unused networks
    Prune(PruneArgs),
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
}

/// `network create`.
#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    /// Driver to manage the Network
    #[arg(short = 'd', long, default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long)]
    pub subnet: Vec<String>,
    /// Allocate container ip from a sub-range
    #[arg(long = "ip-range")]
    pub ip_range: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long)]
    pub gateway: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    /// Set metadata on a network
    #[arg(long)]
    pub label: Vec<String>,
    /// Restrict external access to the network
    #[arg(long)]
    pub internal: bool,
    /// Enable manual container attachment
    #[arg(long)]
    pub attachable: bool,
    /// Enable or disable IPv6 networking
    #[arg(long)]
    pub ipv6: bool,
    /// IP Address Management Driver
    #[arg(long = "ipam-driver", default_value = "default")]
    pub ipam_driver: String,
    /// Set IPAM driver specific options
    #[arg(long = "ipam-opt")]
    pub ipam_opt: Vec<String>,
    /// NETWORK
    pub name: String,
}

/// `network ls`.
#[derive(Debug, Clone, Args)]
pub struct LsArgs {
    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short = 'f', long)]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only display network IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// `network inspect`.
#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Verbose output for diagnostics
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// NETWORK
    #[arg(required = true)]
    pub networks: Vec<String>,
}

/// `network rm`.
#[derive(Debug, Clone, Args)]
pub struct RmArgs {
    /// Do not error if the network does not exist
    #[arg(short = 'f', long)]
    pub force: bool,
    /// NETWORK
    #[arg(required = true)]
    pub networks: Vec<String>,
}

/// `network prune`.
#[derive(Debug, Clone, Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long)]
    pub filter: Vec<String>,
}

/// `network connect`.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long)]
    pub alias: Vec<String>,
    /// IPv4 address (e.g., "172.30.100.104")
    #[arg(long)]
    pub ip: Option<String>,
    /// Add link to another container
    #[arg(long)]
    pub link: Vec<String>,
    /// driver options for the network
    #[arg(long = "driver-opt")]
    pub driver_opt: Vec<String>,
    /// NETWORK
    pub network: String,
    /// CONTAINER
    pub container: String,
}

/// `network disconnect`.
#[derive(Debug, Clone, Args)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short = 'f', long)]
    pub force: bool,
    /// NETWORK
    pub network: String,
    /// CONTAINER
    pub container: String,
}

/// `port`.
#[derive(Debug, Clone, Args)]
pub struct PortArgs {
    /// CONTAINER
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    pub port: Option<String>,
}

/// docker's `network ls` table.
pub const NETWORKS_FORMAT: &str = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";

fn headers() -> HashMap<&'static str, &'static str> {
    HashMap::from([
        ("ID", "NETWORK ID"),
        ("Name", "NAME"),
        ("Driver", "DRIVER"),
        ("Scope", "SCOPE"),
        ("IPv6", "IPV6"),
        ("IPv4", "IPV4"),
        ("Internal", "INTERNAL"),
        ("Labels", "LABELS"),
        ("CreatedAt", "CREATED AT"),
    ])
}

fn key_values(flags: &[String]) -> HashMap<String, String> {
    flags
        .iter()
        .map(|f| match f.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (f.clone(), String::new()),
        })
        .collect()
}

fn some_map(map: HashMap<String, String>) -> Option<HashMap<String, String>> {
    (!map.is_empty()).then_some(map)
}

/// The IPAM configs of `--subnet`/`--ip-range`/`--gateway`, matched to their subnets as the
/// docker CLI does (a range or gateway belongs to the subnet that contains it).
fn ipam_configs(a: &CreateArgs) -> Result<Vec<IpamConfig>, Failure> {
    let contains = |subnet: &str, address: &str| -> bool {
        let address = address.split('/').next().unwrap_or(address);
        let (Some((net, prefix)), Ok(ip)) = (
            subnet.split_once('/'),
            address.parse::<std::net::Ipv4Addr>(),
        ) else {
            return false;
        };
        let (Ok(net), Ok(prefix)) = (net.parse::<std::net::Ipv4Addr>(), prefix.parse::<u32>())
        else {
            return false;
        };
        if prefix > 32 {
            return false;
        }
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        u32::from(net) & mask == u32::from(ip) & mask
    };
    let mut configs: Vec<IpamConfig> = a
        .subnet
        .iter()
        .map(|s| IpamConfig {
            subnet: Some(s.clone()),
            ..Default::default()
        })
        .collect();
    if configs.len() == 1 {
        // One subnet: the daemon judges where the range and gateway are.
        configs[0].ip_range = a.ip_range.first().cloned();
        configs[0].gateway = a.gateway.first().cloned();
        return Ok(configs);
    }
    for range in &a.ip_range {
        let config = configs
            .iter_mut()
            .find(|c| contains(c.subnet.as_deref().unwrap_or(""), range))
            .ok_or_else(|| Failure::new(format!("no matching subnet for range {range}")))?;
        config.ip_range = Some(range.clone());
    }
    for gateway in &a.gateway {
        let config = configs
            .iter_mut()
            .find(|c| contains(c.subnet.as_deref().unwrap_or(""), gateway))
            .ok_or_else(|| Failure::new(format!("no matching subnet for gateway {gateway}")))?;
        config.gateway = Some(gateway.clone());
    }
    Ok(configs)
}

/// `network create`: prints the id.
pub async fn create(c: &Client, a: CreateArgs) -> CmdResult {
    let body = NetworkCreateRequest {
        name: a.name.clone(),
        driver: Some(a.driver.clone()),
        internal: Some(a.internal),
        attachable: Some(a.attachable),
        enable_ipv6: a.ipv6.then_some(true),
        ipam: Some(Ipam {
            driver: Some(a.ipam_driver.clone()),
            config: Some(ipam_configs(&a)?),
            options: some_map(key_values(&a.ipam_opt)),
        }),
        options: Some(key_values(&a.opt)),
        labels: Some(key_values(&a.label)),
        ..Default::default()
    };
    let created = c.network_create(&body).await?;
    if !created.warning.is_empty() {
        eprintln!("WARNING: {}", created.warning);
    }
    println!("{}", created.id);
    Ok(0)
}

fn row(n: &NetworkSummary, trunc: bool) -> Value {
    let id = n.id.clone().unwrap_or_default();
    let mut labels: Vec<String> = n
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    labels.sort();
    serde_json::json!({
        "ID": if trunc { format::truncate_id(&id) } else { id },
        "Name": n.name.clone().unwrap_or_default(),
        "Driver": n.driver.clone().unwrap_or_default(),
        "Scope": n.scope.clone().unwrap_or_default(),
        "IPv6": n.enable_ipv6.unwrap_or(false).to_string(),
        "IPv4": n.enable_ipv4.unwrap_or(true).to_string(),
        "Internal": n.internal.unwrap_or(false).to_string(),
        "Labels": labels.join(","),
        "CreatedAt": n.created.clone().unwrap_or_default(),
    })
}

/// `network ls`.
pub async fn ls(c: &Client, a: LsArgs) -> CmdResult {
    let list = c.network_list(&parse_filters(&a.filter)?).await?;
    let format = if a.quiet {
        "{{.ID}}".to_string()
    } else {
        match a.format.as_deref() {
            None | Some("") | Some("table") => NETWORKS_FORMAT.to_string(),
            Some(f) => f.to_string(),
        }
    };
    let rows: Vec<Value> = list.iter().map(|n| row(n, !a.no_trunc)).collect();
    print!("{}", format::render(&format, &rows, &headers(), true)?);
    Ok(0)
}

/// `network inspect`.
pub async fn inspect(c: &Client, a: InspectArgs) -> CmdResult {
    inspect_each(&a.networks, a.format.as_deref(), |name| async move {
        c.network_inspect_raw(name).await.map_err(Failure::from)
    })
    .await
}

/// `network rm`: prints each removed name.
pub async fn rm(c: &Client, a: RmArgs) -> CmdResult {
    let mut failed = false;
    for name in &a.networks {
        match c.network_remove(name).await {
            Ok(()) => println!("{name}"),
            Err(e) if a.force && e.status() == Some(404) => {}
            Err(e) => {
                eprintln!("{}", describe(&e));
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// `network prune`.
pub async fn prune(c: &Client, a: PruneArgs) -> CmdResult {
    if !a.force
        && !confirm(
            "WARNING! This will remove all custom networks not used by at least one container.",
        )
    {
        return Ok(0);
    }
    let report = c.network_prune(&parse_filters(&a.filter)?).await?;
    let deleted = report.networks_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Networks:");
        for name in deleted {
            println!("{name}");
        }
    }
    Ok(0)
}

/// `network connect`.
pub async fn connect(c: &Client, a: ConnectArgs) -> CmdResult {
    let body = NetworkConnectRequest {
        container: a.container.clone(),
        endpoint_config: Some(EndpointSettings {
            ipam_config: a.ip.clone().map(|ip| EndpointIpamConfig {
                ipv4_address: Some(ip),
                ..Default::default()
            }),
            aliases: (!a.alias.is_empty()).then(|| a.alias.clone()),
            links: (!a.link.is_empty()).then(|| a.link.clone()),
            driver_opts: some_map(key_values(&a.driver_opt)),
            ..Default::default()
        }),
    };
    c.network_connect(&a.network, &body).await?;
    Ok(0)
}

/// `network disconnect`.
pub async fn disconnect(c: &Client, a: DisconnectArgs) -> CmdResult {
    let body = NetworkDisconnectRequest {
        container: a.container.clone(),
        force: Some(a.force),
    };
    c.network_disconnect(&a.network, &body).await?;
    Ok(0)
}

/// The published ports of an inspect document: ("80/tcp", "0.0.0.0:8080") pairs, sorted by
/// port then protocol as docker prints them.
fn published(inspect: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(ports) = inspect["NetworkSettings"]["Ports"].as_object() {
        for (key, bindings) in ports {
            for binding in bindings.as_array().into_iter().flatten() {
                let ip = binding["HostIp"].as_str().unwrap_or("");
                let port = binding["HostPort"].as_str().unwrap_or("");
                let host = if ip.contains(':') {
                    format!("[{ip}]:{port}")
                } else {
                    format!("{ip}:{port}")
                };
                out.push((key.clone(), host));
            }
        }
    }
    let number = |key: &str| {
        key.split('/')
            .next()
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap_or(0)
    };
    out.sort_by(|a, b| (number(&a.0), &a.0, &a.1).cmp(&(number(&b.0), &b.0, &b.1)));
    out
}

/// `port CONTAINER [PRIVATE_PORT[/PROTO]]`.
pub async fn port(c: &Client, a: PortArgs) -> CmdResult {
    let raw = c.container_inspect_raw(&a.container, false).await?;
    let inspect: Value =
        serde_json::from_slice(&raw).map_err(|e| Failure::new(format!("decode: {e}")))?;
    let mappings = published(&inspect);
    match &a.port {
        None => {
            for (key, host) in mappings {
                println!("{key} -> {host}");
            }
            Ok(0)
        }
        Some(wanted) => {
            let key = if wanted.contains('/') {
                wanted.clone()
            } else {
                format!("{wanted}/tcp")
            };
            let hosts: Vec<&String> = mappings
                .iter()
                .filter(|(k, _)| *k == key)
                .map(|(_, h)| h)
                .collect();
            if hosts.is_empty() {
                return Err(Failure::new(format!(
                    "Error: No public port '{key}' published for {}",
                    a.container
                )));
            }
            for host in hosts {
                println!("{host}");
            }
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_ports_sort_as_docker_prints_them() {
        let inspect = serde_json::json!({"NetworkSettings": {"Ports": {
            "443/tcp": null,
            "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}, {"HostIp": "0.0.0.0", "HostPort": "8081"}],
            "53/udp": [{"HostIp": "0.0.0.0", "HostPort": "5353"}],
        }}});
        assert_eq!(
            published(&inspect),
            vec![
                ("53/udp".to_string(), "0.0.0.0:5353".to_string()),
                ("80/tcp".to_string(), "0.0.0.0:8081".to_string()),
                ("80/tcp".to_string(), "127.0.0.1:8080".to_string()),
            ]
        );
    }

    #[test]
    fn ipam_configs_pair_ranges_and_gateways_with_their_subnets() {
        let args = CreateArgs {
            driver: "bridge".into(),
            subnet: vec!["10.1.0.0/16".into(), "10.2.0.0/16".into()],
            ip_range: vec!["10.2.3.0/24".into()],
            gateway: vec!["10.1.0.254".into()],
            opt: vec![],
            label: vec![],
            internal: false,
            attachable: false,
            ipv6: false,
            ipam_driver: "default".into(),
            ipam_opt: vec![],
            name: "n".into(),
        };
        let configs = ipam_configs(&args).unwrap();
        assert_eq!(configs[0].gateway.as_deref(), Some("10.1.0.254"));
        assert_eq!(configs[1].ip_range.as_deref(), Some("10.2.3.0/24"));
        let mut bad = args.clone();
        bad.gateway = vec!["10.9.0.1".into()];
        assert!(ipam_configs(&bad).is_err());
    }
}
