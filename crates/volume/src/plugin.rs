//! Docker's (legacy) volume plugin protocol: JSON over HTTP POST, one request per call, on a
//! unix socket or TCP address found by name (Docker docs "Plugin discovery" and "Volume
//! plugins"):
//!
//! - `<dir>/<name>.sock` or `<dir>/<name>/<name>.sock`: a unix socket;
//! - `<dir>/<name>.spec`: a URL (`unix:///path` or `tcp://host:port`);
//! - `<dir>/<name>.json`: `{"Name": ..., "Addr": URL}`;
//!
//! in the plugin directories (dockerd's: /run/docker/plugins, /etc/docker/plugins,
//! /usr/lib/docker/plugins). A plugin is activated once (`Plugin.Activate` must list
//! `VolumeDriver` in `Implements`), then called with `VolumeDriver.Create`, `Remove`, `Mount`,
//! `Unmount`, `Path`, `Get`, `List` and `Capabilities`; an answer with a non-empty `Err` is a
//! failure. Every call has a deadline: a plugin that hangs or answers garbage fails the call
//! with a clear message and never blocks the daemon.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{Error, Result};

/// Where plugins are looked for and how long a call may take.
#[derive(Debug, Clone)]
pub struct PluginConfig {
    /// Directories searched in order for sockets and spec files.
    pub dirs: Vec<PathBuf>,
    /// Deadline of one call, connection included.
    pub timeout: Duration,
}

impl Default for PluginConfig {
    fn default() -> Self {
        Self {
            dirs: vec![
                "/run/docker/plugins".into(),
                "/etc/docker/plugins".into(),
                "/usr/lib/docker/plugins".into(),
            ],
            // dockerd's plugin client default.
            timeout: Duration::from_secs(30),
        }
    }
}

/// How to reach a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Unix(PathBuf),
    Tcp(String),
}

impl Address {
    fn parse(url: &str) -> Option<Self> {
        let url = url.trim();
        if let Some(path) = url.strip_prefix("unix://") {
            Some(Self::Unix(path.into()))
        } else {
            url.strip_prefix("tcp://")
                .map(|address| Self::Tcp(address.trim_end_matches('/').to_string()))
        }
    }
}

/// Finds plugin `name` in `dirs`.
pub fn discover(dirs: &[PathBuf], name: &str) -> Option<Address> {
    use std::os::unix::fs::FileTypeExt;
    let is_socket = |path: &Path| {
        std::fs::metadata(path)
            .map(|m| m.file_type().is_socket())
            .unwrap_or(false)
    };
    for dir in dirs {
        for socket in [
            dir.join(format!("{name}.sock")),
            dir.join(name).join(format!("{name}.sock")),
        ] {
            if is_socket(&socket) {
                return Some(Address::Unix(socket));
            }
        }
        if let Ok(text) = std::fs::read_to_string(dir.join(format!("{name}.spec")))
            && let Some(address) = Address::parse(&text)
        {
            return Some(address);
        }
        if let Ok(bytes) = std::fs::read(dir.join(format!("{name}.json")))
            && let Ok(spec) = serde_json::from_slice::<Value>(&bytes)
            && let Some(address) = spec["Addr"].as_str().and_then(Address::parse)
        {
            return Some(address);
        }
    }
    None
}

/// Largest answer read from a plugin.
const MAX_ANSWER: usize = 1 << 20;

/// The media type of the plugin protocol (pkg/plugins).
const MEDIA_TYPE: &str = "application/vnd.docker.plugins.v1.2+json";

/// A volume as a plugin describes it (`VolumeDriver.Get` and `List`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PluginVolume {
    pub name: String,
    pub mountpoint: String,
    pub created_at: String,
    pub status: Option<serde_json::Map<String, Value>>,
}

/// A client of one activated plugin.
#[derive(Debug)]
pub struct PluginClient {
    pub name: String,
    address: Address,
    timeout: Duration,
    /// `Capabilities.Scope`: "local" or "global".
    scope: Mutex<String>,
}

impl PluginClient {
    /// A client of the plugin at `address` (not activated yet).
    pub fn new(name: &str, address: Address, timeout: Duration) -> Self {
        Self {
            name: name.to_string(),
            address,
            timeout,
            scope: Mutex::new("local".into()),
        }
    }

    /// The scope the plugin declared.
    pub fn scope(&self) -> String {
        self.scope.lock().expect("scope lock").clone()
    }

