//! `/volumes`: list, create, inspect, remove, prune (Docker Engine API "Volume" section).

use std::collections::HashMap;

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::{ApiRequest, AppState, empty, json_body, json_response, not_found};

/// The body of `POST /volumes/create` (`VolumeCreateOptions`; `ClusterVolumeSpec` ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    name: Option<String>,
    driver: Option<String>,
    driver_opts: Option<HashMap<String, String>>,
    labels: Option<HashMap<String, String>>,
}

/// API 1.42 made prune take only anonymous volumes unless `all=true`.
fn prune_takes_all_by_default(version: Option<(u32, u32)>) -> bool {
    version.is_some_and(|v| v < (1, 42))
}

pub async fn route(state: &AppState, request: ApiRequest) -> ApiResult<Response> {
    let segments: Vec<String> = request.segments.clone();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let engine = &state.engine;
    let q = &request.query;
    match (&request.method, segments.as_slice()) {
        (&Method::GET, ["volumes"]) => {
            let volumes = engine.volume_list(&q.filters()?)?;
            Ok(json_response(
                StatusCode::OK,
                &serde_json::json!({ "Volumes": volumes, "Warnings": null }),
            ))
        }
        (&Method::POST, ["volumes", "create"]) => {
            let body: CreateBody = json_body(request.request).await?;
            let view = engine
                .volume_create(engine::VolumeCreate {
                    name: body.name.unwrap_or_default(),
                    driver: body.driver.unwrap_or_default(),
                    driver_options: body.driver_opts.unwrap_or_default(),
                    labels: body.labels.unwrap_or_default(),
                })
                .await?;
            Ok(json_response(StatusCode::CREATED, &view))
        }
        (&Method::POST, ["volumes", "prune"]) => {
            let filters = q.filters()?;
            let (deleted, reclaimed) = engine
                .volume_prune(&filters, prune_takes_all_by_default(request.version))
                .await?;
            Ok(json_response(
                StatusCode::OK,
                &serde_json::json!({
                    "VolumesDeleted": if deleted.is_empty() { None } else { Some(deleted) },
                    "SpaceReclaimed": reclaimed,
                }),
            ))
        }
        (&Method::GET, ["volumes", name]) => Ok(json_response(
            StatusCode::OK,
            &engine.volume_inspect(name).await?,
        )),
        (&Method::DELETE, ["volumes", name]) => {
            engine.volume_remove(name, q.flag("force")).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (&Method::PUT, ["volumes", _]) => Err(ApiError::new(
            types::ErrorKind::Unsupported,
            "volume update is only for cluster volumes, which need a swarm",
        )),
        _ => Err(not_found(&format!("/{}", segments.join("/")))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_default_follows_the_api_version() {
        assert!(prune_takes_all_by_default(Some((1, 41))));
        assert!(!prune_takes_all_by_default(Some((1, 42))));
        assert!(!prune_takes_all_by_default(Some((1, 47))));
        assert!(!prune_takes_all_by_default(None));
    }

    #[test]
    fn create_body_takes_dockers_keys() {
        let body: CreateBody = serde_json::from_str(
            r#"{"Name":"v","Driver":"local","DriverOpts":{"type":"tmpfs"},"Labels":{"a":"b"},"ClusterVolumeSpec":null}"#,
        )
        .unwrap();
        assert_eq!(body.name.as_deref(), Some("v"));
        assert_eq!(body.driver_opts.unwrap()["type"], "tmpfs");
        assert_eq!(body.labels.unwrap()["a"], "b");
    }
}
