//! Berth's container networking, below the engine: the engine decides which container gets
//! which network; this crate supplies the parts.
//!
//! - [`ipam`]: validating subnets, picking free ones from the address pools, handing out
//!   addresses (pure).
//! - [`netns`]: network namespaces bound on files, and running code inside one.
//! - [`link`]: bridges, veth pairs, macvlan links, addresses and routes over rtnetlink.
//! - [`firewall`]: NAT, published ports and isolation in the daemon's own nftables table,
//!   described as data and applied atomically.
//! - [`ports`]: host ports of published container ports.
//! - [`dns`]: the embedded DNS server of user-defined networks.
//! - [`sysctl`]: forwarding and route_localnet.

pub mod dns;
pub mod error;
pub mod firewall;
pub mod ipam;
pub mod link;
pub mod netns;
pub mod ports;
pub mod sysctl;

pub use error::{Error, Result};
