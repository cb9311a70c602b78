//! `/containers/{id}/archive` (GET, HEAD, PUT: `docker cp`), `/containers/{id}/export`,
//! `/containers/{id}/changes` and `POST /commit`, as the Engine API documents them
//! (ContainerArchive, ContainerArchiveInfo, PutContainerArchive, ContainerExport,
//! ContainerChanges, ImageCommit).

use std::io::{self, Read};

use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bollard_stubs::models::ContainerConfig;
use engine::{ArchiveStream, CommitOptions, ExtractOptions, PathStat};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::error::{ApiError, ApiResult};
use crate::{ApiRequest, AppState, json_body, json_response, not_found};

/// The header carrying a path's stat (base64 of its JSON), on GET and HEAD.
const PATH_STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

pub async fn route(state: &AppState, request: ApiRequest) -> ApiResult<Response> {
    let segments: Vec<String> = request.segments.clone();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (&request.method, segments.as_slice()) {
        (&Method::HEAD, ["containers", id, "archive"]) => {
            let path = required_path(&request)?;
            let stat = state.engine.archive_stat(id, &path).await?;
            Ok(Response::builder()
                .status(StatusCode::OK)
                .header(PATH_STAT_HEADER, stat_header(&stat))
                .body(Body::empty())
                .expect("response"))
        }
        (&Method::GET, ["containers", id, "archive"]) => {
            let path = required_path(&request)?;
            let (stat, stream) = state.engine.archive_get(id, &path).await?;
            Ok(Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/x-tar")
                .header(PATH_STAT_HEADER, stat_header(&stat))
                .body(stream_body(stream))
                .expect("response"))
        }
        (&Method::PUT, ["containers", id, "archive"]) => {
            let path = required_path(&request)?;
            let options = ExtractOptions {
                no_overwrite_dir_non_dir: request.query.flag("noOverwriteDirNonDir"),
                copy_uid_gid: request.query.flag("copyUIDGID"),
            };
            let id = id.to_string();
            let body = body_reader(request.request);
            state
                .engine
                .archive_put(&id, &path, options, Box::new(body))
                .await?;
            Ok(crate::empty(StatusCode::OK))
        }
        (&Method::GET, ["containers", id, "export"]) => {
            let stream = state.engine.export(id).await?;
            Ok(Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/x-tar")
                .body(stream_body(stream))
                .expect("response"))
        }
        (&Method::GET, ["containers", id, "changes"]) => {
            let changes = state.engine.changes(id).await?;
            Ok(json_response(StatusCode::OK, &changes))
        }
        (&Method::POST, ["commit"]) => commit(state, request).await,
        _ => Err(not_found(&format!("/{}", segments.join("/")))),
    }
}

/// `path` is mandatory on every archive request.
fn required_path(request: &ApiRequest) -> ApiResult<String> {
    request
        .query
        .get("path")
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .ok_or_else(|| ApiError::bad_request("path is required"))
}

async fn commit(state: &AppState, request: ApiRequest) -> ApiResult<Response> {
    let q = &request.query;
    let container = q
        .get("container")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad_request("container is required"))?
        .to_string();
    // `changes` may repeat; the query map keeps one value per key.
    let changes: Vec<String> = serde_urlencoded::from_str::<Vec<(String, String)>>(
        request.request.uri().query().unwrap_or(""),
    )
    .map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))?
    .into_iter()
    .filter(|(k, v)| k == "changes" && !v.is_empty())
    .map(|(_, v)| v)
    .collect();
    let options = CommitOptions {
        container,
        repo: q.get("repo").map(str::to_string),
        tag: q.get("tag").map(str::to_string),
        comment: q.get("comment").map(str::to_string),
        author: q.get("author").map(str::to_string),
        // dockerd: pause defaults to true (API 1.13+) when not given.
        pause: q.flag_or("pause", true) || q.get("pause") == Some(""),
        changes,
        config: None,
    };
    let config: Option<ContainerConfig> = json_body(request.request).await?;
    let id = state
        .engine
        .commit(CommitOptions { config, ..options })
        .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &serde_json::json!({ "Id": id }),
    ))
}

/// The header value of a path stat: base64 of `{"name","size","mode","mtime","linkTarget"}`
/// (moby `container.PathStat`; mtime in RFC 3339 with nanoseconds, as Go writes times).
fn stat_header(stat: &PathStat) -> HeaderValue {
    let mtime = chrono::DateTime::from_timestamp(stat.mtime_sec, stat.mtime_nsec)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let json = serde_json::json!({
        "name": stat.name,
        "size": stat.size,
        "mode": stat.mode,
        "mtime": mtime,
        "linkTarget": stat.link_target,
    });
    HeaderValue::from_str(&base64(json.to_string().as_bytes())).expect("base64 is ASCII")
}

/// Standard base64 with padding (RFC 4648 section 4), as Go's `base64.StdEncoding`.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A response body fed by the engine's archive stream.
fn stream_body(stream: ArchiveStream) -> Body {
    let chunks = futures_util::stream::unfold(stream, |mut stream| async move {
        stream
            .recv()
            .await
            .map(|item| (item.map(bytes::Bytes::from), stream))
    });
    Body::from_stream(chunks)
}

/// The request body as a blocking reader, for extraction on a blocking thread: a task
/// forwards the chunks through a small channel (back-pressure: the body is read only as
/// fast as it is extracted).
fn body_reader(request: axum::extract::Request) -> ChannelReader {
    let (sender, receiver) = mpsc::channel::<io::Result<bytes::Bytes>>(8);
    let mut body = request.into_body().into_data_stream();
    tokio::spawn(async move {
        while let Some(chunk) = body.next().await {
            let item = chunk.map_err(|e| io::Error::other(format!("read request body: {e}")));
            let failed = item.is_err();
            if sender.send(item).await.is_err() || failed {
                break;
            }
        }
    });
    ChannelReader {
        receiver,
        current: bytes::Bytes::new(),
    }
}

/// Reads chunks from a channel; must be used off the async runtime (blocking receive).
struct ChannelReader {
    receiver: mpsc::Receiver<io::Result<bytes::Bytes>>,
    current: bytes::Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.receiver.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), want);
        }
    }
}
