//! Operations on live containers, as dockerd does them: pause/unpause (the cgroup freezer, or
//! `<runtime> pause|resume` for a container of an external OCI runtime), rename (the name
//! index), update (resources written to the live cgroup and to the record, and the restart
//! policy), and top (the host's `ps`, rows kept for the container's processes).

use std::collections::HashMap;
use std::sync::Arc;

use bollard_stubs::models::{
    ContainerTopResponse, ContainerUpdateBody, EventMessageTypeEnum, RestartPolicyNameEnum,
};
use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources,
    LinuxResourcesBuilder,
};

use crate::error::{Error, Result};
use crate::record::{ContainerRecord, Status};
use crate::{ContainerEntry, Engine, names};

/// Smallest memory limit dockerd accepts (daemon_unix.go `linuxMinMemory`).
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

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

/// dockerd's "container is not running" conflict.
fn not_running(id: &str) -> Error {
    Error::conflict(format!("container {id} is not running"))
}

/// dockerd's message for an operation on a restarting container.
fn restarting(id: &str) -> Error {
    Error::conflict(format!(
        "Container {id} is restarting, wait until the container is running"
    ))
}

impl Engine {
    /// The external runtime binary of a container, None for the built-in one.
    fn external_runtime(&self, record: &ContainerRecord) -> Option<std::path::PathBuf> {
        match record.runtime.as_str() {
            "berth" | "" => None,
            name => Some(
                self.config
                    .runtimes
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| name.into()),
            ),
        }
    }

    /// Freezes (`true`) or thaws a running container's processes.
    ///
    /// Built-in runtime: the cgroup freezer directly (v1 `freezer.state` or v2
    /// `cgroup.freeze`); the runtime library derives "paused" from it. External runtime:
    /// `<runtime> --root <shim state>/runtime pause|resume <id>`, so its own state agrees.
    async fn set_frozen(&self, record: &ContainerRecord, frozen: bool) -> Result<()> {
        let id = record.id.clone();
        if let Some(runtime) = self.external_runtime(record) {
            let root = self.shim_dir(&id).join("runtime");
            let verb = if frozen { "pause" } else { "resume" };
            let output = tokio::process::Command::new(&runtime)
                .arg("--root")
                .arg(&root)
                .arg(verb)
                .arg(&id)
                .stdin(std::process::Stdio::null())
                .output()
                .await
                .map_err(|e| Error::internal(format!("{}: {e}", runtime.display())))?;
            if !output.status.success() {
                let stderr = String::from_utf8_lossy(&output.stderr);
                return Err(Error::internal(format!(
                    "{} {verb}: {}",
                    runtime.display(),
                    stderr.trim()
                )));
            }
            return Ok(());
        }
        tokio::task::spawn_blocking(move || {
            let cgroup = crate::stats::container_cgroup(&id)?;
            if frozen {
                cgroup.freeze()
            } else {
                cgroup.thaw()
            }
            .map_err(|e| Error::new(e.kind(), e.to_string()))
        })
        .await
        .map_err(|e| Error::internal(e.to_string()))?
    }

    /// `POST /containers/{id}/pause`.
    pub async fn pause(&self, name_or_id: &str) -> Result<()> {
        let entry = self.find(name_or_id)?;
        let mut record = entry.record.lock().await;
        match record.state.status {
            Status::Running => {}
            Status::Paused => {
                return Err(Error::conflict(format!(
                    "container {} is already paused",
                    record.id
                )));
            }
            Status::Restarting => return Err(restarting(&record.id)),
            _ => return Err(not_running(&record.id)),
        }
        self.set_frozen(&record, true).await.map_err(|e| {
            Error::new(e.kind, format!("Cannot pause container {}: {e}", record.id))
        })?;
        self.set_status(&entry, &mut record, Status::Paused, "pause");
        Ok(())
    }

    /// `POST /containers/{id}/unpause`.
    pub async fn unpause(&self, name_or_id: &str) -> Result<()> {
        let entry = self.find(name_or_id)?;
        let mut record = entry.record.lock().await;
        if record.state.status != Status::Paused {
            return Err(Error::conflict(format!(
                "Container {} is not paused",
                record.id
            )));
        }
        self.set_frozen(&record, false).await.map_err(|e| {
            Error::new(
                e.kind,
                format!("Cannot unpause container {}: {e}", record.id),
            )
        })?;
        self.set_status(&entry, &mut record, Status::Running, "unpause");
        Ok(())
    }

    /// Thaws a paused container after a signal was sent to it, so that the signal is acted on:
    /// dockerd resumes a paused container after sending it SIGKILL or its stop signal
    /// (daemon/kill.go). For the kill and stop paths.
    pub(crate) async fn resume_after_signal(&self, entry: &Arc<ContainerEntry>) {
        let mut record = entry.record.lock().await;
        if record.state.status != Status::Paused {
            return;
        }
        match self.set_frozen(&record, false).await {
            Ok(()) => self.set_status(entry, &mut record, Status::Running, "unpause"),
            Err(error) => tracing::warn!("cannot unpause container {}: {error}", record.id),
        }
    }

    fn set_status(
        &self,
        entry: &Arc<ContainerEntry>,
        record: &mut ContainerRecord,
        status: Status,
        action: &str,
    ) {
        record.state.status = status;
        if let Err(error) = record.save(&self.config.containers_root()) {
            tracing::warn!("saving container {}: {error}", record.id);
        }
        entry.status.send_modify(|change| change.status = status);
        self.events.publish(
            EventMessageTypeEnum::CONTAINER,
            action,
            &record.id,
            attributes(record),
        );
    }

    /// `POST /containers/{id}/rename?name=`.
    pub async fn rename(&self, name_or_id: &str, new_name: &str) -> Result<()> {
        if name_or_id.is_empty() || new_name.trim_start_matches('/').is_empty() {
            return Err(Error::invalid("Neither old nor new names may be empty"));
        }
        let new_name = names::validate(new_name)?;
        let entry = self.find(name_or_id)?;
        let mut record = entry.record.lock().await;
        if record.state.status == Status::Removing || record.state.status == Status::Dead {
            return Err(Error::conflict(format!(
                "Can't rename container which is dead or marked for removal: {}",
                record.id
            )));
        }
        let old_name = record.name.clone();
        if old_name == new_name {
            return Err(Error::invalid(
                "Renaming a container with the same name as its current name",
            ));
        }
        {
            let mut index = self.names.write().expect("names lock");
            if let Some(owner) = index.get(&new_name) {
                return Err(Error::conflict(format!(
                    "Conflict. The container name \"/{new_name}\" is already in use by container \"{owner}\". You have to remove (or rename) that container to be able to reuse that name."
                )));
            }
            index.insert(new_name.clone(), record.id.clone());
            index.remove(&old_name);
        }
        record.name = new_name.clone();
        if let Err(error) = record.save(&self.config.containers_root()) {
            // Back to the old name everywhere: nothing half-renamed stays.
            record.name = old_name.clone();
            let mut index = self.names.write().expect("names lock");
            index.remove(&new_name);
            index.insert(old_name, record.id.clone());
            return Err(error);
        }
        let mut event = attributes(&record);
        event.insert("oldName".into(), format!("/{old_name}"));
        self.events
            .publish(EventMessageTypeEnum::CONTAINER, "rename", &record.id, event);
        Ok(())
    }

    /// `POST /containers/{id}/update`: validates like dockerd's verifyContainerSettings, merges
    /// the non-zero fields into the record's HostConfig (container.UpdateContainer rules),
    /// writes the resources to the live cgroup when the container runs, then saves the record.
    /// Returns dockerd's warnings.
    pub async fn update(
        &self,
        name_or_id: &str,
        body: &ContainerUpdateBody,
    ) -> Result<Vec<String>> {
        let features = crate::stats::hierarchies().map(|h| h.features());
        let mut warnings = Vec::new();
        let mut body = body.clone();
        validate_update(&mut body, features.as_ref(), &mut warnings)?;
        let entry = self.find(name_or_id)?;
        let mut record = entry.record.lock().await;
        let id = record.id.clone();
        let cannot =
            |message: String| Error::invalid(format!("Cannot update container {id}: {message}"));
        if matches!(record.state.status, Status::Removing | Status::Dead) {
            return Err(cannot(
                "container is marked for removal and cannot be \"update\"".into(),
            ));
        }
        let mut host_config = record.host_config.clone();
        merge_update(&mut host_config, &body).map_err(cannot)?;
        let live = matches!(record.state.status, Status::Running | Status::Paused);
        if live {
            let resources = live_resources(&host_config, &body).map_err(|e| cannot(e.message))?;
            let cgroup_id = id.clone();
            tokio::task::spawn_blocking(move || {
                let cgroup = crate::stats::container_cgroup(&cgroup_id)?;
                cgroup
                    .apply(&resources)
                    .map_err(|e| Error::new(e.kind(), e.to_string()))
            })
            .await
            .map_err(|e| Error::internal(e.to_string()))?
            .map_err(|e| {
                Error::new(
                    types::ErrorKind::Internal,
                    format!("Cannot update container {id}: {e}"),
                )
            })?;
        }
        let previous = std::mem::replace(&mut record.host_config, host_config);
        if let Err(error) = record.save(&self.config.containers_root()) {
            record.host_config = previous;
            return Err(error);
        }
        self.events.publish(
            EventMessageTypeEnum::CONTAINER,
            "update",
            &id,
            attributes(&record),
        );
        Ok(warnings)
    }

    /// `GET /containers/{id}/top?ps_args=`: the host's `ps` with the arguments (default
    /// `-ef`), rows kept for the processes of the container's cgroup.
    pub async fn top(
        &self,
        name_or_id: &str,
        ps_args: Option<&str>,
    ) -> Result<ContainerTopResponse> {
        let ps_args = ps_args
            .filter(|a| !a.is_empty())
            .unwrap_or("-ef")
            .to_string();
        validate_ps_args(&ps_args)?;
        let entry = self.find(name_or_id)?;
        let (id, attributes) = {
            let record = entry.record.lock().await;
            match record.state.status {
                Status::Running | Status::Paused => {}
                Status::Restarting => return Err(restarting(&record.id)),
                _ => return Err(not_running(&record.id)),
            }
            (record.id.clone(), attributes(&record))
        };
        let cgroup_id = id.clone();
        let pids = tokio::task::spawn_blocking(move || {
            crate::stats::container_cgroup(&cgroup_id)?
                .pids()
                .map_err(|e| Error::new(e.kind(), e.to_string()))
        })
        .await
        .map_err(|e| Error::internal(e.to_string()))??;
        let args: Vec<&str> = ps_args.split(' ').collect();
        let pid_list = pids
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        // `-q PIDS` lets ps read only those processes; some formats (forest `f`) refuse it,
        // so on failure ps runs again over every process, as dockerd does.
        let mut output = run_ps(&args, (!pids.is_empty()).then_some(pid_list.as_str())).await?;
        if !output.status.success() {
            output = run_ps(&args, None).await?;
        }
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let first = stderr.lines().next().unwrap_or("").trim().to_string();
            let message = if first.is_empty() {
                format!("ps: {}", output.status)
            } else {
                format!("ps: {first}")
            };
            return Err(Error::internal(message));
        }
        let top = parse_ps_output(&String::from_utf8_lossy(&output.stdout), &pids)?;
        self.events
            .publish(EventMessageTypeEnum::CONTAINER, "top", &id, attributes);
        Ok(top)
    }
}

