//! TLS for the API's `tcp://` hosts, with dockerd's flags, daemon.json keys and rules
//! (dockerd(8), "Protect the Docker daemon socket"). Unix sockets stay plain.
//!
//! dockerd's rules, as its code has them since 20.10 (checked against dockerd 20.10.24):
//! - `--tlsverify` (any value, by flag or in daemon.json) turns TLS on;
//! - `--tls` alone also *verifies* clients: `tlsverify` defaults to the value of `tls`, so a
//!   server-only TLS listener takes `--tls --tlsverify=false` (or just `--tlsverify=false`);
//! - verifying: clients must present a certificate signed by `--tlscacert` (only that CA is
//!   trusted), or the handshake is refused;
//! - the files default to `ca.pem`, `cert.pem`, `key.pem` in `$DOCKER_CERT_PATH`, else
//!   `$DOCKER_CONFIG`, else `~/.docker`;
//! - with TLS on and no host given, the daemon listens on `tcp://localhost:2376` (and not on
//!   the unix socket); a `tcp://` host without a port takes 2375, with or without TLS.
//!
//! A handshake runs in its own task under [`HANDSHAKE_TIMEOUT`], so a slow or silent client
//! never holds up the accept loop; finished streams go to axum through [`TlsListener`], which
//! serves them as any other connection (upgrades for attach/exec included).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, anyhow};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;

/// How long a client has to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The host dockerd listens on when TLS is on and no host is given.
pub const DEFAULT_TLS_HOST: &str = "tcp://localhost:2376";

/// The port of a `tcp://` host that names none (dockerd's default, TLS or not).
const DEFAULT_TCP_PORT: u16 = 2375;

/// The TLS settings as they can be given, by flag or in daemon.json (the same names in both).
/// `None`: not given.
#[derive(Debug, Default, Clone, PartialEq, clap::Args)]
pub struct TlsKeys {
    /// Use TLS; implied by --tlsverify.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub tls: Option<bool>,
    /// Use TLS and verify the remote.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub tlsverify: Option<bool>,
    /// Trust certs signed only by this CA (default ~/.docker/ca.pem).
    #[arg(long)]
    pub tlscacert: Option<PathBuf>,
    /// Path to TLS certificate file (default ~/.docker/cert.pem).
    #[arg(long)]
    pub tlscert: Option<PathBuf>,
    /// Path to TLS key file (default ~/.docker/key.pem).
    #[arg(long)]
    pub tlskey: Option<PathBuf>,
}

/// The TLS the daemon serves its `tcp://` hosts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTls {
    /// Require and verify client certificates signed by `ca`.
    pub verify: bool,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsKeys {
    /// These keys (the flags) over `file`'s (daemon.json), key by key.
    pub fn over(&self, file: &TlsKeys) -> TlsKeys {
        TlsKeys {
            tls: self.tls.or(file.tls),
            tlsverify: self.tlsverify.or(file.tlsverify),
            tlscacert: self.tlscacert.clone().or_else(|| file.tlscacert.clone()),
            tlscert: self.tlscert.clone().or_else(|| file.tlscert.clone()),
            tlskey: self.tlskey.clone().or_else(|| file.tlskey.clone()),
        }
    }

    /// dockerd's rules: `tlsverify` given at all turns TLS on; `tlsverify` defaults to `tls`.
    /// `None`: no TLS.
    pub fn resolve(&self, cert_dir: &Path) -> Option<ServerTls> {
        let tls = self.tlsverify.is_some() || self.tls.unwrap_or(false);
        if !tls {
            return None;
        }
        let file = |given: &Option<PathBuf>, name: &str| {
            given.clone().unwrap_or_else(|| cert_dir.join(name))
        };
        Some(ServerTls {
            verify: self.tlsverify.unwrap_or(true),
            ca: file(&self.tlscacert, "ca.pem"),
            cert: file(&self.tlscert, "cert.pem"),
            key: file(&self.tlskey, "key.pem"),
        })
    }
}

