//! The shim's files and socket protocol, shared by the shim and its clients (the engine).
//!
//! Files in the state directory (`/run/berth/shims/<id>/`):
//! - `shim.pid`, `init.pid`: written before `start` answers `ok`;
//! - `shim.sock`: the control socket, listening while the container runs;
//! - `exit.json`: an [`ExitRecord`], written atomically once the init has exited.
//!
//! `shim.sock` speaks newline-delimited JSON, one request per connection: the client sends one
//! [`Request`] line and reads one reply line:
//!
//! ```text
//! {"op":"wait"}                          -> {"exit_code":3,"signal":null,"finished_at":"..","oom_killed":false}
//! {"op":"kill","signal":15,"all":false}  -> {"ok":true}  or  {"error":"..."}
//! {"op":"state"}                         -> {"status":"running","pid":4242}
//! {"op":"shutdown"}                      -> {"ok":true}  or  {"error":"..."}
//! {"op":"start"}                         -> {"ok":true} (held container) / {"ok":true,"pid":N} (exec)
//! {"op":"attach","stdin":true,"stdout":true,"stderr":true}
//!                                        -> {"ok":true}, then the connection is a raw stream
//! {"op":"resize","height":24,"width":80} -> {"ok":true}  or  {"error":"... not a tty"}
//! ```
//!
//! `start` releases a shim started with `--hold` (runtime `create` done, `start` not yet), or
//! runs the process of an exec shim (`berth-shim exec`).
//!
//! After the `{"ok":true}` line of `attach` the same connection carries the stdio: from the shim,
//! without a terminal, Docker's multiplexed frames (an 8-byte header `[stream, 0, 0, 0, length
//! u32 big-endian]`, stream 1 stdout, 2 stderr; only the asked streams), with a terminal the raw
//! pty bytes; from the client, raw stdin bytes (used when `stdin` was asked and the process has a
//! stdin). A client's `shutdown(SHUT_WR)` ends its stdin (with `--stdin-once`, the last one
//! closes the process's stdin). The shim closes attach connections after the output ended.
//!
//! `wait` blocks until the container's init has exited. The shim exits right after answering the
//! waiters it holds, so a later `wait` finds no socket: read `exit.json` then
//! ([`wait`] does that fallback itself).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, sys};

/// Name of the control socket in the state directory.
pub const SOCKET_FILE: &str = "shim.sock";
/// Name of the exit record in the state directory.
pub const EXIT_FILE: &str = "exit.json";
/// Name of the file holding the shim's pid.
pub const SHIM_PID_FILE: &str = "shim.pid";
/// Name of the file holding the container init's pid.
pub const INIT_PID_FILE: &str = "init.pid";
/// How long a `state` reply may take (a shim answers at once unless it is stuck).
pub const STATE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Longest request line the shim accepts.
pub const MAX_REQUEST: usize = 4096;

/// One request on `shim.sock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    /// Blocks until the init exits; answered with the [`ExitRecord`].
    Wait,
    /// Sends `signal` to the init, or with `all` to every process of the container.
    Kill {
        signal: i32,
        #[serde(default)]
        all: bool,
    },
    /// The container's status and init pid ([`ShimState`]).
    State,
    /// The connection becomes the process's stdio stream (see the module documentation).
    Attach {
        #[serde(default)]
        stdin: bool,
        #[serde(default)]
        stdout: bool,
        #[serde(default)]
        stderr: bool,
    },
    /// Sets the terminal's window size (`TIOCSWINSZ` on the pty master).
    Resize { height: u16, width: u16 },
    /// Runs the held container's program, or the exec shim's process.
    Start,
    /// After the exit: delete the runtime state and end the shim. An exec shim whose process
    /// was never started removes its state directory and ends (so does `kill` then).
    Shutdown,
}

/// Stream number of stdout in an attach frame header.
pub const FRAME_STDOUT: u8 = 1;
/// Stream number of stderr in an attach frame header.
pub const FRAME_STDERR: u8 = 2;