async fn run_ps(args: &[&str], pids: Option<&str>) -> Result<std::process::Output> {
    let mut command = tokio::process::Command::new("ps");
    command.args(args);
    if let Some(pids) = pids {
        command.arg("-q").arg(pids);
    }
    command
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| Error::internal(format!("ps: {e}")))
}

/// dockerd refuses format keys renamed to something starting with "PID" other than `pid`
/// (`-o comm=PID`), which would make it read the wrong column as the pid.
fn validate_ps_args(args: &str) -> Result<()> {
    let bytes = args.as_bytes();
    for (at, _) in args.match_indices('=') {
        let key_start = args[..at]
            .rfind(char::is_whitespace)
            .map_or(0, |space| space + 1);
        // The key must follow whitespace (not open the string).
        if key_start == 0 {
            continue;
        }
        let key = &args[key_start..at];
        let mut value_start = at + 1;
        while value_start < bytes.len() && bytes[value_start].is_ascii_whitespace() {
            value_start += 1;
        }
        let value: &str = args[value_start..]
            .split(char::is_whitespace)
            .next()
            .unwrap_or("");
        if value.starts_with("PID") && key != "pid" {
            return Err(Error::invalid(format!(
                "specifying \"{key}={value}\" is not allowed"
            )));
        }
    }
    Ok(())
}

