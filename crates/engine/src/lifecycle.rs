//! Starting, stopping, killing and restarting containers, and what happens when one exits
//! (restart policies with Docker's backoff, `--rm`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bollard_stubs::models::{EventMessageTypeEnum, RestartPolicy, RestartPolicyNameEnum};

use crate::error::{Error, Result};
use crate::record::{ContainerRecord, Status, now_rfc3339};
use crate::shim_client::{self, ExitStatus, ShimLaunch};
use crate::{ContainerEntry, Engine};

/// Checks a restart policy as dockerd does.
pub fn validate_restart_policy(policy: &RestartPolicy, auto_remove: bool) -> Result<()> {
    let name = policy.name.unwrap_or(RestartPolicyNameEnum::EMPTY);
    let retries = policy.maximum_retry_count.unwrap_or(0);
    if retries < 0 {
        return Err(Error::invalid(
            "invalid restart policy: maximum retry count can't be negative",
        ));
    }
    if retries > 0 && name != RestartPolicyNameEnum::ON_FAILURE {
        return Err(Error::invalid(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'",
        ));
    }
    if auto_remove
        && !matches!(
            name,
            RestartPolicyNameEnum::EMPTY | RestartPolicyNameEnum::NO
        )
    {
        return Err(Error::invalid(
            "conflicting options: cannot specify both --restart and --rm",
        ));
    }
    Ok(())
}

fn signal_number(name: &str) -> Result<i32> {
    if let Ok(number) = name.parse::<i32>() {
        // Linux has signals 1..=64 (real-time ones included).
        if !(1..=64).contains(&number) {
            return Err(Error::invalid(format!(
                "the linux daemon does not support signal {number}"
            )));
        }
        return Ok(number);
    }
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    full.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| Error::invalid(format!("Invalid signal: {name}")))
}

impl Engine {
    /// The shim's state directory. Named by the first 16 hex digits of the id: its socket path
    /// must fit in sun_path (108 bytes), which a full id under a deep exec root would not.
    pub(crate) fn shim_dir(&self, id: &str) -> std::path::PathBuf {
        self.config.shims_root().join(&id[..id.len().min(16)])
    }

    fn attributes(record: &ContainerRecord) -> HashMap<String, String> {
        let mut attributes = HashMap::from([
            ("name".to_string(), record.name.clone()),
            ("image".to_string(), record.image_name.clone()),
        ]);
        for (key, value) in record.config.labels.iter().flatten() {
            attributes.insert(key.clone(), value.clone());
        }
        attributes
    }

    /// `POST /containers/{id}/start`. Starting a running container is not an error (304 in the API).
    pub async fn start(self: &Arc<Self>, name_or_id: &str) -> Result<bool> {
        let entry = self.find(name_or_id)?;
        let mut record = entry.record.lock().await;
        match record.state.status {
            Status::Running | Status::Paused => return Ok(false),
            Status::Removing | Status::Dead => {
                return Err(Error::conflict(format!(
                    "container {} is marked for removal and cannot be started",
                    record.id
                )));
            }
            _ => {}
        }
        record.state.stopped_by_user = false;
        if let Err(error) = self.start_locked(&entry, &mut record).await {
            // As dockerd: a container of `run --rm` that cannot start is removed (the client
            // waits for its removal).
            if record.host_config.auto_remove.unwrap_or(false) {
                drop(record);
                entry.status.send_modify(|c| c.exits += 1);
                let _ = self.destroy_with(&entry, true).await;
            }
            return Err(error);
        }
        Ok(true)
    }

