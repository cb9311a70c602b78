//! The few kernel settings networking needs (ip-sysctl.rst), written through /proc/sys of the
//! current thread's network namespace.

use std::path::Path;

use crate::error::{Error, Result};

fn write(path: &str, value: &str) -> Result<()> {
    let current = std::fs::read_to_string(path).unwrap_or_default();
    if current.trim() == value {
        return Ok(());
    }
    std::fs::write(path, value).map_err(|e| Error::from(e).context(format!("write {path}")))
}

/// net.ipv4.ip_forward=1, as dockerd sets it: bridges route their containers' traffic.
pub fn enable_forwarding() -> Result<()> {
    write("/proc/sys/net/ipv4/ip_forward", "1")
}

/// route_localnet on a bridge: packets with a loopback source may leave through it (loopback
/// publishing through the output hook's DNAT).
pub fn enable_route_localnet(bridge: &str) -> Result<()> {
    write(
        &format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet"),
        "1",
    )
}

/// No IPv6 on an interface (the host end of a veth needs no link-local address).
pub fn disable_ipv6(interface: &str) {
    let path = format!("/proc/sys/net/ipv6/conf/{interface}/disable_ipv6");
    if Path::new(&path).exists() {
        let _ = write(&path, "1");
    }
}
