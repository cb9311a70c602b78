//! `/containers/...`.

use axum::body::Body;
use axum::http::{Method, StatusCode, header};
use axum::response::Response;
use bollard_stubs::models::{ContainerConfig, ContainerCreateBody, HostConfig};
use engine::logs::LogOptions;
use engine::{ContainerFilters, CreateRequest, WaitCondition};
use futures_util::StreamExt;

use crate::error::{ApiError, ApiResult};
use crate::stream::{content_type, encode};
use crate::{ApiRequest, AppState, empty, json_body, json_response, not_found};

pub async fn route(state: &AppState, request: ApiRequest) -> ApiResult<Response> {
    let segments: Vec<String> = request.segments.clone();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let engine = &state.engine;
    let q = &request.query;
    match (&request.method, segments.as_slice()) {
        (&Method::POST, ["containers", "create"]) => create(state, request).await,
        (&Method::GET, ["containers", "json"]) => {
            let filters = ContainerFilters {
                all: q.flag("all"),
                limit: q.int("limit")?.filter(|l| *l > 0).map(|l| l as usize),
                filters: q.filters()?,
                size: q.flag("size"),
            };
            Ok(json_response(StatusCode::OK, &engine.list(&filters).await?))
        }
        (&Method::POST, ["containers", "prune"]) => {
            let report = engine.prune_containers(&q.filters()?).await?;
            Ok(json_response(StatusCode::OK, &report))
        }
        (&Method::GET, ["containers", id, "json"]) => {
            let inspect = engine.inspect_with_size(id, q.flag("size")).await?;
            Ok(json_response(
                StatusCode::OK,
                &with_legacy_network_fields(inspect)?,
            ))
        }
        (&Method::POST, ["containers", id, "start"]) => {
            let started = engine.start(id).await?;
            Ok(empty(if started {
                StatusCode::NO_CONTENT
            } else {
                StatusCode::NOT_MODIFIED
            }))
        }
        (&Method::POST, ["containers", id, "stop"]) => {
            let timeout = q.int("t")?.or(q.int("timeout")?);
            let stopped = engine.stop(id, timeout, q.get("signal")).await?;
            Ok(empty(if stopped {
                StatusCode::NO_CONTENT
            } else {
                StatusCode::NOT_MODIFIED
            }))
        }
        (&Method::POST, ["containers", id, "restart"]) => {
            let timeout = q.int("t")?.or(q.int("timeout")?);
            engine.restart(id, timeout, q.get("signal")).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (&Method::POST, ["containers", id, "kill"]) => {
            engine.kill(id, q.get("signal")).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (&Method::POST, ["containers", id, "wait"]) => {
            let condition = WaitCondition::parse(q.get("condition").unwrap_or(""))?;
            wait(state, id, condition).await
        }
        (&Method::DELETE, ["containers", id]) => {
            engine.remove(id, q.flag("force"), q.flag("v")).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (&Method::GET, ["containers", id, "logs"]) => logs(state, id, q).await,
        (_, ["containers", _, "attach" | "resize", ..]) => {
            super::attach::route(state, request).await
        }
        (_, ["containers", _, "exec"]) => super::exec::route(state, request).await,
        (_, ["containers", _, "archive" | "export" | "changes"]) => {
            super::archive::route(state, request).await
        }
        (
            _,
            [
                "containers",
                _,
                "stats" | "top" | "pause" | "unpause" | "rename" | "update",
            ],
        ) => super::ops::route(state, request).await,
        _ => Err(not_found(&format!("/{}", segments.join("/")))),
    }
}

async fn create(state: &AppState, request: ApiRequest) -> ApiResult<Response> {
    let name = request.query.get("name").map(str::to_string);
    check_json_content_type(&request.request)?;
    let body: ContainerCreateBody = json_body(request.request).await?;
    let host_config: HostConfig = body.host_config.clone().unwrap_or_default();
    let networking = body.networking_config.clone();
    // ContainerCreateBody is Config with HostConfig and NetworkingConfig beside it.
    let mut value =
        serde_json::to_value(&body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if let Some(object) = value.as_object_mut() {
        object.remove("HostConfig");
        object.remove("NetworkingConfig");
    }
    let config: ContainerConfig =
        serde_json::from_value(value).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (id, warnings) = state
        .engine
        .create(CreateRequest {
            name,
            config,
            host_config,
            networking,
        })
        .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &serde_json::json!({ "Id": id, "Warnings": warnings }),
    ))
}

/// dockerd (API < 1.52) still reports the default bridge's endpoint at the top of
/// NetworkSettings (IPAddress, Gateway, MacAddress...), which scripts and older clients read;
/// the API models no longer carry those fields, so they are added to the JSON here.
fn with_legacy_network_fields(
    inspect: bollard_stubs::models::ContainerInspectResponse,
) -> ApiResult<serde_json::Value> {
    let mut value =
        serde_json::to_value(&inspect).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let Some(settings) = value
        .get_mut("NetworkSettings")
        .and_then(|s| s.as_object_mut())
    else {
        return Ok(value);
    };
    let bridge = settings
        .get("Networks")
        .and_then(|n| n.get("bridge"))
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    let text = |key: &str| {
        bridge
            .get(key)
            .cloned()
            .unwrap_or(serde_json::Value::String(String::new()))
    };
    let legacy = [
        ("Bridge", serde_json::Value::String(String::new())),
        ("HairpinMode", serde_json::Value::Bool(false)),
        (
            "LinkLocalIPv6Address",
            serde_json::Value::String(String::new()),
        ),
        ("LinkLocalIPv6PrefixLen", serde_json::json!(0)),
        ("SecondaryIPAddresses", serde_json::Value::Null),
        ("SecondaryIPv6Addresses", serde_json::Value::Null),
        ("EndpointID", text("EndpointID")),
        ("Gateway", text("Gateway")),
        (
            "GlobalIPv6Address",
            serde_json::Value::String(String::new()),
        ),
        ("GlobalIPv6PrefixLen", serde_json::json!(0)),
        ("IPAddress", text("IPAddress")),
        (
            "IPPrefixLen",
            bridge
                .get("IPPrefixLen")
                .cloned()
                .unwrap_or(serde_json::json!(0)),
        ),
        ("IPv6Gateway", serde_json::Value::String(String::new())),
        ("MacAddress", text("MacAddress")),
    ];
    for (key, item) in legacy {
        settings.entry(key).or_insert(item);
    }
    Ok(value)
}

/// dockerd's CheckForJSON: a request with a body must say it is JSON.
fn check_json_content_type(request: &axum::extract::Request) -> ApiResult<()> {
    let has_body = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .is_none_or(|length| length.as_bytes() != b"0");
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if has_body && !media_type.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::bad_request(format!(
            "unsupported Content-Type header ({content_type}): must be 'application/json'"
        )));
    }
    Ok(())
}

