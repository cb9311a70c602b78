//! Exec instances: `docker exec`. Create records the request; start builds the OCI `process`
//! from the container's own spec (as dockerd does: rlimits, no-new-privileges, ... carry over)
//! with the exec's command, environment, working directory, user, tty and privileges, launches
//! a `berth-shim exec` for it (listening, nothing run yet), connects the client's session, then
//! lets the process run: no early output is lost. The exit code lands in the record the
//! shim's `wait` answers, before the client's stream is closed, so the docker CLI's inspect
//! right after the stream's end sees it.
//!
//! Records live in memory (as in dockerd): ended execs stay inspectable until their container
//! is removed; a container's inspect lists the ones not ended yet (`ExecIDs`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bollard_stubs::models::{ExecConfig, ExecInspectResponse, ProcessConfig};
use oci_spec::runtime::{Capability, LinuxCapabilitiesBuilder, Process, Spec, UserBuilder};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use crate::Engine;
use crate::attach::{DetachKeys, SessionEnd, ShimStream, not_a_tty};
use crate::error::{Error, Result};
use crate::record::{ContainerRecord, Status};
use crate::shim_client::{self, ExecLaunch};

/// Docker's default PATH of a Linux container (moby's oci.DefaultPathEnv).
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where an exec is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Phase {
    #[default]
    Created,
    Starting,
    Running,
    Exited,
}

#[derive(Debug, Clone, Default)]
struct ExecState {
    phase: Phase,
    pid: i32,
    exit_code: Option<i64>,
}

/// One exec instance.
pub(crate) struct ExecEntry {
    id: String,
    container_id: String,
    config: ExecConfig,
    state: watch::Sender<ExecState>,
    /// Attributes of its events (the container's name and image, the exec's id).
    attributes: HashMap<String, String>,
}

impl ExecEntry {
    fn tty(&self) -> bool {
        self.config.tty.unwrap_or(false)
    }

    fn state_dir(&self, engine: &Engine) -> PathBuf {
        engine.config.run_root.join("execs").join(&self.id[..16])
    }

    fn inspect(&self) -> ExecInspectResponse {
        let state = self.state.borrow().clone();
        let cmd = self.config.cmd.clone().unwrap_or_default();
        ExecInspectResponse {
            can_remove: Some(false),
            detach_keys: Some(self.config.detach_keys.clone().unwrap_or_default()),
            id: Some(self.id.clone()),
            running: Some(matches!(state.phase, Phase::Running)),
            exit_code: state.exit_code,
            process_config: Some(ProcessConfig {
                privileged: Some(self.config.privileged.unwrap_or(false)),
                user: Some(self.config.user.clone().unwrap_or_default()),
                tty: Some(self.tty()),
                entrypoint: cmd.first().cloned(),
                arguments: Some(cmd.iter().skip(1).cloned().collect()),
            }),
            open_stdin: Some(self.config.attach_stdin.unwrap_or(false)),
            open_stderr: Some(self.config.attach_stderr.unwrap_or(false)),
            open_stdout: Some(self.config.attach_stdout.unwrap_or(false)),
            container_id: Some(self.container_id.clone()),
            pid: Some(state.pid as i64),
        }
    }

    fn set_exited(&self, exit_code: i64) {
        self.state.send_modify(|s| {
            s.phase = Phase::Exited;
            s.exit_code = Some(exit_code);
        });
    }
}

/// The exec instances, by id.
#[derive(Default)]
pub(crate) struct ExecTable(std::sync::Mutex<HashMap<String, Arc<ExecEntry>>>);

impl ExecTable {
    fn get(&self, id: &str) -> Result<Arc<ExecEntry>> {
        self.0
            .lock()
            .expect("exec table")
            .get(id)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("No such exec instance: {id}")))
    }

    /// Ids of a container's execs that have not ended (`ExecIDs` of its inspect), or None.
    pub(crate) fn live_ids(&self, container_id: &str) -> Option<Vec<String>> {
        let ids: Vec<String> = self
            .0
            .lock()
            .expect("exec table")
            .values()
            .filter(|e| e.container_id == container_id && e.state.borrow().phase != Phase::Exited)
            .map(|e| e.id.clone())
            .collect();
        (!ids.is_empty()).then_some(ids)
    }

    /// Forgets the execs of a removed container.
    pub(crate) fn remove_container(&self, container_id: &str) {
        self.0
            .lock()
            .expect("exec table")
            .retain(|_, e| e.container_id != container_id);
    }
}

