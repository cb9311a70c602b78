//! `docker commit`: a new image from a container's changes (`POST /commit`).
//!
//! The image store does the layer and the config ([`image::ImageStore::commit`]); this file
//! resolves the request against the container: its configuration merged under the
//! request's `Config` (moby `daemon/commit.go` `merge`: what the request leaves empty
//! comes from the container), its image as parent, its command line as the history's
//! `created_by`, and `pause` (default true): a running container's cgroup is frozen while
//! its changes are read, so the layer is a consistent picture, and thawed afterwards on
//! every path.

use std::collections::{BTreeMap, HashMap};

use bollard_stubs::models::{ContainerConfig, EventMessageTypeEnum};

use crate::Engine;
use crate::error::{Error, Result};

/// What `POST /commit` asks for.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// The container (name, id or id prefix).
    pub container: String,
    /// `repo` of the new image's name, if any.
    pub repo: Option<String>,
    /// `tag` of the new image's name (default `latest` when a repo is given).
    pub tag: Option<String>,
    /// `comment` (`--message`).
    pub comment: Option<String>,
    /// `author` (`--author`).
    pub author: Option<String>,
    /// `pause`: freeze the container while its changes are read.
    pub pause: bool,
    /// `changes` (`--change`): Dockerfile instructions.
    pub changes: Vec<String>,
    /// The request body: a container config whose set fields override the container's.
    pub config: Option<ContainerConfig>,
}

