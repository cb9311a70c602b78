//! Certificates, keys and CA bundles read from PEM files for rustls. Each error is one line
//! naming the file and what is wrong with it in words (the PEM library's own errors show raw
//! bytes); callers put their own prefix in front.

use std::path::Path;

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::RootCertStore;

/// The certificates of a PEM file (a chain: leaf first); `what` names them in errors
/// ("certificate", "CA certificate"). A file without any is an error.
pub fn certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let invalid = |e: pem::Error| format!("could not read {what} {path:?}: {}", pem_error(e));
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(invalid)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(invalid)?;
    if certs.is_empty() {
        return Err(invalid(pem::Error::NoItemsFound));
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| format!("could not read key {path:?}: {}", pem_error(e)))
}

/// The CA certificates of a PEM file, as the roots to verify peers against.
pub fn root_store(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path, "CA certificate")? {
        roots
            .add(cert)
            .map_err(|e| format!("invalid CA certificate {path:?}: {e}"))?;
    }
    Ok(roots)
}

/// PEM errors in words.
fn pem_error(e: pem::Error) -> String {
    match e {
        pem::Error::Io(e) => e.to_string(),
        pem::Error::NoItemsFound => "no PEM block of the expected type".to_string(),
        pem::Error::MissingSectionEnd { .. } => "a PEM block has no END line".to_string(),
        pem::Error::IllegalSectionStart { .. } => "malformed PEM BEGIN line".to_string(),
        pem::Error::Base64Decode(e) => format!("bad base64 in a PEM block: {e}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_openssl_and_rcgen_write_and_words_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let cert_path = dir.path().join("cert.pem");
        let key_path = dir.path().join("key.pem");
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        assert_eq!(certificates(&cert_path, "certificate").unwrap().len(), 1);
        assert!(private_key(&key_path).is_ok());
        assert_eq!(root_store(&cert_path).unwrap().len(), 1);

        // A key where a certificate is expected, a missing file, a broken block.
        let error = certificates(&key_path, "CA certificate").unwrap_err();
        assert!(
            error.starts_with("could not read CA certificate"),
            "{error}"
        );
        assert!(
            error.contains("no PEM block of the expected type"),
            "{error}"
        );
        let missing = private_key(&dir.path().join("nope.pem")).unwrap_err();
        assert!(
            missing.contains("nope.pem") && missing.contains("No such file"),
            "{missing}"
        );
        let broken = dir.path().join("broken.pem");
        std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
        let error = certificates(&broken, "certificate").unwrap_err();
        assert!(error.contains("no END line"), "{error}");
    }
}