/// dockerd's refusal to exec in a container that does not run.
/// The paused message names the container as the client did (as dockerd does).
fn check_running(record: &ContainerRecord, name: &str) -> Result<()> {
    match record.state.status {
        Status::Running => Ok(()),
        Status::Paused => Err(Error::conflict(format!(
            "Container {name} is paused, unpause the container before exec"
        ))),
        Status::Restarting => Err(Error::conflict(format!(
            "Container {name} is restarting, wait until the container is running"
        ))),
        _ => Err(Error::conflict(format!(
            "container {} is not running",
            record.id
        ))),
    }
}

/// moby's ReplaceOrAppendEnvValues: `KEY=value` replaces the same key or is appended; a bare
/// `KEY` removes it.
pub(crate) fn replace_or_append_env(base: &mut Vec<String>, overrides: &[String]) {
    for entry in overrides {
        let key = entry.split_once('=').map_or(entry.as_str(), |(k, _)| k);
        let position = base
            .iter()
            .position(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key);
        match (position, entry.contains('=')) {
            (Some(i), true) => base[i] = entry.clone(),
            (Some(i), false) => {
                base.remove(i);
            }
            (None, true) => base.push(entry.clone()),
            (None, false) => {}
        }
    }
}

/// The environment of an exec (moby's CreateDaemonEnvironment, then the container's Env, then
/// the exec's Env); HOME from the user's account when none is set (as runc does).
fn exec_env(
    hostname: &str,
    tty: bool,
    container_env: &[String],
    exec_env: &[String],
    home: Option<&str>,
) -> Vec<String> {
    let mut env = vec![DEFAULT_PATH.to_string(), format!("HOSTNAME={hostname}")];
    if tty {
        env.push("TERM=xterm".into());
    }
    replace_or_append_env(&mut env, container_env);
    replace_or_append_env(&mut env, exec_env);
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", home.unwrap_or("/")));
    }
    env
}

/// The exit code dockerd records for an exec that could not be started: 126 whatever the cause,
/// a missing program included (observed with dockerd: `docker exec c nosuch` exits 126, while
/// `docker run` of a missing program exits 127).
const EXEC_START_FAILED: i64 = 126;

impl Engine {
    /// `POST /containers/{id}/exec`: records an exec instance; returns its id.
    pub async fn exec_create(&self, name_or_id: &str, config: ExecConfig) -> Result<String> {
        let entry = self.find(name_or_id)?;
        let record = entry.record.lock().await;
        check_running(&record, name_or_id)?;
        if config.cmd.as_ref().is_none_or(|cmd| cmd.is_empty()) {
            return Err(Error::invalid("No exec command specified"));
        }
        if let Some(keys) = config.detach_keys.as_deref() {
            DetachKeys::from_request(Some(keys))?;
        }
        let id: String = rand::random::<[u8; 32]>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let exec = Arc::new(ExecEntry {
            id: id.clone(),
            container_id: record.id.clone(),
            config,
            state: watch::channel(ExecState::default()).0,
            attributes: HashMap::from([
                ("name".to_string(), record.name.clone()),
                ("image".to_string(), record.image_name.clone()),
                ("execID".to_string(), id.clone()),
            ]),
        });
        self.exec_event(&exec, "exec_create");
        self.execs
            .0
            .lock()
            .expect("exec table")
            .insert(id.clone(), exec);
        Ok(id)
    }

    /// `GET /exec/{id}/json`.
    pub fn exec_inspect(&self, exec_id: &str) -> Result<ExecInspectResponse> {
        Ok(self.live_exec(exec_id)?.inspect())
    }

    /// An exec whose container still exists.
    fn live_exec(&self, exec_id: &str) -> Result<Arc<ExecEntry>> {
        let exec = self.execs.get(exec_id)?;
        if self.find(&exec.container_id).is_err() {
            self.execs.remove_container(&exec.container_id);
            return Err(Error::not_found(format!(
                "No such exec instance: {exec_id}"
            )));
        }
        Ok(exec)
    }

