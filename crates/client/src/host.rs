//! Where the daemon listens: `unix:///path` or `tcp://host:port`, as in `DOCKER_HOST`.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// The default socket of berthd (see the engine design: run dir /run/berth).
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

/// The daemon docker's CLI talks to when TLS is on and no host is given at all.
pub const DEFAULT_TLS_HOST: &str = "tcp://localhost:2376";

/// The port of a `tcp://` host that names none. The docker CLI takes 2375 here with or without
/// TLS (2376 is only in [`DEFAULT_TLS_HOST`]).
const DEFAULT_TCP_PORT: u16 = 2375;

/// A parsed daemon address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A unix stream socket at this path.
    Unix(PathBuf),
    /// A plain TCP address `host:port`.
    Tcp(String),
}

impl Host {
    /// Parses `unix:///path`, a bare `/path`, `tcp://host[:port]` or `http://host[:port]`.
    pub fn parse(s: &str) -> Result<Host> {
        let invalid = |reason| Error::InvalidHost {
            host: s.to_string(),
            reason,
        };
        if let Some(path) = s.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(invalid("empty socket path"));
            }
            return Ok(Host::Unix(PathBuf::from(path)));
        }
        if s.starts_with('/') {
            return Ok(Host::Unix(PathBuf::from(s)));
        }
        let rest = s
            .strip_prefix("tcp://")
            .or_else(|| s.strip_prefix("http://"))
            .ok_or_else(|| invalid("unsupported scheme, expected unix:// or tcp://"))?;
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() || rest.contains('/') {
            return Err(invalid("expected tcp://host:port"));
        }
        // A port is present when the text after the last ':' is numeric and is not inside an
        // IPv6 bracket.
        let has_port = rest.rsplit_once(':').is_some_and(|(h, p)| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && !h.is_empty()
                && (!h.starts_with('[') || h.ends_with(']'))
        });
        if let Some(port) = rest
            .strip_prefix(':')
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        {
            // `tcp://:2376`: docker's default host, localhost.
            Ok(Host::Tcp(format!("localhost:{port}")))
        } else if has_port {
            Ok(Host::Tcp(rest.to_string()))
        } else {
            Ok(Host::Tcp(format!("{rest}:{DEFAULT_TCP_PORT}")))
        }
    }

    /// The value of the HTTP `Host` header: docker sends a placeholder for unix sockets.
    pub fn authority(&self) -> &str {
        match self {
            Host::Unix(_) => "docker",
            Host::Tcp(addr) => addr,
        }
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Unix(p) => write!(f, "unix://{}", p.display()),
            Host::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts() {
        assert_eq!(
            Host::parse("unix:///tmp/x.sock").unwrap(),
            Host::Unix("/tmp/x.sock".into())
        );
        assert_eq!(
            Host::parse("/tmp/x.sock").unwrap(),
            Host::Unix("/tmp/x.sock".into())
        );
        assert_eq!(
            Host::parse("tcp://127.0.0.1:2376").unwrap(),
            Host::Tcp("127.0.0.1:2376".into())
        );
        assert_eq!(
            Host::parse("tcp://localhost").unwrap(),
            Host::Tcp("localhost:2375".into())
        );
        assert_eq!(
            Host::parse("tcp://[::1]:99").unwrap(),
            Host::Tcp("[::1]:99".into())
        );
        assert_eq!(
            Host::parse("tcp://:2376").unwrap(),
            Host::Tcp("localhost:2376".into())
        );
        assert_eq!(
            Host::parse(DEFAULT_TLS_HOST).unwrap(),
            Host::Tcp("localhost:2376".into())
        );
        assert!(Host::parse("ssh://x").is_err());
        assert!(Host::parse("unix://").is_err());
        assert_eq!(Host::parse(DEFAULT_HOST).unwrap().to_string(), DEFAULT_HOST);
    }
}
