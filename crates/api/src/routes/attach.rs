//! `/containers/{id}/attach` (hijacked) and `/containers/{id}/resize`.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use engine::attach::{AttachOptions, DetachKeys};
use engine::logs::LogOptions;
use tokio::io::AsyncWriteExt;

use crate::error::ApiResult;
use crate::stream::{encode, hijack, size};
use crate::{ApiRequest, AppState, empty, not_found};

pub async fn route(state: &AppState, request: ApiRequest) -> ApiResult<Response> {
    let segments: Vec<String> = request.segments.clone();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (&request.method, segments.as_slice()) {
        (&Method::POST, ["containers", id, "attach"]) => attach(state, id, request).await,
        (&Method::POST, ["containers", id, "resize"]) => {
            let (height, width) = size(&request.query)?;
            state.engine.resize(id, height, width).await?;
            Ok(empty(StatusCode::OK))
        }
        _ => Err(not_found(&format!("/{}", segments.join("/")))),
    }
}

/// `POST /containers/{id}/attach?stream&stdin&stdout&stderr&logs&detachKeys`: with `logs`, the
/// log so far first; with `stream`, the live session through the container's shim (connected
/// at its next start when it does not run). Everything that can fail is checked before the
/// connection is taken over, so errors are plain HTTP answers.
async fn attach(state: &AppState, id: &str, mut request: ApiRequest) -> ApiResult<Response> {
    let q = &request.query;
    let detach_keys = DetachKeys::from_request(q.get("detachKeys"))?;
    let (stdout, stderr) = (q.flag("stdout"), q.flag("stderr"));
    let replay = if q.flag("logs") {
        Some(
            state
                .engine
                .logs(
                    id,
                    LogOptions {
                        stdout,
                        stderr,
                        ..Default::default()
                    },
                )
                .await?,
        )
    } else {
        None
    };
    let session = if q.flag("stream") {
        let options = AttachOptions {
            stdin: q.flag("stdin"),
            stdout,
            stderr,
            detach_keys,
        };
        Some(state.engine.attach(id, options).await?)
    } else {
        None
    };
    let tty = match &session {
        Some(session) => session.tty,
        None => state
            .engine
            .inspect(id)
            .await?
            .config
            .and_then(|c| c.tty)
            .unwrap_or(false),
    };
    Ok(hijack(
        &mut request.request,
        tty,
        move |mut client| async move {
            if let Some(mut entries) = replay {
                while let Some(entry) = entries.recv().await {
                    if client.write_all(&encode(&entry, tty, false)).await.is_err() {
                        return;
                    }
                }
            }
            let Some(session) = session else {
                let _ = client.shutdown().await;
                return;
            };
            match session.connect().await {
                Ok(stream) => {
                    let end = stream.pump(client).await;
                    tracing::debug!("attach session ended: {end:?}");
                }
                Err(error) => {
                    tracing::debug!("attach session not connected: {error}");
                    let _ = client.shutdown().await;
                }
            }
        },
    ))
}