    /// `POST /exec/{id}/start`, first part: the checks dockerd makes before it hijacks the
    /// connection (unknown exec 404, already started 409, container not running 409). The
    /// returned session does the rest.
    pub async fn exec_prepare(
        self: &Arc<Self>,
        exec_id: &str,
        console_size: Option<(u16, u16)>,
    ) -> Result<ExecSession> {
        let exec = self.live_exec(exec_id)?;
        let entry = self.find(&exec.container_id)?;
        {
            let record = entry.record.lock().await;
            check_running(&record, &exec.container_id)?;
        }
        let mut refused = None;
        exec.state.send_if_modified(|state| match state.phase {
            Phase::Created => {
                state.phase = Phase::Starting;
                true
            }
            Phase::Starting | Phase::Running => {
                refused = Some(format!("Error: Exec command {exec_id} is already running"));
                false
            }
            Phase::Exited => {
                refused = Some(format!("Error: Exec command {exec_id} has already run"));
                false
            }
        });
        if let Some(message) = refused {
            return Err(Error::conflict(message));
        }
        Ok(ExecSession {
            engine: self.clone(),
            console_size: console_size
                .or_else(|| crate::attach::console_size(exec.config.console_size.as_deref())),
            exec,
        })
    }

    /// `POST /exec/{id}/resize?h=&w=`: waits (up to 10 s, as dockerd) for the exec to start.
    pub async fn exec_resize(&self, exec_id: &str, height: u16, width: u16) -> Result<()> {
        let exec = self.live_exec(exec_id)?;
        let mut state = exec.state.subscribe();
        let started = tokio::time::timeout(
            Duration::from_secs(10),
            state.wait_for(|s| matches!(s.phase, Phase::Running | Phase::Exited)),
        )
        .await
        .map(|phase| phase.map(|s| s.phase));
        match started {
            Err(_) => return Err(Error::internal("timeout waiting for exec session ready")),
            Ok(Err(_)) => return Err(Error::internal("exec session gone")),
            Ok(Ok(Phase::Exited)) => {
                return Err(Error::conflict(format!("exec {exec_id} is not running")));
            }
            Ok(Ok(_)) => {}
        }
        if !exec.tty() {
            return Err(not_a_tty("exec", exec_id));
        }
        shim_client::resize(&exec.state_dir(self), height, width).await
    }

    /// Builds the exec's OCI process from the container's spec.
    async fn exec_process(&self, exec: &ExecEntry) -> Result<Process> {
        let entry = self.find(&exec.container_id)?;
        let record = entry.record.lock().await.clone();
        let bundle = self
            .config
            .containers_root()
            .join(&record.id)
            .join("bundle/config.json");
        let spec: Spec = serde_json::from_slice(&std::fs::read(&bundle)?)?;
        let mut process = spec.process().clone().unwrap_or_default();
        let config = &exec.config;
        let tty = exec.tty();
        let rootfs = crate::rootfs::mount_point(&self.config, &record.id);
        let user_name = config
            .user
            .clone()
            .filter(|u| !u.is_empty())
            .or_else(|| record.config.user.clone())
            .unwrap_or_default();
        let user = crate::user::resolve(&rootfs, &user_name)?;
        let hostname = record
            .config
            .hostname
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| record.id[..12].to_string());
        let env = exec_env(
            &hostname,
            tty,
            record.config.env.as_deref().unwrap_or_default(),
            config.env.as_deref().unwrap_or_default(),
            user.home.as_deref(),
        );
        let cwd = config
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .or_else(|| record.config.working_dir.clone().filter(|w| !w.is_empty()))
            .unwrap_or_else(|| "/".into());
        process.set_args(config.cmd.clone());
        process.set_env(Some(env));
        process.set_cwd(cwd.into());
        process.set_terminal(Some(tty));
        process.set_console_size(None);
        process.set_user(
            UserBuilder::default()
                .uid(user.uid)
                .gid(user.gid)
                .additional_gids(user.additional_gids)
                .build()
                .map_err(|e| Error::internal(e.to_string()))?,
        );
        if config.privileged.unwrap_or(false) {
            // dockerd gives a privileged exec every capability (bounding, permitted, effective);
            // only those the daemon holds itself can be given (capset(2) refuses more).
            let all: std::collections::HashSet<Capability> = crate::spec::held_capabilities()
                .iter()
                .filter_map(|name| {
                    serde_json::from_value(serde_json::Value::String(name.clone())).ok()
                })
                .collect();
            process.set_capabilities(Some(
                LinuxCapabilitiesBuilder::default()
                    .bounding(all.clone())
                    .effective(all.clone())
                    .permitted(all)
                    .build()
                    .map_err(|e| Error::internal(e.to_string()))?,
            ));
        }
        Ok(process)
    }
}