/// Where the certificate files are by default: `$DOCKER_CERT_PATH`, else `$DOCKER_CONFIG`,
/// else `$HOME/.docker` (as dockerd).
pub fn default_cert_dir(env: impl Fn(&str) -> Option<OsString>) -> PathBuf {
    let set = |name| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    set("DOCKER_CERT_PATH")
        .or_else(|| set("DOCKER_CONFIG"))
        .unwrap_or_else(|| {
            set("HOME")
                .unwrap_or_else(|| "/root".into())
                .join(".docker")
        })
}

/// The address to bind for a `tcp://` host: its own, with dockerd's default port when it
/// names none.
pub fn bind_address(address: &str) -> String {
    let has_port = address.rsplit_once(':').is_some_and(|(host, port)| {
        !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && (!host.starts_with('[') || host.ends_with(']'))
    });
    if has_port {
        address.to_string()
    } else {
        format!("{address}:{DEFAULT_TCP_PORT}")
    }
}

/// Loads the certificate files and builds the acceptor. Every error is one line naming the
/// file at fault, for berthd to exit with before it touches any state.
pub fn acceptor(settings: &ServerTls) -> Result<TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow!("invalid TLS configuration: {e}"))?;
    let builder = if settings.verify {
        let roots = tls_files::root_store(&settings.ca).map_err(invalid_configuration)?;
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| anyhow!("invalid TLS configuration: {e}"))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let chain =
        tls_files::certificates(&settings.cert, "certificate").map_err(invalid_configuration)?;
    let key = tls_files::private_key(&settings.key).map_err(invalid_configuration)?;
    let mut config = builder.with_single_cert(chain, key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => anyhow!(
            "invalid TLS configuration: the key {:?} does not match the certificate {:?}",
            settings.key,
            settings.cert
        ),
        other => anyhow!(
            "invalid TLS configuration: certificate {:?} with key {:?}: {other}",
            settings.cert,
            settings.key
        ),
    })?;
    // The API is HTTP/1.1 only (upgrades for attach and exec).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn invalid_configuration(message: String) -> anyhow::Error {
    anyhow!("invalid TLS configuration: {message}")
}

/// A listener of TLS connections for `axum::serve`: an accept loop hands each TCP connection
/// to its own handshake task; the streams whose handshake succeeded come out of [`accept`].
///
/// [`accept`]: axum::serve::Listener::accept
pub struct TlsListener {
    established: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `listener`; the accept loop ends when this is dropped.
    pub fn new(listener: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<TlsListener> {
        let local_addr = listener.local_addr()?;
        let (established, rx) = mpsc::channel(64);
        tokio::spawn(accept_loop(listener, acceptor, established));
        Ok(TlsListener {
            established: rx,
            local_addr,
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.established.recv().await {
            Some(connection) => connection,
            // The accept loop only ends when this listener is gone.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    established: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin (as axum's
                    // own TCP listener does).
                    tracing::error!("accept on {:?}: {e}", listener.local_addr());
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            _ = established.closed() => return,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let established = established.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&acceptor, tcp)).await {
                Ok(Ok(Some(stream))) => {
                    let _ = established.send((stream, peer)).await;
                }
                Ok(Ok(None)) => {
                    tracing::info!("plain HTTP request from {peer} on a TLS port: refused")
                }
                Ok(Err(e)) => tracing::info!("TLS handshake error from {peer}: {e}"),
                Err(_) => tracing::info!(
                    "TLS handshake from {peer} not done after {}s: closed",
                    HANDSHAKE_TIMEOUT.as_secs()
                ),
            }
        });
    }
}

/// Runs the server side of the handshake. A client speaking plain HTTP gets the answer Go's
/// servers give (and the docker CLI shows): `400 Client sent an HTTP request to an HTTPS
/// server.`; `None` then.
async fn handshake(
    acceptor: &TlsAcceptor,
    mut tcp: TcpStream,
) -> std::io::Result<Option<TlsStream<TcpStream>>> {
    let mut first = [0u8; 1];
    if tcp.peek(&mut first).await? == 1 && looks_like_http(first[0]) {
        // Read what came (the request head, typically) so that closing does not reset the
        // connection before the client has read the answer.
        let mut request = [0u8; 4096];
        let _ = tcp.read(&mut request).await;
        tcp.write_all(PLAIN_HTTP_ANSWER).await?;
        let _ = tcp.shutdown().await;
        return Ok(None);
    }
    acceptor.accept(tcp).await.map(Some)
}

