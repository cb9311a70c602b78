//! The OCI runtime behind a shim: the built-in `runtime` library, called in the shim's own
//! process, or an external binary with runc's command line (`--runtime`: runc, crun,
//! berth-runtime), run as a child process.
//!
//! Both make the container's init inherit the calling process's descriptors 0, 1 and 2, so the
//! caller points them at the container's stdio before [`Backend::create`].

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result, sys};

/// The runtime that creates, signals and deletes the container.
#[derive(Debug)]
pub enum Backend {
    /// The `runtime` library in this process.
    Builtin {
        runtime: runtime::Runtime,
        /// Its state root.
        root: PathBuf,
    },
    /// An OCI runtime binary with runc's command line.
    External {
        /// The binary.
        binary: PathBuf,
        /// Its `--root`.
        root: PathBuf,
        /// Its `--log` (JSON lines): where its error messages are read from, since its stderr
        /// is the container's.
        log: PathBuf,
    },
}

impl Backend {
    /// The built-in runtime over `root` (keeping compiled seccomp programs in
    /// `seccomp_cache`), or the external `binary` with `--root root` and its log in `log`.
    pub fn new(
        binary: Option<&Path>,
        root: &Path,
        log: PathBuf,
        seccomp_cache: Option<&Path>,
    ) -> Result<Self> {
        Ok(match binary {
            None => {
                let mut runtime = runtime::Runtime::new(root, runtime::CgroupPathStyle::Cgroupfs)?;
                if let Some(cache) = seccomp_cache {
                    runtime = runtime.with_seccomp_cache(cache);
                }
                Self::Builtin {
                    runtime,
                    root: root.to_path_buf(),
                }
            }
            Some(binary) => Self::External {
                binary: binary.to_path_buf(),
                root: root.to_path_buf(),
                log,
            },
        })
    }

    /// Creates the container (its init waits for `start`); writes the init's pid to `pid_file`
    /// and returns it. Nothing is left behind on failure.
    pub fn create(
        &self,
        id: &str,
        bundle: &Path,
        console_socket: Option<&Path>,
        pid_file: &Path,
    ) -> Result<i32> {
        match self {
            Self::Builtin { runtime, .. } => {
                let options = runtime::CreateOptions {
                    id: id.to_string(),
                    bundle: bundle.to_path_buf(),
                    console_socket: console_socket.map(Path::to_path_buf),
                    pid_file: Some(pid_file.to_path_buf()),
                    ..Default::default()
                };
                Ok(runtime.create(&options)?.pid)
            }
            Self::External { .. } => {
                let mut args: Vec<&std::ffi::OsStr> = vec![
                    "create".as_ref(),
                    "--bundle".as_ref(),
                    bundle.as_os_str(),
                    "--pid-file".as_ref(),
                    pid_file.as_os_str(),
                ];
                if let Some(socket) = console_socket {
                    args.push("--console-socket".as_ref());
                    args.push(socket.as_os_str());
                }
                args.push(id.as_ref());
                if let Err(error) = self.run_inheriting(&args) {
                    // runc removes what it made on a failed create; make sure of it.
                    let _ = self.delete(id);
                    return Err(error);
                }
                let text = std::fs::read_to_string(pid_file).map_err(sys("read the pid file"))?;
                text.trim().parse().map_err(|_| {
                    Error::ExternalRuntime(format!("the runtime wrote no pid: {text:?}"))
                })
            }
        }
    }

    /// Starts the created container's program.
    pub fn start(&self, id: &str) -> Result<()> {
        match self {
            Self::Builtin { runtime, .. } => runtime.start(id).map(drop).map_err(Into::into),
            Self::External { .. } => self.run_inheriting(&["start".as_ref(), id.as_ref()]),
        }
    }

    /// Runs one more process in the running container, detached (it becomes a child of this
    /// subreaper once the runtime's intermediate processes exit); it inherits our descriptors
    /// 0, 1 and 2, or gets a pty sent to `console_socket`. `process_file` is `process` as JSON
    /// (for an external runtime's `--process`). Returns its pid (also written to `pid_file`).
    pub fn exec(
        &self,
        id: &str,
        process: &oci_spec::runtime::Process,
        process_file: &Path,
        console_socket: Option<&Path>,
        pid_file: &Path,
    ) -> Result<i32> {
        match self {
            Self::Builtin { runtime, .. } => {
                runtime.exec(&runtime::ExecOptions {
                    id: id.to_string(),
                    process: process.clone(),
                    console_socket: console_socket.map(Path::to_path_buf),
                    pid_file: Some(pid_file.to_path_buf()),
                    detach: true,
                    preserve_fds: 0,
                })?;
            }
            Self::External { .. } => {
                let mut args: Vec<&std::ffi::OsStr> = vec![
                    "exec".as_ref(),
                    "--detach".as_ref(),
                    "--pid-file".as_ref(),
                    pid_file.as_os_str(),
                    "--process".as_ref(),
                    process_file.as_os_str(),
                ];
                if let Some(socket) = console_socket {
                    args.push("--console-socket".as_ref());
                    args.push(socket.as_os_str());
                }
                args.push(id.as_ref());
                self.run_inheriting(&args)?;
            }
        }
        let text = std::fs::read_to_string(pid_file).map_err(sys("read the pid file"))?;
        text.trim()
            .parse()
            .map_err(|_| Error::ExternalRuntime(format!("the runtime wrote no pid: {text:?}")))
    }

