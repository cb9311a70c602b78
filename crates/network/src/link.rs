//! Links, addresses and routes over rtnetlink: bridges, veth pairs whose container end is
//! created directly inside the container's namespace (IFLA_NET_NS_FD on the peer), macvlan
//! links, and the container side's configuration (address, up, default route). No `ip`
//! process is run.
//!
//! A [`Netlink`] is one rtnetlink connection, bound to the namespace its socket was created in:
//! [`Netlink::current`] for the daemon's own, [`Netlink::from_socket`] for a socket that a
//! namespace thread (see [`crate::netns`]) opened inside a container's namespace.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};

use futures_util::TryStreamExt;
use ipnet::Ipv4Net;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkMessage, MacVlanMode,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::{
    Handle, LinkBridge, LinkBridgePort, LinkMacVlan, LinkMessageBuilder, LinkUnspec, LinkVeth,
    RouteMessageBuilder,
};

use crate::error::{Error, Result};

/// A netlink socket opened in the current thread's namespace, not yet bound to a runtime: what a
/// namespace thread returns to the daemon.
pub fn open_socket() -> Result<OwnedFd> {
    let socket = rtnetlink::sys::Socket::new(rtnetlink::sys::protocols::NETLINK_ROUTE)?;
    // SAFETY: into_raw_fd hands over the one owner of a valid descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(socket.into_raw_fd()) })
}

/// One rtnetlink connection (its task runs on the current tokio runtime until the last clone
/// of the handle is dropped).
#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

/// What a container's interface is given.
#[derive(Debug, Clone)]
pub struct InterfaceConfig {
    /// Name inside the container: eth0, eth1...
    pub name: String,
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    /// The default route's gateway (none: the interface gets no default route, as for the
    /// second network of a container, or an `--internal` one).
    pub gateway: Option<Ipv4Addr>,
}

impl Netlink {
    /// A connection in the daemon's own namespace.
    pub fn current() -> Result<Self> {
        Self::from_socket(open_socket()?)
    }

    /// A connection over a socket opened elsewhere (in a container's namespace).
    pub fn from_socket(socket: OwnedFd) -> Result<Self> {
        // SAFETY: the descriptor is a netlink socket this function now owns.
        let socket = unsafe { rtnetlink::sys::TokioSocket::from_raw_fd(socket.into_raw_fd()) };
        let (connection, handle, _) = rtnetlink::from_socket(socket);
        tokio::spawn(connection);
        Ok(Self { handle })
    }

    /// The index of a link by name.
    pub async fn index_of(&self, name: &str) -> Result<Option<u32>> {
        match self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute()
            .try_next()
            .await
        {
            Ok(Some(link)) => Ok(Some(link.header.index)),
            Ok(None) => Ok(None),
            Err(error) => {
                let error = Error::from(error);
                if error.kind == types::ErrorKind::NotFound {
                    Ok(None)
                } else {
                    Err(error)
                }
            }
        }
    }

    /// The names of every link (for stale-state scans).
    pub async fn link_names(&self) -> Result<Vec<(u32, String, Option<u32>)>> {
        let mut links = self.handle.link().get().execute();
        let mut names = Vec::new();
        while let Some(link) = links.try_next().await? {
            let name = link_name(&link).unwrap_or_default();
            let controller = link.attributes.iter().find_map(|a| match a {
                LinkAttribute::Controller(index) => Some(*index),
                _ => None,
            });
            names.push((link.header.index, name, controller));
        }
        Ok(names)
    }

    /// The IPv4 addresses (with prefix) of a link.
    pub async fn addresses(&self, index: u32) -> Result<Vec<Ipv4Net>> {
        let mut stream = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        let mut out = Vec::new();
        while let Some(message) = stream.try_next().await? {
            if message.header.index != index {
                continue;
            }
            for attribute in &message.attributes {
                if let AddressAttribute::Address(IpAddr::V4(address)) = attribute
                    && let Ok(net) = Ipv4Net::new(*address, message.header.prefix_len)
                {
                    out.push(net);
                }
            }
        }
        Ok(out)
    }

    /// The destinations of the IPv4 routes of the main table, the default route excepted: what
    /// a new network's subnet must not overlap (dockerd's CheckRouteOverlaps).
    pub async fn routed_subnets(&self) -> Result<Vec<Ipv4Net>> {
        let mut stream = self
            .handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute();
        let mut out = Vec::new();
        while let Some(route) = stream.try_next().await? {
            let prefix = route.header.destination_prefix_length;
            if prefix == 0 || route.header.table != 254 {
                continue;
            }
            for attribute in &route.attributes {
                if let RouteAttribute::Destination(RouteAddress::Inet(address)) = attribute
                    && let Ok(net) = Ipv4Net::new(*address, prefix)
                {
                    out.push(net.trunc());
                }
            }
        }
        Ok(out)
    }