const PLAIN_HTTP_ANSWER: &[u8] =
    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// A TLS connection starts with a handshake record (content type 22); an HTTP request starts
/// with its method, in capitals.
fn looks_like_http(first_byte: u8) -> bool {
    first_byte.is_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(tls: Option<bool>, tlsverify: Option<bool>) -> TlsKeys {
        TlsKeys {
            tls,
            tlsverify,
            ..TlsKeys::default()
        }
    }

    #[test]
    fn dockerd_rules_for_tls_and_tlsverify() {
        let dir = Path::new("/certs");
        // Nothing given, or TLS explicitly off: plain.
        assert_eq!(keys(None, None).resolve(dir), None);
        assert_eq!(keys(Some(false), None).resolve(dir), None);
        // --tls alone verifies clients (tlsverify defaults to tls).
        assert!(keys(Some(true), None).resolve(dir).unwrap().verify);
        // --tlsverify turns TLS on, whatever --tls says.
        assert!(keys(None, Some(true)).resolve(dir).unwrap().verify);
        assert!(keys(Some(false), Some(true)).resolve(dir).unwrap().verify);
        // --tlsverify=false: TLS without client verification.
        assert!(!keys(None, Some(false)).resolve(dir).unwrap().verify);
        assert!(!keys(Some(true), Some(false)).resolve(dir).unwrap().verify);
    }

    #[test]
    fn files_default_to_the_cert_dir() {
        let tls = keys(Some(true), None).resolve(Path::new("/certs")).unwrap();
        assert_eq!(tls.ca, Path::new("/certs/ca.pem"));
        assert_eq!(tls.cert, Path::new("/certs/cert.pem"));
        assert_eq!(tls.key, Path::new("/certs/key.pem"));
        let given = TlsKeys {
            tlscert: Some("/x/server.pem".into()),
            ..keys(None, Some(true))
        };
        let tls = given.resolve(Path::new("/certs")).unwrap();
        assert_eq!(tls.cert, Path::new("/x/server.pem"));
        assert_eq!(tls.key, Path::new("/certs/key.pem"));
    }

    #[test]
    fn flags_win_over_the_file_key_by_key() {
        let flags = TlsKeys {
            tlsverify: Some(false),
            tlscert: Some("/flag/cert.pem".into()),
            ..TlsKeys::default()
        };
        let file = TlsKeys {
            tls: Some(true),
            tlsverify: Some(true),
            tlscert: Some("/file/cert.pem".into()),
            tlskey: Some("/file/key.pem".into()),
            ..TlsKeys::default()
        };
        let merged = flags.over(&file);
        assert_eq!(merged.tls, Some(true));
        assert_eq!(merged.tlsverify, Some(false));
        assert_eq!(merged.tlscert, Some("/flag/cert.pem".into()));
        assert_eq!(merged.tlskey, Some("/file/key.pem".into()));
    }

    #[test]
    fn cert_dir_from_the_environment() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        assert_eq!(
            default_cert_dir(env(&[
                ("DOCKER_CERT_PATH", "/p"),
                ("DOCKER_CONFIG", "/c"),
                ("HOME", "/h")
            ])),
            Path::new("/p")
        );
        assert_eq!(
            default_cert_dir(env(&[("DOCKER_CONFIG", "/c"), ("HOME", "/h")])),
            Path::new("/c")
        );
        assert_eq!(
            default_cert_dir(env(&[("DOCKER_CERT_PATH", ""), ("HOME", "/h")])),
            Path::new("/h/.docker")
        );
    }

    #[test]
    fn tcp_hosts_without_port_take_2375() {
        assert_eq!(bind_address("127.0.0.1"), "127.0.0.1:2375");
        assert_eq!(bind_address("localhost:2376"), "localhost:2376");
        assert_eq!(bind_address("[::1]:99"), "[::1]:99");
        assert_eq!(bind_address("[::1]"), "[::1]:2375");
    }

    #[test]
    fn plain_http_is_told_apart_from_a_client_hello() {
        assert!(looks_like_http(b'G'));
        assert!(looks_like_http(b'P'));
        // TLS handshake record; SSLv2-style hello.
        assert!(!looks_like_http(0x16));
        assert!(!looks_like_http(0x80));
    }

    #[test]
    fn flags_parse_as_dockerd_booleans() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            tls: TlsKeys,
        }
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("berthd").chain(args.iter().copied()))
                .map(|c| c.tls)
        };
        assert_eq!(parse(&["--tls"]).unwrap().tls, Some(true));
        assert_eq!(
            parse(&["--tlsverify=false"]).unwrap().tlsverify,
            Some(false)
        );
        assert_eq!(parse(&["--tlsverify=1"]).unwrap().tlsverify, Some(true));
        assert_eq!(parse(&[]).unwrap(), TlsKeys::default());
        let files = parse(&["--tlscacert", "/a", "--tlscert=/b", "--tlskey", "/c"]).unwrap();
        assert_eq!(files.tlscacert, Some("/a".into()));
        assert_eq!(files.tlscert, Some("/b".into()));
        assert_eq!(files.tlskey, Some("/c".into()));
        assert!(parse(&["--tls=maybe"]).is_err());
    }

    /// A CA and a server certificate for localhost, written as PEM files in `dir`.
    fn write_pki(dir: &Path) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        std::fs::write(dir.join("other-key.pem"), other.serialize_pem()).unwrap();
    }

    fn load(dir: &Path, verify: bool, edit: impl FnOnce(&mut ServerTls)) -> Result<TlsAcceptor> {
        let mut settings = keys(None, Some(verify)).resolve(dir).unwrap();
        edit(&mut settings);
        acceptor(&settings)
    }

    #[test]
    fn certificate_files_load_or_fail_with_one_clear_line() {
        let dir = tempfile::tempdir().unwrap();
        write_pki(dir.path());
        std::fs::write(dir.path().join("garbage.pem"), "not a certificate\n").unwrap();
        assert!(load(dir.path(), true, |_| {}).is_ok());
        // Without verification the CA is not read at all.
        assert!(load(dir.path(), false, |s| s.ca = "/nonexistent/ca.pem".into()).is_ok());
        let error = |verify, edit: fn(&mut ServerTls)| {
            let message = load(dir.path(), verify, edit).err().unwrap().to_string();
            assert!(!message.contains('\n'), "{message}");
            message
        };
        let missing = error(true, |s| s.cert = "/nonexistent/cert.pem".into());
        assert!(
            missing.contains("certificate \"/nonexistent/cert.pem\"")
                && missing.contains("No such file"),
            "{missing}"
        );
        let ca = error(true, |s| s.ca = "/nonexistent/ca.pem".into());
        assert!(
            ca.contains("CA certificate \"/nonexistent/ca.pem\""),
            "{ca}"
        );
        let garbage = error(false, |s| s.cert = s.cert.with_file_name("garbage.pem"));
        assert!(garbage.contains("no PEM block"), "{garbage}");
        let garbage_ca = error(true, |s| s.ca = s.ca.with_file_name("garbage.pem"));
        assert!(garbage_ca.contains("CA certificate"), "{garbage_ca}");
        // A certificate file given as the key: no key in it.
        let key_is_cert = error(false, |s| s.key = s.cert.clone());
        assert!(key_is_cert.contains("could not read key"), "{key_is_cert}");
        let mismatch = error(false, |s| s.key = s.key.with_file_name("other-key.pem"));
        assert!(
            mismatch.contains("does not match the certificate"),
            "{mismatch}"
        );
    }
}
