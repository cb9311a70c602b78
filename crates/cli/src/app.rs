//! The command line: clap definitions, host selection, dispatch and docker-style error output.

use clap::{Parser, Subcommand};
use client::Client;

use crate::{attach, container, cp, disk, exec, image, ops, run, stats, system, tls, volume};

/// Exit status and message of a failed command, printed on stderr by [`main`].
#[derive(Debug)]
pub struct Failure {
    /// Process exit status.
    pub status: i32,
    /// Message (empty: nothing to print, the command already reported).
    pub message: String,
}

impl Failure {
    /// A failure with status 1.
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            status: 1,
            message: message.into(),
        }
    }

    /// The same failure with another exit status.
    pub fn with_status(mut self, status: i32) -> Self {
        self.status = status;
        self
    }

    /// A silent failure (messages already printed).
    pub fn silent(status: i32) -> Self {
        Failure {
            status,
            message: String::new(),
        }
    }
}

impl From<client::Error> for Failure {
    fn from(e: client::Error) -> Self {
        Failure::new(describe(&e))
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::new(e.to_string())
    }
}

impl From<crate::template::TemplateError> for Failure {
    fn from(e: crate::template::TemplateError) -> Self {
        Failure::new(e.to_string())
    }
}

/// How docker words client errors: daemon answers are prefixed with "Error response from
/// daemon:", unreachable sockets get the "Cannot connect" hint.
pub fn describe(e: &client::Error) -> String {
    match e {
        client::Error::Daemon { message, .. } => format!("Error response from daemon: {message}"),
        client::Error::Connect { host, source } => format!(
            "Cannot connect to the berth daemon at {host}. Is the daemon running? ({source})"
        ),
        client::Error::TlsConfig(message) => format!("Failed to initialize: {message}"),
        other => format!("error during connect: {other}"),
    }
}

/// Result of a command: the exit status on success.
pub type CmdResult = Result<i32, Failure>;

