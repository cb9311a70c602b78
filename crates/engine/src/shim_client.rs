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
    /// Docker's StdinOnce: the container's stdin closes when the last attach that carried
    /// stdin ends it.
    pub stdin_once: bool,
    /// Create only: the container's program waits for [`start_held`] (attach before start).
    pub hold: bool,
    pub runtime: Option<&'a Path>,
    /// Where the built-in runtime keeps compiled seccomp programs.
    pub seccomp_cache: &'a Path,
}

/// Starts the shim; returns the init's pid once the container runs (with `hold`: once it is
/// created, its program waiting for [`start_held`]).
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
    if launch.stdin_once {
        command.arg("--stdin-once");
    }
    if launch.hold {
        command.arg("--hold");
    }
    match launch.runtime {
        Some(runtime) => command.arg("--runtime").arg(runtime),
        None => command.arg("--seccomp-cache").arg(launch.seccomp_cache),
    };
    let output = run_shim(command, launch.shim_binary).await?;
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

/// Runs the foreground half of `berth-shim` (it returns once the shim reported).
async fn run_shim(
    mut command: tokio::process::Command,
    binary: &Path,
) -> Result<std::process::Output> {
    command
        .stdin(std::process::Stdio::null())
        .kill_on_drop(false);
    command
        .output()
        .await
        .map_err(|e| Error::internal(format!("cannot start {}: {e}", binary.display())))
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

/// Sends `{"op":"start"}`: runs a held container's program (answer `None`) or an exec shim's
/// process (answer `Some(pid)`). The error is the runtime's message (for an exec: e.g. the
/// executable was not found; the exec shim then removed its state directory and exited).
pub async fn start_held(state_dir: &Path) -> Result<Option<i32>> {
    let answer = request(state_dir, Request::Start)
        .await
        .map_err(|e| Error::conflict(format!("the shim is gone: {e}")))?;
    if let Some(message) = answer.get("error").and_then(|e| e.as_str()) {
        return Err(refused(message));
    }
    Ok(answer
        .get("pid")
        .and_then(|pid| pid.as_i64())
        .map(|pid| pid as i32))
}

/// Opens an attach session: after the shim's `{"ok":true}` line the returned stream carries the
/// process's stdio (see `shim::protocol`): from the shim Docker's multiplexed frames without a
/// tty, raw bytes with one; to the shim raw stdin bytes; `shutdown()` of the write half ends
/// this session's stdin. The shim closes the stream once the output has ended.
pub async fn attach(
    state_dir: &Path,
    stdin: bool,
    stdout: bool,
    stderr: bool,
) -> Result<UnixStream> {
    use tokio::io::AsyncReadExt;
    let mut stream = UnixStream::connect(socket(state_dir))
        .await
        .map_err(|e| Error::conflict(format!("container is not running: {e}")))?;
    let mut line = serde_json::to_string(&Request::Attach {
        stdin,
        stdout,
        stderr,
    })
    .map_err(|e| Error::internal(e.to_string()))?;
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .await
        .map_err(|e| Error::conflict(format!("container is not running: {e}")))?;
    // Byte by byte up to the newline: what follows is already the stream, and must stay in it.
    let mut answer = Vec::new();
    loop {
        let mut byte = [0u8; 1];
        let read = stream
            .read(&mut byte)
            .await
            .map_err(|e| Error::internal(format!("attach: {e}")))?;
        if read == 0 {
            return Err(Error::conflict(
                "container is not running: the shim closed the attach",
            ));
        }
        if byte[0] == b'\n' {
            break;
        }
        answer.push(byte[0]);
        if answer.len() > shim::protocol::MAX_REQUEST {
            return Err(Error::internal("attach: the shim's answer is too long"));
        }
    }
    let answer: serde_json::Value = serde_json::from_slice(&answer)
        .map_err(|e| Error::internal(format!("attach: bad shim answer: {e}")))?;
    match answer.get("error").and_then(|e| e.as_str()) {
        Some(message) => Err(refused(message)),
        None => Ok(stream),
    }
}

/// Sets the window size of the process's terminal. Without a tty: an invalid-argument error.
pub async fn resize(state_dir: &Path, height: u16, width: u16) -> Result<()> {
    let answer = request(state_dir, Request::Resize { height, width })
        .await
        .map_err(|e| Error::conflict(format!("container is not running: {e}")))?;
    match answer.get("error").and_then(|e| e.as_str()) {
        Some(message) => Err(refused(message)),
        None => Ok(()),
    }
}

/// The engine's error for a shim's `{"error": ...}` answer.
fn refused(message: &str) -> Error {
    if message.contains("not a tty") {
        Error::invalid(message.to_string())
    } else if message.contains("not running") {
        Error::conflict(message.to_string())
    } else {
        Error::internal(message.to_string())
    }
}

/// What an exec shim (`berth-shim exec`) is started with.
pub struct ExecLaunch<'a> {
    pub shim_binary: &'a Path,
    /// The container the process runs in.
    pub container_id: &'a str,
    /// The exec shim's state directory (`<run_root>/execs/<first 16 hex of the exec id>`).
    pub state_dir: &'a Path,
    /// The container's shim state directory.
    pub container_state_dir: &'a Path,
    /// The process to run (args, env, cwd, user, terminal, capabilities...).
    pub process: &'a oci_spec::runtime::Process,
    pub tty: bool,
    pub stdin: bool,
    pub stdin_once: bool,
    pub runtime: Option<&'a Path>,
    /// Where the built-in runtime keeps compiled seccomp programs.
    pub seccomp_cache: &'a Path,
}

