//! The Docker Engine API over HTTP. Requests are dispatched by hand rather than by a path
//! router because image names contain slashes (`/images/localhost:5000/a/b/json`) and every
//! path may carry a version prefix (`/v1.41/containers/json`). Each resource parses its
//! requests in its own file under `routes/`; nothing below this crate knows HTTP.

mod error;
mod query;
mod routes;
mod stream;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use engine::Engine;

pub use error::{ApiError, ApiResult, status_of};
pub use query::Query;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
}

/// A parsed request: method, path segments after the version, query, and the request itself
/// (for its body or an upgrade).
pub struct ApiRequest {
    pub method: Method,
    /// The API version of a versioned path (`/v1.41/...`); None for an unversioned one,
    /// which means the newest.
    pub version: Option<(u32, u32)>,
    pub segments: Vec<String>,
    pub query: Query,
    pub request: Request,
}

/// The router of the whole API.
pub fn router(engine: Arc<Engine>) -> axum::Router {
    axum::Router::new()
        .fallback(dispatch)
        .with_state(AppState { engine })
}

/// Compares "1.41" style versions.
fn version_tuple(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

async fn dispatch(State(state): State<AppState>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let mut segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let mut api_version = None;
    if let Some(version) = segments
        .first()
        .and_then(|s| s.strip_prefix('v'))
        .map(str::to_string)
        && let Some(asked) = version_tuple(&version)
    {
        let max = version_tuple(engine::API_VERSION).expect("version");
        let min = version_tuple(engine::MIN_API_VERSION).expect("version");
        if asked > max {
            return with_headers(
                ApiError::bad_request(format!(
                    "client version {version} is too new. Maximum supported API version is {}",
                    engine::API_VERSION
                ))
                .into_response(),
            );
        }
        if asked < min {
            return with_headers(ApiError::bad_request(format!(
                    "client version {version} is too old. Minimum supported API version is {}, please upgrade your client to a newer version",
                    engine::MIN_API_VERSION
                ))
                .into_response());
        }
        segments.remove(0);
        api_version = Some(asked);
    }
    let query = match Query::parse(request.uri().query()) {
        Ok(query) => query,
        Err(error) => return with_headers(error.into_response()),
    };
    let api = ApiRequest {
        method: request.method().clone(),
        version: api_version,
        segments,
        query,
        request,
    };
    tracing::debug!(method = %api.method, path, "request");
    let response = match api.segments.first().map(String::as_str) {
        Some("_ping") | Some("version") | Some("info") | Some("events") | Some("system")
        | Some("build") => routes::system::route(&state, api).await,
        Some("networks") => routes::networks::route(&state, api).await,
        Some("containers") => routes::containers::route(&state, api).await,
        Some("images") => routes::images::route(&state, api).await,
        Some("exec") => routes::exec::route(&state, api).await,
        Some("volumes") => routes::volumes::route(&state, api).await,
        Some("commit") => routes::archive::route(&state, api).await,
        _ => Err(not_found(&path)),
    };
    with_headers(match response {
        Ok(response) => response,
        Err(error) => error.into_response(),
    })
}

/// dockerd's answer to an unknown path.
pub fn not_found(path: &str) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!("page not found: {path}"),
    }
}

fn with_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert("Api-Version", HeaderValue::from_static(engine::API_VERSION));
    headers.insert("Docker-Experimental", HeaderValue::from_static("false"));
    headers.insert("Ostype", HeaderValue::from_static("linux"));
    headers.insert(
        "Server",
        HeaderValue::from_str(&format!("Berth/{} (linux)", engine::VERSION)).expect("header"),
    );
    response
}

pub(crate) fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(value) = u8::from_str_radix(&segment[i + 1..i + 3], 16)
        {
            out.push(value);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads the whole request body (bounded).
pub async fn body_bytes(request: Request, limit: usize) -> ApiResult<bytes::Bytes> {
    axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|e| ApiError::bad_request(format!("cannot read request body: {e}")))
}

/// Parses a JSON body; malformed JSON and wrong types are 400s, as in dockerd.
pub async fn json_body<T: serde::de::DeserializeOwned + Default>(request: Request) -> ApiResult<T> {
    let bytes = body_bytes(request, 16 * 1024 * 1024).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

/// A JSON answer with a status.
pub fn json_response<T: serde::Serialize>(status: StatusCode, value: &T) -> Response {
    (status, axum::Json(value)).into_response()
}

/// An empty answer.
pub fn empty(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_compares() {
        assert_eq!(percent_decode("localhost%3A5000"), "localhost:5000");
        assert_eq!(percent_decode("a%2Fb"), "a/b");
        assert_eq!(percent_decode("100%"), "100%");
        assert!(version_tuple("1.41") < version_tuple("1.47"));
        assert!(version_tuple("1.9") < version_tuple("1.10"));
    }
}