/// Keeps the rows of `ps` output whose PID is one of `pids`. Columns are split on blanks; the
/// last title takes the rest of the line (the command with its arguments). Thread rows (`-`
/// in the PID column, with `m`/`-L`) follow the process row they belong to.
fn parse_ps_output(output: &str, pids: &[i32]) -> Result<ContainerTopResponse> {
    let mut lines = output.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split_ascii_whitespace()
        .map(str::to_string)
        .collect();
    let pid_column = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| Error::internal("Couldn't find PID field in ps output"))?;
    let mut processes = Vec::new();
    let mut in_container = false;
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let Some(pid_field) = fields.get(pid_column) else {
            continue;
        };
        let keep = if *pid_field == "-" {
            in_container
        } else {
            let pid: i32 = pid_field.parse().map_err(|_| {
                Error::internal(format!("Unexpected pid '{pid_field}': invalid syntax"))
            })?;
            in_container = pids.contains(&pid);
            in_container
        };
        if keep {
            let last = titles.len().saturating_sub(1).min(fields.len());
            let mut row: Vec<String> = fields[..last].iter().map(|f| f.to_string()).collect();
            row.push(fields[last..].join(" "));
            processes.push(row);
        }
    }
    Ok(ContainerTopResponse {
        titles: Some(titles),
        processes: Some(processes),
    })
}