    /// Sends `signal` to the init, or with `all` to every process of the container.
    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Result<()> {
        let signal = nix::sys::signal::Signal::try_from(signal)
            .map_err(|_| Error::InvalidArgument(format!("unknown signal {signal}")))?;
        match self {
            Self::Builtin { runtime, .. } => Ok(runtime.kill(id, signal, all)?),
            Self::External { .. } => {
                let number = (signal as i32).to_string();
                let mut args = vec!["kill"];
                if all {
                    args.push("--all");
                }
                args.extend([id, number.as_str()]);
                self.run_captured(&args).map(drop)
            }
        }
    }

    /// Whether the container is paused (frozen).
    pub fn paused(&self, id: &str) -> bool {
        match self {
            // The record and the derived status only: `Runtime::state` would also look up the
            // owner's user name through NSS, loading libraries into the long-lived shim.
            Self::Builtin { runtime, root } => runtime::state::StateRoot::open(root)
                .and_then(|state_root| state_root.load(id))
                .is_ok_and(|record| runtime.status(&record) == runtime::Status::Paused),
            Self::External { .. } => self
                .run_captured(&["state", id])
                .ok()
                .and_then(|out| serde_json::from_slice::<serde_json::Value>(&out).ok())
                .is_some_and(|state| state["status"] == "paused"),
        }
    }

    /// Deletes the container (forced: leftover processes of its cgroup are killed), its cgroup
    /// and its runtime state. Deleting an unknown container succeeds.
    pub fn delete(&self, id: &str) -> Result<()> {
        match self {
            Self::Builtin { runtime, .. } => Ok(runtime.delete(id, true)?),
            Self::External { .. } => self.run_captured(&["delete", "--force", id]).map(drop),
        }
    }

    /// A command of the external runtime with its global flags.
    fn command(&self) -> Command {
        let Self::External { binary, root, log } = self else {
            unreachable!("only external runtimes run commands")
        };
        let mut command = Command::new(binary);
        command
            .arg("--root")
            .arg(root)
            .arg("--log")
            .arg(log)
            .arg("--log-format")
            .arg("json");
        command
    }

    /// Runs a verb whose container processes inherit our stdio (create, start).
    fn run_inheriting(&self, args: &[&std::ffi::OsStr]) -> Result<()> {
        let from = self.log_length();
        let status = self
            .command()
            .args(args)
            .status()
            .map_err(sys("run the oci runtime"))?;
        if status.success() {
            return Ok(());
        }
        Err(Error::ExternalRuntime(
            self.logged_error(from)
                .unwrap_or_else(|| format!("the oci runtime failed ({status})")),
        ))
    }

    /// Runs a verb with its output captured; returns stdout.
    fn run_captured(&self, args: &[&str]) -> Result<Vec<u8>> {
        let from = self.log_length();
        let output = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(sys("run the oci runtime"))?;
        if output.status.success() {
            return Ok(output.stdout);
        }
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        Err(Error::ExternalRuntime(
            self.logged_error(from)
                .or((!stderr.is_empty()).then_some(stderr))
                .unwrap_or_else(|| format!("the oci runtime failed ({})", output.status)),
        ))
    }

    fn log_length(&self) -> u64 {
        match self {
            Self::External { log, .. } => std::fs::metadata(log).map(|m| m.len()).unwrap_or(0),
            Self::Builtin { .. } => 0,
        }
    }

    /// The last error message the runtime logged after byte `from` of its log.
    fn logged_error(&self, from: u64) -> Option<String> {
        let Self::External { log, .. } = self else {
            return None;
        };
        let mut file = std::fs::File::open(log).ok()?;
        file.seek(SeekFrom::Start(from)).ok()?;
        let mut text = String::new();
        file.take(1 << 20).read_to_string(&mut text).ok()?;
        last_logged_error(&text)
    }
}

/// The `msg` of the last line at level "error" (or "fatal") in a JSON-lines runtime log
/// (logrus' JSON format, as runc and crun write with `--log-format json`).
fn last_logged_error(text: &str) -> Option<String> {
    text.lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|entry| matches!(entry["level"].as_str(), Some("error" | "fatal")))
        .find_map(|entry| entry["msg"].as_str().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_logged_error_is_the_message() {
        let log = concat!(
            r#"{"level":"warning","msg":"w","time":"t"}"#,
            "\n",
            r#"{"level":"error","msg":"first","time":"t"}"#,
            "\n",
            "not json\n",
            r#"{"level":"error","msg":"runc create failed: no such file","time":"t"}"#,
            "\n"
        );
        assert_eq!(
            last_logged_error(log).as_deref(),
            Some("runc create failed: no such file")
        );
        assert_eq!(last_logged_error(r#"{"level":"info","msg":"x"}"#), None);
    }

    #[test]
    fn external_failures_carry_the_runtime_message() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("fake-runtime");
        std::fs::write(
            &script,
            "#!/bin/sh\n# --root R --log L --log-format json VERB...\n\
             echo '{\"level\":\"error\",\"msg\":\"fake failure\"}' >> \"$4\"\nexit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let backend = Backend::new(
            Some(&script),
            dir.path(),
            dir.path().join("runtime.log"),
            None,
        )
        .unwrap();
        let error = backend.kill("c", 15, false).unwrap_err();
        assert_eq!(error.to_string(), "fake failure");
        assert!(backend.kill("c", 999, false).is_err());
    }
}