    /// Creates a bridge (if missing) with `gateway` as its address, MTU `mtu`, up; returns its
    /// index and whether this call created it.
    pub async fn ensure_bridge(
        &self,
        name: &str,
        gateway: Ipv4Net,
        mtu: Option<u32>,
    ) -> Result<(u32, bool)> {
        let mut created = false;
        let index = match self.index_of(name).await? {
            Some(index) => index,
            None => {
                let mut builder = LinkBridge::new(name);
                if let Some(mtu) = mtu {
                    builder = builder.mtu(mtu);
                }
                self.create(builder.build(), format!("create bridge {name}"))
                    .await?;
                created = true;
                self.index_of(name)
                    .await?
                    .ok_or_else(|| Error::internal(format!("bridge {name} vanished")))?
            }
        };
        let outcome = async {
            if !self.addresses(index).await?.contains(&gateway) {
                self.handle
                    .address()
                    .add(index, IpAddr::V4(gateway.addr()), gateway.prefix_len())
                    .execute()
                    .await
                    .map_err(|e| Error::from(e).context(format!("address of {name}")))?;
            }
            self.set_up(index).await
        }
        .await;
        if let Err(error) = outcome {
            if created {
                let _ = self.delete(index).await;
            }
            return Err(error);
        }
        Ok((index, created))
    }

    /// Brings a link up.
    pub async fn set_up(&self, index: u32) -> Result<()> {
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await?;
        Ok(())
    }

    /// Deletes a link (a veth's peer goes with it).
    pub async fn delete(&self, index: u32) -> Result<()> {
        self.handle.link().del(index).execute().await?;
        Ok(())
    }

    /// Deletes a link by name; absent is fine.
    pub async fn delete_by_name(&self, name: &str) -> Result<()> {
        if let Some(index) = self.index_of(name).await? {
            match self.delete(index).await {
                Err(error) if error.kind != types::ErrorKind::NotFound => return Err(error),
                _ => {}
            }
        }
        Ok(())
    }

    /// Creates a veth pair: `host_name` here, enslaved to `bridge` (when given) and up;
    /// `peer_name` inside the namespace `peer_namespace`, with MAC `mac`. Returns the host
    /// end's index.
    pub async fn add_veth(
        &self,
        host_name: &str,
        bridge: Option<u32>,
        peer_name: &str,
        peer_namespace: &OwnedFd,
        mac: [u8; 6],
        mtu: Option<u32>,
    ) -> Result<u32> {
        let mut peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(peer_name.to_string())
            .setns_by_fd(peer_namespace.as_raw_fd())
            .address(mac.to_vec());
        if let Some(mtu) = mtu {
            peer = peer.mtu(mtu);
        }
        let mut host = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(host_name.to_string())
            .up()
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())));
        if let Some(mtu) = mtu {
            host = host.mtu(mtu);
        }
        if let Some(bridge) = bridge {
            host = host.controller(bridge);
        }
        self.create(host.build(), format!("create veth {host_name}"))
            .await?;
        let index = self
            .index_of(host_name)
            .await?
            .ok_or_else(|| Error::internal(format!("veth {host_name} vanished")))?;
        if bridge.is_some() {
            // Hairpin mode: a container reaching its own published port through the host's
            // address (DNAT on the bridged path under br_netfilter) gets the packet back out of
            // the port it came in by, as dockerd sets it without a userland proxy.
            let outcome = self
                .handle
                .link()
                .set_port(LinkBridgePort::new(index).hairpin(true).build())
                .execute()
                .await;
            if let Err(error) = outcome {
                let _ = self.delete(index).await;
                return Err(Error::from(error).context("hairpin mode"));
            }
        }
        Ok(index)
    }

    /// Creates a macvlan link (bridge mode) on `parent`, directly inside `namespace` as `name`.
    pub async fn add_macvlan(
        &self,
        name: &str,
        parent: u32,
        namespace: &OwnedFd,
        mac: [u8; 6],
        mtu: Option<u32>,
    ) -> Result<()> {
        let mut builder = LinkMacVlan::new(name, parent, MacVlanMode::Bridge)
            .setns_by_fd(namespace.as_raw_fd())
            .address(mac.to_vec());
        if let Some(mtu) = mtu {
            builder = builder.mtu(mtu);
        }
        self.create(builder.build(), format!("create macvlan on link {parent}"))
            .await
    }

    /// Adds a link; an error says what was being made.
    async fn create(&self, link: LinkMessage, what: String) -> Result<()> {
        self.handle
            .link()
            .add(link)
            .execute()
            .await
            .map_err(|e| Error::from(e).context(what))
    }

    /// Inside a container's namespace: loopback up.
    pub async fn loopback_up(&self) -> Result<()> {
        self.set_up(1).await
    }

    /// Inside a container's namespace: the interface gets its address, comes up, and (with a
    /// gateway) the default route.
    pub async fn configure(&self, interface: &InterfaceConfig) -> Result<()> {
        let index = self
            .index_of(&interface.name)
            .await?
            .ok_or_else(|| Error::internal(format!("no {} in the container", interface.name)))?;
        self.handle
            .address()
            .add(index, IpAddr::V4(interface.address), interface.prefix_len)
            .execute()
            .await
            .map_err(|e| Error::from(e).context("container address"))?;
        self.set_up(index).await?;
        if let Some(gateway) = interface.gateway {
            self.handle
                .route()
                .add(
                    RouteMessageBuilder::<Ipv4Addr>::new()
                        .gateway(gateway)
                        .output_interface(index)
                        .build(),
                )
                .execute()
                .await
                .map_err(|e| Error::from(e).context("container default route"))?;
        }
        Ok(())
    }
}

fn link_name(link: &LinkMessage) -> Option<String> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(name) => Some(name.clone()),
        _ => None,
    })
}
