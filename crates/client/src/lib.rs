//! HTTP/1.1 client of the Docker Engine API (as served by berthd or dockerd) over a unix socket
//! or TCP (plain or TLS, see [`TlsOptions`]), on hyper 1.
//!
//! One connection per request: the CLI makes few requests, and long-lived ones (attach, logs
//! -f, events, wait) need their own connection anyway. Versioned paths (`/v1.47/...`) use the
//! version agreed by [`Client::negotiate`], as docker's client does: `GET /_ping`, then the
//! lower of ours and the daemon's `API-Version` header.
//!
//! Endpoints are grouped per resource: [`containers`], [`exec`], [`archive`], [`images`],
//! [`networks`], [`system`], [`volumes`].

pub mod archive;
pub mod containers;
mod error;
pub mod exec;
mod host;
pub mod images;
pub mod networks;
pub mod stream;
pub mod system;
mod tls;
pub mod volumes;

use std::collections::HashMap;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::{BodyExt, BodyStream, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};
use tokio_util::io::{ReaderStream, StreamReader};

pub use bollard_stubs::models;
pub use error::{Error, Result};
pub use host::{DEFAULT_HOST, DEFAULT_TLS_HOST, Host};
pub use tls::TlsOptions;

/// The newest API version this client speaks (Docker Engine API v1.47, docker 27.x).
pub const API_VERSION: &str = "1.47";

/// The body of a request: empty, a JSON document, or a stream (tar uploads).
pub type RequestBody = BoxBody<Bytes, std::io::Error>;

/// A response body read as bytes (logs, events, tar downloads, progress messages).
pub type BodyReader = Pin<Box<dyn AsyncRead + Send>>;

/// A connection taken over after `101 Switching Protocols` (attach): read the output, write
/// the container's stdin.
pub type Hijacked = TokioIo<hyper::upgrade::Upgraded>;

/// Query parameters, in order.
pub type Query<'a> = Vec<(&'a str, String)>;

/// Filters as docker sends them: `{"name": {"value": true}}` (the daemon also accepts lists).
pub type Filters = HashMap<String, Vec<String>>;

