//! `berthd`: serves the Docker Engine API on a unix socket (and TCP, with TLS, when asked), over
//! the engine. Containers outlive it: each has its own shim, and a restarted daemon reattaches.

mod config;
mod idle;
mod tls;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Parser;

/// Command line of berthd (flags named as dockerd's).
#[derive(Debug, Parser)]
#[command(
    name = "berthd",
    version,
    about = "Berth's container engine daemon (Docker Engine API)"
)]
pub struct Args {
    /// TLS of tcp:// hosts: --tls, --tlsverify, --tlscacert, --tlscert, --tlskey.
    #[command(flatten)]
    tls: tls::TlsKeys,
    /// Persistent state: images, containers, logs.
    #[arg(long = "data-root")]
    data_root: Option<PathBuf>,
    /// Runtime state: sockets, shims.
    #[arg(long = "exec-root")]
    exec_root: Option<PathBuf>,
    /// Sockets to listen on: unix:///path or tcp://host:port (repeatable).
    #[arg(short = 'H', long = "host")]
    hosts: Vec<String>,
    /// Debug logging.
    #[arg(short = 'D', long)]
    debug: bool,
    /// JSON configuration file (dockerd's daemon.json keys: data-root, exec-root, hosts, debug,
    /// runtimes, tls, tlsverify, tlscacert, tlscert, tlskey, init, init-path, bridge, bip,
    /// default-address-pools, iptables, ip-forward, icc, mtu, dns, dns-search, dns-opts,
    /// host-gateway-ip).
    #[arg(long = "config-file", default_value = "/etc/berth/daemon.json")]
    config_file: PathBuf,
    /// The berth-shim binary (default: next to berthd).
    #[arg(long)]
    shim: Option<PathBuf>,
    /// Write the daemon's pid here.
    #[arg(short = 'p', long)]
    pidfile: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", default_value = "text")]
    log_format: String,
    /// Directory searched for volume plugins (sockets, .spec and .json files); repeatable.
    /// Default: /run/docker/plugins, /etc/docker/plugins, /usr/lib/docker/plugins.
    #[arg(long = "plugin-dir")]
    plugin_dirs: Vec<PathBuf>,
    /// Seconds a volume plugin has to answer one call (default 30).
    #[arg(long = "plugin-timeout")]
    plugin_timeout: Option<f64>,
    /// The default bridge ("none": no default bridge).
    #[arg(short = 'b', long)]
    bridge: Option<String>,
    /// The default bridge's address and prefix, e.g. 172.17.0.1/16.
    #[arg(long)]
    bip: Option<String>,
    /// Address pools of new networks: base=CIDR,size=BITS (repeatable).
    #[arg(long = "default-address-pool")]
    default_address_pools: Vec<String>,
    /// Manage NAT and published ports (nftables).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    iptables: Option<bool>,
    /// Set net.ipv4.ip_forward.
    #[arg(long = "ip-forward", num_args = 0..=1, default_missing_value = "true")]
    ip_forward: Option<bool>,
    /// DNS servers of containers (repeatable).
    #[arg(long)]
    dns: Vec<String>,
    /// MTU of the default bridge and its containers.
    #[arg(long)]
    mtu: Option<u32>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let settings = config::Settings::resolve(&args)?;
    let filter = tracing_subscriber::EnvFilter::new(if settings.debug { "debug" } else { "info" });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if args.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
    // Two worker threads: the daemon mostly waits; containers run in their shims.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the async runtime")?;
    runtime.block_on(serve(settings))
}

async fn serve(settings: config::Settings) -> Result<()> {
    // Certificate files first: a bad one stops the daemon before it touches any state.
    let acceptor = settings.tls.as_ref().map(tls::acceptor).transpose()?;
    let engine = engine::Engine::open(settings.engine.clone())
        .await
        .map_err(|e| anyhow::anyhow!("open the engine: {e}"))?;
    if let Some(pidfile) = &settings.pidfile {
        std::fs::write(pidfile, std::process::id().to_string())
            .with_context(|| format!("write {}", pidfile.display()))?;
    }
    let activity = std::sync::Arc::new(idle::Activity::default());
    tokio::spawn(idle::trim_when_quiet(activity.clone()));
    let app = api::router(engine.clone())
        .layer(axum::middleware::from_fn_with_state(activity, idle::track));
    let mut servers = Vec::new();
    for host in &settings.hosts {
        if let Some(path) = host.strip_prefix("unix://") {
            let listener = bind_unix(Path::new(path))?;
            tracing::info!("API listening on {host}");
            let app = app.clone();
            servers.push(tokio::spawn(
                async move { axum::serve(listener, app).await },
            ));
        } else if let Some(address) = host.strip_prefix("tcp://") {
            let listener = tokio::net::TcpListener::bind(tls::bind_address(address))
                .await
                .with_context(|| format!("listen on {host}"))?;
            let app = app.clone();
            match (&acceptor, &settings.tls) {
                (Some(acceptor), Some(tls)) => {
                    if tls.verify {
                        tracing::info!(
                            "API listening on {host} (TLS, client certificates verified)"
                        );
                    } else {
                        tracing::warn!(
                            "API listening on {host} with TLS but without --tlsverify: anyone who reaches it is root"
                        );
                    }
                    let listener = tls::TlsListener::new(listener, acceptor.clone())?;
                    servers.push(tokio::spawn(
                        async move { axum::serve(listener, app).await },
                    ));
                }
                _ => {
                    tracing::warn!(
                        "API listening on {host} without TLS: anyone who reaches it is root"
                    );
                    servers.push(tokio::spawn(
                        async move { axum::serve(listener, app).await },
                    ));
                }
            }
        } else {
            bail!("unsupported host {host:?} (unix:///path or tcp://host:port)");
        }
    }
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down; containers keep running");
    for host in &settings.hosts {
        if let Some(path) = host.strip_prefix("unix://") {
            let _ = std::fs::remove_file(path);
        }
    }
    if let Some(pidfile) = &settings.pidfile {
        let _ = std::fs::remove_file(pidfile);
    }
    drop(engine);
    Ok(())
}

/// Binds the API socket: root-only (0600) unless a `berth` group exists, whose members then get
/// access (0660), as dockerd does with its `docker` group.
fn bind_unix(path: &Path) -> Result<tokio::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    }
    // A stale socket of a previous run: refuse if something still answers on it.
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!("{} is in use by another daemon", path.display());
        }
        std::fs::remove_file(path).with_context(|| format!("remove stale {}", path.display()))?;
    }
    let listener =
        tokio::net::UnixListener::bind(path).with_context(|| format!("bind {}", path.display()))?;
    let group = nix::unistd::Group::from_name("berth").ok().flatten();
    let mode = if group.is_some() { 0o660 } else { 0o600 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    if let Some(group) = group {
        nix::unistd::chown(path, None, Some(group.gid))?;
    }
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_like_dockerd() {
        let args = Args::try_parse_from([
            "berthd",
            "-H",
            "unix:///tmp/x.sock",
            "--data-root",
            "/tmp/d",
            "-D",
        ])
        .unwrap();
        assert_eq!(args.hosts, vec!["unix:///tmp/x.sock"]);
        assert!(args.debug);
        assert_eq!(args.data_root, Some(PathBuf::from("/tmp/d")));
    }
}