/// dockerd's verifyContainerSettings for an update: ranges and conflicts within the request,
/// and what this host cannot limit (dropped with a warning, as dockerd does).
fn validate_update(
    body: &mut ContainerUpdateBody,
    features: Option<&cgroups::HostFeatures>,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let memory = body.memory.unwrap_or(0);
    let swap = body.memory_swap.unwrap_or(0);
    if memory < 0 {
        return Err(Error::invalid(format!(
            "invalid memory limit: {memory} is negative"
        )));
    }
    if memory != 0 && memory < MIN_MEMORY {
        return Err(Error::invalid("Minimum memory limit allowed is 6MB"));
    }
    if memory > 0 && swap > 0 && swap < memory {
        return Err(Error::invalid(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if let Some(reservation) = body.memory_reservation.filter(|r| *r != 0) {
        if reservation < MIN_MEMORY {
            return Err(Error::invalid("Minimum memory reservation allowed is 6MB"));
        }
        if memory > 0 && reservation > memory {
            return Err(Error::invalid(
                "Minimum memory limit can not be less than memory reservation limit, see usage",
            ));
        }
    }
    if let Some(features) = features {
        if swap > 0 && !features.swap_limit {
            warnings.push("Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.".into());
            body.memory_swap = None;
        }
        if body.pids_limit.is_some() && !features.pids_limit {
            warnings.push("Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.".into());
            body.pids_limit = None;
        }
    }
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get() as i64)
        .unwrap_or(1);
    let nano = body.nano_cpus.unwrap_or(0);
    if nano < 0 || nano > cpus * 1_000_000_000 {
        return Err(Error::invalid(format!(
            "Range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available"
        )));
    }
    if nano > 0 && body.cpu_period.unwrap_or(0) > 0 {
        return Err(Error::invalid(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    if nano > 0 && body.cpu_quota.unwrap_or(0) > 0 {
        return Err(Error::invalid(
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ));
    }
    if let Some(period) = body.cpu_period.filter(|p| *p != 0)
        && !(1000..=1_000_000).contains(&period)
    {
        return Err(Error::invalid(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ));
    }
    if let Some(quota) = body.cpu_quota.filter(|q| *q > 0)
        && quota < 1000
    {
        return Err(Error::invalid(
            "CPU cfs quota can not be less than 1ms (i.e. 1000)",
        ));
    }
    if body.cpu_shares.is_some_and(|s| s < 0) {
        return Err(Error::invalid(format!(
            "invalid CPU shares ({}): value must be a positive integer",
            body.cpu_shares.unwrap_or(0)
        )));
    }
    if let Some(weight) = body.blkio_weight.filter(|w| *w != 0)
        && !(10..=1000).contains(&weight)
    {
        return Err(Error::invalid("Range of blkio weight is from 10 to 1000"));
    }
    for (what, list) in [
        ("cpuset.cpus", body.cpuset_cpus.as_deref()),
        ("cpuset.mems", body.cpuset_mems.as_deref()),
    ] {
        if let Some(list) = list.filter(|l| !l.is_empty()) {
            check_cpuset(what, list)?;
        }
    }
    if let Some(policy) = body.restart_policy.as_ref()
        && policy
            .name
            .is_some_and(|n| n != RestartPolicyNameEnum::EMPTY)
    {
        crate::lifecycle::validate_restart_policy(policy, false)?;
    }
    Ok(())
}

/// A cpuset list ("0-2,4"): syntax, and CPUs this host has (dockerd: "Requested CPUs are not
/// available").
fn check_cpuset(what: &str, list: &str) -> Result<()> {
    let invalid = || Error::invalid(format!("Invalid value {list} for {what}."));
    let available = std::thread::available_parallelism()
        .map(|n| n.get() as u64)
        .unwrap_or(1);
    for part in list.split(',') {
        let (low, high) = match part.split_once('-') {
            Some((low, high)) => (low, high),
            None => (part, part),
        };
        let low: u64 = low.trim().parse().map_err(|_| invalid())?;
        let high: u64 = high.trim().parse().map_err(|_| invalid())?;
        if low > high {
            return Err(invalid());
        }
        if what == "cpuset.cpus" && high >= available {
            return Err(Error::invalid(format!(
                "Requested CPUs are not available - requested {list}, available: 0-{}",
                available - 1
            )));
        }
        if what == "cpuset.mems"
            && high > 0
            && !std::path::Path::new(&format!("/sys/devices/system/node/node{high}")).exists()
        {
            return Err(Error::invalid(format!(
                "Requested memory nodes are not available - requested {list}, available: 0"
            )));
        }
    }
    Ok(())
}

/// dockerd's container.UpdateContainer: the non-zero fields of the request replace the
/// container's; NanoCPUs and CPU period/quota exclude each other across the two; a memory
/// limit above the swap limit in place needs a new swap limit too; no restart policy beside
/// `--rm`.
fn merge_update(
    host: &mut bollard_stubs::models::HostConfig,
    body: &ContainerUpdateBody,
) -> std::result::Result<(), String> {
    let set = |v: Option<i64>| v.filter(|v| *v != 0);
    let current_nano = set(host.nano_cpus).is_some();
    if set(body.nano_cpus).is_some() && set(host.cpu_period).is_some() {
        return Err(
            "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set"
                .into(),
        );
    }
    if set(body.nano_cpus).is_some() && set(host.cpu_quota).is_some() {
        return Err(
            "Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set"
                .into(),
        );
    }
    if set(body.cpu_period).is_some() && current_nano {
        return Err(
            "Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set"
                .into(),
        );
    }
    if set(body.cpu_quota).is_some() && current_nano {
        return Err(
            "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set"
                .into(),
        );
    }
    if let Some(weight) = body.blkio_weight.filter(|w| *w != 0) {
        host.blkio_weight = Some(weight);
    }
    if let Some(shares) = set(body.cpu_shares) {
        host.cpu_shares = Some(shares);
    }
    if let Some(nano) = set(body.nano_cpus) {
        host.nano_cpus = Some(nano);
    }
    if let Some(period) = set(body.cpu_period) {
        host.cpu_period = Some(period);
    }
    if let Some(quota) = set(body.cpu_quota) {
        host.cpu_quota = Some(quota);
    }
    if let Some(cpus) = body.cpuset_cpus.clone().filter(|c| !c.is_empty()) {
        host.cpuset_cpus = Some(cpus);
    }
    if let Some(mems) = body.cpuset_mems.clone().filter(|c| !c.is_empty()) {
        host.cpuset_mems = Some(mems);
    }
    if let Some(memory) = set(body.memory) {
        // dockerd stores MemorySwap = 2 × Memory at create when only Memory is given; the
        // record keeps the request as made, so that default is worked out here.
        let current_swap = match set(host.memory_swap) {
            Some(swap) => swap,
            None => set(host.memory).map_or(0, |m| m * 2),
        };
        if memory > current_swap && set(body.memory_swap).is_none() {
            return Err("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time".into());
        }
        host.memory_swap = Some(current_swap);
        host.memory = Some(memory);
    }
    if let Some(swap) = set(body.memory_swap) {
        let memory = set(host.memory).unwrap_or(0);
        if swap > 0 && memory == 0 {
            return Err(
                "You should always set the Memory limit when using Memoryswap limit".into(),
            );
        }
        if swap > 0 && swap < memory {
            return Err(
                "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
            );
        }
        host.memory_swap = Some(swap);
    }
    if let Some(reservation) = set(body.memory_reservation) {
        host.memory_reservation = Some(reservation);
    }
    if let Some(limit) = body.pids_limit {
        // 0 and -1 both mean unlimited; dockerd keeps 0 for "unlimited" in the record.
        host.pids_limit = Some(if limit <= 0 { 0 } else { limit });
    }
    if let Some(policy) = body.restart_policy.as_ref()
        && policy
            .name
            .is_some_and(|n| n != RestartPolicyNameEnum::EMPTY)
    {
        let is_none = policy.name == Some(RestartPolicyNameEnum::NO);
        if host.auto_remove.unwrap_or(false) && !is_none {
            return Err(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
                    .into(),
            );
        }
        host.restart_policy = Some(policy.clone());
    }
    Ok(())
}

/// The OCI resources to write to the live cgroup: only the sections the update touches, with
/// the merged values (`after`), so untouched limits stay as they are.
fn live_resources(
    after: &bollard_stubs::models::HostConfig,
    body: &ContainerUpdateBody,
) -> Result<LinuxResources> {
    let bad = |e: oci_spec::OciSpecError| Error::invalid(e.to_string());
    let set = |v: Option<i64>| v.filter(|v| *v != 0);
    let mut resources = LinuxResourcesBuilder::default();
    let memory_changed = set(body.memory).is_some()
        || set(body.memory_swap).is_some()
        || set(body.memory_reservation).is_some();
    if memory_changed {
        let mut memory = LinuxMemoryBuilder::default();
        if let Some(limit) = set(after.memory) {
            memory = memory.limit(limit);
            let swap = set(after.memory_swap).unwrap_or(limit * 2);
            memory = memory.swap(swap);
        }
        if let Some(reservation) = set(after.memory_reservation) {
            memory = memory.reservation(reservation);
        }
        resources = resources.memory(memory.build().map_err(bad)?);
    }
    let cpu_changed = set(body.cpu_shares).is_some()
        || set(body.nano_cpus).is_some()
        || set(body.cpu_period).is_some()
        || set(body.cpu_quota).is_some()
        || body.cpuset_cpus.as_deref().is_some_and(|c| !c.is_empty())
        || body.cpuset_mems.as_deref().is_some_and(|c| !c.is_empty());
    if cpu_changed {
        let mut cpu = LinuxCpuBuilder::default();
        if let Some(shares) = set(body.cpu_shares) {
            cpu = cpu.shares(shares as u64);
        }
        if let Some(nano) = set(body.nano_cpus) {
            // --cpus: a 100 ms period with the matching quota, as dockerd.
            cpu = cpu.period(100_000u64).quota(nano * 100_000 / 1_000_000_000);
        }
        if let Some(period) = set(body.cpu_period) {
            cpu = cpu.period(period as u64);
        }
        if let Some(quota) = set(body.cpu_quota) {
            cpu = cpu.quota(quota);
        }
        if let Some(cpus) = body.cpuset_cpus.clone().filter(|c| !c.is_empty()) {
            cpu = cpu.cpus(cpus);
        }
        if let Some(mems) = body.cpuset_mems.clone().filter(|c| !c.is_empty()) {
            cpu = cpu.mems(mems);
        }
        resources = resources.cpu(cpu.build().map_err(bad)?);
    }
    if let Some(limit) = body.pids_limit {
        resources = resources.pids(
            LinuxPidsBuilder::default()
                .limit(if limit <= 0 { -1 } else { limit })
                .build()
                .map_err(bad)?,
        );
    }
    if let Some(weight) = body.blkio_weight.filter(|w| *w != 0) {
        resources = resources.block_io(
            LinuxBlockIoBuilder::default()
                .weight(weight)
                .build()
                .map_err(bad)?,
        );
    }
    resources.build().map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_stubs::models::{HostConfig, RestartPolicy};

    const PS: &str = "UID          PID    PPID  C STIME TTY          TIME CMD\n\
root           1       0  0 11:17 ?        00:00:30 /sbin/init splash\n\
root         420       1  0 11:18 ?        00:00:00 sh -c sleep 100\n\
root         421     420  0 11:18 ?        00:00:00 sleep 100\n";

    #[test]
    fn ps_rows_are_filtered_and_the_command_kept_whole() {
        let top = parse_ps_output(PS, &[420, 421]).unwrap();
        assert_eq!(top.titles.as_ref().unwrap().len(), 8);
        let processes = top.processes.unwrap();
        assert_eq!(processes.len(), 2);
        assert_eq!(processes[0][1], "420");
        assert_eq!(processes[0][7], "sh -c sleep 100");
        assert_eq!(processes[1][7], "sleep 100");
        assert!(parse_ps_output("A B\n1 2\n", &[1]).is_err());
    }

    #[test]
    fn thread_rows_follow_their_process() {
        let text = "USER PID TID CMD\nroot 7 - sh\nroot - 7 -\nroot 8 - other\nroot - 8 -\n";
        let processes = parse_ps_output(text, &[7]).unwrap().processes.unwrap();
        assert_eq!(processes.len(), 2);
        assert_eq!(processes[1][1], "-");
    }

    #[test]
    fn ps_args_renaming_pid_are_refused() {
        assert!(validate_ps_args("-ef").is_ok());
        assert!(validate_ps_args("-o pid=PID,comm").is_ok());
        let error = validate_ps_args("-o comm=PID").unwrap_err();
        assert_eq!(error.message, "specifying \"comm=PID\" is not allowed");
    }

    #[test]
    fn memory_update_follows_dockerd_swap_rule() {
        // No limit yet: dockerd's MemorySwap is 0 and a new limit is above it.
        let mut host = HostConfig::default();
        let body = ContainerUpdateBody {
            memory: Some(64 << 20),
            ..Default::default()
        };
        assert!(
            merge_update(&mut host, &body)
                .unwrap_err()
                .contains("memoryswap")
        );
        // Created with 128m: swap 256m in place, lowering to 64m keeps it.
        let mut host = HostConfig {
            memory: Some(128 << 20),
            ..Default::default()
        };
        merge_update(&mut host, &body).unwrap();
        assert_eq!(host.memory, Some(64 << 20));
        assert_eq!(host.memory_swap, Some(256 << 20));
        // With a swap limit given, any memory limit below it goes.
        let mut host = HostConfig::default();
        let body = ContainerUpdateBody {
            memory: Some(64 << 20),
            memory_swap: Some(-1),
            ..Default::default()
        };
        merge_update(&mut host, &body).unwrap();
        assert_eq!(host.memory_swap, Some(-1));
        let resources = live_resources(&host, &body).unwrap();
        assert_eq!(resources.memory().as_ref().unwrap().limit(), Some(64 << 20));
        assert_eq!(resources.memory().as_ref().unwrap().swap(), Some(-1));
        assert!(resources.cpu().is_none());
    }

    #[test]
    fn cpu_conflicts_and_ranges() {
        let mut host = HostConfig {
            nano_cpus: Some(500_000_000),
            ..Default::default()
        };
        let body = ContainerUpdateBody {
            cpu_quota: Some(50_000),
            ..Default::default()
        };
        assert!(
            merge_update(&mut host, &body)
                .unwrap_err()
                .contains("NanoCPUs")
        );
        let mut warnings = Vec::new();
        let mut body = ContainerUpdateBody {
            nano_cpus: Some(1_000_000_000_000),
            ..Default::default()
        };
        assert!(validate_update(&mut body, None, &mut warnings).is_err());
        let mut body = ContainerUpdateBody {
            blkio_weight: Some(5),
            ..Default::default()
        };
        assert!(validate_update(&mut body, None, &mut warnings).is_err());
        let mut body = ContainerUpdateBody {
            cpuset_cpus: Some("0-999".into()),
            ..Default::default()
        };
        assert!(validate_update(&mut body, None, &mut warnings).is_err());
        let mut body = ContainerUpdateBody {
            memory: Some(1024),
            ..Default::default()
        };
        assert_eq!(
            validate_update(&mut body, None, &mut warnings)
                .unwrap_err()
                .message,
            "Minimum memory limit allowed is 6MB"
        );
    }

    #[test]
    fn restart_policy_and_auto_remove() {
        let mut host = HostConfig {
            auto_remove: Some(true),
            ..Default::default()
        };
        let body = ContainerUpdateBody {
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::ALWAYS),
                maximum_retry_count: Some(0),
            }),
            ..Default::default()
        };
        assert!(
            merge_update(&mut host, &body)
                .unwrap_err()
                .contains("AutoRemove")
        );
        let mut host = HostConfig::default();
        merge_update(&mut host, &body).unwrap();
        assert_eq!(
            host.restart_policy.unwrap().name,
            Some(RestartPolicyNameEnum::ALWAYS)
        );
        // An empty name changes nothing.
        let mut host = HostConfig::default();
        let body = ContainerUpdateBody {
            restart_policy: Some(RestartPolicy::default()),
            ..Default::default()
        };
        merge_update(&mut host, &body).unwrap();
        assert!(host.restart_policy.is_none());
    }
}