/// Encodes filters as the `filters` query parameter value.
pub fn encode_filters(filters: &Filters) -> String {
    let map: serde_json::Map<String, serde_json::Value> = filters
        .iter()
        .map(|(k, vs)| {
            let inner: serde_json::Map<String, serde_json::Value> = vs
                .iter()
                .map(|v| (v.clone(), serde_json::Value::Bool(true)))
                .collect();
            (k.clone(), serde_json::Value::Object(inner))
        })
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// Information of `GET /_ping`.
#[derive(Debug, Clone, Default)]
pub struct Ping {
    /// `API-Version` header: the newest API version of the daemon.
    pub api_version: Option<String>,
    /// `OSType` header.
    pub os_type: Option<String>,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A client of one daemon.
#[derive(Debug, Clone)]
pub struct Client {
    host: Host,
    version: String,
    /// TLS of a `tcp://` host.
    tls: Option<tls::Connector>,
}

impl Client {
    /// A client of the daemon at `host` (see [`Host::parse`]), speaking [`API_VERSION`] until
    /// [`Client::negotiate`] is called.
    pub fn new(host: &str) -> Result<Client> {
        Self::with_tls(host, None)
    }

    /// As [`Client::new`], with TLS for a `tcp://` host (a unix socket is always plain, as
    /// berthd and dockerd serve it). The certificate files are read here.
    pub fn with_tls(host: &str, tls: Option<&TlsOptions>) -> Result<Client> {
        let host = Host::parse(host)?;
        let tls = match (&host, tls) {
            (Host::Tcp(address), Some(options)) => Some(tls::Connector::new(options, address)?),
            _ => None,
        };
        Ok(Client {
            host,
            version: API_VERSION.to_string(),
            tls,
        })
    }

    /// The daemon's address.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The API version used in request paths.
    pub fn api_version(&self) -> &str {
        &self.version
    }

    /// Uses a fixed API version (as `DOCKER_API_VERSION` does), skipping negotiation.
    pub fn set_api_version(&mut self, version: &str) {
        self.version = version.trim_start_matches('v').to_string();
    }

    /// Agrees on an API version: the daemon's if it is older than ours. As docker's client
    /// does, the `API-Version` header is used even when the ping answers an error status;
    /// only a transport failure is an error here.
    pub async fn negotiate(&mut self) -> Result<Ping> {
        let resp = self.send(Method::GET, "/_ping", empty_body(), None).await?;
        let ping = ping_headers(&resp);
        drop(resp);
        if let Some(theirs) = &ping.api_version
            && version_less(theirs, &self.version)
        {
            self.version = theirs.clone();
        }
        Ok(ping)
    }

    /// `GET /_ping`.
    pub async fn ping(&self) -> Result<Ping> {
        let resp = self.send(Method::GET, "/_ping", empty_body(), None).await?;
        let ping = ping_headers(&resp);
        check(resp).await?;
        Ok(ping)
    }

    /// Builds the versioned path with a query string.
    fn uri(&self, path: &str, query: &[(&str, String)]) -> String {
        let mut uri = format!("/v{}{}", self.version, path);
        if !query.is_empty() {
            uri.push('?');
            uri.push_str(&serde_urlencoded::to_string(query).unwrap_or_default());
        }
        uri
    }

    async fn connect(&self) -> Result<Box<dyn Io>> {
        let connect_err = |source| Error::Connect {
            host: self.host.to_string(),
            source,
        };
        Ok(match &self.host {
            Host::Unix(path) => Box::new(UnixStream::connect(path).await.map_err(connect_err)?),
            Host::Tcp(addr) => {
                let s = TcpStream::connect(addr.as_str())
                    .await
                    .map_err(connect_err)?;
                let _ = s.set_nodelay(true);
                match &self.tls {
                    Some(tls) => Box::new(tls.connect(s).await.map_err(|source| Error::Tls {
                        host: self.host.to_string(),
                        source,
                    })?),
                    None => Box::new(s),
                }
            }
        })
    }

    /// Sends one request on a fresh connection and returns the response as received (any
    /// status). `uri` is the full path and query.
    pub async fn send(
        &self,
        method: Method,
        uri: &str,
        body: RequestBody,
        content_type: Option<&str>,
    ) -> Result<Response<Incoming>> {
        let req = self.build(method, uri, body, content_type, false)?;
        let io = self.connect().await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Ok(sender.send_request(req).await?)
    }

    fn build(
        &self,
        method: Method,
        uri: &str,
        body: RequestBody,
        content_type: Option<&str>,
        upgrade: bool,
    ) -> Result<Request<RequestBody>> {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(hyper::header::HOST, self.host.authority())
            .header(
                hyper::header::USER_AGENT,
                concat!("berth/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(ct) = content_type {
            req = req.header(hyper::header::CONTENT_TYPE, ct);
        }
        if upgrade {
            req = req
                .header(hyper::header::CONNECTION, "Upgrade")
                .header(hyper::header::UPGRADE, "tcp");
        }
        Ok(req.body(body)?)
    }

    /// A versioned request whose error statuses become [`Error::Daemon`].
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: RequestBody,
        content_type: Option<&str>,
    ) -> Result<Response<Incoming>> {
        let uri = self.uri(path, query);
        let resp = self.send(method, &uri, body, content_type).await?;
        check(resp).await
    }

    /// A versioned request without body, its answer decoded as JSON.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T> {
        let resp = self
            .call(Method::GET, path, query, empty_body(), None)
            .await?;
        decode(resp).await
    }

    /// A versioned request without body, its answer returned as raw bytes.
    pub async fn get_bytes(&self, path: &str, query: &[(&str, String)]) -> Result<Bytes> {
        let resp = self
            .call(Method::GET, path, query, empty_body(), None)
            .await?;
        Ok(resp.into_body().collect().await?.to_bytes())
    }

    /// A versioned POST with an optional JSON body; the answer body is discarded.
    pub async fn post_empty(&self, path: &str, query: &[(&str, String)]) -> Result<()> {
        let resp = self
            .call(Method::POST, path, query, empty_body(), None)
            .await?;
        resp.into_body().collect().await?;
        Ok(())
    }

    /// A versioned POST of a JSON document, the answer decoded as JSON.
    pub async fn post_json<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        body: &B,
    ) -> Result<T> {
        let resp = self
            .call(
                Method::POST,
                path,
                query,
                json_body(body)?,
                Some("application/json"),
            )
            .await?;
        decode(resp).await
    }

    /// A versioned request that takes over the connection (`Upgrade: tcp`), as docker's attach
    /// does. Returns the raw duplex stream after `101 Switching Protocols`.
    pub async fn hijack(&self, path: &str, query: &[(&str, String)]) -> Result<Hijacked> {
        self.hijack_with(path, query, empty_body(), Some("text/plain"))
            .await
    }

    /// As [`Client::hijack`], with a request body (exec start sends its JSON options).
    pub async fn hijack_with(
        &self,
        path: &str,
        query: &[(&str, String)],
        body: RequestBody,
        content_type: Option<&str>,
    ) -> Result<Hijacked> {
        let uri = self.uri(path, query);
        let req = self.build(Method::POST, &uri, body, content_type, true)?;
        let io = self.connect().await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        let resp = sender.send_request(req).await?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            let status = resp.status().as_u16();
            check(resp).await?;
            return Err(Error::NotUpgraded(status));
        }
        let upgraded = hyper::upgrade::on(resp).await?;
        Ok(TokioIo::new(upgraded))
    }
}

