//! Host ports of published container ports: which are taken (by this daemon), picking
//! ephemeral ones for `-P` and `-p CONTAINER` as dockerd does (serially through
//! ip_local_port_range), and a bound socket per port that keeps other programs of the host off
//! it while it is published (the forwarding itself is nftables' DNAT, see
//! [`crate::firewall`]).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::OwnedFd;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::firewall::Protocol;

/// One requested binding (HostConfig.PortBindings entry), parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRequest {
    pub protocol: Protocol,
    pub container_port: u16,
    /// None: every address.
    pub host_ip: Option<Ipv4Addr>,
    /// Inclusive range; (0, 0): any ephemeral port.
    pub host_ports: (u16, u16),
}

/// A host port taken for a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HostPort {
    pub protocol: Protocol,
    pub host_ip: Option<Ipv4Addr>,
    pub port: u16,
}

impl HostPort {
    fn conflicts(&self, other: &HostPort) -> bool {
        self.protocol == other.protocol
            && self.port == other.port
            && (self.host_ip.is_none() || other.host_ip.is_none() || self.host_ip == other.host_ip)
    }
    fn address_text(&self) -> String {
        self.host_ip
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| "0.0.0.0".into())
    }
}

/// Parses a HostPort text: "8080", "8000-8010", "" (ephemeral).
pub fn parse_host_ports(text: &str) -> Result<(u16, u16)> {
    let text = text.trim();
    if text.is_empty() || text == "0" {
        return Ok((0, 0));
    }
    let bad = || Error::invalid(format!("invalid hostPort: {text}"));
    match text.split_once('-') {
        Some((low, high)) => {
            let low: u16 = low.parse().map_err(|_| bad())?;
            let high: u16 = high.parse().map_err(|_| bad())?;
            if low == 0 || high < low {
                return Err(bad());
            }
            Ok((low, high))
        }
        None => {
            let port: u16 = text.parse().map_err(|_| bad())?;
            Ok((port, port))
        }
    }
}

/// Parses "80/tcp" (a PortBindings or ExposedPorts key).
pub fn parse_container_port(key: &str) -> Result<(u16, Protocol)> {
    let (port, protocol) = key.split_once('/').unwrap_or((key, "tcp"));
    let protocol = Protocol::parse(protocol)
        .ok_or_else(|| Error::invalid(format!("invalid proto: {protocol}")))?;
    // A range of container ports ("8000-8001/tcp") is expanded by the client; one port here.
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| Error::invalid(format!("invalid containerPort: {port}")))?;
    Ok((port, protocol))
}

/// The host ports in use by this daemon's containers, with their reservation sockets.
#[derive(Debug)]
pub struct PortAllocator {
    inner: Mutex<Inner>,
    ephemeral: (u16, u16),
}

#[derive(Debug, Default)]
struct Inner {
    taken: HashMap<HostPort, Option<OwnedFd>>,
    /// The last ephemeral port handed out, per protocol.
    last: HashMap<Protocol, u16>,
}

impl Default for PortAllocator {
    fn default() -> Self {
        Self::new()
    }
}

