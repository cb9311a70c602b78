//! `/images/...`. Image names contain slashes, so the name is every segment between
//! "images" and the action.

use axum::body::Body;
use axum::http::{Method, StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::error::{ApiError, ApiResult};
use crate::{ApiRequest, AppState, json_response, not_found};

pub async fn route(state: &AppState, request: ApiRequest) -> ApiResult<Response> {
    let segments: Vec<String> = request.segments.clone();
    let path = format!("/{}", segments.join("/"));
    let engine = &state.engine;
    let q = &request.query;
    let rest: Vec<&str> = segments.iter().skip(1).map(String::as_str).collect();
    match (&request.method, rest.as_slice()) {
        (&Method::GET, ["json"]) => Ok(json_response(
            StatusCode::OK,
            &engine.image_list(q.flag("all"), q.filters()?).await?,
        )),
        (&Method::POST, ["create"]) => create(state, request).await,
        (&Method::POST, ["load"]) => {
            let file = body_to_file(request.request).await?;
            let messages = engine.image_load(file).await?;
            let body: String = messages
                .iter()
                .map(|m| format!("{}\n", serde_json::json!({ "stream": format!("{m}\n") })))
                .collect();
            Ok(Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body))
                .expect("response"))
        }
        (&Method::GET, ["get"]) => {
            let names: Vec<String> = request
                .request
                .uri()
                .query()
                .unwrap_or("")
                .split('&')
                .filter_map(|pair| pair.strip_prefix("names="))
                .map(crate::percent_decode)
                .collect();
            save(state, names).await
        }
        (&Method::POST, ["prune"]) => {
            let filters = q.filters()?;
            let dangling_only = filters
                .get("dangling")
                .and_then(|v| v.first())
                .is_none_or(|v| v == "true" || v == "1");
            Ok(json_response(
                StatusCode::OK,
                &engine.image_prune(dangling_only).await?,
            ))
        }
        (method, [name @ .., action]) if !name.is_empty() => {
            let name = name.join("/");
            match (method, *action) {
                (&Method::GET, "json") => Ok(json_response(
                    StatusCode::OK,
                    &engine.image_inspect(&name).await?,
                )),
                (&Method::GET, "history") => Ok(json_response(
                    StatusCode::OK,
                    &engine.image_history(&name).await?,
                )),
                (&Method::GET, "get") => save(state, vec![name]).await,
                (&Method::POST, "tag") => {
                    let repo = q.get("repo").unwrap_or_default();
                    if repo.is_empty() {
                        return Err(ApiError::bad_request(
                            "repository name must have at least one component",
                        ));
                    }
                    engine.image_tag(&name, repo, q.get("tag")).await?;
                    Ok(crate::empty(StatusCode::CREATED))
                }
                (&Method::DELETE, _) => {
                    let full = format!("{name}/{action}");
                    Ok(json_response(
                        StatusCode::OK,
                        &engine.image_remove(&full, q.flag("force")).await?,
                    ))
                }
                _ => Err(not_found(&path)),
            }
        }
        (&Method::DELETE, [name]) => Ok(json_response(
            StatusCode::OK,
            &engine.image_remove(name, q.flag("force")).await?,
        )),
        _ => Err(not_found(&path)),
    }
}

/// `POST /images/create`: `fromSrc=-` imports the request body; pulling (`fromImage`) needs a
/// registry client, which Berth does not have yet.
async fn create(state: &AppState, request: ApiRequest) -> ApiResult<Response> {
    let q = &request.query;
    if let Some(image) = q.get("fromImage").filter(|i| !i.is_empty()) {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!(
                "pull access denied for {image}: pulling from registries is not implemented in Berth yet; import or load the image"
            ),
        });
    }
    if q.get("fromSrc") != Some("-") {
        return Err(ApiError::bad_request(
            "only fromSrc=- (the request body) is supported",
        ));
    }
    let reference = match (
        q.get("repo").filter(|r| !r.is_empty()),
        q.get("tag").filter(|t| !t.is_empty()),
    ) {
        (Some(repo), Some(tag)) => Some(format!("{repo}:{tag}")),
        (Some(repo), None) => Some(repo.to_string()),
        _ => None,
    };
    let changes: Vec<String> = request
        .request
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.strip_prefix("changes="))
        .map(|c| crate::percent_decode(&c.replace('+', " ")))
        .collect();
    let message = q.get("message").map(str::to_string);
    let file = body_to_file(request.request).await?;
    let id = state
        .engine
        .image_import(file, reference, changes, message)
        .await?;
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(format!(
            "{}\n",
            serde_json::json!({ "status": id })
        )))
        .expect("response"))
}

/// Streams a request body to an unlinked temporary file (archives can be large).
async fn body_to_file(request: axum::extract::Request) -> ApiResult<std::fs::File> {
    let file = tempfile::tempfile()
        .map_err(|e| ApiError::new(types::ErrorKind::Internal, e.to_string()))?;
    let mut writer = tokio::fs::File::from_std(
        file.try_clone()
            .map_err(|e| ApiError::new(types::ErrorKind::Internal, e.to_string()))?,
    );
    let mut body = request.into_body().into_data_stream();
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("cannot read request body: {e}")))?;
        writer
            .write_all(&chunk)
            .await
            .map_err(|e| ApiError::new(types::ErrorKind::Internal, e.to_string()))?;
    }
    writer
        .flush()
        .await
        .map_err(|e| ApiError::new(types::ErrorKind::Internal, e.to_string()))?;
    use std::io::Seek;
    let mut file = file;
    file.rewind()
        .map_err(|e| ApiError::new(types::ErrorKind::Internal, e.to_string()))?;
    Ok(file)
}

async fn save(state: &AppState, names: Vec<String>) -> ApiResult<Response> {
    if names.is_empty() {
        return Err(ApiError::bad_request("no image names given"));
    }
    let file = tempfile::tempfile()
        .map_err(|e| ApiError::new(types::ErrorKind::Internal, e.to_string()))?;
    let writer = file
        .try_clone()
        .map_err(|e| ApiError::new(types::ErrorKind::Internal, e.to_string()))?;
    state.engine.image_save(names, writer).await?;
    use std::io::Seek;
    let mut file = file;
    file.rewind()
        .map_err(|e| ApiError::new(types::ErrorKind::Internal, e.to_string()))?;
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/x-tar")
        .body(Body::from_stream(stream))
        .expect("response"))
}