impl Engine {
    /// dockerd's exec events: `exec_create: sh -c true`, `exec_start: ...` (`exec_die` is
    /// published by the exit watcher, with the exit code).
    fn exec_event(&self, exec: &ExecEntry, action: &str) {
        let action = format!(
            "{action}: {}",
            exec.config.cmd.clone().unwrap_or_default().join(" ")
        );
        self.events.publish(
            bollard_stubs::models::EventMessageTypeEnum::CONTAINER,
            &action,
            &exec.container_id,
            exec.attributes.clone(),
        );
    }
}

/// A started exec, between the API's checks and the process's end.
pub struct ExecSession {
    engine: Arc<Engine>,
    exec: Arc<ExecEntry>,
    console_size: Option<(u16, u16)>,
}

impl ExecSession {
    /// Whether the exec has a tty (raw output) or not (multiplexed frames).
    pub fn tty(&self) -> bool {
        self.exec.tty()
    }

    /// Launches the exec's shim and, when `attach`, connects to it; then starts the process and
    /// watches for its exit. Returns the connection when attached.
    async fn launch(&self, attach: bool) -> Result<Option<ShimStream>> {
        let engine = &self.engine;
        let exec = &self.exec;
        let config = &exec.config;
        let process = engine.exec_process(exec).await?;
        let (container_state_dir, runtime) = {
            let entry = engine.find(&exec.container_id)?;
            let record = entry.record.lock().await;
            check_running(&record, &exec.container_id)?;
            (
                engine.shim_dir(&record.id),
                engine.runtime_path(&record.runtime),
            )
        };
        let state_dir = exec.state_dir(engine);
        let _ = std::fs::remove_dir_all(&state_dir);
        std::fs::create_dir_all(state_dir.parent().expect("execs root"))?;
        let tty = exec.tty();
        let stdin = config.attach_stdin.unwrap_or(false) && attach;
        shim_client::launch_exec(&ExecLaunch {
            shim_binary: &engine.config.shim_binary,
            container_id: &exec.container_id,
            state_dir: &state_dir,
            container_state_dir: &container_state_dir,
            process: &process,
            tty,
            stdin,
            // As dockerd: the end of the client's input closes the exec's stdin, without a tty.
            stdin_once: stdin && !tty,
            runtime: runtime.as_deref(),
            seccomp_cache: &engine.config.seccomp_cache(),
        })
        .await?;
        let stream = if attach {
            let keys = DetachKeys::from_request(config.detach_keys.as_deref())?;
            let stream = shim_client::attach(
                &state_dir,
                stdin,
                config.attach_stdout.unwrap_or(false),
                config.attach_stderr.unwrap_or(false),
            )
            .await;
            match stream {
                Ok(stream) => Some(ShimStream::new(stream, stdin, keys)),
                Err(error) => {
                    let _ = shim_client::kill(&state_dir, libc::SIGKILL, false).await;
                    return Err(error);
                }
            }
        } else {
            None
        };
        if let (true, Some((height, width))) = (tty, self.console_size) {
            let _ = shim_client::resize(&state_dir, height, width).await;
        }
        let pid = shim_client::start_held(&state_dir).await?.unwrap_or(0);
        exec.state.send_modify(|s| {
            s.phase = Phase::Running;
            s.pid = pid;
        });
        engine.exec_event(exec, "exec_start");
        let exec = exec.clone();
        let engine = engine.clone();
        tokio::spawn(async move {
            let exit = shim_client::wait(&state_dir).await;
            exec.set_exited(exit.exit_code as i64);
            engine.discard(&state_dir);
            let mut attributes = exec.attributes.clone();
            attributes.insert("exitCode".into(), exit.exit_code.to_string());
            engine.events.publish(
                bollard_stubs::models::EventMessageTypeEnum::CONTAINER,
                "exec_die",
                &exec.container_id,
                attributes,
            );
        });
        Ok(stream)
    }

