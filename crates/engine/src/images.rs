//! Images as the engine uses them: the config a container starts from, merging it with the
//! container's own Config as dockerd does, and the image services with their events.

use std::collections::HashMap;

use bollard_stubs::models::{ContainerConfig, EventMessageTypeEnum};

use crate::Engine;
use crate::error::{Error, Result};

/// The parts of an image a new container needs.
pub struct ImageForContainer {
    pub id: image::ImageId,
    pub config: image::ContainerConfig,
}

impl Engine {
    /// Resolves the image of a new container; a missing image is dockerd's 404.
    pub(crate) async fn image_for_container(&self, name: &str) -> Result<ImageForContainer> {
        let images = self.images.clone();
        let wanted = name.to_string();
        let found = tokio::task::spawn_blocking(move || images.resolve(&wanted))
            .await
            .map_err(|e| Error::internal(e.to_string()))?;
        match found {
            Ok(image) => Ok(ImageForContainer {
                id: image.id.clone(),
                config: image.container_config(),
            }),
            Err(error) if error.kind() == types::ErrorKind::NotFound => {
                Err(Error::not_found(format!("No such image: {name}")))
            }
            Err(error) => Err(error.into()),
        }
    }
}

/// Fills what the container's Config leaves empty from the image's config (dockerd's
/// merge): user, env (image first, container overrides by key), cmd (only when neither cmd nor
/// entrypoint is set by the container), entrypoint, workdir, labels, exposed ports, volumes,
/// stop signal.
pub fn merge_image_config(config: &mut ContainerConfig, image: &image::ContainerConfig) {
    if config.user.as_deref().is_none_or(str::is_empty) {
        config.user = image.user.clone();
    }
    let mut env: Vec<String> = image.env.clone().unwrap_or_default();
    for entry in config.env.clone().unwrap_or_default() {
        let key = entry.split('=').next().unwrap_or_default().to_string();
        env.retain(|e| e.split('=').next() != Some(key.as_str()));
        env.push(entry);
    }
    config.env = Some(env);
    let entrypoint_given = config.entrypoint.as_ref().is_some_and(|e| !e.is_empty());
    if !entrypoint_given {
        if config.entrypoint.is_none() {
            config.entrypoint = image.entrypoint.clone();
        }
        if config.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            config.cmd = image.cmd.clone();
        }
    }
    if config.working_dir.as_deref().is_none_or(str::is_empty) {
        config.working_dir = image.working_dir.clone();
    }
    let mut labels: HashMap<String, String> = image
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    labels.extend(config.labels.clone().unwrap_or_default());
    config.labels = Some(labels);
    if config.stop_signal.as_deref().is_none_or(str::is_empty) {
        config.stop_signal = image.stop_signal.clone();
    }
    if config.exposed_ports.is_none() {
        config.exposed_ports = image
            .exposed_ports
            .as_ref()
            .map(|ports| ports.keys().cloned().collect());
    }
    // The image's volumes and the container's together (dockerd's merge: `-v /other`
    // does not drop the image's `VOLUME`).
    if let Some(image_volumes) = image.volumes.as_ref().filter(|v| !v.is_empty()) {
        let mut volumes = config.volumes.take().unwrap_or_default();
        for destination in image_volumes.keys() {
            if !volumes.contains(destination) {
                volumes.push(destination.clone());
            }
        }
        config.volumes = Some(volumes);
    }
}

/// The program and its arguments: entrypoint followed by cmd.
pub fn command_line(config: &ContainerConfig) -> Result<(String, Vec<String>)> {
    let mut line: Vec<String> = config.entrypoint.clone().unwrap_or_default();
    line.extend(config.cmd.clone().unwrap_or_default());
    let mut parts = line.into_iter();
    let path = parts
        .next()
        .ok_or_else(|| Error::invalid("no command specified"))?;
    Ok((path, parts.collect()))
}