    /// Starts a container whose record lock the caller holds.
    pub(crate) async fn start_locked(
        self: &Arc<Self>,
        entry: &Arc<ContainerEntry>,
        record: &mut ContainerRecord,
    ) -> Result<()> {
        let id = record.id.clone();
        // Sessions attached before this start (docker run, start -a): the shim holds the
        // process after its creation until they are connected, so no output is lost.
        let pending = self.attaches.take(&id);
        let outcome = match self.launch(record, !pending.is_empty()).await {
            Ok(pid) if !pending.is_empty() => {
                let state_dir = self.shim_dir(&id);
                let console_size = record
                    .config
                    .tty
                    .unwrap_or(false)
                    .then(|| {
                        crate::attach::console_size(record.host_config.console_size.as_deref())
                    })
                    .flatten();
                self.connect_pending(pending, &state_dir, console_size)
                    .await;
                match shim_client::start_held(&state_dir).await {
                    Ok(_) => Ok(pid),
                    Err(error) => {
                        let _ = shim_client::kill(&state_dir, libc::SIGKILL, true).await;
                        Err(error)
                    }
                }
            }
            outcome => outcome,
        };
        let containers_root = self.config.containers_root();
        match outcome {
            Ok(pid) => {
                record.state.status = Status::Running;
                record.state.pid = pid;
                record.state.started_at = Some(now_rfc3339());
                record.state.error.clear();
                record.state.oom_killed = false;
                record.save_state(&containers_root)?;
                entry.status.send_modify(|c| c.status = Status::Running);
                self.events.publish(
                    EventMessageTypeEnum::CONTAINER,
                    "start",
                    &id,
                    Self::attributes(record),
                );
                self.monitor(entry.clone(), pid);
                Ok(())
            }
            Err(error) => {
                crate::rootfs::unmount(&self.config, &id);
                self.unmount_volumes(record).await;
                self.discard(&self.shim_dir(&id));
                self.sandbox_down(record).await;
                record.state.error = error.message.clone();
                record.state.exit_code = if error.message.contains("executable file not found")
                    || error.message.contains("no such file")
                {
                    127
                } else if error.message.contains("permission denied") {
                    126
                } else {
                    128
                };
                if record.state.status != Status::Created {
                    record.state.status = Status::Exited;
                }
                let _ = record.save_state(&containers_root);
                Err(error)
            }
        }
    }

