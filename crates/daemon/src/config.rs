//! The daemon's settings: command-line flags over the optional JSON configuration file
//! (dockerd's daemon.json key names), over defaults.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::{Args, tls};

/// The daemon's configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FileConfig {
    /// TLS for tcp:// hosts (dockerd's `tls`, `tlsverify`, `tlscacert`, `tlscert`, `tlskey`).
    tls: Option<bool>,
    tlsverify: Option<bool>,
    tlscacert: Option<PathBuf>,
    tlscert: Option<PathBuf>,
    tlskey: Option<PathBuf>,
    data_root: Option<PathBuf>,
    exec_root: Option<PathBuf>,
    #[serde(default)]
    hosts: Vec<String>,
    debug: Option<bool>,
    #[serde(default)]
    runtimes: HashMap<String, RuntimeEntry>,
    pidfile: Option<PathBuf>,
    /// Run an init in containers that do not say (dockerd's `init`).
    init: Option<bool>,
    /// The init binary for `--init` (dockerd's `init-path`).
    init_path: Option<PathBuf>,
    /// Directories searched for volume plugins (`--plugin-dir`).
    #[serde(default)]
    plugin_dirs: Vec<PathBuf>,
    /// Seconds a volume plugin has to answer (`--plugin-timeout`).
    plugin_timeout: Option<f64>,
    /// The default bridge's name; "none": no default bridge (dockerd's `bridge`).
    bridge: Option<String>,
    /// The default bridge's address and prefix (dockerd's `bip`).
    bip: Option<String>,
    /// Where new networks' subnets come from.
    #[serde(default)]
    default_address_pools: Vec<network::ipam::PoolSpec>,
    /// Manage NAT and published ports (nftables here).
    iptables: Option<bool>,
    ip_forward: Option<bool>,
    icc: Option<bool>,
    mtu: Option<u32>,
    #[serde(default)]
    dns: Vec<String>,
    #[serde(default)]
    dns_search: Vec<String>,
    #[serde(default)]
    dns_opts: Vec<String>,
    host_gateway_ip: Option<std::net::Ipv4Addr>,
}

#[derive(Debug, Deserialize)]
struct RuntimeEntry {
    path: PathBuf,
}

/// Everything the daemon runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub engine: engine::EngineConfig,
    pub hosts: Vec<String>,
    pub debug: bool,
    pub pidfile: Option<PathBuf>,
    /// TLS of the tcp:// hosts; `None`: plain.
    pub tls: Option<tls::ServerTls>,
}

impl Settings {
    pub fn resolve(args: &Args) -> Result<Self> {
        let file: FileConfig = match std::fs::read(&args.config_file) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!("invalid configuration file {}", args.config_file.display())
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => FileConfig::default(),
            Err(e) => {
                return Err(e).with_context(|| format!("read {}", args.config_file.display()));
            }
        };
        let network = network_options(args, &file)?;
        let data_root = args
            .data_root
            .clone()
            .or(file.data_root)
            .unwrap_or_else(|| "/var/lib/berth".into());
        let run_root = args
            .exec_root
            .clone()
            .or(file.exec_root)
            .unwrap_or_else(|| "/run/berth".into());
        let tls = args
            .tls
            .over(&tls::TlsKeys {
                tls: file.tls,
                tlsverify: file.tlsverify,
                tlscacert: file.tlscacert,
                tlscert: file.tlscert,
                tlskey: file.tlskey,
            })
            .resolve(&tls::default_cert_dir(|name| std::env::var_os(name)));
        let mut hosts = if args.hosts.is_empty() {
            file.hosts
        } else {
            args.hosts.clone()
        };
        if hosts.is_empty() {
            // As dockerd: with TLS on, the default host is tcp://localhost:2376.
            hosts.push(match tls {
                Some(_) => tls::DEFAULT_TLS_HOST.to_string(),
                None => format!("unix://{}", run_root.join("berth.sock").display()),
            });
        }
        let shim_binary = match &args.shim {
            Some(path) => path.clone(),
            None => std::env::current_exe()
                .context("locate berthd")?
                .with_file_name("berth-shim"),
        };
        // The init: the configured path, else berth-init next to berthd, else on PATH.
        let init_binary = file.init_path.or_else(|| {
            std::env::current_exe()
                .ok()
                .map(|exe| exe.with_file_name("berth-init"))
                .filter(|candidate| candidate.is_file())
                .or_else(|| find_in_path("berth-init"))
        });
        let mut runtimes: HashMap<String, PathBuf> = file
            .runtimes
            .into_iter()
            .map(|(name, entry)| (name, entry.path))
            .collect();
        for name in ["runc", "crun"] {
            if !runtimes.contains_key(name)
                && let Some(path) = find_in_path(name)
            {
                runtimes.insert(name.to_string(), path);
            }
        }
        if let Some(path) = find_in_path("berth-runtime") {
            runtimes.entry("berth-runtime".into()).or_insert(path);
        }
        let mut volume_plugins = volume::PluginConfig::default();
        let plugin_dirs = if args.plugin_dirs.is_empty() {
            file.plugin_dirs
        } else {
            args.plugin_dirs.clone()
        };
        if !plugin_dirs.is_empty() {
            volume_plugins.dirs = plugin_dirs;
        }
        if let Some(seconds) = args.plugin_timeout.or(file.plugin_timeout) {
            if !(seconds > 0.0 && seconds.is_finite()) {
                anyhow::bail!(
                    "invalid plugin timeout {seconds}: must be a positive number of seconds"
                );
            }
            volume_plugins.timeout = std::time::Duration::from_secs_f64(seconds);
        }
        Ok(Self {
            engine: engine::EngineConfig {
                data_root,
                run_root,
                shim_binary,
                runtimes,
                init_binary,
                default_init: file.init.unwrap_or(false),
                volume_plugins,
                network,
            },
            hosts,
            debug: args.debug || file.debug.unwrap_or(false),
            pidfile: args.pidfile.clone().or(file.pidfile),
            tls,
        })
    }
}