impl Engine {
    pub(crate) fn image_event(&self, action: &str, id: &str, name: Option<&str>) {
        let mut attributes = HashMap::new();
        if let Some(name) = name {
            attributes.insert("name".to_string(), name.to_string());
        }
        self.events
            .publish(EventMessageTypeEnum::IMAGE, action, id, attributes);
    }
}

/// Runs blocking image-store work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> image::Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::internal(e.to_string()))?
        .map_err(Error::from)
}

impl Engine {
    /// Which containers use which image (id -> one user, a running one preferred).
    async fn image_users(&self) -> HashMap<String, image::ImageUse> {
        let entries = self.entries();
        let mut users: HashMap<String, image::ImageUse> = HashMap::new();
        for entry in entries {
            let record = entry.record.lock().await;
            let running = record.state.status.is_running();
            let replace = users
                .get(&record.image_id)
                .is_none_or(|u| !u.running && running);
            if replace {
                users.insert(
                    record.image_id.clone(),
                    image::ImageUse {
                        container_id: record.id.clone(),
                        running,
                    },
                );
            }
        }
        users
    }

    /// `POST /images/create?fromSrc=-`: imports a rootfs tar from `file`.
    pub async fn image_import(
        &self,
        file: std::fs::File,
        reference: Option<String>,
        changes: Vec<String>,
        message: Option<String>,
    ) -> Result<String> {
        let reference = match reference {
            Some(text) => Some(
                text.parse::<types::Reference>()
                    .map_err(|e| Error::invalid(e.to_string()))?,
            ),
            None => None,
        };
        let images = self.images.clone();
        let named = reference.clone();
        let id = blocking(move || {
            images.import(
                std::io::BufReader::new(file),
                named.as_ref(),
                &changes,
                message.as_deref(),
            )
        })
        .await?;
        self.image_event(
            "import",
            &id.to_string(),
            reference.as_ref().map(|r| r.familiar()).as_deref(),
        );
        Ok(id.to_string())
    }

    /// `POST /images/load`: returns the "Loaded image: ..." lines.
    pub async fn image_load(&self, file: std::fs::File) -> Result<Vec<String>> {
        let images = self.images.clone();
        let loaded = blocking(move || images.load(std::io::BufReader::new(file))).await?;
        let mut messages = Vec::new();
        for image in &loaded {
            self.image_event("load", &image.id.to_string(), None);
            messages.extend(image.messages());
        }
        Ok(messages)
    }

    /// `GET /images/get`: writes the `docker save` archive to `file`.
    pub async fn image_save(&self, names: Vec<String>, file: std::fs::File) -> Result<()> {
        let images = self.images.clone();
        let saved_names = names.clone();
        blocking(move || images.save(&saved_names, std::io::BufWriter::new(file))).await?;
        for name in names {
            self.image_event("save", &name, Some(&name));
        }
        Ok(())
    }

    /// `GET /images/json`.
    pub async fn image_list(
        &self,
        all: bool,
        filters: HashMap<String, Vec<String>>,
    ) -> Result<Vec<bollard_stubs::models::ImageSummary>> {
        let images = self.images.clone();
        let users = self.image_users().await;
        let mut list = blocking(move || {
            images.list(&image::ListOptions {
                all,
                filters: filters.into_iter().collect(),
            })
        })
        .await?;
        for summary in &mut list {
            let count = users.keys().filter(|id| **id == summary.id).count() as i64;
            summary.containers = count;
        }
        Ok(list)
    }

    /// `GET /images/{name}/json`.
    pub async fn image_inspect(&self, name: &str) -> Result<bollard_stubs::models::ImageInspect> {
        let images = self.images.clone();
        let name = name.to_string();
        blocking(move || images.inspect(&name)).await
    }

    /// `GET /images/{name}/history`.
    pub async fn image_history(
        &self,
        name: &str,
    ) -> Result<Vec<bollard_stubs::models::ImageHistoryResponseItem>> {
        let images = self.images.clone();
        let name = name.to_string();
        blocking(move || images.history(&name)).await
    }

