//! The daemon's settings: command-line flags over the optional JSON configuration file
//! (dockerd's daemon.json key names), over defaults.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
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
            },
            hosts,
            debug: args.debug || file.debug.unwrap_or(false),
            pidfile: args.pidfile.clone().or(file.pidfile),
            tls,
        })
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
