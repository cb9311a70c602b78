//! IP address management, pure: validating a network's IPAM configuration as dockerd does,
//! picking a free subnet from the address pools, and handing out addresses of a subnet.
//!
//! Terms: a *pool* ([`AddressPool`]) is one network's subnet with its gateway and the range
//! that dynamic addresses come from; an *allocation* is one address handed to an endpoint. The
//! network address, the broadcast address and the gateway are never allocated. Dynamic
//! allocation is serial, as libnetwork's: the next free address after the last one handed out,
//! wrapping at the end of the range, so an address just released is not reused at once (an old
//! endpoint's neighbour entries have time to expire).
//!
//! Allocations are not persisted here: the engine keeps each endpoint's address in its
//! container record and rebuilds the pools from the running containers at start.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One `default-address-pools` entry of daemon.json: subnets of `size` bits carved from `base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolSpec {
    pub base: Ipv4Net,
    pub size: u8,
}

/// dockerd's default address pools (libnetwork ipamutils): 172.17-31.0.0/16, then
/// 192.168.0.0/16 in /20s.
pub fn default_pools() -> Vec<PoolSpec> {
    vec![
        PoolSpec {
            base: "172.17.0.0/16".parse().expect("pool"),
            size: 16,
        },
        PoolSpec {
            base: "172.18.0.0/15".parse().expect("pool"),
            size: 16,
        },
        PoolSpec {
            base: "172.20.0.0/14".parse().expect("pool"),
            size: 16,
        },
        PoolSpec {
            base: "172.24.0.0/14".parse().expect("pool"),
            size: 16,
        },
        PoolSpec {
            base: "172.28.0.0/14".parse().expect("pool"),
            size: 16,
        },
        PoolSpec {
            base: "192.168.0.0/16".parse().expect("pool"),
            size: 20,
        },
    ]
}

/// The subnets of a pool spec, in order.
fn carve(spec: &PoolSpec) -> impl Iterator<Item = Ipv4Net> + '_ {
    let size = spec.size.max(spec.base.prefix_len());
    spec.base.subnets(size).into_iter().flatten()
}

/// The first subnet of `pools` that overlaps none of `taken` (the other networks' subnets and
/// the host's routes). dockerd's error when every one is taken.
pub fn pick_subnet(pools: &[PoolSpec], taken: &[Ipv4Net]) -> Result<Ipv4Net> {
    pools
        .iter()
        .flat_map(carve)
        .find(|candidate| !taken.iter().any(|t| overlaps(candidate, t)))
        .ok_or_else(|| Error::forbidden("all predefined address pools have been fully subnetted"))
}

/// Whether two subnets share an address.
pub fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// One IPv4 configuration of a network as the API gives it (IPAM.Config[i]), unvalidated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestedConfig {
    pub subnet: Option<String>,
    pub ip_range: Option<String>,
    pub gateway: Option<String>,
}

/// A validated configuration: a subnet, and optionally a range inside it and a gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidConfig {
    pub subnet: Ipv4Net,
    pub ip_range: Option<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
}