    /// `POST /images/{name}/tag`.
    pub async fn image_tag(&self, source: &str, repo: &str, tag: Option<&str>) -> Result<()> {
        let text = match tag.filter(|t| !t.is_empty()) {
            Some(tag) => format!("{repo}:{tag}"),
            None => repo.to_string(),
        };
        let target: types::Reference = text
            .parse()
            .map_err(|e: types::ReferenceError| Error::invalid(e.to_string()))?;
        let images = self.images.clone();
        let source_name = source.to_string();
        let tagged = target.clone();
        blocking(move || images.tag(&source_name, &tagged)).await?;
        let id = self
            .image_inspect(source)
            .await
            .ok()
            .map(|i| i.id.unwrap_or_default())
            .unwrap_or_default();
        self.image_event("tag", &id, Some(&target.familiar()));
        Ok(())
    }

    /// `DELETE /images/{name}`.
    pub async fn image_remove(
        &self,
        name: &str,
        force: bool,
    ) -> Result<Vec<bollard_stubs::models::ImageDeleteResponseItem>> {
        let users = self.image_users().await;
        let images = self.images.clone();
        let name = name.to_string();
        let actions = blocking(move || {
            images.remove(&name, force, &|id: &image::ImageId| {
                users.get(&id.to_string()).cloned()
            })
        })
        .await?;
        for action in &actions {
            match action {
                image::RemoveAction::Untagged(reference) => {
                    self.image_event("untag", reference, Some(reference))
                }
                image::RemoveAction::Deleted(id) => {
                    self.image_event("delete", &id.to_string(), None)
                }
                image::RemoveAction::DeletedLayer(_) => {}
            }
        }
        Ok(actions.iter().map(image::RemoveAction::to_model).collect())
    }

    /// `POST /images/prune`.
    pub async fn image_prune(
        &self,
        dangling_only: bool,
    ) -> Result<bollard_stubs::models::ImagePruneResponse> {
        let users = self.image_users().await;
        let images = self.images.clone();
        let report = blocking(move || {
            images.prune(dangling_only, &|id: &image::ImageId| {
                users.get(&id.to_string()).cloned()
            })
        })
        .await?;
        self.image_event("prune", "", None);
        Ok(report.to_model())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_settings_win_over_the_image() {
        let image = image::ContainerConfig {
            env: Some(vec!["PATH=/bin".into(), "A=image".into()]),
            cmd: Some(vec!["sh".into()]),
            working_dir: Some("/srv".into()),
            ..Default::default()
        };
        let mut config = ContainerConfig {
            env: Some(vec!["A=mine".into()]),
            ..Default::default()
        };
        merge_image_config(&mut config, &image);
        assert_eq!(config.env.clone().unwrap(), vec!["PATH=/bin", "A=mine"]);
        assert_eq!(command_line(&config).unwrap(), ("sh".to_string(), vec![]));
        assert_eq!(config.working_dir.as_deref(), Some("/srv"));
        // An entrypoint given by the container drops the image's cmd.
        let mut config = ContainerConfig {
            entrypoint: Some(vec!["echo".into()]),
            ..Default::default()
        };
        merge_image_config(&mut config, &image);
        assert_eq!(command_line(&config).unwrap(), ("echo".to_string(), vec![]));
        assert!(command_line(&ContainerConfig::default()).is_err());
    }

    #[test]
    fn image_volumes_join_the_containers() {
        let image = image::ContainerConfig {
            volumes: Some(
                [("/vol".to_string(), serde_json::json!({}))]
                    .into_iter()
                    .collect(),
            ),
            ..Default::default()
        };
        let mut config = ContainerConfig {
            volumes: Some(vec!["/mine".into(), "/vol".into()]),
            ..Default::default()
        };
        merge_image_config(&mut config, &image);
        assert_eq!(config.volumes.unwrap(), ["/mine", "/vol"]);
        let mut config = ContainerConfig::default();
        merge_image_config(&mut config, &image);
        assert_eq!(config.volumes.unwrap(), ["/vol"]);
        let mut config = ContainerConfig::default();
        merge_image_config(&mut config, &image::ContainerConfig::default());
        assert_eq!(config.volumes, None);
    }
}