/// docker's `inspect` output for objects fetched one by one: their JSON as one indented array,
/// or one `--format` line per object; a name that fails is reported on stderr and the others
/// still print (exit status 1 then).
pub async fn inspect_each<'a, F, Fut>(
    names: &'a [String],
    format: Option<&str>,
    mut fetch: F,
) -> CmdResult
where
    F: FnMut(&'a str) -> Fut,
    Fut: std::future::Future<Output = Result<bytes::Bytes, Failure>>,
{
    let template = match format {
        Some(f) if !f.is_empty() && f != "json" => {
            let (_, body) = crate::template::prepare_format(f);
            Some(crate::template::Template::parse(&body)?)
        }
        _ => None,
    };
    let mut raws = Vec::new();
    let mut failed = false;
    for name in names {
        match fetch(name.as_str()).await {
            Ok(raw) => match &template {
                Some(t) => {
                    let value: serde_json::Value = serde_json::from_slice(&raw)
                        .map_err(|e| Failure::new(format!("decode: {e}")))?;
                    println!("{}", t.execute(&value)?);
                }
                None => raws.push(raw),
            },
            Err(f) => {
                eprintln!("{}", f.message);
                failed = true;
            }
        }
    }
    if template.is_none() {
        println!("{}", crate::format::inspect_output(&raws));
    }
    Ok(if failed { 1 } else { 0 })
}

/// berth: a Docker-compatible command line for the berthd daemon.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about, disable_help_subcommand = true)]
pub struct Cli {
    /// Daemon socket to connect to (unix:///path or tcp://host:port).
    // Only before the command, as in docker: `history -H` means --human.
    #[arg(short = 'H', long = "host")]
    pub host: Option<String>,
    /// TLS: --tls, --tlsverify, --tlscacert, --tlscert, --tlskey (before the command too).
    #[command(flatten)]
    pub tls: tls::TlsFlags,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// All commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and run a new container from an image
    Run(run::RunArgs),
    /// Create a new container
    Create(run::CreateArgs),
    /// Start one or more stopped containers
    Start(container::StartArgs),
    /// Stop one or more running containers
    Stop(container::StopArgs),
    /// Restart one or more containers
    Restart(container::StopArgs),
    /// Kill one or more running containers
    Kill(container::KillArgs),
    /// Remove one or more containers
    Rm(container::RmArgs),
    /// List containers
    Ps(container::PsArgs),
    /// Fetch the logs of a container
    Logs(container::LogsArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(container::WaitArgs),
    /// Return low-level information on containers or images
    Inspect(container::InspectArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(attach::AttachArgs),
    /// Execute a command in a running container
    Exec(exec::ExecArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(cp::CpArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(stats::StatsArgs),
    /// Display the running processes of a container
    Top(ops::TopArgs),
    /// Pause all processes within one or more containers
    Pause(ops::ContainersArgs),
    /// Unpause all processes within one or more containers
    Unpause(ops::ContainersArgs),
    /// Rename a container
    Rename(ops::RenameArgs),
    /// Update configuration of one or more containers
    Update(ops::UpdateArgs),
    /// Export a container's filesystem as a tar archive
    Export(ops::ExportArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(ops::DiffArgs),
    /// Create a new image from a container's changes
    Commit(ops::CommitArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// List images
    Images(image::ImagesArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Manage networks
    #[command(subcommand)]
    Network(crate::network::NetworkCommand),
    /// List port mappings or a specific mapping for the container
    Port(crate::network::PortArgs),
    /// Remove one or more images
    Rmi(image::RmiArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(image::TagArgs),
    /// Show the history of an image
    History(image::HistoryArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(image::ImportArgs),
    /// Load an image from a tar archive or STDIN
    Load(image::LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(image::SaveArgs),
    /// Get real time events from the server
    Events(system::EventsArgs),
    /// Display system-wide information
    Info(system::FormatArgs),
    /// Show the berth version information
    Version(system::FormatArgs),
    /// Manage berth
    #[command(subcommand)]
    System(SystemCommand),
    /// Manage volumes
    #[command(subcommand)]
    Volume(VolumeCommand),
}

/// `berth volume ...`
#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume
    Create(volume::CreateArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(volume::LsArgs),
    /// Display detailed information on one or more volumes
    Inspect(volume::InspectArgs),
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm(volume::RmArgs),
    /// Remove unused local volumes
    Prune(volume::PruneArgs),
}

/// `berth system ...`
#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show docker disk usage
    Df(disk::DfArgs),
    /// Remove unused data
    Prune(disk::SystemPruneArgs),
    /// Display system-wide information
    Info(system::FormatArgs),
    /// Get real time events from the server
    Events(system::EventsArgs),
}

/// `berth container ...`
#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Create and run a new container from an image
    Run(run::RunArgs),
    /// Create a new container
    Create(run::CreateArgs),
    /// Start one or more stopped containers
    Start(container::StartArgs),
    /// Stop one or more running containers
    Stop(container::StopArgs),
    /// Restart one or more containers
    Restart(container::StopArgs),
    /// Kill one or more running containers
    Kill(container::KillArgs),
    /// Remove one or more containers
    Rm(container::RmArgs),
    /// List containers
    #[command(alias = "ps", alias = "list")]
    Ls(container::PsArgs),
    /// Fetch the logs of a container
    Logs(container::LogsArgs),
    /// Block until one or more containers stop
    Wait(container::WaitArgs),
    /// Display detailed information on one or more containers
    Inspect(container::InspectArgs),
    /// Remove all stopped containers
    Prune(container::PruneArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(attach::AttachArgs),
    /// Execute a command in a running container
    Exec(exec::ExecArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(cp::CpArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(stats::StatsArgs),
    /// Display the running processes of a container
    Top(ops::TopArgs),
    /// Pause all processes within one or more containers
    Pause(ops::ContainersArgs),
    /// Unpause all processes within one or more containers
    Unpause(ops::ContainersArgs),
    /// Rename a container
    Rename(ops::RenameArgs),
    /// Update configuration of one or more containers
    Update(ops::UpdateArgs),
    /// Export a container's filesystem as a tar archive
    Export(ops::ExportArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(ops::DiffArgs),
    /// Create a new image from a container's changes
    Commit(ops::CommitArgs),
    /// List port mappings or a specific mapping for the container
    Port(crate::network::PortArgs),
}

/// `berth image ...`
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images
    #[command(alias = "list")]
    Ls(image::ImagesArgs),
    /// Display detailed information on one or more images
    Inspect(container::InspectArgs),
    /// Remove one or more images
    Rm(image::RmiArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(image::TagArgs),
    /// Show the history of an image
    History(image::HistoryArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(image::ImportArgs),
    /// Load an image from a tar archive or STDIN
    Load(image::LoadArgs),
    /// Save one or more images to a tar archive
    Save(image::SaveArgs),
    /// Remove unused images
    Prune(image::PruneArgs),
}

/// The daemon to talk to: its address and, for a `tcp://` one, the TLS to use.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `unix:///path` or `tcp://host:port`.
    pub host: String,
    /// `None`: plain.
    pub tls: Option<client::TlsOptions>,
}

impl Endpoint {
    /// The daemon named by the global flags and the environment.
    pub fn select(host: Option<&str>, tls: &tls::TlsFlags) -> Endpoint {
        let tls = tls.options();
        Endpoint {
            host: select_host(host, tls.is_some()),
            tls,
        }
    }

    /// A client of this daemon (the TLS files are read here).
    pub fn client(&self) -> client::Result<Client> {
        Client::with_tls(&self.host, self.tls.as_ref())
    }
}

/// The daemon address: `-H`, then `BERTH_HOST`, then `DOCKER_HOST`, then the default socket
/// (with TLS on: `tcp://localhost:2376`, as docker).
pub fn select_host(flag: Option<&str>, tls: bool) -> String {
    flag.map(str::to_string)
        .or_else(|| std::env::var("BERTH_HOST").ok().filter(|s| !s.is_empty()))
        .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| {
            if tls {
                client::DEFAULT_TLS_HOST
            } else {
                client::DEFAULT_HOST
            }
            .to_string()
        })
}

/// A client with the API version agreed with the daemon (`DOCKER_API_VERSION` pins it).
pub async fn connect(host: &Endpoint) -> Result<Client, Failure> {
    let mut c = host.client()?;
    if let Ok(v) = std::env::var("DOCKER_API_VERSION")
        && !v.is_empty()
    {
        c.set_api_version(&v);
        return Ok(c);
    }
    c.negotiate().await?;
    Ok(c)
}

/// Parses the arguments, runs the command and returns the exit status.
pub async fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // Help and --version print on stdout and succeed; flag errors exit 125 as in
            // docker (its FlagErrorFunc returns status 125 for every command).
            let usage_only =
                e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand;
            return if e.use_stderr() && !usage_only {
                125
            } else {
                0
            };
        }
    };
    let host = Endpoint::select(cli.host.as_deref(), &cli.tls);
    let result = dispatch(&host, cli.command).await;
    match result {
        Ok(code) => code,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("{}", f.message);
            }
            f.status
        }
    }
}

async fn dispatch(host: &Endpoint, command: Command) -> CmdResult {
    let c = || connect(host);
    match command {
        Command::Run(a) | Command::Container(ContainerCommand::Run(a)) => run::run(host, a).await,
        Command::Create(a) | Command::Container(ContainerCommand::Create(a)) => {
            run::create(host, a).await
        }
        Command::Start(a) | Command::Container(ContainerCommand::Start(a)) => {
            container::start(&c().await?, a).await
        }
        Command::Stop(a) | Command::Container(ContainerCommand::Stop(a)) => {
            container::stop(&c().await?, a, false).await
        }
        Command::Restart(a) | Command::Container(ContainerCommand::Restart(a)) => {
            container::stop(&c().await?, a, true).await
        }
        Command::Kill(a) | Command::Container(ContainerCommand::Kill(a)) => {
            container::kill(&c().await?, a).await
        }
        Command::Rm(a) | Command::Container(ContainerCommand::Rm(a)) => {
            container::rm(&c().await?, a).await
        }
        Command::Ps(a) | Command::Container(ContainerCommand::Ls(a)) => {
            container::ps(&c().await?, a).await
        }
        Command::Logs(a) | Command::Container(ContainerCommand::Logs(a)) => {
            container::logs(&c().await?, a).await
        }
        Command::Wait(a) | Command::Container(ContainerCommand::Wait(a)) => {
            container::wait(&c().await?, a).await
        }
        Command::Inspect(a) => container::inspect(&c().await?, a, None).await,
        Command::Container(ContainerCommand::Inspect(a)) => {
            container::inspect(&c().await?, a, Some("container")).await
        }
        Command::Container(ContainerCommand::Prune(a)) => container::prune(&c().await?, a).await,
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => {
            image::images(&c().await?, a).await
        }
        Command::Image(ImageCommand::Inspect(a)) => {
            container::inspect(&c().await?, a, Some("image")).await
        }
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => image::rmi(&c().await?, a).await,
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => image::tag(&c().await?, a).await,
        Command::History(a) | Command::Image(ImageCommand::History(a)) => {
            image::history(&c().await?, a).await
        }
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => {
            image::import(&c().await?, a).await
        }
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => {
            image::load(&c().await?, a).await
        }
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => {
            image::save(&c().await?, a).await
        }
        Command::Image(ImageCommand::Prune(a)) => image::prune(&c().await?, a).await,
        Command::Network(command) => {
            use crate::network::{self, NetworkCommand};
            let c = c().await?;
            match command {
                NetworkCommand::Create(a) => network::create(&c, a).await,
                NetworkCommand::Ls(a) => network::ls(&c, a).await,
                NetworkCommand::Inspect(a) => network::inspect(&c, a).await,
                NetworkCommand::Rm(a) => network::rm(&c, a).await,
                NetworkCommand::Prune(a) => network::prune(&c, a).await,
                NetworkCommand::Connect(a) => network::connect(&c, a).await,
                NetworkCommand::Disconnect(a) => network::disconnect(&c, a).await,
            }
        }
        Command::Port(a) | Command::Container(ContainerCommand::Port(a)) => {
            crate::network::port(&c().await?, a).await
        }
        Command::Attach(a) | Command::Container(ContainerCommand::Attach(a)) => {
            attach::attach(&c().await?, a).await
        }
        Command::Exec(a) | Command::Container(ContainerCommand::Exec(a)) => {
            exec::exec(&c().await?, a).await
        }
        Command::Cp(a) | Command::Container(ContainerCommand::Cp(a)) => {
            cp::cp(&c().await?, a).await
        }
        Command::Stats(a) | Command::Container(ContainerCommand::Stats(a)) => {
            stats::stats(&c().await?, a).await
        }
        Command::Top(a) | Command::Container(ContainerCommand::Top(a)) => {
            ops::top(&c().await?, a).await
        }
        Command::Pause(a) | Command::Container(ContainerCommand::Pause(a)) => {
            ops::pause(&c().await?, a).await
        }
        Command::Unpause(a) | Command::Container(ContainerCommand::Unpause(a)) => {
            ops::unpause(&c().await?, a).await
        }
        Command::Rename(a) | Command::Container(ContainerCommand::Rename(a)) => {
            ops::rename(&c().await?, a).await
        }
        Command::Update(a) | Command::Container(ContainerCommand::Update(a)) => {
            ops::update(&c().await?, a).await
        }
        Command::Export(a) | Command::Container(ContainerCommand::Export(a)) => {
            ops::export(&c().await?, a).await
        }
        Command::Diff(a) | Command::Container(ContainerCommand::Diff(a)) => {
            ops::diff(&c().await?, a).await
        }
        Command::Commit(a) | Command::Container(ContainerCommand::Commit(a)) => {
            ops::commit(&c().await?, a).await
        }
        Command::System(SystemCommand::Df(a)) => disk::df(&c().await?, a).await,
        Command::System(SystemCommand::Prune(a)) => disk::prune(&c().await?, a).await,
        Command::Events(a) | Command::System(SystemCommand::Events(a)) => {
            system::events(&c().await?, a).await
        }
        Command::Info(a) | Command::System(SystemCommand::Info(a)) => {
            system::info(&c().await?, a).await
        }
        Command::Version(a) => system::version(host, a).await,
        Command::Volume(VolumeCommand::Create(a)) => volume::create(&c().await?, a).await,
        Command::Volume(VolumeCommand::Ls(a)) => volume::ls(&c().await?, a).await,
        Command::Volume(VolumeCommand::Inspect(a)) => volume::inspect(&c().await?, a).await,
        Command::Volume(VolumeCommand::Rm(a)) => volume::rm(&c().await?, a).await,
        Command::Volume(VolumeCommand::Prune(a)) => volume::prune(&c().await?, a).await,
    }
}

/// Parses repeated `--filter key=value` flags.
pub fn parse_filters(flags: &[String]) -> Result<client::Filters, Failure> {
    let mut f = client::Filters::new();
    for flag in flags {
        let (k, v) = flag
            .split_once('=')
            .ok_or_else(|| Failure::new("bad format of filter (expected name=value)"))?;
        f.entry(k.trim().to_lowercase())
            .or_default()
            .push(v.to_string());
    }
    Ok(f)
}

/// Asks "Are you sure you want to continue? [y/N]" on stdout (as docker's
/// `PromptForConfirmation`) and reads the answer.
pub fn confirm(warning: &str) -> bool {
    use std::io::{BufRead, Write};
    let mut out = std::io::stdout();
    let _ = write!(out, "{warning}\nAre you sure you want to continue? [y/N] ");
    let _ = out.flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_lowercase().as_str(), "y" | "yes")
}
