//! `/_ping`, `/version`, `/info`, `/events`, `/system/df`, and the prune endpoints of
//! resources Berth has none of yet (`/build/prune`), which
//! `docker system prune` calls.

use axum::body::Body;
use axum::http::{Method, StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt;

use crate::error::ApiResult;
use crate::{ApiRequest, AppState, json_response, not_found};

pub async fn route(state: &AppState, request: ApiRequest) -> ApiResult<Response> {
    let segments: Vec<&str> = request.segments.iter().map(String::as_str).collect();
    match (&request.method, segments.as_slice()) {
        (&Method::GET | &Method::HEAD, ["_ping"]) => {
            let body = if request.method == Method::HEAD {
                Body::empty()
            } else {
                Body::from("OK")
            };
            Ok(Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .header(header::CACHE_CONTROL, "no-cache, no-store, must-revalidate")
                .header(header::PRAGMA, "no-cache")
                .header("Builder-Version", "1")
                .body(body)
                .expect("response"))
        }
        (&Method::GET, ["version"]) => Ok(json_response(StatusCode::OK, &state.engine.version())),
        (&Method::GET, ["info"]) => Ok(json_response(StatusCode::OK, &state.engine.info().await)),
        (&Method::GET, ["events"]) => events(state, &request),
        (&Method::GET, ["system", "df"]) => Ok(json_response(
            StatusCode::OK,
            &state.engine.disk_usage().await?,
        )),
        // No build cache exists yet: nothing to delete. The answer keeps dockerd's shape so
        // that `docker system prune` completes.
        (&Method::POST, ["build", "prune"]) => Ok(json_response(
            StatusCode::OK,
            &serde_json::json!({ "CachesDeleted": null, "SpaceReclaimed": 0 }),
        )),
        _ => Err(not_found(&format!("/{}", request.segments.join("/")))),
    }
}

/// `GET /events`: past events since `since`, then live ones until `until` (or forever), as a
/// stream of JSON objects.
fn events(state: &AppState, request: &ApiRequest) -> ApiResult<Response> {
    let since = request.query.time("since")?;
    let until = request.query.time("until")?;
    let filters = request.query.filters()?;
    let (history, receiver) = state.engine.events.subscribe();
    let matches = move |event: &bollard_stubs::models::EventMessage| -> bool {
        let time = event.time_nano.unwrap_or_default() as f64 / 1e9;
        if since.is_some_and(|s| time < s) || until.is_some_and(|u| time > u) {
            return false;
        }
        filters.iter().all(|(key, values)| {
            let actor = event.actor.clone().unwrap_or_default();
            let attributes = actor.attributes.unwrap_or_default();
            values.iter().any(|value| match key.as_str() {
                "type" => event.typ.map(|t| t.to_string()) == Some(value.clone()),
                "event" | "action" => event.action.as_deref() == Some(value.as_str()),
                "container" | "image" => {
                    actor
                        .id
                        .as_deref()
                        .is_some_and(|id| id.starts_with(value.as_str()))
                        || attributes.get("name") == Some(value)
                        || (key == "image" && attributes.get("image") == Some(value))
                }
                "label" => match value.split_once('=') {
                    Some((k, v)) => attributes.get(k) == Some(&v.to_string()),
                    None => attributes.contains_key(value),
                },
                _ => true,
            })
        })
    };
    let past: Vec<_> = if since.is_some() || until.is_some() {
        history.into_iter().filter(|e| matches(e)).collect()
    } else {
        Vec::new()
    };
    let until_passed = until.is_some_and(|u| u <= chrono::Utc::now().timestamp() as f64);
    let line = |event: &bollard_stubs::models::EventMessage| {
        let mut text = serde_json::to_string(event).unwrap_or_default();
        text.push('\n');
        Ok::<_, std::io::Error>(bytes::Bytes::from(text))
    };
    let past_stream = futures_util::stream::iter(past.iter().map(line).collect::<Vec<_>>());
    let body = if until_passed {
        Body::from_stream(past_stream)
    } else {
        let deadline = until.map(|u| {
            let now = chrono::Utc::now().timestamp() as f64;
            tokio::time::Instant::now() + std::time::Duration::from_secs_f64((u - now).max(0.0))
        });
        let live = tokio_stream_from(receiver, deadline).filter_map(move |event| {
            let keep = matches(&event);
            async move { keep.then(|| line(&event)) }
        });
        Body::from_stream(past_stream.chain(live))
    };
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .expect("response"))
}

/// Live events until the deadline.
fn tokio_stream_from(
    receiver: tokio::sync::broadcast::Receiver<bollard_stubs::models::EventMessage>,
    deadline: Option<tokio::time::Instant>,
) -> impl futures_util::Stream<Item = bollard_stubs::models::EventMessage> {
    futures_util::stream::unfold(receiver, move |mut receiver| async move {
        loop {
            let next = receiver.recv();
            let result = match deadline {
                Some(deadline) => match tokio::time::timeout_at(deadline, next).await {
                    Ok(result) => result,
                    Err(_) => return None,
                },
                None => next.await,
            };
            match result {
                Ok(event) => return Some((event, receiver)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return None,
            }
        }
    })
}
