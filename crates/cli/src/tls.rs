//! The docker CLI's TLS flags and environment (docker(1), "Protect the Docker daemon socket"):
//!
//! - `--tlsverify`, or `DOCKER_TLS_VERIFY` set to anything non-empty (even `0`, as docker):
//!   TLS, and the daemon's certificate is verified against the CA;
//! - `--tls` (or `DOCKER_TLS`): TLS without verifying the daemon; `--tlsverify=false` is TLS
//!   without verification too (giving `--tlsverify` at all turns TLS on);
//! - files: `--tlscacert`, `--tlscert`, `--tlskey`, by default `ca.pem`, `cert.pem`, `key.pem` in
//!   `DOCKER_CERT_PATH`, else `DOCKER_CONFIG`, else `~/.docker`. The CA file is always read when
//!   TLS is on (a missing one is an error, as in docker); a default certificate or key that
//!   does not exist is left out (no client certificate then).
//! - with TLS and no host given, the daemon is `tcp://localhost:2376`.
//!
//! `BERTH_TLS_VERIFY`, `BERTH_TLS` and `BERTH_CERT_PATH` come before their `DOCKER_` variables,
//! as `BERTH_HOST` comes before `DOCKER_HOST`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use client::TlsOptions;

/// The global TLS flags.
#[derive(Debug, Default, Clone, PartialEq, clap::Args)]
pub struct TlsFlags {
    /// Use TLS; implied by --tlsverify
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub tls: Option<bool>,
    /// Use TLS and verify the remote
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub tlsverify: Option<bool>,
    /// Trust certs signed only by this CA (default ~/.docker/ca.pem)
    #[arg(long)]
    pub tlscacert: Option<PathBuf>,
    /// Path to TLS certificate file (default ~/.docker/cert.pem)
    #[arg(long)]
    pub tlscert: Option<PathBuf>,
    /// Path to TLS key file (default ~/.docker/key.pem)
    #[arg(long)]
    pub tlskey: Option<PathBuf>,
}

impl TlsFlags {
    /// The TLS to use, from these flags over the process environment; `None`: plain.
    pub fn options(&self) -> Option<TlsOptions> {
        self.resolve(|name| std::env::var_os(name), Path::exists)
    }