/// The answer's headers go out at once, so the client knows the wait is registered before it
/// starts the container; the body follows at the exit.
async fn wait(state: &AppState, id: &str, condition: WaitCondition) -> ApiResult<Response> {
    let engine = state.engine.clone();
    // Fails now (404) rather than in the body.
    engine.find(id)?;
    let id = id.to_string();
    let registered = engine.wait_registration(&id, condition)?;
    let body = futures_util::stream::once(async move {
        let result = registered.await;
        let value = match result {
            Ok(code) => serde_json::json!({ "StatusCode": code, "Error": null }),
            Err(error) => {
                serde_json::json!({ "StatusCode": -1, "Error": { "Message": error.message } })
            }
        };
        Ok::<_, std::io::Error>(bytes::Bytes::from(format!("{value}\n")))
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(body))
        .expect("response"))
}

async fn logs(state: &AppState, id: &str, q: &crate::Query) -> ApiResult<Response> {
    let stdout = q.flag("stdout");
    let stderr = q.flag("stderr");
    if !stdout && !stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let tail = match q.get("tail").filter(|t| !t.is_empty() && *t != "all") {
        Some(tail) => Some(
            tail.parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("invalid value for tail: {tail}")))?,
        ),
        None => None,
    };
    let tty = state
        .engine
        .inspect(id)
        .await?
        .config
        .and_then(|c| c.tty)
        .unwrap_or(false);
    let options = LogOptions {
        stdout,
        stderr,
        follow: q.flag("follow"),
        since: q.time("since")?.filter(|s| *s > 0.0),
        until: q.time("until")?.filter(|s| *s > 0.0),
        tail,
        attach: false,
    };
    let timestamps = q.flag("timestamps");
    let receiver = state.engine.logs(id, options).await?;
    let body = tokio_stream(receiver).map(move |entry| {
        Ok::<_, std::io::Error>(bytes::Bytes::from(encode(&entry, tty, timestamps)))
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type(tty))
        .body(Body::from_stream(body))
        .expect("response"))
}

pub(crate) fn tokio_stream<T: Send + 'static>(
    receiver: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    })
}
