//! `/containers/{id}/stats|top|pause|unpause|rename|update`.

use axum::body::Body;
use axum::http::{Method, StatusCode, header};
use axum::response::Response;
use bollard_stubs::models::ContainerUpdateBody;
use futures_util::StreamExt;

use crate::error::{ApiError, ApiResult};
use crate::{ApiRequest, AppState, empty, json_body, json_response, not_found};

pub async fn route(state: &AppState, request: ApiRequest) -> ApiResult<Response> {
    let segments: Vec<String> = request.segments.clone();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let engine = &state.engine;
    let q = &request.query;
    match (&request.method, segments.as_slice()) {
        (&Method::GET, ["containers", id, "stats"]) => {
            // dockerd: `stream` defaults to true; `one-shot` only counts without a stream.
            let stream = q.flag_or("stream", true);
            let one_shot = q.flag("one-shot");
            if one_shot && stream {
                return Err(ApiError::bad_request(
                    "cannot have stream=true and one-shot=true",
                ));
            }
            let receiver = engine.stats(id, stream, one_shot).await?;
            let body = super::containers::tokio_stream(receiver)
                .map(|line| Ok::<_, std::io::Error>(bytes::Bytes::from(line)));
            Ok(Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from_stream(body))
                .expect("response"))
        }
        (&Method::GET, ["containers", id, "top"]) => Ok(json_response(
            StatusCode::OK,
            &engine.top(id, q.get("ps_args")).await?,
        )),
        (&Method::POST, ["containers", id, "pause"]) => {
            engine.pause(id).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (&Method::POST, ["containers", id, "unpause"]) => {
            engine.unpause(id).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (&Method::POST, ["containers", id, "rename"]) => {
            engine.rename(id, q.get("name").unwrap_or("")).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (&Method::POST, ["containers", id, "update"]) => {
            let id = id.to_string();
            let body: ContainerUpdateBody = json_body(request.request).await?;
            let warnings = engine.update(&id, &body).await?;
            Ok(json_response(
                StatusCode::OK,
                &serde_json::json!({
                    "Warnings": if warnings.is_empty() { None } else { Some(warnings) }
                }),
            ))
        }
        _ => Err(not_found(&format!("/{}", segments.join("/")))),
    }
}