    /// One call: POST /<method> with `body`; the answer's JSON. Errors are the plugin's
    /// `Err`, or what went wrong on the way, with the method named.
    pub async fn call(&self, method: &str, body: Value) -> std::result::Result<Value, String> {
        let exchange = self.exchange(method, body);
        let (status, answer) = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result.map_err(|e| format!("{method}: {e}"))?,
            Err(_) => {
                return Err(format!(
                    "{method}: plugin {:?} did not answer within {}s",
                    self.name,
                    self.timeout.as_secs_f64()
                ));
            }
        };
        let value: Value = serde_json::from_slice(&answer).map_err(|e| {
            let text = String::from_utf8_lossy(&answer);
            let shown: String = text.chars().take(100).collect();
            if status == 200 {
                format!(
                    "{method}: invalid answer from plugin {:?}: {e}: {shown:?}",
                    self.name
                )
            } else {
                format!("{method}: {}", shown.trim())
            }
        })?;
        if let Some(error) = value
            .get("Err")
            .and_then(Value::as_str)
            .filter(|e| !e.is_empty())
        {
            return Err(if status == 200 {
                error.to_string()
            } else {
                format!("{method}: {error}")
            });
        }
        if status != 200 {
            return Err(format!("{method}: status {status}"));
        }
        if !value.is_object() {
            return Err(format!(
                "{method}: invalid answer from plugin {:?}: not a JSON object",
                self.name
            ));
        }
        Ok(value)
    }

    async fn exchange(
        &self,
        method: &str,
        body: Value,
    ) -> std::result::Result<(u16, Bytes), String> {
        let request = hyper::Request::post(format!("/{method}"))
            .header(hyper::header::HOST, "plugin")
            .header(hyper::header::ACCEPT, MEDIA_TYPE)
            .header(hyper::header::CONTENT_TYPE, MEDIA_TYPE)
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| e.to_string())?;
        match &self.address {
            Address::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|e| format!("dial {}: {e}", path.display()))?;
                roundtrip(TokioIo::new(stream), request).await
            }
            Address::Tcp(address) => {
                let stream = tokio::net::TcpStream::connect(address)
                    .await
                    .map_err(|e| format!("dial {address}: {e}"))?;
                roundtrip(TokioIo::new(stream), request).await
            }
        }
    }

    /// `Plugin.Activate`, then `VolumeDriver.Capabilities` (optional in the protocol).
    pub async fn activate(&self) -> std::result::Result<(), String> {
        let answer = self.call("Plugin.Activate", Value::Null).await?;
        let implements = answer["Implements"]
            .as_array()
            .map(|a| a.iter().any(|i| i.as_str() == Some("VolumeDriver")))
            .unwrap_or(false);
        if !implements {
            return Err(format!(
                "plugin {:?} does not implement VolumeDriver",
                self.name
            ));
        }
        if let Ok(answer) = self.call("VolumeDriver.Capabilities", json!({})).await
            && let Some(scope) = answer["Capabilities"]["Scope"].as_str()
            && matches!(scope, "local" | "global")
        {
            *self.scope.lock().expect("scope lock") = scope.to_string();
        }
        Ok(())
    }

    pub async fn create(
        &self,
        name: &str,
        options: &HashMap<String, String>,
    ) -> std::result::Result<(), String> {
        self.call(
            "VolumeDriver.Create",
            json!({ "Name": name, "Opts": options }),
        )
        .await
        .map(drop)
    }

    pub async fn remove(&self, name: &str) -> std::result::Result<(), String> {
        self.call("VolumeDriver.Remove", json!({ "Name": name }))
            .await
            .map(drop)
    }

    fn mountpoint(answer: &Value, method: &str) -> std::result::Result<String, String> {
        answer["Mountpoint"]
            .as_str()
            .filter(|m| m.starts_with('/'))
            .map(str::to_string)
            .ok_or_else(|| format!("{method}: the plugin answered no absolute Mountpoint"))
    }

    pub async fn mount(&self, name: &str, id: &str) -> std::result::Result<String, String> {
        let answer = self
            .call("VolumeDriver.Mount", json!({ "Name": name, "ID": id }))
            .await?;
        Self::mountpoint(&answer, "VolumeDriver.Mount")
    }

    pub async fn unmount(&self, name: &str, id: &str) -> std::result::Result<(), String> {
        self.call("VolumeDriver.Unmount", json!({ "Name": name, "ID": id }))
            .await
            .map(drop)
    }

    pub async fn path(&self, name: &str) -> std::result::Result<String, String> {
        let answer = self
            .call("VolumeDriver.Path", json!({ "Name": name }))
            .await?;
        Ok(answer["Mountpoint"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    pub async fn get(&self, name: &str) -> std::result::Result<PluginVolume, String> {
        let answer = self
            .call("VolumeDriver.Get", json!({ "Name": name }))
            .await?;
        serde_json::from_value(answer["Volume"].clone())
            .map_err(|e| format!("VolumeDriver.Get: invalid volume: {e}"))
    }

    pub async fn list(&self) -> std::result::Result<Vec<PluginVolume>, String> {
        let answer = self.call("VolumeDriver.List", json!({})).await?;
        serde_json::from_value(answer["Volumes"].clone())
            .map_err(|e| format!("VolumeDriver.List: invalid volumes: {e}"))
    }
}

/// One HTTP/1.1 exchange on a fresh connection, driven to its end here (no task is left
/// behind when the caller's deadline drops it).
async fn roundtrip<IO>(
    io: IO,
    request: hyper::Request<Full<Bytes>>,
) -> std::result::Result<(u16, Bytes), String>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    let exchange = async move {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| format!("read the answer: {e}"))?
            .to_bytes();
        Ok::<_, String>((status, body))
    };
    let (result, _) = tokio::join!(exchange, connection);
    result
}