/// The 8-byte header of one frame of an attach stream without a terminal (Docker's
/// multiplexed stream, "Stream format" of the Engine API's attach endpoint): the stream, three
/// zero bytes, the payload's length as a big-endian u32.
pub fn frame_header(stream: u8, length: usize) -> [u8; 8] {
    let length = (length as u32).to_be_bytes();
    [stream, 0, 0, 0, length[0], length[1], length[2], length[3]]
}

/// How the container's init ended: the reply to `wait` and the content of `exit.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// The exit status, or 128 + the signal number when a signal killed the init (as shells
    /// and Docker report it).
    pub exit_code: i32,
    /// The signal that killed the init, if one did.
    pub signal: Option<i32>,
    /// When the shim reaped the init (RFC 3339 with nanoseconds).
    pub finished_at: DateTime<Utc>,
    /// Whether the kernel's OOM killer killed a process of the container's cgroup.
    pub oom_killed: bool,
}

/// Status of the container as the shim sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShimStatus {
    /// Created (held, or an exec not started yet): the program does not run yet.
    Created,
    Running,
    Paused,
    Stopped,
}

/// The reply to `state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShimState {
    pub status: ShimStatus,
    /// Host pid of the container's init (of an exec shim: its process, 0 before start).
    pub pid: i32,
}

/// Paths of one shim's state directory.
#[derive(Debug, Clone)]
pub struct StateDir(pub PathBuf);

impl StateDir {
    /// The control socket.
    pub fn socket(&self) -> PathBuf {
        self.0.join(SOCKET_FILE)
    }

    /// The exit record.
    pub fn exit_file(&self) -> PathBuf {
        self.0.join(EXIT_FILE)
    }

