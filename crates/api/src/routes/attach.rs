//! `/containers/{id}/attach` (hijacked and websocket) and `/containers/{id}/resize`.

use axum::body::Body;
use axum::http::{Method, StatusCode, header};
use axum::response::Response;
use engine::logs::LogOptions;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::containers::tokio_stream;
use crate::error::ApiResult;
use crate::stream::{content_type, encode};
use crate::{ApiRequest, AppState, not_found};

pub async fn route(state: &AppState, request: ApiRequest) -> ApiResult<Response> {
    let segments: Vec<String> = request.segments.clone();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (&request.method, segments.as_slice()) {
        (&Method::POST, ["containers", id, "attach"]) => {
            let id = id.to_string();
            attach(state, &id, request).await
        }
        _ => Err(not_found(&format!("/{}", segments.join("/")))),
    }
}

/// `POST /containers/{id}/attach`: upgrades the connection (the docker CLI sends
/// `Upgrade: tcp`) and streams the container's output from now until its next exit.
async fn attach(state: &AppState, id: &str, mut request: ApiRequest) -> ApiResult<Response> {
    let q = &request.query;
    let inspect = state.engine.inspect(id).await?;
    let tty = inspect.config.and_then(|c| c.tty).unwrap_or(false);
    let options = LogOptions {
        stdout: q.flag("stdout"),
        stderr: q.flag("stderr"),
        follow: true,
        attach: q.flag("stream"),
        ..Default::default()
    };
    let logs_only = q.flag("logs") && !q.flag("stream");
    let receiver = state
        .engine
        .logs(
            id,
            LogOptions {
                follow: !logs_only,
                ..options
            },
        )
        .await?;
    let wants_upgrade = request.request.headers().get(header::UPGRADE).is_some();
    if !wants_upgrade {
        let body = tokio_stream(receiver).map(move |entry| {
            Ok::<_, std::io::Error>(bytes::Bytes::from(encode(&entry, tty, false)))
        });
        return Ok(Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, content_type(tty))
            .body(Body::from_stream(body))
            .expect("response"));
    }
    let upgrade = hyper::upgrade::on(&mut request.request);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut io = hyper_util::rt::TokioIo::new(upgraded);
        let mut receiver = receiver;
        while let Some(entry) = receiver.recv().await {
            if io.write_all(&encode(&entry, tty, false)).await.is_err() {
                return;
            }
        }
        let _ = io.flush().await;
        let _ = io.shutdown().await;
    });
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONTENT_TYPE, content_type(tty))
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp")
        .body(Body::empty())
        .expect("response"))
}