/// Starts an exec shim; returns once it listens on its socket, before anything runs. Then:
/// [`attach`], [`start_held`] (gives the pid), [`resize`], [`wait`], [`kill`] on `state_dir`.
pub async fn launch_exec(launch: &ExecLaunch<'_>) -> Result<()> {
    // The process JSON goes next to the state directory (which the shim makes afresh); the
    // shim keeps its own copy, this one is removed once it answered.
    let name = launch
        .state_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let process_file = launch
        .state_dir
        .with_file_name(format!(".{name}.process.json"));
    if let Some(parent) = process_file.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| Error::internal(format!("create {}: {e}", parent.display())))?;
    }
    let json = serde_json::to_vec(launch.process).map_err(|e| Error::internal(e.to_string()))?;
    tokio::fs::write(&process_file, json)
        .await
        .map_err(|e| Error::internal(format!("write {}: {e}", process_file.display())))?;
    let mut command = tokio::process::Command::new(launch.shim_binary);
    command
        .arg("exec")
        .arg("--id")
        .arg(launch.container_id)
        .arg("--state-dir")
        .arg(launch.state_dir)
        .arg("--container-state-dir")
        .arg(launch.container_state_dir)
        .arg("--process")
        .arg(&process_file);
    if launch.tty {
        command.arg("--tty");
    }
    if launch.stdin {
        command.arg("--stdin");
    }
    if launch.stdin_once {
        command.arg("--stdin-once");
    }
    match launch.runtime {
        Some(runtime) => command.arg("--runtime").arg(runtime),
        None => command.arg("--seccomp-cache").arg(launch.seccomp_cache),
    };
    let output = run_shim(command, launch.shim_binary).await;
    let _ = tokio::fs::remove_file(&process_file).await;
    let output = output?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default().trim().to_string();
    if line.starts_with("ok ") {
        return Ok(());
    }
    match line.strip_prefix("error ") {
        Some(message) => Err(refused(message)),
        None => Err(Error::internal(format!(
            "exec shim failed: {line} {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))),
    }
}

/// Whether a shim still answers on its socket.
pub async fn is_alive(state_dir: &Path) -> bool {
    UnixStream::connect(socket(state_dir)).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use types::ErrorKind;

    /// A fake shim: answers one connection with `reply` (written in one piece) and returns the
    /// request line it got.
    fn fake_shim(dir: &Path, reply: &'static [u8]) -> tokio::task::JoinHandle<String> {
        let listener = tokio::net::UnixListener::bind(socket(dir)).unwrap();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            reader.read_line(&mut line).await.unwrap();
            let mut stream = reader.into_inner();
            stream.write_all(reply).await.unwrap();
            line
        })
    }

    #[tokio::test]
    async fn attach_keeps_the_bytes_after_the_ok_line() {
        let dir = tempfile::tempdir().unwrap();
        let shim = fake_shim(
            dir.path(),
            b"{\"ok\":true}\n\x01\x00\x00\x00\x00\x00\x00\x02hi",
        );
        let mut stream = attach(dir.path(), true, true, false).await.unwrap();
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"\x01\x00\x00\x00\x00\x00\x00\x02hi");
        assert_eq!(
            shim.await.unwrap(),
            "{\"op\":\"attach\",\"stdin\":true,\"stdout\":true,\"stderr\":false}\n"
        );
    }

    #[tokio::test]
    async fn shim_refusals_map_to_engine_kinds() {
        let dir = tempfile::tempdir().unwrap();
        let shim = fake_shim(
            dir.path(),
            b"{\"error\":\"cannot resize: the process is not a tty\"}\n",
        );
        let error = resize(dir.path(), 10, 20).await.unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidArgument);
        assert_eq!(
            shim.await.unwrap(),
            "{\"op\":\"resize\",\"height\":10,\"width\":20}\n"
        );
        let _ = std::fs::remove_file(socket(dir.path()));
        let shim = fake_shim(dir.path(), b"{\"ok\":true,\"pid\":42}\n");
        assert_eq!(start_held(dir.path()).await.unwrap(), Some(42));
        assert_eq!(shim.await.unwrap(), "{\"op\":\"start\"}\n");
        let _ = std::fs::remove_file(socket(dir.path()));
        let shim = fake_shim(
            dir.path(),
            b"{\"error\":\"the container is not running\"}\n",
        );
        let error = attach(dir.path(), false, true, true).await.unwrap_err();
        assert_eq!(error.kind, ErrorKind::FailedPrecondition);
        shim.await.unwrap();
        // No shim at all: the container is not running.
        let _ = std::fs::remove_file(socket(dir.path()));
        let error = resize(dir.path(), 1, 1).await.unwrap_err();
        assert_eq!(error.kind, ErrorKind::FailedPrecondition);
    }
}