impl PortAllocator {
    pub fn new() -> Self {
        let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|text| {
                let mut parts = text.split_whitespace().map(|p| p.parse::<u16>().ok());
                Some((parts.next()??, parts.next()??))
            })
            .unwrap_or((32768, 60999));
        Self {
            inner: Mutex::new(Inner::default()),
            ephemeral: range,
        }
    }

    /// Takes a port for `request`; `container` only names the target in error messages.
    pub fn allocate(&self, request: &PortRequest, container: (Ipv4Addr, u16)) -> Result<HostPort> {
        let mut inner = self.inner.lock().expect("ports lock");
        let (low, high, ephemeral) = match request.host_ports {
            (0, 0) => (self.ephemeral.0, self.ephemeral.1, true),
            (low, high) => (low, high, false),
        };
        let span = u32::from(high - low) + 1;
        let start = if ephemeral {
            inner
                .last
                .get(&request.protocol)
                .filter(|last| (low..=high).contains(*last))
                .map(|last| u32::from(*last - low) + 1)
                .unwrap_or(0)
        } else {
            0
        };
        let mut last_error = None;
        for step in 0..span {
            let port = low + ((start + step) % span) as u16;
            let candidate = HostPort {
                protocol: request.protocol,
                host_ip: request.host_ip,
                port,
            };
            if inner.taken.keys().any(|t| t.conflicts(&candidate)) {
                last_error = Some(Error::internal(format!(
                    "Bind for {}:{port} failed: port is already allocated",
                    candidate.address_text()
                )));
                continue;
            }
            match reserve(&candidate) {
                Ok(socket) => {
                    inner.taken.insert(candidate, Some(socket));
                    if ephemeral {
                        inner.last.insert(request.protocol, port);
                    }
                    return Ok(candidate);
                }
                Err(error) => {
                    last_error = Some(Error::internal(format!(
                        "failed to bind host port for {}:{port}:{}:{}/{}: {}",
                        candidate.address_text(),
                        container.0,
                        container.1,
                        request.protocol.as_str(),
                        error.desc().to_lowercase()
                    )));
                }
            }
        }
        Err(match (ephemeral, last_error) {
            (true, _) | (_, None) => Error::internal(format!(
                "no free port in range {low}-{high}/{}",
                request.protocol.as_str()
            )),
            (false, Some(error)) => error,
        })
    }

    /// Marks a port taken again after a daemon restart (its container still runs); the
    /// reservation socket is re-bound when the port is still free on the host.
    pub fn restore(&self, port: HostPort) {
        let mut inner = self.inner.lock().expect("ports lock");
        let socket = reserve(&port).ok();
        inner.taken.insert(port, socket);
    }

    /// Frees a port.
    pub fn release(&self, port: &HostPort) {
        self.inner.lock().expect("ports lock").taken.remove(port);
    }
}

/// Binds the host port, so no other program of the host can take it.
fn reserve(port: &HostPort) -> nix::Result<OwnedFd> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, socket};
    let kind = match port.protocol {
        Protocol::Udp => SockType::Datagram,
        _ => SockType::Stream,
    };
    let socket = socket(AddressFamily::Inet, kind, SockFlag::SOCK_CLOEXEC, None)?;
    let address = SockaddrIn::from(SocketAddrV4::new(
        port.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
        port.port,
    ));
    bind(std::os::fd::AsRawFd::as_raw_fd(&socket), &address)?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_port_texts() {
        assert_eq!(parse_host_ports("").unwrap(), (0, 0));
        assert_eq!(parse_host_ports("8080").unwrap(), (8080, 8080));
        assert_eq!(parse_host_ports("8000-8010").unwrap(), (8000, 8010));
        assert!(parse_host_ports("9-1").is_err());
        assert!(parse_host_ports("x").is_err());
        assert_eq!(parse_container_port("80/tcp").unwrap(), (80, Protocol::Tcp));
        assert_eq!(parse_container_port("53/udp").unwrap(), (53, Protocol::Udp));
        assert_eq!(parse_container_port("80").unwrap(), (80, Protocol::Tcp));
        assert!(parse_container_port("0/tcp").is_err());
        assert!(parse_container_port("80/icmp").is_err());
    }

    #[test]
    fn conflicts_consider_the_address() {
        let any = HostPort {
            protocol: Protocol::Tcp,
            host_ip: None,
            port: 80,
        };
        let local = HostPort {
            host_ip: Some(Ipv4Addr::LOCALHOST),
            ..any
        };
        let other = HostPort {
            host_ip: Some(Ipv4Addr::new(127, 0, 0, 2)),
            ..any
        };
        let udp = HostPort {
            protocol: Protocol::Udp,
            ..any
        };
        assert!(any.conflicts(&local));
        assert!(local.conflicts(&any));
        assert!(!local.conflicts(&other));
        assert!(!any.conflicts(&udp));
    }
}
