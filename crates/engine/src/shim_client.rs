//! Talking to a container's `berth-shim`: starting it, and its socket protocol (one JSON request
//! per connection, one JSON answer line). See the shim crate for the other side.

use std::path::{Path, PathBuf};

use shim::protocol::{Request, StateDir};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::error::{Error, Result};

/// How a container's init ended: the shim's exit record.
pub use shim::protocol::ExitRecord as ExitStatus;

/// What a shim is started with.
pub struct ShimLaunch<'a> {
    pub shim_binary: &'a Path,
    pub id: &'a str,
    pub bundle: &'a Path,
    pub state_dir: &'a Path,
    pub log: &'a Path,
    pub tty: bool,
    pub stdin: bool,
    pub runtime: Option<&'a Path>,
}

/// Starts the shim; returns the init's pid once the container runs.
pub async fn launch(launch: &ShimLaunch<'_>) -> Result<i32> {
    let mut command = tokio::process::Command::new(launch.shim_binary);
    command
        .arg("start")
        .arg("--id")
        .arg(launch.id)
        .arg("--bundle")
        .arg(launch.bundle)
        .arg("--state-dir")
        .arg(launch.state_dir)
        .arg("--log")
        .arg(launch.log);
    if launch.tty {
        command.arg("--tty");
    }
    if launch.stdin {
        command.arg("--stdin");
    }
    if let Some(runtime) = launch.runtime {
        command.arg("--runtime").arg(runtime);
    }
    command
        .stdin(std::process::Stdio::null())
        .kill_on_drop(false);
    let output = command.output().await.map_err(|e| {
        Error::internal(format!(
            "cannot start {}: {e}",
            launch.shim_binary.display()
        ))
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default().trim().to_string();
    if let Some(pid) = line.strip_prefix("ok ") {
        return pid
            .trim()
            .parse()
            .map_err(|_| Error::internal(format!("shim said {line:?}")));
    }
    let message = line
        .strip_prefix("error ")
        .map(str::to_string)
        .unwrap_or_else(|| {
            let stderr = String::from_utf8_lossy(&output.stderr);
            format!("shim failed: {} {}", line, stderr.trim())
        });
    Err(start_error(&message))
}

/// Docker reports a program that cannot be started as a 400-class error with this wording.
fn start_error(message: &str) -> Error {
    let message = format!(
        "failed to create task for container: failed to create shim task: OCI runtime create failed: {message}: unknown"
    );
    Error::internal(message)
}

/// Socket path of a shim.
pub fn socket(state_dir: &Path) -> PathBuf {
    StateDir(state_dir.to_path_buf()).socket()
}

async fn request(state_dir: &Path, body: Request) -> std::io::Result<serde_json::Value> {
    let mut stream = UnixStream::connect(socket(state_dir)).await?;
    let mut line = serde_json::to_string(&body).map_err(std::io::Error::other)?;
    line.push('\n');
    stream.write_all(line.as_bytes()).await?;
    let mut reader = BufReader::new(stream);
    let mut answer = String::new();
    reader.read_line(&mut answer).await?;
    if answer.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "shim closed",
        ));
    }
    serde_json::from_str(&answer).map_err(std::io::Error::other)
}

/// Blocks until the container's init exits. Falls back to exit.json when the shim is gone.
pub async fn wait(state_dir: &Path) -> ExitStatus {
    let answer = request(state_dir, Request::Wait).await.ok();
    answer
        .and_then(|answer| serde_json::from_value(answer).ok())
        .or_else(|| read_exit_file(state_dir))
        .unwrap_or_else(lost_exit)
}

/// The exit of a container whose shim vanished without a record (killed with its daemon's
/// machine, say): Docker reports such a container as exited with 255.
pub fn lost_exit() -> ExitStatus {
    ExitStatus {
        exit_code: 255,
        signal: None,
        finished_at: chrono::Utc::now(),
        oom_killed: false,
    }
}

/// exit.json, if the container ended.
pub fn read_exit_file(state_dir: &Path) -> Option<ExitStatus> {
    StateDir(state_dir.to_path_buf()).read_exit().ok().flatten()
}

/// Sends a signal to the init (or, with `all`, to every process of the container).
pub async fn kill(state_dir: &Path, signal: i32, all: bool) -> Result<()> {
    let answer = request(state_dir, Request::Kill { signal, all })
        .await
        .map_err(|e| Error::conflict(format!("container is not running: {e}")))?;
    match answer.get("error").and_then(|e| e.as_str()) {
        Some(message) => Err(Error::internal(message.to_string())),
        None => Ok(()),
    }
}

/// Whether a shim still answers on its socket.
pub async fn is_alive(state_dir: &Path) -> bool {
    UnixStream::connect(socket(state_dir)).await.is_ok()
}
