//! TLS to a daemon's `tcp://` host, as the docker CLI does it (docker(1): `--tls`,
//! `--tlsverify`, `--tlscacert`, `--tlscert`, `--tlskey`).
//!
//! - verifying (`--tlsverify`): the daemon's certificate must chain to the CA file (only that
//!   CA is trusted, as docker 28 does) and name the host (DNS name or IP address);
//! - not verifying (`--tls` alone): any server certificate is accepted; the handshake's
//!   signatures are still checked;
//! - the CA file, when given, is read in both modes (docker reads it too, and fails when it is
//!   missing);
//! - the client certificate is sent when both the certificate and the key are given.
//!
//! The files are read once, when the [`crate::Client`] is made, so a bad file is reported
//! before any connection.

use std::path::PathBuf;
use std::sync::Arc;

use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{self, CryptoProvider};
use tokio_rustls::rustls::{self, ClientConfig, DigitallySignedStruct};

use crate::error::{Error, Result};

/// How to secure the connection to a `tcp://` host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Verify the daemon's certificate against `ca` (`--tlsverify`); false: `--tls` alone.
    pub verify: bool,
    /// The CA certificate(s), PEM (`--tlscacert`).
    pub ca: Option<PathBuf>,
    /// The client certificate, PEM (`--tlscert`).
    pub cert: Option<PathBuf>,
    /// The client certificate's key, PEM (`--tlskey`).
    pub key: Option<PathBuf>,
}

/// A TLS configuration ready to connect to one host.
#[derive(Clone)]
pub(crate) struct Connector {
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// Reads the files of `options` for connections to `address` (`host:port`).
    pub(crate) fn new(options: &TlsOptions, address: &str) -> Result<Connector> {
        let provider = Arc::new(crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::TlsConfig(format!("TLS: {e}")))?;
        let roots = match &options.ca {
            Some(path) => Some(tls_files::root_store(path).map_err(Error::TlsConfig)?),
            None => None,
        };
        let builder = if options.verify {
            let roots = roots.ok_or_else(|| {
                Error::TlsConfig("TLS verification needs a CA certificate (--tlscacert)".into())
            })?;
            builder.with_root_certificates(roots)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyServerCertificate(provider)))
        };
        let mut config = match (&options.cert, &options.key) {
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(
                    tls_files::certificates(cert, "certificate").map_err(Error::TlsConfig)?,
                    tls_files::private_key(key).map_err(Error::TlsConfig)?,
                )
                .map_err(|e| match e {
                    rustls::Error::InconsistentKeys(_) => Error::TlsConfig(format!(
                        "the TLS key {key:?} does not match the certificate {cert:?}"
                    )),
                    other => Error::TlsConfig(format!("TLS client certificate {cert:?}: {other}")),
                })?,
            _ => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Connector {
            connector: TlsConnector::from(Arc::new(config)),
            server_name: server_name(address)?,
        })
    }

    /// Runs the client side of the handshake on `tcp`.
    pub(crate) async fn connect(&self, tcp: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        self.connector.connect(self.server_name.clone(), tcp).await
    }
}

/// The name the daemon's certificate must carry: the host part of `host:port` (an IP address
/// or a DNS name; IPv6 in brackets).
fn server_name(address: &str) -> Result<ServerName<'static>> {
    let host = match address.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => address,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string())
        .map_err(|_| Error::TlsConfig(format!("TLS: {host:?} is not a valid server name")))
}

/// `--tls` without `--tlsverify`: any certificate is taken for the server's (as Go's
/// `InsecureSkipVerify`), but the handshake's signatures must still be made by its key.
#[derive(Debug)]
struct AnyServerCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn server_names_from_addresses() {
        assert_eq!(
            server_name("127.0.0.1:2376").unwrap(),
            ServerName::try_from("127.0.0.1").unwrap()
        );
        assert_eq!(
            server_name("localhost:2376").unwrap(),
            ServerName::try_from("localhost").unwrap()
        );
        assert_eq!(
            server_name("[::1]:2376").unwrap(),
            ServerName::try_from("::1").unwrap()
        );
        assert!(matches!(
            server_name("[::1]:2376").unwrap(),
            ServerName::IpAddress(_)
        ));
    }

    /// A CA, a client certificate and key, and another key, as PEM files in `dir`.
    fn write_pki(dir: &Path) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        std::fs::write(dir.join("other-key.pem"), other.serialize_pem()).unwrap();
        std::fs::write(dir.join("garbage.pem"), "not PEM\n").unwrap();
    }

    #[test]
    fn files_are_read_when_the_client_is_made() {
        let dir = tempfile::tempdir().unwrap();
        write_pki(dir.path());
        let file = |name: &str| Some(dir.path().join(name));
        let options = TlsOptions {
            verify: true,
            ca: file("ca.pem"),
            cert: file("cert.pem"),
            key: file("key.pem"),
        };
        assert!(Connector::new(&options, "127.0.0.1:2376").is_ok());
        // --tls alone needs no file at all.
        assert!(Connector::new(&TlsOptions::default(), "localhost:2376").is_ok());
        let message = |options: TlsOptions| {
            Connector::new(&options, "127.0.0.1:2376")
                .err()
                .unwrap()
                .to_string()
        };
        let missing_ca = message(TlsOptions {
            ca: file("nope.pem"),
            ..options.clone()
        });
        assert!(
            missing_ca.contains("nope.pem") && missing_ca.contains("No such file"),
            "{missing_ca}"
        );
        // The CA is read even when not verifying, as docker does.
        let garbage_ca = message(TlsOptions {
            verify: false,
            ca: file("garbage.pem"),
            ..options.clone()
        });
        assert!(garbage_ca.contains("no PEM block"), "{garbage_ca}");
        let mismatch = message(TlsOptions {
            key: file("other-key.pem"),
            ..options.clone()
        });
        assert!(mismatch.contains("does not match"), "{mismatch}");
        let no_ca = message(TlsOptions {
            ca: None,
            ..options.clone()
        });
        assert!(no_ca.contains("CA certificate"), "{no_ca}");
        // A certificate without its key is not sent (and not an error), as in docker.
        assert!(
            Connector::new(
                &TlsOptions {
                    key: None,
                    ..options.clone()
                },
                "127.0.0.1:2376"
            )
            .is_ok()
        );
    }
}