    /// The OCI runtime binary of a container's runtime name; None for the built-in one.
    pub(crate) fn runtime_path(&self, name: &str) -> Option<std::path::PathBuf> {
        match name {
            "berth" => None,
            name => Some(
                self.config
                    .runtimes
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| name.into()),
            ),
        }
    }

    /// Mounts the rootfs, writes the bundle and starts the shim; returns the init's pid. With
    /// `hold`, the process is created but waits for the shim's `start`.
    async fn launch(&self, record: &mut ContainerRecord, hold: bool) -> Result<i32> {
        // The network first: the namespace to join and the addresses the files name.
        let namespace = self.sandbox_up(record).await?;
        let outcome = self.launch_in(record, hold, namespace).await;
        if outcome.is_err() {
            self.sandbox_down(record).await;
        }
        outcome
    }

    async fn launch_in(
        &self,
        record: &ContainerRecord,
        hold: bool,
        namespace: crate::sandbox::Namespace,
    ) -> Result<i32> {
        let id = record.id.clone();
        let images = self.images.clone();
        let key = id.clone();
        let mounts = tokio::task::spawn_blocking(move || images.rootfs_mounts(&key))
            .await
            .map_err(|e| Error::internal(e.to_string()))??;
        let rootfs = crate::rootfs::mount(&self.config, &id, &mounts)?;
        let prepared = self.mount_volumes(record).await?;
        let hostname = record
            .config
            .hostname
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| id[..12].to_string());
        // `--network container:X` takes X's hostname with its files.
        let joined = self.joined_hostname(record).await;
        let hostname = joined.clone().unwrap_or(hostname);
        let etc_files = crate::sandbox::write_etc_files(self, record, &hostname).await?;
        let network_namespace = match namespace {
            crate::sandbox::Namespace::Join(path) => Some(path),
            crate::sandbox::Namespace::Host | crate::sandbox::Namespace::New => None,
        };
        let user = crate::user::resolve(&rootfs, record.config.user.as_deref().unwrap_or(""))?;
        let mut env = record.config.env.clone().unwrap_or_default();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(
                0,
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            );
        }
        if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
            env.push(format!("HOSTNAME={hostname}"));
        }
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            env.push(format!(
                "HOME={}",
                user.home.clone().unwrap_or_else(|| "/".into())
            ));
        }
        if record.config.tty.unwrap_or(false) && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        let mut args = vec![record.path.clone()];
        args.extend(record.args.iter().cloned());
        let cwd = record
            .config
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into());
        if !cwd.starts_with('/') {
            return Err(Error::invalid(format!(
                "the working directory '{cwd}' is invalid, it needs to be an absolute path"
            )));
        }
        let input = crate::spec::SpecInput {
            id: &id,
            config: &record.config,
            host_config: &record.host_config,
            args,
            env,
            cwd,
            uid: user.uid,
            gid: user.gid,
            additional_gids: user.additional_gids,
            rootfs: rootfs.clone(),
            etc_files,
            cgroup_path: format!("/berth/{id}"),
            init_binary: crate::spec::init_binary(
                &record.host_config,
                self.config.default_init,
                self.config.init_binary.as_deref(),
            )?,
            mounts: prepared.mounts,
            rootfs_propagation: prepared.root_propagation.map(|p| p.as_str().to_string()),
            network_namespace,
        };
        let mut spec = crate::spec::build(&input)?;
        if joined.is_some() {
            spec.set_hostname(Some(hostname.clone()));
        }
        let bundle = self.config.containers_root().join(&id).join("bundle");
        std::fs::create_dir_all(&bundle)?;
        std::fs::write(bundle.join("config.json"), serde_json::to_vec(&spec)?)?;
        let state_dir = self.shim_dir(&id);
        let _ = std::fs::remove_dir_all(&state_dir);
        let runtime = self.runtime_path(&record.runtime);
        let log = record.log_path(&self.config.containers_root());
        let tty = record.config.tty.unwrap_or(false);
        let stdin = record.config.open_stdin.unwrap_or(false);
        shim_client::launch(&ShimLaunch {
            shim_binary: &self.config.shim_binary,
            id: &id,
            bundle: &bundle,
            state_dir: &state_dir,
            log: &log,
            tty,
            stdin,
            // Docker closes the container's stdin at the end of an attached client's input
            // only without a tty (moby's stream attach: CloseStdin && !TTY).
            stdin_once: stdin && !tty && record.config.stdin_once.unwrap_or(false),
            hold,
            runtime: runtime.as_deref(),
            seccomp_cache: &self.config.seccomp_cache(),
        })
        .await
    }

    /// Watches a running container's shim and handles its exit.
    pub(crate) fn monitor(self: &Arc<Self>, entry: Arc<ContainerEntry>, pid: i32) {
        let engine = self.clone();
        tokio::spawn(async move {
            let id = entry.record.lock().await.id.clone();
            let status = shim_client::wait(&engine.shim_dir(&id)).await;
            tracing::debug!(%id, code = status.exit_code, "exited");
            engine.handle_exit(entry, pid, status).await;
        });
    }

    /// Records an exit, then applies `--rm` or the restart policy.
    pub(crate) async fn handle_exit(
        self: &Arc<Self>,
        entry: Arc<ContainerEntry>,
        pid: i32,
        exit: ExitStatus,
    ) {
        let mut record = entry.record.lock().await;
        tracing::debug!(id = %record.id, "exit handling");
        if record.state.pid != pid || !record.state.status.is_running() {
            return; // a later start already replaced this run, or it was handled
        }
        let id = record.id.clone();
        record.state.status = Status::Exited;
        record.state.exit_code = exit.exit_code as i64;
        record.state.oom_killed = exit.oom_killed;
        record.state.finished_at = Some(
            exit.finished_at
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        );
        record.state.pid = 0;
        crate::rootfs::unmount(&self.config, &id);
        self.unmount_volumes(&record).await;
        self.discard(&self.shim_dir(&id));
        self.sandbox_down(&mut record).await;
        let _ = record.save_state(&self.config.containers_root());
        let mut attributes = Self::attributes(&record);
        attributes.insert("exitCode".into(), exit.exit_code.to_string());
        if exit.oom_killed {
            self.events.publish(
                EventMessageTypeEnum::CONTAINER,
                "oom",
                &id,
                Self::attributes(&record),
            );
        }
        self.events
            .publish(EventMessageTypeEnum::CONTAINER, "die", &id, attributes);
        entry.status.send_modify(|c| {
            c.status = Status::Exited;
            c.exit_code = exit.exit_code as i64;
            c.exits += 1;
        });
        if record.host_config.auto_remove.unwrap_or(false) {
            drop(record);
            if let Err(error) = self.destroy_with(&entry, true).await {
                tracing::warn!("auto-remove of {id}: {error}");
            }
            return;
        }
        if let Some(delay) = self.restart_delay(&record) {
            record.state.status = Status::Restarting;
            entry.status.send_modify(|c| c.status = Status::Restarting);
            drop(record);
            let engine = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let mut record = entry.record.lock().await;
                if record.state.status != Status::Restarting || record.state.stopped_by_user {
                    return;
                }
                record.restart_count += 1;
                if let Err(error) = engine.start_locked(&entry, &mut record).await {
                    tracing::warn!("restart of {}: {error}", record.id);
                    record.state.status = Status::Exited;
                    entry.status.send_modify(|c| c.status = Status::Exited);
                }
            });
        }
    }

    /// Whether (and after how long) the restart policy restarts an exited container. Docker
    /// doubles the delay from 100 ms on each restart, up to a minute; a run of 10 s resets it.
    fn restart_delay(&self, record: &ContainerRecord) -> Option<Duration> {
        if record.state.stopped_by_user {
            return None;
        }
        let policy = record
            .host_config
            .restart_policy
            .clone()
            .unwrap_or_default();
        let restart = match policy.name.unwrap_or(RestartPolicyNameEnum::EMPTY) {
            RestartPolicyNameEnum::ALWAYS | RestartPolicyNameEnum::UNLESS_STOPPED => true,
            RestartPolicyNameEnum::ON_FAILURE => {
                let max = policy.maximum_retry_count.unwrap_or(0);
                record.state.exit_code != 0 && (max == 0 || record.restart_count < max)
            }
            _ => false,
        };
        if !restart {
            return None;
        }
        let ran_long = record
            .state
            .started_at
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .is_some_and(|t| chrono::Utc::now().signed_duration_since(t).num_seconds() >= 10);
        let exponent = if ran_long {
            0
        } else {
            record.restart_count.min(10) as u32
        };
        Some(Duration::from_millis(100 * 2u64.pow(exponent)).min(Duration::from_secs(60)))
    }

    /// `POST /containers/{id}/kill`.
    pub async fn kill(&self, name_or_id: &str, signal: Option<&str>) -> Result<()> {
        // The signal is checked before the container, as dockerd does.
        let signal = signal_number(signal.filter(|s| !s.is_empty()).unwrap_or("KILL"))?;
        let entry = self.find(name_or_id)?;
        let record = entry.record.lock().await;
        if !record.state.status.is_running() {
            return Err(Error::conflict(format!(
                "cannot kill container: {}: container {} is not running",
                name_or_id, record.id
            )));
        }
        let id = record.id.clone();
        // dockerd resumes a paused container after SIGKILL or its stop signal, so that the
        // signal takes effect (daemon/kill.go); other signals stay pending until unpause.
        let resume = record.state.status == Status::Paused
            && (signal == libc::SIGKILL
                || signal_number(
                    record
                        .config
                        .stop_signal
                        .as_deref()
                        .filter(|s| !s.is_empty())
                        .unwrap_or("SIGTERM"),
                )
                .is_ok_and(|stop| stop == signal));
        drop(record);
        shim_client::kill(&self.shim_dir(&id), signal, false).await?;
        if resume {
            self.resume_after_signal(&entry).await;
        }
        let record = entry.record.lock().await;
        let mut attributes = Self::attributes(&record);
        attributes.insert("signal".into(), signal.to_string());
        self.events
            .publish(EventMessageTypeEnum::CONTAINER, "kill", &id, attributes);
        Ok(())
    }

    /// `POST /containers/{id}/stop`: the stop signal, then SIGKILL after the timeout.
    /// Returns false when it was not running (304 in the API).
    pub async fn stop(
        &self,
        name_or_id: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<bool> {
        let entry = self.find(name_or_id)?;
        let (id, stop_signal, default_timeout) = {
            let mut record = entry.record.lock().await;
            if !record.state.status.is_running() {
                if record.state.status == Status::Restarting {
                    record.state.stopped_by_user = true;
                }
                return Ok(false);
            }
            record.state.stopped_by_user = true;
            let _ = record.save_state(&self.config.containers_root());
            (
                record.id.clone(),
                signal
                    .map(str::to_string)
                    .or_else(|| record.config.stop_signal.clone())
                    .unwrap_or_else(|| "SIGTERM".into()),
                record.config.stop_timeout.unwrap_or(10),
            )
        };
        if entry.record.lock().await.state.status == Status::Restarting {
            return Ok(true);
        }
        self.stop_entry(
            &entry,
            &id,
            signal_number(&stop_signal)?,
            timeout.unwrap_or(default_timeout),
        )
        .await?;
        Ok(true)
    }

    async fn stop_entry(
        &self,
        entry: &Arc<ContainerEntry>,
        id: &str,
        signal: i32,
        timeout: i64,
    ) -> Result<()> {
        let mut receiver = entry.status.subscribe();
        let state_dir = self.shim_dir(id);
        if entry.record.lock().await.state.status == Status::Paused {
            let _ = shim_client::kill(&state_dir, libc::SIGKILL, true).await;
        }
        let _ = shim_client::kill(&state_dir, signal, false).await;
        let exited = async {
            loop {
                if !receiver.borrow_and_update().status.is_running() {
                    return;
                }
                if receiver.changed().await.is_err() {
                    return;
                }
            }
        };
        let limit = if timeout < 0 {
            Duration::from_secs(u64::MAX / 4)
        } else {
            Duration::from_secs(timeout as u64)
        };
        if tokio::time::timeout(limit, exited).await.is_err() {
            let _ = shim_client::kill(&state_dir, libc::SIGKILL, true).await;
            let mut receiver = entry.status.subscribe();
            let _ = tokio::time::timeout(Duration::from_secs(10), async {
                while receiver.borrow_and_update().status.is_running() {
                    if receiver.changed().await.is_err() {
                        break;
                    }
                }
            })
            .await;
        }
        let record = entry.record.lock().await;
        self.events.publish(
            EventMessageTypeEnum::CONTAINER,
            "stop",
            id,
            Self::attributes(&record),
        );
        Ok(())
    }

    /// Kills a running container before a forced removal and waits for its exit.
    pub(crate) async fn kill_for_removal(&self, entry: &Arc<ContainerEntry>) -> Result<()> {
        let (id, running) = {
            let mut record = entry.record.lock().await;
            record.state.stopped_by_user = true;
            (record.id.clone(), record.state.status.is_running())
        };
        if running {
            self.stop_entry(entry, &id, libc::SIGKILL, 10).await?;
        }
        Ok(())
    }

    /// `POST /containers/{id}/restart`.
    pub async fn restart(
        self: &Arc<Self>,
        name_or_id: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        self.stop(name_or_id, timeout, signal).await?;
        let entry = self.find(name_or_id)?;
        let mut record = entry.record.lock().await;
        record.state.stopped_by_user = false;
        if record.state.status.is_running() {
            return Ok(());
        }
        self.start_locked(&entry, &mut record).await?;
        self.events.publish(
            EventMessageTypeEnum::CONTAINER,
            "restart",
            &record.id,
            Self::attributes(&record),
        );
        Ok(())
    }

    /// Reloads records at daemon start and reattaches to containers whose shim still runs.
    pub(crate) async fn restore(self: &Arc<Self>) -> Result<()> {
        let root = self.config.containers_root();
        for dir in std::fs::read_dir(&root)?.filter_map(|e| e.ok()) {
            let mut record = match ContainerRecord::load(&dir.path()) {
                Ok(record) => record,
                Err(error) => {
                    tracing::warn!("skipping {}: {error}", dir.path().display());
                    continue;
                }
            };
            if record.state.status == Status::Removing {
                record.state.status = Status::Dead;
            }
            let running = record.state.status.is_running();
            let pid = record.state.pid;
            let state_dir = self.shim_dir(&record.id);
            let alive = running && shim_client::is_alive(&state_dir).await;
            self.restore_volumes(&record, alive);
            let entry = self.insert(record);
            if !running {
                continue;
            }
            if alive {
                self.sandbox_restore(&*entry.record.lock().await).await;
                self.monitor(entry, pid);
            } else {
                let exit =
                    shim_client::read_exit_file(&state_dir).unwrap_or_else(shim_client::lost_exit);
                self.handle_exit(entry, pid, exit).await;
            }
        }
        self.volumes.unmount_idle();
        Ok(())
    }
}