    /// Records a start failure as dockerd does (exit code 126 or 127) and returns the message
    /// the client is shown.
    fn failed(&self, error: &Error) -> String {
        // dockerd's wording: "OCI runtime exec failed: exec failed: unable to start container
        // process: exec: \"nosuch\": executable file not found in $PATH: unknown".
        let message = if error.message.starts_with("OCI runtime") {
            error.message.clone()
        } else {
            format!(
                "OCI runtime exec failed: exec failed: unable to start container process: {}: unknown",
                error.message
            )
        };
        self.exec.set_exited(EXEC_START_FAILED);
        let _ = std::fs::remove_dir_all(self.exec.state_dir(&self.engine));
        message
    }

    /// `Detach: true`: starts the process and returns.
    pub async fn start_detached(self) -> Result<()> {
        match self.launch(false).await {
            Ok(_) => Ok(()),
            Err(error) => {
                let message = self.failed(&error);
                Err(Error::new(error.kind, message))
            }
        }
    }

    /// Attached: runs the session on the client's (hijacked) connection until the process's
    /// output ends, then waits for its exit code before the connection closes. A start
    /// failure is written to the client (as dockerd does after the hijack).
    pub async fn run<C>(self, mut client: C) -> SessionEnd
    where
        C: AsyncRead + AsyncWrite + Unpin,
    {
        let stream = match self.launch(true).await {
            Ok(stream) => stream.expect("attached"),
            Err(error) => {
                let text = format!("{}\r\n", self.failed(&error));
                let bytes = if self.tty() {
                    text.into_bytes()
                } else {
                    let mut frame = vec![1u8, 0, 0, 0];
                    frame.extend_from_slice(&(text.len() as u32).to_be_bytes());
                    frame.extend_from_slice(text.as_bytes());
                    frame
                };
                let _ = client.write_all(&bytes).await;
                let _ = client.shutdown().await;
                return SessionEnd::OutputEnded;
            }
        };
        let mut state = self.exec.state.subscribe();
        let exited = async move {
            let _ = tokio::time::timeout(
                Duration::from_secs(10),
                state.wait_for(|s| s.phase == Phase::Exited),
            )
            .await;
        };
        stream.pump_then(client, exited).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn env_merges_as_dockerd() {
        let env = exec_env(
            "box",
            true,
            &strings(&["A=1", "PATH=/bin", "B=2"]),
            &strings(&["A=3", "B", "C=4"]),
            Some("/root"),
        );
        assert_eq!(
            env,
            strings(&[
                "PATH=/bin",
                "HOSTNAME=box",
                "TERM=xterm",
                "A=3",
                "C=4",
                "HOME=/root"
            ])
        );
        let env = exec_env("box", false, &[], &strings(&["HOME=/x"]), Some("/root"));
        assert_eq!(env, strings(&[DEFAULT_PATH, "HOSTNAME=box", "HOME=/x"]));
    }

    #[test]
    fn inspect_shows_the_process_config() {
        let exec = ExecEntry {
            id: "e".repeat(64),
            container_id: "c".repeat(64),
            config: ExecConfig {
                cmd: Some(strings(&["sh", "-c", "true"])),
                tty: Some(true),
                attach_stdin: Some(true),
                ..Default::default()
            },
            state: watch::channel(ExecState::default()).0,
            attributes: HashMap::new(),
        };
        let inspect = exec.inspect();
        assert_eq!(inspect.running, Some(false));
        assert_eq!(inspect.exit_code, None);
        let process = inspect.process_config.unwrap();
        assert_eq!(process.entrypoint.as_deref(), Some("sh"));
        assert_eq!(process.arguments, Some(strings(&["-c", "true"])));
        assert_eq!(inspect.open_stdin, Some(true));
        exec.set_exited(3);
        assert_eq!(exec.inspect().exit_code, Some(3));
        let table = ExecTable::default();
        table
            .0
            .lock()
            .unwrap()
            .insert(exec.id.clone(), Arc::new(exec));
        assert_eq!(table.live_ids(&"c".repeat(64)), None);
        assert!(table.get(&"e".repeat(64)).is_ok());
        table.remove_container(&"c".repeat(64));
        let error = table.get("nope").err().unwrap();
        assert_eq!(error.message, "No such exec instance: nope");
    }
}
