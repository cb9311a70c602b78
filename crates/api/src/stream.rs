//! Docker's stdout/stderr stream framing: without a TTY each chunk is prefixed with an 8-byte
//! header (stream type 1 = stdout, 2 = stderr, three zero bytes, big-endian u32 length); with a
//! TTY the stream is raw. And the hijacked connections of attach and exec start.

use std::future::Future;

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::Response;
use engine::logs::{LogEntry, Stream};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// Content type of a multiplexed stream (API 1.42+), or of a raw one.
pub fn content_type(tty: bool) -> &'static str {
    if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    }
}

/// Encodes one entry, with its timestamp first when asked.
pub fn encode(entry: &LogEntry, tty: bool, timestamps: bool) -> Vec<u8> {
    let mut payload = Vec::with_capacity(entry.line.len() + 40);
    if timestamps {
        payload.extend_from_slice(entry.time.as_bytes());
        payload.push(b' ');
    }
    payload.extend_from_slice(&entry.line);
    if tty {
        return payload;
    }
    let kind = match entry.stream {
        Stream::Stdout => 1u8,
        Stream::Stderr => 2u8,
    };
    let mut frame = Vec::with_capacity(payload.len() + 8);
    frame.extend_from_slice(&[kind, 0, 0, 0]);
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&payload);
    frame
}

/// A client connection both ways, after the hijack.
pub trait Duplex: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Duplex for T {}

/// The client's connection of a hijacked request.
pub type Client = Box<dyn Duplex>;

/// Takes over the connection of an attach or exec start, as dockerd does: with `Upgrade: tcp`
/// (the docker CLI) the answer is `101 UPGRADED` and `session` gets the raw connection both
/// ways; without it the answer is a 200 whose body is the session's output (no input).
pub fn hijack<F, Fut>(request: &mut axum::extract::Request, tty: bool, session: F) -> Response
where
    F: FnOnce(Client) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    if request.headers().get(header::UPGRADE).is_none() {
        let (mut ours, theirs) = tokio::io::duplex(64 * 1024);
        // No input: the session sees its end at once (our side's write direction is closed,
        // its output still flows to the body).
        let _ = futures_util::FutureExt::now_or_never(ours.shutdown());
        tokio::spawn(session(Box::new(theirs)));
        return Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, content_type(tty))
            .body(Body::from_stream(tokio_util::io::ReaderStream::new(ours)))
            .expect("response");
    }
    let upgrade = hyper::upgrade::on(request);
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => session(Box::new(hyper_util::rt::TokioIo::new(upgraded))).await,
            Err(error) => tracing::debug!("hijack failed: {error}"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONTENT_TYPE, content_type(tty))
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp")
        .body(Body::empty())
        .expect("response")
}

/// The `h` and `w` of a resize request, as dockerd reads them (integers; 400 otherwise).
pub fn size(query: &crate::Query) -> crate::ApiResult<(u16, u16)> {
    let read = |key: &str| -> crate::ApiResult<u16> {
        let raw = query.get(key).unwrap_or("");
        // dockerd reads both with strconv.Atoi, and says so.
        let number: i64 = raw.parse().map_err(|_| {
            crate::ApiError::bad_request(format!("strconv.Atoi: parsing {raw:?}: invalid syntax"))
        })?;
        u16::try_from(number).map_err(|_| {
            crate::ApiError::bad_request(format!(
                "invalid value for {key}: {raw:?}: expected an integer between 0 and 65535"
            ))
        })
    };
    Ok((read("h")?, read("w")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_dockers_header() {
        let entry = LogEntry {
            stream: Stream::Stderr,
            time: "T".into(),
            line: b"hi\n".to_vec(),
        };
        assert_eq!(
            encode(&entry, false, false),
            vec![2, 0, 0, 0, 0, 0, 0, 3, b'h', b'i', b'\n']
        );
        assert_eq!(encode(&entry, true, true), b"T hi\n".to_vec());
    }

    #[test]
    fn sizes_are_integers() {
        let query = crate::Query::parse(Some("h=24&w=80")).unwrap();
        assert_eq!(size(&query).unwrap(), (24, 80));
        for bad in ["h=x&w=80", "h=24", "h=-1&w=3", "h=70000&w=1"] {
            let query = crate::Query::parse(Some(bad)).unwrap();
            assert_eq!(
                size(&query).unwrap_err().status,
                StatusCode::BAD_REQUEST,
                "{bad}"
            );
        }
    }
}