fn ping_headers(resp: &Response<Incoming>) -> Ping {
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Ping {
        api_version: header("api-version"),
        os_type: header("ostype"),
    }
}

/// Compares dotted API versions numerically: is `a` older than `b`?
pub fn version_less(a: &str, b: &str) -> bool {
    let parse = |s: &str| -> Vec<u64> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(a) < parse(b)
}

/// An empty request body.
pub fn empty_body() -> RequestBody {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed()
}

/// A JSON request body.
pub fn json_body<B: serde::Serialize>(body: &B) -> Result<RequestBody> {
    Ok(Full::new(Bytes::from(serde_json::to_vec(body)?))
        .map_err(|never| match never {})
        .boxed())
}

/// A streamed request body read from `reader` (sent chunked).
pub fn reader_body<R: AsyncRead + Send + Sync + 'static>(reader: R) -> RequestBody {
    let stream = ReaderStream::new(reader).map_ok(Frame::data);
    BodyExt::boxed(StreamBody::new(stream))
}

/// Turns an error status into [`Error::Daemon`] with the daemon's message.
pub async fn check(resp: Response<Incoming>) -> Result<Response<Incoming>> {
    let status = resp.status();
    if status.is_success() || status == StatusCode::SWITCHING_PROTOCOLS {
        return Ok(resp);
    }
    let body = resp.into_body().collect().await?.to_bytes();
    let message = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(v) => v
            .get("message")
            .and_then(|m| m.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string()),
        Err(_) => String::from_utf8_lossy(&body).trim().to_string(),
    };
    let message = if message.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("unknown error")
            .to_string()
    } else {
        message
    };
    Err(Error::Daemon {
        status: status.as_u16(),
        message,
    })
}

/// Reads a whole response body and decodes it as JSON.
pub async fn decode<T: DeserializeOwned>(resp: Response<Incoming>) -> Result<T> {
    let body = resp.into_body().collect().await?.to_bytes();
    Ok(serde_json::from_slice(&body)?)
}

/// The response body as an `AsyncRead`.
pub fn body_reader(resp: Response<Incoming>) -> BodyReader {
    let stream = BodyStream::new(resp.into_body())
        .try_filter_map(|frame| async move { Ok(frame.into_data().ok()) })
        .map_err(std::io::Error::other);
    Box::pin(StreamReader::new(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert!(version_less("1.41", "1.47"));
        assert!(!version_less("1.47", "1.47"));
        assert!(version_less("1.9", "1.41"));
        assert!(!version_less("1.100", "1.47"));
    }

    #[test]
    fn filters_encode_as_docker() {
        let mut f = Filters::new();
        f.insert("name".into(), vec!["web".into()]);
        assert_eq!(encode_filters(&f), r#"{"name":{"web":true}}"#);
    }

    #[test]
    fn uri_has_version_and_query() {
        let c = Client::new("unix:///x.sock").unwrap();
        assert_eq!(
            c.uri(
                "/containers/json",
                &[("all", "1".into()), ("filters", "{\"a\":1}".into())]
            ),
            "/v1.47/containers/json?all=1&filters=%7B%22a%22%3A1%7D"
        );
    }
}