/// The networking settings: flags over daemon.json over dockerd's defaults (bridge `berth0`,
/// 172.17.0.0/16 when free). The nftables table is named after the bridge (`berth` for the
/// default one), so daemons with different bridges never share one.
fn network_options(args: &Args, file: &FileConfig) -> Result<engine::networks::NetworkOptions> {
    let mut options = engine::networks::NetworkOptions::default();
    if let Some(bridge) = args.bridge.clone().or_else(|| file.bridge.clone()) {
        if bridge.is_empty() || bridge.len() > 15 {
            bail!("invalid bridge name {bridge:?}: 1 to 15 characters");
        }
        options.bridge = bridge;
    }
    options.table = match options.bridge.as_str() {
        "berth0" | "none" => "berth".to_string(),
        other => other.to_string(),
    };
    if let Some(bip) = args.bip.clone().or_else(|| file.bip.clone()) {
        options.bip = Some(
            bip.parse()
                .with_context(|| format!("invalid bip {bip:?}: want ADDRESS/PREFIX"))?,
        );
    }
    let mut pools = Vec::new();
    for text in &args.default_address_pools {
        pools.push(parse_pool(text)?);
    }
    if pools.is_empty() {
        pools = file.default_address_pools.clone();
    }
    if !pools.is_empty() {
        options.pools = pools;
    }
    options.firewall = args.iptables.or(file.iptables).unwrap_or(true);
    options.ip_forward = args.ip_forward.or(file.ip_forward).unwrap_or(true);
    options.icc = file.icc.unwrap_or(true);
    options.mtu = args.mtu.or(file.mtu);
    options.dns = if args.dns.is_empty() {
        file.dns.clone()
    } else {
        args.dns.clone()
    };
    options.dns_search = file.dns_search.clone();
    options.dns_options = file.dns_opts.clone();
    options.host_gateway_ip = file.host_gateway_ip;
    Ok(options)
}

/// `--default-address-pool base=10.10.0.0/16,size=24`.
fn parse_pool(text: &str) -> Result<network::ipam::PoolSpec> {
    let mut base = None;
    let mut size = None;
    for part in text.split(',') {
        match part.split_once('=') {
            Some(("base", value)) => base = Some(value.parse().context("pool base")?),
            Some(("size", value)) => size = Some(value.parse().context("pool size")?),
            _ => bail!("invalid address pool {text:?}: want base=CIDR,size=BITS"),
        }
    }
    match (base, size) {
        (Some(base), Some(size)) => Ok(network::ipam::PoolSpec { base, size }),
        _ => bail!("invalid address pool {text:?}: want base=CIDR,size=BITS"),
    }
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| PathBuf::from(dir).join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_json_takes_dockerd_tls_keys() {
        let file: FileConfig = serde_json::from_str(
            r#"{"tls": true, "tlsverify": false, "tlscacert": "/c/ca.pem",
                "tlscert": "/c/cert.pem", "tlskey": "/c/key.pem"}"#,
        )
        .unwrap();
        assert_eq!(file.tls, Some(true));
        assert_eq!(file.tlsverify, Some(false));
        assert_eq!(file.tlscacert, Some("/c/ca.pem".into()));
        assert_eq!(file.tlscert, Some("/c/cert.pem".into()));
        assert_eq!(file.tlskey, Some("/c/key.pem".into()));
        assert!(serde_json::from_str::<FileConfig>(r#"{"tlsverfy": true}"#).is_err());
    }
}
