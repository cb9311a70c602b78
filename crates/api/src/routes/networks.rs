//! `/networks/...`: list, inspect, create, remove, prune, connect, disconnect.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use bollard_stubs::models::{
    NetworkConnectRequest, NetworkCreateRequest, NetworkCreateResponse, NetworkDisconnectRequest,
    NetworkPruneResponse,
};

use crate::error::{ApiError, ApiResult};
use crate::{ApiRequest, AppState, empty, json_body, json_response, not_found};

pub async fn route(state: &AppState, request: ApiRequest) -> ApiResult<Response> {
    let segments: Vec<String> = request.segments.clone();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let engine = &state.engine;
    let q = &request.query;
    match (&request.method, segments.as_slice()) {
        (&Method::GET, ["networks"]) => Ok(json_response(
            StatusCode::OK,
            &engine.list_networks(&q.filters()?).await?,
        )),
        (&Method::POST, ["networks", "create"]) => {
            let body: NetworkCreateRequest = json_body(request.request).await?;
            let id = engine.create_network(body).await?;
            Ok(json_response(
                StatusCode::CREATED,
                &NetworkCreateResponse {
                    id,
                    warning: String::new(),
                },
            ))
        }
        (&Method::POST, ["networks", "prune"]) => {
            let deleted = engine.prune_networks(&q.filters()?).await?;
            Ok(json_response(
                StatusCode::OK,
                &NetworkPruneResponse {
                    networks_deleted: Some(deleted),
                },
            ))
        }
        (&Method::GET, ["networks", id]) => Ok(json_response(
            StatusCode::OK,
            &engine.inspect_network(id).await?,
        )),
        (&Method::DELETE, ["networks", id]) => {
            engine.remove_network(id).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (&Method::POST, ["networks", id, "connect"]) => {
            let body: NetworkConnectRequest = json_body(request.request).await?;
            if body.container.is_empty() {
                return Err(ApiError::bad_request("no container specified"));
            }
            engine
                .connect_network(id, &body.container, body.endpoint_config)
                .await?;
            Ok(empty(StatusCode::OK))
        }
        (&Method::POST, ["networks", id, "disconnect"]) => {
            let body: NetworkDisconnectRequest = json_body(request.request).await?;
            if body.container.is_empty() {
                return Err(ApiError::bad_request("no container specified"));
            }
            engine
                .disconnect_network(id, &body.container, body.force.unwrap_or(false))
                .await?;
            Ok(empty(StatusCode::OK))
        }
        _ => Err(not_found(&format!("/{}", segments.join("/")))),
    }
}
