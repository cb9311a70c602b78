//! `berth-runtime`: an OCI runtime with runc's command line, over the `runtime` library, so
//! engines that drive runc (podman/conmon, containerd, dockerd) can use it as their runtime.

mod commands;
mod log;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Global flags, as runc takes them (before the command).
#[derive(Debug, Parser)]
#[command(name = "berth-runtime", version = version_text(), about = "An OCI runtime with runc's command line")]
struct Cli {
    /// Root directory for container state.
    #[arg(long, global = true, default_value = runtime::state::DEFAULT_ROOT)]
    root: PathBuf,
    /// Write logs (and errors) to this file instead of stderr.
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: log::LogFormat,
    /// Read cgroupsPath as systemd's "slice:prefix:name".
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Debug logging.
    #[arg(long, global = true)]
    debug: bool,
    /// Accepted for runc compatibility (rootless mode is detected).
    #[arg(long, hide = true)]
    rootless: Option<String>,
    /// Accepted for runc compatibility.
    #[arg(long, global = true, hide = true)]
    criu: Option<String>,
    #[command(subcommand)]
    command: commands::Command,
}

fn version_text() -> &'static str {
    concat!(env!("CARGO_PKG_VERSION"), "\nspec: ", "1.2.0")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let logger = log::Logger::install(cli.log.as_deref(), cli.log_format, cli.debug);
    match commands::run(&cli.command, &cli.root, cli.systemd_cgroup) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(error) => {
            logger.error(&error);
            ExitCode::FAILURE
        }
    }
}