/// Fills what `user` leaves empty from `container` (moby `daemon/commit.go` `merge`).
fn merge_config(user: &mut image::ContainerConfig, container: &image::ContainerConfig) {
    if user.user.as_deref().is_none_or(str::is_empty) {
        user.user = container.user.clone();
    }
    if let Some(ports) = &container.exposed_ports {
        let merged = user.exposed_ports.get_or_insert_with(BTreeMap::new);
        for (port, value) in ports {
            merged.entry(port.clone()).or_insert_with(|| value.clone());
        }
    }
    match (&mut user.env, &container.env) {
        (None, Some(env)) => user.env = Some(env.clone()),
        (Some(mine), Some(theirs)) => {
            let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_owned();
            for entry in theirs {
                let k = key(entry);
                if !mine.iter().any(|m| key(m) == k) {
                    mine.push(entry.clone());
                }
            }
        }
        _ => {}
    }
    if let Some(labels) = &container.labels {
        let merged = user.labels.get_or_insert_with(BTreeMap::new);
        for (k, v) in labels {
            merged.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if user.entrypoint.as_ref().is_none_or(Vec::is_empty) {
        if user.cmd.as_ref().is_none_or(Vec::is_empty) {
            user.cmd = container.cmd.clone();
            user.args_escaped = container.args_escaped;
        }
        if user.entrypoint.is_none() {
            user.entrypoint = container.entrypoint.clone();
        }
    }
    if user.healthcheck.is_none() {
        user.healthcheck = container.healthcheck.clone();
    }
    if user.working_dir.as_deref().is_none_or(str::is_empty) {
        user.working_dir = container.working_dir.clone();
    }
    if user.volumes.as_ref().is_none_or(BTreeMap::is_empty) {
        user.volumes = container.volumes.clone();
    }
    if user.stop_signal.as_deref().is_none_or(str::is_empty) {
        user.stop_signal = container.stop_signal.clone();
    }
    if user.on_build.is_none() {
        user.on_build = container.on_build.clone();
    }
    if user.shell.is_none() {
        user.shell = container.shell.clone();
    }
}

/// The image crate's view of an Engine API container config (the fields an image keeps).
fn to_image_config(config: &ContainerConfig) -> Result<image::ContainerConfig> {
    let value = serde_json::to_value(config)?;
    serde_json::from_value(value)
        .map_err(|e| Error::invalid(format!("invalid container config: {e}")))
}

/// Thaws a frozen cgroup when dropped.
struct Frozen(Option<cgroups::Cgroup>);

impl Drop for Frozen {
    fn drop(&mut self) {
        if let Some(cgroup) = self.0.take()
            && let Err(e) = cgroup.thaw()
        {
            tracing::error!(error = %e, cgroup = cgroup.path(), "thaw after commit failed");
        }
    }
}

/// Freezes the container's cgroup (`/berth/<id>`, as the spec names it).
fn freeze(id: &str) -> Result<Frozen> {
    let hierarchies = cgroups::Hierarchies::detect().map_err(|e| Error::internal(e.to_string()))?;
    let cgroup = cgroups::Cgroup::new(&hierarchies, &format!("/berth/{id}"))
        .map_err(|e| Error::internal(e.to_string()))?;
    cgroup
        .freeze()
        .map_err(|e| Error::internal(format!("pause container {id} for commit: {e}")))?;
    Ok(Frozen(Some(cgroup)))
}

impl Engine {
    /// `POST /commit`: returns the new image's id (`sha256:...`).
    pub async fn commit(&self, options: CommitOptions) -> Result<String> {
        let entry = self.find(&options.container)?;
        let reference = match options.repo.as_deref().filter(|r| !r.is_empty()) {
            None => {
                if options.tag.as_deref().is_some_and(|t| !t.is_empty()) {
                    return Err(Error::invalid("tag is not allowed without a repository"));
                }
                None
            }
            Some(repo) => {
                let text = match options.tag.as_deref().filter(|t| !t.is_empty()) {
                    Some(tag) => format!("{repo}:{tag}"),
                    None => repo.to_string(),
                };
                Some(
                    types::Reference::parse_normalized(&text)
                        .map_err(|e| Error::invalid(e.to_string()))?,
                )
            }
        };
        let mut record_guard = Some(entry.record.lock().await);
        let record = crate::ContainerRecord::clone(record_guard.as_ref().expect("held"));
        if record.state.status == crate::Status::Removing {
            return Err(Error::conflict(format!(
                "removal of container {} is already in progress",
                record.id
            )));
        }
        let container_config = to_image_config(&record.config)?;
        let mut config = match &options.config {
            Some(body) => to_image_config(body)?,
            None => image::ContainerConfig::default(),
        };
        merge_config(&mut config, &container_config);
        let image_id: image::ImageId = record
            .image_id
            .parse()
            .map_err(|e: types::DigestError| Error::internal(e.to_string()))?;
        let frozen = if record.state.status.is_running() {
            // A running container keeps running (and may be inspected) meanwhile; a
            // stopped one stays locked so a start cannot write while we read.
            record_guard = None;
            if options.pause && record.state.status != crate::Status::Paused {
                let id = record.id.clone();
                Some(
                    tokio::task::spawn_blocking(move || freeze(&id))
                        .await
                        .map_err(|e| Error::internal(e.to_string()))??,
                )
            } else {
                None
            }
        } else {
            None
        };
        let mut created_by = vec![record.path.clone()];
        created_by.extend(record.args.iter().cloned());
        let images = self.images.clone();
        let key = record.id.clone();
        let changes = options.changes.clone();
        let (comment, author) = (options.comment.clone(), options.author.clone());
        let named = reference.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let result = images.commit(&image::CommitRequest {
                container_key: &key,
                image: Some(&image_id),
                reference: named.as_ref(),
                config,
                changes: &changes,
                comment: comment.as_deref(),
                author: author.as_deref(),
                created_by: Some(created_by.join(" ")),
            });
            // Thawed on this thread as soon as the layer is read, before anything else.
            drop(frozen);
            result
        })
        .await
        .map_err(|e| Error::internal(e.to_string()))?;
        drop(record_guard);
        let id = outcome?;
        let mut attributes = HashMap::from([
            ("comment".to_string(), options.comment.unwrap_or_default()),
            ("imageID".to_string(), id.to_string()),
            ("name".to_string(), record.name.clone()),
            ("image".to_string(), record.image_name.clone()),
        ]);
        if let Some(r) = &reference {
            attributes.insert("imageRef".to_string(), r.familiar());
        }
        self.events.publish(
            EventMessageTypeEnum::CONTAINER,
            "commit",
            &record.id,
            attributes,
        );
        Ok(id.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Option<Vec<String>> {
        Some(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn request_config_wins_and_the_container_fills_the_rest() {
        let container = image::ContainerConfig {
            user: Some("app".into()),
            env: strings(&["PATH=/bin", "A=container"]),
            cmd: strings(&["sh"]),
            working_dir: Some("/srv".into()),
            labels: Some(BTreeMap::from([("x".into(), "1".into())])),
            ..Default::default()
        };
        let mut user = image::ContainerConfig {
            env: strings(&["A=request"]),
            labels: Some(BTreeMap::from([("y".into(), "2".into())])),
            ..Default::default()
        };
        merge_config(&mut user, &container);
        assert_eq!(user.env, strings(&["A=request", "PATH=/bin"]));
        assert_eq!(user.cmd, strings(&["sh"]));
        assert_eq!(user.user.as_deref(), Some("app"));
        assert_eq!(user.working_dir.as_deref(), Some("/srv"));
        assert_eq!(user.labels.unwrap().len(), 2);

        // A request entrypoint keeps its own (empty) cmd.
        let mut user = image::ContainerConfig {
            entrypoint: strings(&["/app"]),
            ..Default::default()
        };
        merge_config(&mut user, &container);
        assert_eq!(user.cmd, None);
        assert_eq!(user.entrypoint, strings(&["/app"]));
    }

    #[test]
    fn api_config_converts() {
        let config = ContainerConfig {
            env: strings(&["A=B"]),
            exposed_ports: Some(vec!["80/tcp".into()]),
            hostname: Some("h".into()),
            ..Default::default()
        };
        let converted = to_image_config(&config).unwrap();
        assert_eq!(converted.env, strings(&["A=B"]));
        assert!(converted.exposed_ports.unwrap().contains_key("80/tcp"));
    }
}