/// Validates a requested configuration as dockerd's `ValidateIPAM` (API types): every problem
/// is listed under "invalid network config:".
pub fn validate(config: &RequestedConfig) -> Result<ValidConfig> {
    let mut problems = Vec::new();
    let subnet_text = config.subnet.as_deref().unwrap_or("");
    let subnet = match subnet_text.parse::<Ipv4Net>() {
        Ok(subnet) => Some(subnet),
        Err(_) => {
            if subnet_text.parse::<ipnet::Ipv6Net>().is_ok() {
                return Err(Error::invalid(format!(
                    "invalid network config:\ninvalid subnet {subnet_text}: IPv6 networks are not supported by berth yet"
                )));
            }
            problems.push(format!(
                "invalid subnet {subnet_text}: invalid CIDR block notation"
            ));
            None
        }
    };
    let mut ip_range = None;
    let mut gateway = None;
    if let Some(subnet) = subnet {
        if subnet != subnet.trunc() {
            problems.push(format!(
                "invalid subnet {subnet}: it should be {}",
                subnet.trunc()
            ));
        }
        let subnet = subnet.trunc();
        if let Some(text) = config.ip_range.as_deref().filter(|t| !t.is_empty()) {
            match text.parse::<Ipv4Net>() {
                Err(_) => problems.push(format!(
                    "invalid ip-range {text}: invalid CIDR block notation"
                )),
                Ok(range) if range != range.trunc() => problems.push(format!(
                    "invalid ip-range {text}: it should be {}",
                    range.trunc()
                )),
                Ok(range) if !subnet.contains(&range) => problems.push(format!(
                    "invalid ip-range {text}: parent subnet {subnet} does not contain ip-range {range}"
                )),
                Ok(range) => ip_range = Some(range),
            }
        }
        if let Some(text) = config.gateway.as_deref().filter(|t| !t.is_empty()) {
            match text.parse::<Ipv4Addr>() {
                Err(_) => problems.push(format!("invalid gateway {text}: invalid address")),
                Ok(address) if !subnet.contains(&address) => problems.push(format!(
                    "invalid gateway {text}: parent subnet {subnet} does not contain ip address {address}"
                )),
                Ok(address) => gateway = Some(address),
            }
        }
    }
    match subnet {
        Some(subnet) if problems.is_empty() => Ok(ValidConfig {
            subnet: subnet.trunc(),
            ip_range,
            gateway,
        }),
        _ => Err(Error::invalid(format!(
            "invalid network config:\n{}",
            problems.join("\n")
        ))),
    }
}

/// The addresses of one network: its subnet, gateway, dynamic range and what is handed out.
#[derive(Debug, Clone)]
pub struct AddressPool {
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
    range: Ipv4Net,
    allocated: BTreeSet<Ipv4Addr>,
    /// The last dynamic allocation: the search for the next one starts after it.
    last: Option<Ipv4Addr>,
}

impl AddressPool {
    /// A pool of `subnet` whose gateway is `gateway` (default: the first host address) and whose
    /// dynamic addresses come from `range` (default: the whole subnet).
    pub fn new(subnet: Ipv4Net, gateway: Option<Ipv4Addr>, range: Option<Ipv4Net>) -> Self {
        let subnet = subnet.trunc();
        let gateway = gateway.unwrap_or_else(|| first_host(&subnet));
        Self {
            subnet,
            gateway,
            range: range.unwrap_or(subnet),
            allocated: BTreeSet::new(),
            last: None,
        }
    }

    pub fn subnet(&self) -> Ipv4Net {
        self.subnet
    }
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }
    pub fn range(&self) -> Ipv4Net {
        self.range
    }
    pub fn is_allocated(&self, address: Ipv4Addr) -> bool {
        self.allocated.contains(&address)
    }
    pub fn allocated(&self) -> impl Iterator<Item = &Ipv4Addr> {
        self.allocated.iter()
    }

    /// Whether an address may be handed to an endpoint at all.
    fn usable(&self, address: Ipv4Addr) -> bool {
        let prefix = self.subnet.prefix_len();
        // /31 and /32 have no network or broadcast address (RFC 3021).
        let edges =
            prefix < 31 && (address == self.subnet.network() || address == self.subnet.broadcast());
        self.subnet.contains(&address) && !edges && address != self.gateway
    }

    /// Hands out `requested` (a static `--ip`), or the next free address of the range.
    pub fn allocate(&mut self, requested: Option<Ipv4Addr>) -> Result<Ipv4Addr> {
        if let Some(address) = requested {
            if !self.subnet.contains(&address) {
                return Err(Error::invalid(format!(
                    "invalid endpoint settings:\nno configured subnet or ip-range contain the IP address {address}"
                )));
            }
            if !self.usable(address) || self.allocated.contains(&address) {
                return Err(Error::forbidden("Address already in use"));
            }
            self.allocated.insert(address);
            return Ok(address);
        }
        let start = u32::from(self.range.network());
        let end = u32::from(self.range.broadcast());
        let total = u64::from(end - start) + 1;
        let first = match self.last {
            Some(last) if self.range.contains(&last) => u32::from(last) - start + 1,
            _ => 0,
        };
        for step in 0..total {
            let offset = ((u64::from(first) + step) % total) as u32;
            let address = Ipv4Addr::from(start + offset);
            if self.usable(address) && !self.allocated.contains(&address) {
                self.allocated.insert(address);
                self.last = Some(address);
                return Ok(address);
            }
        }
        Err(Error::forbidden(
            "no available IPv4 addresses on this network's address pools",
        ))
    }

    /// Marks an address as taken (an endpoint restored at daemon start); false when it was.
    pub fn reserve(&mut self, address: Ipv4Addr) -> bool {
        self.allocated.insert(address)
    }

    /// Returns an address to the pool.
    pub fn release(&mut self, address: Ipv4Addr) {
        self.allocated.remove(&address);
    }
}