/// The plugins found and activated so far, by name.
#[derive(Debug)]
pub struct Plugins {
    config: PluginConfig,
    active: Mutex<HashMap<String, Arc<PluginClient>>>,
}

impl Plugins {
    pub fn new(config: PluginConfig) -> Self {
        Self {
            config,
            active: Mutex::new(HashMap::new()),
        }
    }

    /// The client of plugin `name`, finding and activating it on first use; `op` and
    /// `volume` name what it is wanted for, in errors.
    pub async fn get(
        &self,
        name: &str,
        op: &'static str,
        volume: &str,
    ) -> Result<Arc<PluginClient>> {
        if let Some(client) = self.active.lock().expect("plugins lock").get(name) {
            return Ok(client.clone());
        }
        let address = discover(&self.config.dirs, name).ok_or_else(|| Error::PluginNotFound {
            op,
            name: volume.to_string(),
            plugin: name.to_string(),
        })?;
        let client = Arc::new(PluginClient::new(name, address, self.config.timeout));
        client
            .activate()
            .await
            .map_err(|reason| Error::PluginLookup {
                op,
                name: volume.to_string(),
                plugin: name.to_string(),
                reason,
            })?;
        self.active
            .lock()
            .expect("plugins lock")
            .insert(name.to_string(), client.clone());
        Ok(client)
    }

    /// Forgets an activated plugin (its socket went away): the next use looks it up again.
    pub fn forget(&self, name: &str) {
        self.active.lock().expect("plugins lock").remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_forms() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = vec![dir.path().join("run"), dir.path().join("etc")];
        for d in &dirs {
            std::fs::create_dir_all(d).unwrap();
        }
        assert_eq!(discover(&dirs, "p"), None);
        std::fs::write(dirs[1].join("spec1.spec"), "unix:///run/x.sock\n").unwrap();
        assert_eq!(
            discover(&dirs, "spec1"),
            Some(Address::Unix("/run/x.sock".into()))
        );
        std::fs::write(
            dirs[1].join("json1.json"),
            r#"{"Name":"json1","Addr":"tcp://127.0.0.1:9/"}"#,
        )
        .unwrap();
        assert_eq!(
            discover(&dirs, "json1"),
            Some(Address::Tcp("127.0.0.1:9".into()))
        );
        let socket = dirs[0].join("sock1.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        assert_eq!(discover(&dirs, "sock1"), Some(Address::Unix(socket)));
        std::fs::create_dir_all(dirs[0].join("nested")).unwrap();
        let nested = dirs[0].join("nested/nested.sock");
        let _listener2 = std::os::unix::net::UnixListener::bind(&nested).unwrap();
        assert_eq!(discover(&dirs, "nested"), Some(Address::Unix(nested)));
        // A regular file named like a socket is not one.
        std::fs::write(dirs[0].join("file.sock"), "").unwrap();
        assert_eq!(discover(&dirs, "file"), None);
        std::fs::write(dirs[1].join("bad.spec"), "http://x").unwrap();
        assert_eq!(discover(&dirs, "bad"), None);
    }
}