    /// docker's rules, over the environment `env` and a file test `exists`.
    pub fn resolve(
        &self,
        env: impl Fn(&str) -> Option<OsString>,
        exists: impl Fn(&Path) -> bool,
    ) -> Option<TlsOptions> {
        // BERTH_X, else DOCKER_X; empty counts as unset.
        let var = |name: &str| {
            env(&format!("BERTH_{name}"))
                .filter(|v| !v.is_empty())
                .or_else(|| env(&format!("DOCKER_{name}")).filter(|v| !v.is_empty()))
        };
        let verify = self.tlsverify.unwrap_or(var("TLS_VERIFY").is_some());
        let tls = self.tlsverify.is_some() || verify || self.tls.unwrap_or(var("TLS").is_some());
        if !tls {
            return None;
        }
        let dir = var("CERT_PATH").map(PathBuf::from).unwrap_or_else(|| {
            env("DOCKER_CONFIG")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    env("HOME")
                        .map(PathBuf::from)
                        .unwrap_or_default()
                        .join(".docker")
                })
        });
        // Given files are used as given (and fail when missing); default ones only if present.
        let optional = |given: &Option<PathBuf>, name: &str| match given {
            Some(path) => Some(path.clone()),
            None => Some(dir.join(name)).filter(|path| exists(path)),
        };
        Some(TlsOptions {
            verify,
            ca: Some(self.tlscacert.clone().unwrap_or_else(|| dir.join("ca.pem"))),
            cert: optional(&self.tlscert, "cert.pem"),
            key: optional(&self.tlskey, "key.pem"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + use<> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            vars.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    const HOME: (&str, &str) = ("HOME", "/home/u");

    fn flags(tls: Option<bool>, tlsverify: Option<bool>) -> TlsFlags {
        TlsFlags {
            tls,
            tlsverify,
            ..TlsFlags::default()
        }
    }

    fn all_exist(_: &Path) -> bool {
        true
    }

    #[test]
    fn tls_and_verify_as_docker() {
        let none = env(&[HOME]);
        assert_eq!(flags(None, None).resolve(&none, all_exist), None);
        assert_eq!(flags(Some(false), None).resolve(&none, all_exist), None);
        // --tls: no verification of the daemon.
        assert!(
            !flags(Some(true), None)
                .resolve(&none, all_exist)
                .unwrap()
                .verify
        );
        assert!(
            flags(None, Some(true))
                .resolve(&none, all_exist)
                .unwrap()
                .verify
        );
        // --tlsverify=false still turns TLS on, without verification.
        assert!(
            !flags(None, Some(false))
                .resolve(&none, all_exist)
                .unwrap()
                .verify
        );
        // DOCKER_TLS_VERIFY: any non-empty value, even 0.
        for value in ["1", "0"] {
            let verify = env(&[HOME, ("DOCKER_TLS_VERIFY", value)]);
            assert!(
                flags(None, None)
                    .resolve(&verify, all_exist)
                    .unwrap()
                    .verify
            );
        }
        let empty = env(&[HOME, ("DOCKER_TLS_VERIFY", "")]);
        assert_eq!(flags(None, None).resolve(&empty, all_exist), None);
        // The flag wins over the environment.
        let verify = env(&[HOME, ("DOCKER_TLS_VERIFY", "1")]);
        assert!(
            !flags(None, Some(false))
                .resolve(&verify, all_exist)
                .unwrap()
                .verify
        );
        // DOCKER_TLS / BERTH_TLS: TLS without verification; BERTH_TLS_VERIFY like DOCKER's.
        let tls = env(&[HOME, ("DOCKER_TLS", "1")]);
        assert!(!flags(None, None).resolve(&tls, all_exist).unwrap().verify);
        assert_eq!(flags(Some(false), None).resolve(&tls, all_exist), None);
        let berth = env(&[HOME, ("BERTH_TLS_VERIFY", "1")]);
        assert!(flags(None, None).resolve(&berth, all_exist).unwrap().verify);
    }

    #[test]
    fn files_default_to_the_cert_path() {
        let home = env(&[HOME]);
        let tls = flags(None, Some(true)).resolve(&home, all_exist).unwrap();
        assert_eq!(tls.ca, Some("/home/u/.docker/ca.pem".into()));
        assert_eq!(tls.cert, Some("/home/u/.docker/cert.pem".into()));
        assert_eq!(tls.key, Some("/home/u/.docker/key.pem".into()));
        let config = env(&[HOME, ("DOCKER_CONFIG", "/cfg")]);
        let tls = flags(None, Some(true)).resolve(&config, all_exist).unwrap();
        assert_eq!(tls.ca, Some("/cfg/ca.pem".into()));
        let path = env(&[
            HOME,
            ("DOCKER_CONFIG", "/cfg"),
            ("DOCKER_CERT_PATH", "/certs"),
        ]);
        let tls = flags(None, Some(true)).resolve(&path, all_exist).unwrap();
        assert_eq!(tls.key, Some("/certs/key.pem".into()));
        let berth = env(&[
            HOME,
            ("DOCKER_CERT_PATH", "/certs"),
            ("BERTH_CERT_PATH", "/berth"),
        ]);
        let tls = flags(None, Some(true)).resolve(&berth, all_exist).unwrap();
        assert_eq!(tls.cert, Some("/berth/cert.pem".into()));
    }

    #[test]
    fn missing_default_client_files_are_left_out_but_the_ca_is_not() {
        let home = env(&[HOME]);
        let tls = flags(Some(true), None).resolve(&home, |_| false).unwrap();
        assert_eq!(tls.ca, Some("/home/u/.docker/ca.pem".into()));
        assert_eq!(tls.cert, None);
        assert_eq!(tls.key, None);
        // Given files stay, present or not (reading them reports the error).
        let given = TlsFlags {
            tlscert: Some("/x/cert.pem".into()),
            tlskey: Some("/x/key.pem".into()),
            tlscacert: Some("/x/ca.pem".into()),
            ..flags(None, Some(true))
        };
        let tls = given.resolve(&home, |_| false).unwrap();
        assert_eq!(tls.cert, Some("/x/cert.pem".into()));
        assert_eq!(tls.ca, Some("/x/ca.pem".into()));
    }
}