    /// The exit record, if the init has exited.
    pub fn read_exit(&self) -> Result<Option<ExitRecord>> {
        match std::fs::read(self.exit_file()) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::Protocol(format!("corrupt {EXIT_FILE}: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::sys(format!("read {EXIT_FILE}"), e)),
        }
    }

    /// The pid in `init.pid`.
    pub fn init_pid(&self) -> Result<i32> {
        read_pid(&self.0.join(INIT_PID_FILE))
    }

    /// The pid in `shim.pid`.
    pub fn shim_pid(&self) -> Result<i32> {
        read_pid(&self.0.join(SHIM_PID_FILE))
    }
}

fn read_pid(path: &Path) -> Result<i32> {
    let text = std::fs::read_to_string(path).map_err(sys(format!("read {}", path.display())))?;
    text.trim()
        .parse()
        .map_err(|_| Error::Protocol(format!("{} holds no pid", path.display())))
}

/// Sends one request to the shim listening at `socket` and returns its reply line, parsed.
/// A reply `{"error": ...}` becomes [`Error::Refused`].
pub fn call(socket: &Path, request: &Request) -> Result<serde_json::Value> {
    call_within(socket, request, None)
}

/// [`call`], giving up when the reply takes longer than `timeout` (`None`: no limit, as `wait`
/// needs).
pub fn call_within(
    socket: &Path,
    request: &Request,
    timeout: Option<std::time::Duration>,
) -> Result<serde_json::Value> {
    let mut stream =
        UnixStream::connect(socket).map_err(sys(format!("connect to {}", socket.display())))?;
    stream
        .set_read_timeout(timeout)
        .map_err(sys("set the reply timeout"))?;
    let mut line = serde_json::to_vec(request).map_err(|e| Error::Protocol(e.to_string()))?;
    line.push(b'\n');
    stream.write_all(&line).map_err(sys("send shim request"))?;
    let mut reply = String::new();
    BufReader::new(&stream)
        .read_line(&mut reply)
        .map_err(sys("read shim reply"))?;
    if reply.is_empty() {
        return Err(Error::Protocol("the shim closed the connection".into()));
    }
    let value: serde_json::Value =
        serde_json::from_str(&reply).map_err(|e| Error::Protocol(e.to_string()))?;
    if let Some(message) = value.get("error").and_then(|m| m.as_str()) {
        return Err(Error::Refused(message.to_string()));
    }
    Ok(value)
}

/// Waits for the container's exit: over the socket while the shim runs, else from `exit.json`
/// (the shim is gone once it has answered its waiters).
pub fn wait(state_dir: &StateDir) -> Result<ExitRecord> {
    match call(&state_dir.socket(), &Request::Wait) {
        Ok(value) => serde_json::from_value(value).map_err(|e| Error::Protocol(e.to_string())),
        Err(Error::Sys { .. }) | Err(Error::Protocol(_)) => state_dir
            .read_exit()?
            .ok_or_else(|| Error::Protocol("the shim is gone and left no exit record".into())),
        Err(other) => Err(other),
    }
}

/// Sends `signal` to the init (or with `all` to every process of the container).
pub fn kill(socket: &Path, signal: i32, all: bool) -> Result<()> {
    call(socket, &Request::Kill { signal, all }).map(drop)
}

/// The container's status and init pid.
pub fn state(socket: &Path) -> Result<ShimState> {
    let value = call_within(socket, &Request::State, Some(STATE_TIMEOUT))?;
    serde_json::from_value(value).map_err(|e| Error::Protocol(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_the_documented_shape() {
        let cases = [
            (Request::Wait, r#"{"op":"wait"}"#),
            (
                Request::Kill {
                    signal: 9,
                    all: true,
                },
                r#"{"op":"kill","signal":9,"all":true}"#,
            ),
            (Request::State, r#"{"op":"state"}"#),
            (
                Request::Attach {
                    stdin: true,
                    stdout: true,
                    stderr: false,
                },
                r#"{"op":"attach","stdin":true,"stdout":true,"stderr":false}"#,
            ),
            (
                Request::Resize {
                    height: 24,
                    width: 80,
                },
                r#"{"op":"resize","height":24,"width":80}"#,
            ),
            (Request::Start, r#"{"op":"start"}"#),
            (Request::Shutdown, r#"{"op":"shutdown"}"#),
        ];
        for (request, text) in cases {
            assert_eq!(serde_json::to_string(&request).unwrap(), text);
            assert_eq!(serde_json::from_str::<Request>(text).unwrap(), request);
        }
        // `all` is optional.
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"op":"kill","signal":15}"#).unwrap(),
            Request::Kill {
                signal: 15,
                all: false
            }
        );
        assert!(serde_json::from_str::<Request>(r#"{"op":"dance"}"#).is_err());
    }

    #[test]
    fn frame_headers_are_dockers() {
        assert_eq!(frame_header(FRAME_STDERR, 0x0102), [2, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(frame_header(FRAME_STDOUT, 5), [1, 0, 0, 0, 0, 0, 0, 5]);
    }

    #[test]
    fn exit_records_round_trip_with_nanoseconds() {
        let finished_at = DateTime::parse_from_rfc3339("2026-11-23T11:00:00.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        let record = ExitRecord {
            exit_code: 137,
            signal: Some(9),
            finished_at,
            oom_killed: false,
        };
        let text = serde_json::to_string(&record).unwrap();
        assert!(
            text.contains(r#""finished_at":"2026-11-23T11:00:00.123456789Z""#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<ExitRecord>(&text).unwrap(), record);
        let state = ShimState {
            status: ShimStatus::Running,
            pid: 7,
        };
        assert_eq!(
            serde_json::to_string(&state).unwrap(),
            r#"{"status":"running","pid":7}"#
        );
    }

    #[test]
    fn wait_falls_back_to_the_exit_file() {
        let dir = tempfile::tempdir().unwrap();
        let state_dir = StateDir(dir.path().to_path_buf());
        assert!(wait(&state_dir).is_err());
        std::fs::write(
            state_dir.exit_file(),
            r#"{"exit_code":3,"signal":null,"finished_at":"2026-11-23T11:00:00Z","oom_killed":false}"#,
        )
        .unwrap();
        assert_eq!(wait(&state_dir).unwrap().exit_code, 3);
    }
}
