//! `/containers/{id}/exec` and `/exec/{id}/start|resize|json`.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use bollard_stubs::models::{ExecConfig, ExecStartConfig};

use crate::error::{ApiError, ApiResult};
use crate::stream::{hijack, size};
use crate::{ApiRequest, AppState, empty, json_body, json_response, not_found};

pub async fn route(state: &AppState, request: ApiRequest) -> ApiResult<Response> {
    let segments: Vec<String> = request.segments.clone();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let engine = &state.engine;
    match (&request.method, segments.as_slice()) {
        (&Method::POST, ["containers", id, "exec"]) => {
            let config: ExecConfig = json_body(request.request).await?;
            let exec_id = engine.exec_create(id, config).await?;
            Ok(json_response(
                StatusCode::CREATED,
                &serde_json::json!({ "Id": exec_id }),
            ))
        }
        (&Method::POST, ["exec", id, "start"]) => start(state, id, request).await,
        (&Method::POST, ["exec", id, "resize"]) => {
            let (height, width) = size(&request.query)?;
            engine.exec_resize(id, height, width).await?;
            Ok(empty(StatusCode::OK))
        }
        (&Method::GET, ["exec", id, "json"]) => {
            Ok(json_response(StatusCode::OK, &engine.exec_inspect(id)?))
        }
        _ => Err(not_found(&format!("/{}", segments.join("/")))),
    }
}

/// `POST /exec/{id}/start` with `{"Detach","Tty","ConsoleSize"}`: detached, the process starts
/// and the answer is an empty 200; attached, dockerd's checks first (404, 409), then the
/// connection is taken over and the process started on it.
async fn start(state: &AppState, id: &str, request: ApiRequest) -> ApiResult<Response> {
    // The body is read from the parts' side, so the request (its upgrade) stays whole.
    let (parts, body) = request.request.into_parts();
    let bytes = axum::body::to_bytes(body, 1024 * 1024)
        .await
        .map_err(|e| ApiError::bad_request(format!("cannot read request body: {e}")))?;
    let config: ExecStartConfig = if bytes.iter().all(u8::is_ascii_whitespace) {
        ExecStartConfig::default()
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?
    };
    let mut request = axum::extract::Request::from_parts(parts, axum::body::Body::empty());
    let console_size = config.console_size.as_deref().and_then(|size| match size {
        [height, width] if *height > 0 && *width > 0 => Some((
            (*height).min(u16::MAX as usize) as u16,
            (*width).min(u16::MAX as usize) as u16,
        )),
        _ => None,
    });
    let session = state.engine.exec_prepare(id, console_size).await?;
    if config.detach.unwrap_or(false) {
        session.start_detached().await?;
        return Ok(empty(StatusCode::OK));
    }
    let tty = session.tty();
    Ok(hijack(&mut request, tty, move |client| async move {
        let end = session.run(client).await;
        tracing::debug!("exec session ended: {end:?}");
    }))
}