/// The first host address of a subnet (the gateway by default).
pub fn first_host(subnet: &Ipv4Net) -> Ipv4Addr {
    if subnet.prefix_len() >= 31 {
        subnet.network()
    } else {
        Ipv4Addr::from(u32::from(subnet.network()) + 1)
    }
}

/// The MAC address dockerd derives from an IPv4 address: 02:42 followed by the address.
pub fn mac_of(address: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = address.octets();
    [0x02, 0x42, a, b, c, d]
}

/// Formats a MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff` (dockerd's message when it is not one).
pub fn parse_mac(text: &str) -> Result<[u8; 6]> {
    let parts: Vec<&str> = text.split(':').collect();
    let bytes: Option<Vec<u8>> = parts
        .iter()
        .map(|p| {
            (p.len() == 2)
                .then(|| u8::from_str_radix(p, 16).ok())
                .flatten()
        })
        .collect();
    match bytes {
        Some(bytes) if bytes.len() == 6 => {
            let mut mac = [0u8; 6];
            mac.copy_from_slice(&bytes);
            Ok(mac)
        }
        _ => Err(Error::invalid(format!("invalid MAC address: {text}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> Ipv4Net {
        text.parse().unwrap()
    }
    fn ip(text: &str) -> Ipv4Addr {
        text.parse().unwrap()
    }
    fn requested(subnet: &str, range: Option<&str>, gateway: Option<&str>) -> RequestedConfig {
        RequestedConfig {
            subnet: Some(subnet.into()),
            ip_range: range.map(Into::into),
            gateway: gateway.map(Into::into),
        }
    }

    #[test]
    fn validation_reports_what_dockerd_reports() {
        let cases: &[(RequestedConfig, Option<&str>)] = &[
            (requested("10.1.0.0/16", None, None), None),
            (
                requested("10.1.0.0/16", Some("10.1.2.0/24"), Some("10.1.0.254")),
                None,
            ),
            (
                requested("foo", None, None),
                Some("invalid network config:\ninvalid subnet foo: invalid CIDR block notation"),
            ),
            (
                requested("10.1.0.1/16", None, None),
                Some(
                    "invalid network config:\ninvalid subnet 10.1.0.1/16: it should be 10.1.0.0/16",
                ),
            ),
            (
                requested("10.1.0.0/16", None, Some("10.2.0.1")),
                Some(
                    "invalid network config:\ninvalid gateway 10.2.0.1: parent subnet 10.1.0.0/16 does not contain ip address 10.2.0.1",
                ),
            ),
            (
                requested("10.1.0.0/16", Some("10.2.0.0/24"), None),
                Some(
                    "invalid network config:\ninvalid ip-range 10.2.0.0/24: parent subnet 10.1.0.0/16 does not contain ip-range 10.2.0.0/24",
                ),
            ),
            (
                requested("10.1.0.0/16", None, Some("bar")),
                Some("invalid network config:\ninvalid gateway bar: invalid address"),
            ),
        ];
        for (config, want) in cases {
            let got = validate(config);
            match want {
                None => assert!(got.is_ok(), "{config:?}: {got:?}"),
                Some(message) => {
                    let error = got.unwrap_err();
                    assert_eq!(error.message, *message);
                    assert_eq!(error.kind, types::ErrorKind::InvalidArgument);
                }
            }
        }
    }

    #[test]
    fn subnets_are_picked_from_the_pools_around_what_is_taken() {
        let pools = default_pools();
        assert_eq!(pick_subnet(&pools, &[]).unwrap(), net("172.17.0.0/16"));
        let taken = [net("172.17.0.0/16"), net("172.18.5.0/24")];
        assert_eq!(pick_subnet(&pools, &taken).unwrap(), net("172.19.0.0/16"));
        let small = [PoolSpec {
            base: net("10.9.0.0/24"),
            size: 26,
        }];
        assert_eq!(
            pick_subnet(&small, &[net("10.9.0.0/26")]).unwrap(),
            net("10.9.0.64/26")
        );
        let error = pick_subnet(&small, &[net("10.0.0.0/8")]).unwrap_err();
        assert_eq!(
            error.message,
            "all predefined address pools have been fully subnetted"
        );
        assert!(overlaps(&net("10.0.0.0/8"), &net("10.9.0.0/24")));
        assert!(overlaps(&net("10.9.0.0/24"), &net("10.0.0.0/8")));
        assert!(!overlaps(&net("10.9.0.0/24"), &net("10.9.1.0/24")));
    }

    #[test]
    fn allocation_is_serial_skips_reserved_addresses_and_wraps() {
        let mut pool = AddressPool::new(net("10.0.0.0/29"), None, None);
        assert_eq!(pool.gateway(), ip("10.0.0.1"));
        let got: Vec<Ipv4Addr> = (0..5).map(|_| pool.allocate(None).unwrap()).collect();
        assert_eq!(
            got,
            ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"].map(ip)
        );
        let full = pool.allocate(None).unwrap_err();
        assert!(full.message.starts_with("no available IPv4 addresses"));
        pool.release(ip("10.0.0.3"));
        pool.release(ip("10.0.0.5"));
        // The search continues after the last one handed out, then wraps.
        assert_eq!(pool.allocate(None).unwrap(), ip("10.0.0.3"));
        assert_eq!(pool.allocate(None).unwrap(), ip("10.0.0.5"));
    }

    #[test]
    fn released_addresses_are_not_reused_at_once() {
        let mut pool = AddressPool::new(net("172.17.0.0/16"), None, None);
        let a = pool.allocate(None).unwrap();
        pool.release(a);
        let b = pool.allocate(None).unwrap();
        assert_ne!(a, b);
        assert_eq!(b, ip("172.17.0.3"));
    }

    #[test]
    fn static_addresses_and_ranges() {
        let mut pool = AddressPool::new(
            net("10.5.0.0/16"),
            Some(ip("10.5.0.254")),
            Some(net("10.5.7.0/30")),
        );
        // A range's own edges are ordinary addresses of the subnet.
        assert_eq!(pool.allocate(None).unwrap(), ip("10.5.7.0"));
        assert_eq!(pool.allocate(Some(ip("10.5.9.9"))).unwrap(), ip("10.5.9.9"));
        let taken = pool.allocate(Some(ip("10.5.9.9"))).unwrap_err();
        assert_eq!(taken.message, "Address already in use");
        assert_eq!(taken.kind, types::ErrorKind::PermissionDenied);
        let gateway = pool.allocate(Some(ip("10.5.0.254"))).unwrap_err();
        assert_eq!(gateway.message, "Address already in use");
        let outside = pool.allocate(Some(ip("10.6.0.1"))).unwrap_err();
        assert!(outside.message.contains("no configured subnet"));
        assert_eq!(pool.allocate(None).unwrap(), ip("10.5.7.1"));
        assert!(!pool.reserve(ip("10.5.7.1")));
        assert!(pool.reserve(ip("10.5.7.3")));
    }

    #[test]
    fn macs() {
        assert_eq!(format_mac(&mac_of(ip("172.17.0.2"))), "02:42:ac:11:00:02");
        assert_eq!(
            parse_mac("02:42:ac:11:00:02").unwrap(),
            [2, 0x42, 0xac, 0x11, 0, 2]
        );
        assert!(parse_mac("02:42:ac:11:00").is_err());
        assert!(parse_mac("zz:42:ac:11:00:02").is_err());
    }
}
