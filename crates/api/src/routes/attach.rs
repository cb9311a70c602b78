//! `/containers/{id}/attach` (hijacked), `/containers/{id}/attach/ws` (websocket) and
//! `/containers/{id}/resize`.

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
        (&Method::GET, ["containers", id, "attach", "ws"]) => websocket(state, id, request).await,
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

/// `GET /containers/{id}/attach/ws`: the same session over a websocket. As dockerd, the
/// output is raw (no multiplexing headers, stdout and stderr interleaved) in binary messages
/// (API 1.42+); text or binary messages from the client are stdin; a close ends its input.
async fn websocket(state: &AppState, id: &str, request: ApiRequest) -> ApiResult<Response> {
    use axum::extract::FromRequest;
    use axum::extract::ws::{Message, WebSocketUpgrade};
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::AsyncReadExt;

    let q = &request.query;
    let detach_keys = DetachKeys::from_request(q.get("detachKeys"))?;
    let (stdout, stderr) = (q.flag("stdout"), q.flag("stderr"));
    let replay = if q.flag("logs") {
        let options = LogOptions {
            stdout,
            stderr,
            ..Default::default()
        };
        Some(state.engine.logs(id, options).await?)
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
    let upgrade = WebSocketUpgrade::from_request(request.request, &())
        .await
        .map_err(|e| crate::ApiError::bad_request(e.to_string()))?;
    Ok(upgrade.on_upgrade(move |socket| async move {
        let (mut sink, mut source) = socket.split();
        if let Some(mut entries) = replay {
            while let Some(entry) = entries.recv().await {
                let bytes = bytes::Bytes::from(entry.line);
                if sink.send(Message::Binary(bytes)).await.is_err() {
                    return;
                }
            }
        }
        let Some(session) = session else {
            let _ = sink.close().await;
            return;
        };
        let tty = session.tty;
        let Ok(stream) = session.connect().await else {
            let _ = sink.close().await;
            return;
        };
        // The session runs on one end of a pipe; this task carries the other end to and from
        // the websocket.
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let pump = tokio::spawn(stream.pump(theirs));
        let (mut from_session, mut to_session) = tokio::io::split(ours);
        let input = async move {
            while let Some(Ok(message)) = source.next().await {
                let data = match message {
                    Message::Binary(data) => data,
                    Message::Text(text) => bytes::Bytes::from(text.as_str().to_owned()),
                    Message::Close(_) => break,
                    _ => continue,
                };
                if to_session.write_all(&data).await.is_err() {
                    return;
                }
            }
            let _ = to_session.shutdown().await;
        };
        let output = async move {
            let mut frames = Deframer::new(tty);
            let mut buffer = vec![0u8; 32 * 1024];
            loop {
                match from_session.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let payload = frames.feed(&buffer[..n]);
                        if !payload.is_empty()
                            && sink.send(Message::Binary(payload.into())).await.is_err()
                        {
                            break;
                        }
                    }
                }
            }
            let _ = sink.close().await;
        };
        tokio::select! {
            () = output => {}
            () = input => {}
        }
        // A websocket that closed is gone both ways (unlike a hijacked connection, which may
        // half-close): the session ends with it, its shim connection too.
        pump.abort();
    }))
}

/// Turns Docker's multiplexed stream back into raw output (the websocket carries it raw);
/// with a tty the stream is raw already.
struct Deframer {
    tty: bool,
    pending: Vec<u8>,
}

impl Deframer {
    fn new(tty: bool) -> Self {
        Self {
            tty,
            pending: Vec::new(),
        }
    }

    /// The payload bytes complete in `input` (and what earlier calls held back).
    fn feed(&mut self, input: &[u8]) -> Vec<u8> {
        if self.tty {
            return input.to_vec();
        }
        self.pending.extend_from_slice(input);
        let mut out = Vec::new();
        let mut at = 0;
        while self.pending.len() - at >= 8 {
            let header = &self.pending[at..at + 8];
            let length = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
            if self.pending.len() - at - 8 < length {
                break;
            }
            out.extend_from_slice(&self.pending[at + 8..at + 8 + length]);
            at += 8 + length;
        }
        self.pending.drain(..at);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deframes_across_reads() {
        let mut frames = Deframer::new(false);
        let stream = b"\x01\0\0\0\0\0\0\x03out\x02\0\0\0\0\0\0\x03err";
        assert_eq!(frames.feed(&stream[..5]), b"");
        assert_eq!(frames.feed(&stream[5..13]), b"out");
        assert_eq!(frames.feed(&stream[13..20]), b"");
        assert_eq!(frames.feed(&stream[20..]), b"err");
        let mut raw = Deframer::new(true);
        assert_eq!(raw.feed(b"\x01abc"), b"\x01abc");
    }
}
