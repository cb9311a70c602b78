//! A container's network: its endpoints (configured at create and by `network connect`), and,
//! while it runs, its namespace, links, addresses, published ports and DNS names; its
//! /etc/hostname, /etc/hosts and /etc/resolv.conf.
//!
//! Start ([`Engine::sandbox_up`]) is built to be cheap, because every `run` pays it: the engine
//! creates the namespace itself (one short thread: unshare, bind-mount on
//! `<exec-root>/netns/<id>`, open a netlink socket and the DNS sockets inside), makes the veth
//! with its container end directly inside the namespace, configures it over that socket, and
//! hands the runtime the namespace's path to join. Only a container with published ports runs
//! `nft` (one transaction). Stop ([`Engine::sandbox_down`]) releases addresses and ports at once
//! and leaves the deletion of the host end of the veth to a background task.
//!
//! Everything a running endpoint holds is written in the container's record, so a restarted
//! daemon takes its addresses, ports and names back ([`Engine::sandbox_restore`]).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use bollard_stubs::models::{
    ContainerConfig, EndpointIpamConfig, EndpointSettings, HostConfig, NetworkSettings,
    NetworkingConfig, PortBinding, PortSummary as Port, PortSummaryTypeEnum as PortTypeEnum,
};
use network::firewall::{PortForward, Protocol};
use network::link::{InterfaceConfig, Netlink};
use network::ports::{HostPort, PortRequest};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::networks::{NetworkRecord, Networks};
use crate::record::ContainerRecord;
use crate::{Engine, EngineConfig};

/// What a container's record keeps of its network.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContainerNetwork {
    /// Attachments, the primary network first.
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    /// The namespace file while it runs on networks of its own.
    #[serde(default)]
    pub sandbox_key: Option<String>,
    /// Published ports while it runs.
    #[serde(default)]
    pub ports: Vec<PublishedPort>,
}

/// One attachment of a container to a network.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Endpoint {
    pub network_id: String,
    pub network_name: String,
    /// `--network-alias`.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `--ip`.
    #[serde(default)]
    pub requested_ip: Option<Ipv4Addr>,
    /// `--mac-address`.
    #[serde(default)]
    pub requested_mac: Option<String>,
    #[serde(default)]
    pub links: Vec<String>,
    #[serde(default)]
    pub driver_opts: HashMap<String, String>,
    /// The rest is set while the container runs.
    #[serde(default)]
    pub endpoint_id: String,
    #[serde(default)]
    pub address: Option<Ipv4Addr>,
    #[serde(default)]
    pub prefix_len: u8,
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    #[serde(default)]
    pub mac: Option<String>,
    /// eth0, eth1... inside the container.
    #[serde(default)]
    pub interface: String,
    /// The host end of a veth.
    #[serde(default)]
    pub host_interface: Option<String>,
}

impl Endpoint {
    fn clear_runtime(&mut self) {
        self.endpoint_id.clear();
        self.address = None;
        self.prefix_len = 0;
        self.gateway = None;
        self.mac = None;
        self.interface.clear();
        self.host_interface = None;
    }
}

/// One published port of a running container.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct PublishedPort {
    pub forward: PortForward,
    pub host: HostPort,
}

/// Where the runtime finds the container's network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Namespace {
    /// The host's (`--network host`).
    Host,
    /// A new, empty one made by the runtime (`--network none`).
    New,
    /// An existing one: the engine's namespace file, or another container's.
    Join(PathBuf),
}

/// The network mode of HostConfig, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Host,
    None,
    Container(String),
    Networks,
}

fn mode_of(host_config: &HostConfig) -> Mode {
    match host_config.network_mode.as_deref().unwrap_or("bridge") {
        "host" => Mode::Host,
        "none" => Mode::None,
        other => match other.strip_prefix("container:") {
            Some(target) => Mode::Container(target.to_string()),
            None => Mode::Networks,
        },
    }
}

fn random_hex(length: usize) -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()[..length].to_string()
}

fn net_error(error: network::Error) -> Error {
    Error::new(error.kind, error.message)
}

/// The published ports HostConfig asks for: PortBindings, and with `-P` every exposed port
/// without one (on an ephemeral host port).
fn port_requests(config: &ContainerConfig, host_config: &HostConfig) -> Result<Vec<PortRequest>> {
    let mut requests = Vec::new();
    let mut bound = Vec::new();
    let mut keys: Vec<(&String, &Option<Vec<PortBinding>>)> =
        host_config.port_bindings.iter().flatten().collect();
    keys.sort_by_key(|(key, _)| (*key).clone());
    for (key, bindings) in keys {
        let (container_port, protocol) =
            network::ports::parse_container_port(key).map_err(net_error)?;
        bound.push((container_port, protocol));
        let bindings = bindings.clone().unwrap_or_default();
        let bindings = if bindings.is_empty() {
            vec![PortBinding::default()]
        } else {
            bindings
        };
        for binding in bindings {
            let host_ip = match binding.host_ip.as_deref().unwrap_or("") {
                "" | "0.0.0.0" => None,
                // IPv6 publishing is not there yet; docker's CLI sends "::" beside "0.0.0.0".
                "::" => continue,
                text => Some(
                    text.parse::<Ipv4Addr>()
                        .map_err(|_| Error::invalid(format!("invalid host IP address: {text}")))?,
                ),
            };
            let host_ports =
                network::ports::parse_host_ports(binding.host_port.as_deref().unwrap_or(""))
                    .map_err(net_error)?;
            requests.push(PortRequest {
                protocol,
                container_port,
                host_ip,
                host_ports,
            });
        }
    }
    if host_config.publish_all_ports.unwrap_or(false) {
        let mut exposed: Vec<&String> = config.exposed_ports.iter().flatten().collect();
        exposed.sort();
        for key in exposed {
            let (container_port, protocol) =
                network::ports::parse_container_port(key).map_err(net_error)?;
            if !bound.contains(&(container_port, protocol)) {
                requests.push(PortRequest {
                    protocol,
                    container_port,
                    host_ip: None,
                    host_ports: (0, 0),
                });
            }
        }
    }
    Ok(requests)
}

/// The endpoint a network connection asks for (`--ip`, `--network-alias`, `--mac-address`,
/// links), checked against the network as dockerd checks it.
pub(crate) fn endpoint_from_settings(
    network: &NetworkRecord,
    settings: Option<&EndpointSettings>,
    record: &ContainerRecord,
) -> Result<Endpoint> {
    endpoint_for(network, settings, None, &record.host_config)
}

fn endpoint_for(
    network: &NetworkRecord,
    settings: Option<&EndpointSettings>,
    config_mac: Option<&str>,
    host_config: &HostConfig,
) -> Result<Endpoint> {
    let settings = settings.cloned().unwrap_or_default();
    let requested_ip = match settings
        .ipam_config
        .as_ref()
        .and_then(|i| i.ipv4_address.clone())
        .filter(|a| !a.is_empty())
    {
        Some(text) => Some(
            text.parse::<Ipv4Addr>()
                .map_err(|_| Error::invalid(format!("invalid IPv4 address: {text}")))?,
        ),
        None => None,
    };
    let aliases: Vec<String> = settings.aliases.clone().unwrap_or_default();
    let user_defined = !network.is_predefined();
    if requested_ip.is_some() && !user_defined {
        return Err(Error::invalid(
            "user specified IP address is supported on user defined networks only",
        ));
    }
    if !aliases.is_empty() && !user_defined {
        return Err(Error::invalid(
            "network-scoped alias is supported only for containers in user defined networks",
        ));
    }
    if let (Some(address), Some(subnet)) = (requested_ip, network.subnet) {
        if !subnet.contains(&address) {
            return Err(Error::invalid(format!(
                "invalid endpoint settings:\nno configured subnet or ip-range contain the IP address {address}"
            )));
        }
        if user_defined && !network.user_subnet {
            return Err(Error::invalid(
                "invalid endpoint settings:\nuser specified IP address is supported only when connecting to networks with user configured subnets",
            ));
        }
    }
    let requested_mac = settings
        .mac_address
        .clone()
        .filter(|m| !m.is_empty())
        .or_else(|| config_mac.filter(|m| !m.is_empty()).map(str::to_string));
    if let Some(mac) = &requested_mac {
        network::ipam::parse_mac(mac).map_err(net_error)?;
    }
    let _ = host_config;
    Ok(Endpoint {
        network_id: network.id.clone(),
        network_name: network.name.clone(),
        aliases,
        requested_ip,
        requested_mac,
        links: settings.links.clone().unwrap_or_default(),
        driver_opts: settings.driver_opts.clone().unwrap_or_default(),
        ..Default::default()
    })
}

/// Whether a container may be connected to a network now (dockerd's refusals).
pub(crate) fn check_connectable(record: &ContainerRecord, network: &NetworkRecord) -> Result<()> {
    let refusal = match mode_of(&record.host_config) {
        Mode::Host => {
            Some("container cannot be disconnected from host network or connected to host network")
        }
        Mode::None => Some(
            "container cannot be connected to multiple networks with one of the networks in private (none) mode",
        ),
        Mode::Container(_) => Some(
            "container sharing network namespace with another container or host cannot be connected to any other network",
        ),
        Mode::Networks => None,
    };
    if let Some(message) = refusal {
        return Err(Error::invalid(message));
    }
    if network.driver == "host" || network.driver == "null" {
        return Err(Error::invalid(
            "container cannot be disconnected from host network or connected to host network",
        ));
    }
    if record
        .network
        .endpoints
        .iter()
        .any(|e| e.network_id == network.id)
    {
        return Err(Error::new(
            types::ErrorKind::PermissionDenied,
            format!(
                "endpoint with name {} already exists in network {}",
                record.name, network.name
            ),
        ));
    }
    Ok(())
}

impl Engine {
    /// At create: resolves the network mode and the endpoints, and checks what dockerd checks.
    pub(crate) fn prepare_network(
        &self,
        config: &ContainerConfig,
        host_config: &mut HostConfig,
        networking: Option<&NetworkingConfig>,
    ) -> Result<ContainerNetwork> {
        let asked = host_config.network_mode.clone().unwrap_or_default();
        let mode = Some(asked.clone())
            .filter(|m| !m.is_empty() && m != "default")
            .unwrap_or_else(|| self.default_network().to_string());
        host_config.network_mode = Some(mode.clone());
        let endpoints_config = networking
            .and_then(|n| n.endpoints_config.clone())
            .unwrap_or_default();
        let has_dns = host_config.dns.as_ref().is_some_and(|d| !d.is_empty());
        let has_hosts = host_config
            .extra_hosts
            .as_ref()
            .is_some_and(|h| !h.is_empty());
        let has_ports = host_config
            .port_bindings
            .as_ref()
            .is_some_and(|p| !p.is_empty())
            || host_config.publish_all_ports.unwrap_or(false);
        let mut network = ContainerNetwork::default();
        match mode_of(host_config) {
            Mode::Container(target) => {
                self.find(&target)?;
                if config.hostname.as_deref().is_some_and(|h| !h.is_empty()) {
                    return Err(Error::invalid(
                        "conflicting options: hostname and the network mode",
                    ));
                }
                if has_dns {
                    return Err(Error::invalid(
                        "conflicting options: dns and the network mode",
                    ));
                }
                if has_hosts {
                    return Err(Error::invalid(
                        "conflicting options: custom host-to-IP mapping and the network mode",
                    ));
                }
                if has_ports {
                    return Err(Error::invalid(
                        "conflicting options: port publishing and the container type network mode",
                    ));
                }
            }
            Mode::Host | Mode::None => {
                let record = self.networks.find(&mode)?;
                network.endpoints.push(Endpoint {
                    network_id: record.id.clone(),
                    network_name: record.name.clone(),
                    ..Default::default()
                });
            }
            Mode::Networks => {
                // As dockerd, a network that does not exist fails the start, not the create
                // (a 404 at create would make docker's CLI try to pull the image).
                let primary = match self.networks.find(&mode) {
                    Ok(primary) => primary,
                    Err(error) if error.kind == types::ErrorKind::NotFound => {
                        network.endpoints.push(Endpoint {
                            network_name: mode.clone(),
                            ..Default::default()
                        });
                        port_requests(config, host_config)?;
                        return Ok(network);
                    }
                    Err(error) => return Err(error),
                };
                let is_primary = |key: &str| {
                    key == mode || key == asked || key == primary.name || key == primary.id
                };
                let settings = endpoints_config
                    .get(&mode)
                    .or_else(|| endpoints_config.get(&asked))
                    .or_else(|| endpoints_config.get(&primary.name))
                    .or_else(|| endpoints_config.get(&primary.id));
                network
                    .endpoints
                    .push(endpoint_for(&primary, settings, None, host_config)?);
                // API 1.44+: more networks at create.
                let mut others: Vec<(&String, &EndpointSettings)> = endpoints_config
                    .iter()
                    .filter(|(key, _)| !is_primary(key))
                    .collect();
                others.sort_by_key(|(key, _)| (*key).clone());
                for (key, settings) in others {
                    let other = self.networks.find(key)?;
                    if other.driver == "host" || other.driver == "null" {
                        return Err(Error::invalid(
                            "container cannot be disconnected from host network or connected to host network",
                        ));
                    }
                    network.endpoints.push(endpoint_for(
                        &other,
                        Some(settings),
                        None,
                        host_config,
                    )?);
                }
            }
        }
        port_requests(config, host_config)?;
        for extra in host_config.extra_hosts.iter().flatten() {
            parse_extra_host(extra, None)?;
        }
        Ok(network)
    }

    /// At start: sets up the container's network; returns where its namespace is. On failure
    /// nothing is left (no namespace, link, address, port or rule).
    pub(crate) async fn sandbox_up(&self, record: &mut ContainerRecord) -> Result<Namespace> {
        match mode_of(&record.host_config) {
            Mode::Host => Ok(Namespace::Host),
            Mode::None => Ok(Namespace::New),
            Mode::Container(target) => {
                let entry = self.find(&target)?;
                let other = entry.record.lock().await;
                if !other.state.status.is_running() {
                    return Err(Error::conflict(format!(
                        "cannot join network namespace of a non running container: {}",
                        other.id
                    )));
                }
                let path = match &other.network.sandbox_key {
                    Some(path) => PathBuf::from(path),
                    None => PathBuf::from(format!("/proc/{}/ns/net", other.state.pid)),
                };
                Ok(Namespace::Join(path))
            }
            Mode::Networks => {
                let _change = self.networks.change.lock().await;
                match self.plumb(record).await {
                    Ok(path) => Ok(Namespace::Join(path)),
                    Err(error) => {
                        self.unplumb_container(record, true).await;
                        Err(error)
                    }
                }
            }
        }
    }

    fn netns_path(&self, id: &str) -> PathBuf {
        self.config.run_root.join("netns").join(&id[..12])
    }

    async fn plumb(&self, record: &mut ContainerRecord) -> Result<PathBuf> {
        let networks = &self.networks;
        let mut resolved: Vec<NetworkRecord> = Vec::new();
        for endpoint in &mut record.network.endpoints {
            let network = networks
                .find(&endpoint.network_id)
                .or_else(|_| networks.find(&endpoint.network_name))
                .map_err(|_| {
                    Error::not_found(format!("network {} not found", endpoint.network_name))
                })?;
            endpoint.network_id = network.id.clone();
            resolved.push(network);
        }
        if resolved.is_empty() {
            // Every network was disconnected: an isolated namespace, as dockerd leaves it.
            return self.plumb_empty(record).await;
        }
        // Addresses first: a refusal (address in use) costs nothing to undo.
        for (endpoint, network) in record.network.endpoints.iter_mut().zip(&resolved) {
            let address = networks.allocate(&network.id, endpoint.requested_ip)?;
            endpoint.address = Some(address);
            endpoint.prefix_len = network.subnet.map(|s| s.prefix_len()).unwrap_or(0);
            endpoint.gateway = network.gateway;
            endpoint.endpoint_id = format!("{}{}", random_hex(32), random_hex(32));
            endpoint.mac = Some(match &endpoint.requested_mac {
                Some(mac) => mac.to_ascii_lowercase(),
                None => network::ipam::format_mac(&network::ipam::mac_of(address)),
            });
        }
        let want_dns = resolved.iter().any(|n| n.has_dns());
        let path = self.netns_path(&record.id);
        record.network.sandbox_key = Some(path.display().to_string());
        let created = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || {
                network::netns::create(&path, move || {
                    network::netns::loopback_up()?;
                    // Containers on IPv4-only networks get no IPv6 on their interfaces, as
                    // dockerd leaves them: interfaces made from now on inherit `default`.
                    network::sysctl::disable_ipv6("default");
                    let socket = network::link::open_socket()?;
                    let dns = if want_dns {
                        Some(network::dns::bind_sockets()?)
                    } else {
                        None
                    };
                    Ok((socket, dns))
                })
            })
            .await
            .map_err(|e| Error::internal(e.to_string()))?
            .map_err(net_error)?
        };
        let (socket, dns_sockets) = created;
        let inside = Netlink::from_socket(socket).map_err(net_error)?;
        let namespace = network::netns::open(&path).map_err(net_error)?;
        let host = networks.netlink().await?;
        let mut gateway_done = false;
        for (index, (endpoint, network)) in record
            .network
            .endpoints
            .iter_mut()
            .zip(&resolved)
            .enumerate()
        {
            endpoint.interface = format!("eth{index}");
            self.add_link(host, &namespace, network, endpoint).await?;
            let gateway = if !gateway_done && !network.internal {
                gateway_done = true;
                network.gateway
            } else {
                None
            };
            inside
                .configure(&InterfaceConfig {
                    name: endpoint.interface.clone(),
                    address: endpoint.address.expect("allocated"),
                    prefix_len: endpoint.prefix_len,
                    gateway,
                })
                .await
                .map_err(net_error)?;
        }
        drop(inside);
        drop(namespace);
        self.publish_ports(record, &resolved).await?;
        if let Some(sockets) = dns_sockets {
            self.register_names(record, &resolved);
            let server = network::dns::serve(networks.dns.clone(), record.id.clone(), sockets)?;
            networks
                .dns_servers
                .lock()
                .expect("dns lock")
                .insert(record.id.clone(), server);
        }
        Ok(path)
    }

    /// A namespace with only loopback (a container disconnected from every network).
    async fn plumb_empty(&self, record: &mut ContainerRecord) -> Result<PathBuf> {
        let path = self.netns_path(&record.id);
        record.network.sandbox_key = Some(path.display().to_string());
        {
            let path = path.clone();
            tokio::task::spawn_blocking(move || {
                network::netns::create(&path, network::netns::loopback_up)
            })
            .await
            .map_err(|e| Error::internal(e.to_string()))?
            .map_err(net_error)?
        };
        let () = ();
        Ok(path)
    }

    /// The embedded DNS names of a container on its user-defined networks.
    fn register_names(&self, record: &ContainerRecord, resolved: &[NetworkRecord]) {
        let dns = &self.networks.dns;
        for (endpoint, network) in record.network.endpoints.iter().zip(resolved) {
            if network.has_dns()
                && let Some(address) = endpoint.address
            {
                dns.attach(
                    &record.id,
                    &network.id,
                    &network.name,
                    &dns_names(record, endpoint),
                    address,
                );
            }
        }
        let no_forward = resolved.iter().filter(|n| n.has_dns()).all(|n| n.internal);
        dns.set_upstream(
            &record.id,
            self.upstream_servers(&record.host_config),
            no_forward,
        );
    }

    /// Where the embedded server forwards what it does not know: `--dns`, else the daemon's
    /// `dns`, else the host's resolv.conf (loopback servers too: forwarding happens from the
    /// host's namespace).
    fn upstream_servers(&self, host_config: &HostConfig) -> Vec<SocketAddr> {
        let configured: Vec<String> = host_config
            .dns
            .clone()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| self.networks.options.dns.clone());
        let servers = if configured.is_empty() {
            host_resolv_conf().nameservers
        } else {
            configured
        };
        servers
            .iter()
            .filter_map(|s| s.parse::<std::net::IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, 53))
            .collect()
    }

    async fn publish_ports(
        &self,
        record: &mut ContainerRecord,
        resolved: &[NetworkRecord],
    ) -> Result<()> {
        let requests = port_requests(&record.config, &record.host_config)?;
        if requests.is_empty() {
            return Ok(());
        }
        // Ports are published for the endpoint that gives the container its way out.
        let Some((endpoint, _)) = record
            .network
            .endpoints
            .iter()
            .zip(resolved)
            .find(|(_, n)| n.driver == "bridge" && !n.internal)
        else {
            return Ok(());
        };
        let container_ip = endpoint.address.expect("allocated");
        for request in &requests {
            let host = self
                .networks
                .ports
                .allocate(request, (container_ip, request.container_port))
                .map_err(net_error)?;
            record.network.ports.push(PublishedPort {
                forward: PortForward {
                    protocol: request.protocol,
                    host_ip: host.host_ip,
                    host_port: host.port,
                    container_ip,
                    container_port: request.container_port,
                },
                host,
            });
        }
        let forwards: Vec<PortForward> = record.network.ports.iter().map(|p| p.forward).collect();
        if let Err(error) = self.networks.apply(|f| f.add_ports(&forwards)).await {
            // Nothing was added: forget them so the undo does not try to delete them.
            for port in record.network.ports.drain(..) {
                self.networks.ports.release(&port.host);
            }
            return Err(error);
        }
        Ok(())
    }

    /// Undoes [`Engine::sandbox_up`]: what the record says is held is released. `now` deletes
    /// the host ends of veths before returning (a failed start); otherwise in the background.
    pub(crate) async fn unplumb_container(&self, record: &mut ContainerRecord, now: bool) {
        let networks = &self.networks;
        let id = record.id.clone();
        networks.dns_servers.lock().expect("dns lock").remove(&id);
        networks.dns.remove(&id);
        if !record.network.ports.is_empty() {
            let forwards: Vec<PortForward> =
                record.network.ports.iter().map(|p| p.forward).collect();
            if let Err(error) = networks.apply(|f| f.remove_ports(&forwards)).await {
                tracing::warn!("withdraw published ports of {id}: {error}");
            }
            for port in record.network.ports.drain(..) {
                networks.ports.release(&port.host);
            }
        }
        let mut veths = Vec::new();
        for endpoint in &mut record.network.endpoints {
            if let Some(address) = endpoint.address {
                networks.release(&endpoint.network_id, address);
            }
            if let Some(veth) = endpoint.host_interface.take() {
                veths.push(veth);
            }
            endpoint.clear_runtime();
        }
        if let Some(path) = record.network.sandbox_key.take() {
            network::netns::remove(Path::new(&path));
        }
        if veths.is_empty() {
            return;
        }
        let Ok(host) = networks.netlink().await.cloned() else {
            return;
        };
        let delete = async move {
            for veth in veths {
                let _ = host.delete_by_name(&veth).await;
            }
        };
        if now {
            delete.await;
        } else {
            tokio::spawn(delete);
        }
    }

    /// At stop (and removal): releases the network of a container that no longer runs.
    pub(crate) async fn sandbox_down(&self, record: &mut ContainerRecord) {
        if mode_of(&record.host_config) != Mode::Networks {
            return;
        }
        let _change = self.networks.change.lock().await;
        self.unplumb_container(record, false).await;
    }

    /// At daemon start, for a container whose shim still runs: takes its addresses and host
    /// ports back, and serves its DNS names again (new sockets in its namespace).
    pub(crate) async fn sandbox_restore(&self, record: &ContainerRecord) {
        let networks = &self.networks;
        let mut resolved = Vec::new();
        for endpoint in &record.network.endpoints {
            match networks.find(&endpoint.network_id) {
                Ok(network) => {
                    if let Some(address) = endpoint.address {
                        networks.reserve(&network.id, address);
                    }
                    resolved.push(network);
                }
                Err(_) => resolved.push(NetworkRecord {
                    id: endpoint.network_id.clone(),
                    name: endpoint.network_name.clone(),
                    driver: "null".into(),
                    ..NetworkRecord::bare("null")
                }),
            }
        }
        for port in &record.network.ports {
            networks.ports.restore(port.host);
        }
        let Some(path) = record.network.sandbox_key.clone() else {
            return;
        };
        if !resolved.iter().any(|n| n.has_dns()) {
            return;
        }
        let sockets = tokio::task::spawn_blocking(move || {
            network::netns::enter(Path::new(&path), network::dns::bind_sockets)
        })
        .await;
        match sockets {
            Ok(Ok(sockets)) => {
                self.register_names(record, &resolved);
                match network::dns::serve(networks.dns.clone(), record.id.clone(), sockets) {
                    Ok(server) => {
                        networks
                            .dns_servers
                            .lock()
                            .expect("dns lock")
                            .insert(record.id.clone(), server);
                    }
                    Err(error) => tracing::warn!("dns of {}: {error}", record.id),
                }
            }
            Ok(Err(error)) => tracing::warn!("dns of {}: {error}", record.id),
            Err(error) => tracing::warn!("dns of {}: {error}", record.id),
        }
    }

    /// `network connect` of a running container: a new interface in its namespace.
    pub(crate) async fn attach_live(
        &self,
        record: &mut ContainerRecord,
        mut endpoint: Endpoint,
    ) -> Result<()> {
        let Some(path) = record.network.sandbox_key.clone() else {
            return Err(Error::invalid(
                "container sharing network namespace with another container or host cannot be connected to any other network",
            ));
        };
        let network = self.networks.find(&endpoint.network_id)?;
        let address = self.networks.allocate(&network.id, endpoint.requested_ip)?;
        endpoint.address = Some(address);
        endpoint.prefix_len = network.subnet.map(|s| s.prefix_len()).unwrap_or(0);
        endpoint.gateway = network.gateway;
        endpoint.endpoint_id = format!("{}{}", random_hex(32), random_hex(32));
        endpoint.mac = Some(match &endpoint.requested_mac {
            Some(mac) => mac.to_ascii_lowercase(),
            None => network::ipam::format_mac(&network::ipam::mac_of(address)),
        });
        let used: Vec<String> = record
            .network
            .endpoints
            .iter()
            .map(|e| e.interface.clone())
            .collect();
        endpoint.interface = (0..)
            .map(|i| format!("eth{i}"))
            .find(|name| !used.contains(name))
            .expect("a free name");
        let outcome = self
            .attach_live_plumb(record, &path, &network, &mut endpoint)
            .await;
        if let Err(error) = outcome {
            self.networks.release(&network.id, address);
            if let Some(veth) = endpoint.host_interface.take()
                && let Ok(host) = self.networks.netlink().await
            {
                let _ = host.delete_by_name(&veth).await;
            }
            return Err(error);
        }
        record.network.endpoints.push(endpoint);
        if network.has_dns() {
            let resolved: Vec<NetworkRecord> = record
                .network
                .endpoints
                .iter()
                .map(|e| {
                    self.networks
                        .find(&e.network_id)
                        .unwrap_or_else(|_| NetworkRecord::bare("null"))
                })
                .collect();
            self.register_names(record, &resolved);
            let serving = self
                .networks
                .dns_servers
                .lock()
                .expect("dns lock")
                .contains_key(&record.id);
            if !serving {
                let sockets = tokio::task::spawn_blocking(move || {
                    network::netns::enter(Path::new(&path), network::dns::bind_sockets)
                })
                .await
                .map_err(|e| Error::internal(e.to_string()))?
                .map_err(net_error)?;
                let server =
                    network::dns::serve(self.networks.dns.clone(), record.id.clone(), sockets)?;
                self.networks
                    .dns_servers
                    .lock()
                    .expect("dns lock")
                    .insert(record.id.clone(), server);
                // As dockerd rebuilds it when the embedded resolver starts: the container now
                // asks 127.0.0.11 (the file is rewritten in place, the bind mount follows).
                let resolv = resolv_conf(
                    &host_resolv_conf(),
                    &record.host_config,
                    &self.networks.options,
                    true,
                );
                let path = self
                    .config
                    .containers_root()
                    .join(&record.id)
                    .join("resolv.conf");
                std::fs::write(path, resolv)?;
            }
        }
        let _ = rewrite_hosts(&self.config, record, &self.networks);
        Ok(())
    }

    /// Makes the endpoint's interface (named `endpoint.interface`) in the container's
    /// namespace: a veth pair with its host end on the bridge, or a macvlan on the parent.
    async fn add_link(
        &self,
        host: &Netlink,
        namespace: &std::os::fd::OwnedFd,
        network: &NetworkRecord,
        endpoint: &mut Endpoint,
    ) -> Result<()> {
        let mac =
            network::ipam::parse_mac(endpoint.mac.as_deref().unwrap_or("")).map_err(net_error)?;
        let mtu = network.mtu.or(self.networks.options.mtu);
        let link = host.index_of(&network.interface).await.map_err(net_error)?;
        match network.driver.as_str() {
            "bridge" => {
                let bridge = link.ok_or_else(|| {
                    Error::internal(format!("bridge {} is missing", network.interface))
                })?;
                let host_name = format!("veth{}", random_hex(7));
                host.add_veth(
                    &host_name,
                    Some(bridge),
                    &endpoint.interface,
                    namespace,
                    mac,
                    mtu,
                )
                .await
                .map_err(net_error)?;
                endpoint.host_interface = Some(host_name);
            }
            "macvlan" => {
                let parent = link.ok_or_else(|| {
                    Error::invalid(format!(
                        "-o parent interface was not found on the host: {}",
                        network.interface
                    ))
                })?;
                host.add_macvlan(&endpoint.interface, parent, namespace, mac, mtu)
                    .await
                    .map_err(net_error)?;
            }
            other => return Err(Error::internal(format!("no plumbing for driver {other}"))),
        }
        Ok(())
    }

    async fn attach_live_plumb(
        &self,
        record: &ContainerRecord,
        path: &str,
        network: &NetworkRecord,
        endpoint: &mut Endpoint,
    ) -> Result<()> {
        let host = self.networks.netlink().await?;
        let namespace = network::netns::open(Path::new(path)).map_err(net_error)?;
        self.add_link(host, &namespace, network, endpoint).await?;
        let path = PathBuf::from(path);
        let socket = tokio::task::spawn_blocking(move || {
            network::netns::enter(&path, network::link::open_socket)
        })
        .await
        .map_err(|e| Error::internal(e.to_string()))?
        .map_err(net_error)?;
        let inside = Netlink::from_socket(socket).map_err(net_error)?;
        // A container that had no way out gets this network's.
        let has_gateway = record.network.endpoints.iter().any(|e| {
            e.gateway.is_some() && self.networks.find(&e.network_id).is_ok_and(|n| !n.internal)
        });
        inside
            .configure(&InterfaceConfig {
                name: endpoint.interface.clone(),
                address: endpoint.address.expect("allocated"),
                prefix_len: endpoint.prefix_len,
                gateway: (!has_gateway && !network.internal)
                    .then_some(network.gateway)
                    .flatten(),
            })
            .await
            .map_err(net_error)
    }

    /// `network disconnect` of a running container: its interface and address go.
    pub(crate) async fn detach_endpoint(&self, container: &str, endpoint: &Endpoint) {
        self.networks.dns.detach(container, &endpoint.network_id);
        if let Some(address) = endpoint.address {
            self.networks.release(&endpoint.network_id, address);
        }
        if let Some(veth) = &endpoint.host_interface
            && let Ok(host) = self.networks.netlink().await
        {
            let _ = host.delete_by_name(veth).await;
        }
        // A macvlan link lives in the container's namespace only: delete it there.
        if endpoint.host_interface.is_none()
            && !endpoint.interface.is_empty()
            && let Some(path) = self.netns_path_of(container)
        {
            let name = endpoint.interface.clone();
            let socket = tokio::task::spawn_blocking(move || {
                network::netns::enter(&path, network::link::open_socket)
            })
            .await;
            if let Ok(Ok(socket)) = socket
                && let Ok(inside) = Netlink::from_socket(socket)
            {
                let _ = inside.delete_by_name(&name).await;
            }
        }
    }

    /// The hostname of the container whose network a `container:X` container joins.
    pub(crate) async fn joined_hostname(&self, record: &ContainerRecord) -> Option<String> {
        let Mode::Container(target) = mode_of(&record.host_config) else {
            return None;
        };
        let entry = self.find(&target).ok()?;
        let other = entry.record.lock().await;
        Some(
            other
                .config
                .hostname
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| other.id[..12].to_string()),
        )
    }

    fn netns_path_of(&self, container: &str) -> Option<PathBuf> {
        let path = self.netns_path(container);
        network::netns::is_bound(&path).then_some(path)
    }

    /// Namespace files of containers that no longer run (a crash of a previous daemon).
    pub(crate) async fn remove_stale_namespaces(&self, running: &[String]) {
        let dir = self.config.run_root.join("netns");
        for path in network::netns::list(&dir) {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !running.iter().any(|id| id.starts_with(&name)) {
                tracing::info!("removing stale network namespace {}", path.display());
                network::netns::remove(&path);
            }
        }
    }

    /// Every published port of the running containers (a firewall rebuild).
    pub(crate) async fn running_ports(&self) -> (Vec<PortForward>, Vec<String>) {
        let mut ports = Vec::new();
        let mut running = Vec::new();
        for entry in self.entries() {
            let record = entry.record.lock().await;
            if record.state.status.is_running() {
                running.push(record.id.clone());
                ports.extend(record.network.ports.iter().map(|p| p.forward));
            }
        }
        (ports, running)
    }
}

/// A container's names on a user-defined network: its name, its aliases and its short id.
fn dns_names(record: &ContainerRecord, endpoint: &Endpoint) -> Vec<String> {
    let mut names = vec![record.name.clone()];
    for alias in &endpoint.aliases {
        if !names.contains(alias) {
            names.push(alias.clone());
        }
    }
    let short = record.id[..12].to_string();
    if !names.contains(&short) {
        names.push(short);
    }
    if let Some(hostname) = record.config.hostname.clone().filter(|h| !h.is_empty())
        && !names.contains(&hostname)
        && hostname != record.id[..12]
    {
        // dockerd answers for the hostname only through the aliases; not added.
    }
    names
}

/// The host's resolv.conf, parsed.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct ResolvConf {
    pub nameservers: Vec<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

pub(crate) fn parse_resolv_conf(text: &str) -> ResolvConf {
    let mut parsed = ResolvConf::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => parsed.nameservers.extend(words.next().map(str::to_string)),
            Some("search") | Some("domain") => {
                parsed.search = words.map(str::to_string).collect();
            }
            Some("options") => parsed.options.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    parsed
}

fn host_resolv_conf() -> ResolvConf {
    parse_resolv_conf(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
}

fn is_loopback(server: &str) -> bool {
    server
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// A container's resolv.conf, as dockerd writes it: with the embedded server, `nameserver
/// 127.0.0.11` and `ndots:0`; otherwise `--dns` (or the daemon's, or the host's non-loopback
/// servers: the host's loopback is not the container's).
pub(crate) fn resolv_conf(
    host: &ResolvConf,
    host_config: &HostConfig,
    daemon: &crate::networks::NetworkOptions,
    embedded: bool,
) -> String {
    let pick = |given: &Option<Vec<String>>, daemon: &Vec<String>, host: &Vec<String>| {
        given
            .clone()
            .filter(|v| !v.is_empty())
            .or_else(|| (!daemon.is_empty()).then(|| daemon.clone()))
            .unwrap_or_else(|| host.clone())
    };
    let search = pick(&host_config.dns_search, &daemon.dns_search, &host.search);
    let mut options = pick(&host_config.dns_options, &daemon.dns_options, &host.options);
    let mut text = String::from("# Generated by Berth.\n");
    if embedded {
        text.push_str(&format!("nameserver {}\n", network::dns::ADDRESS));
        if !options.iter().any(|o| o.starts_with("ndots:")) {
            options.insert(0, "ndots:0".into());
        }
    } else {
        let servers = pick(&host_config.dns, &daemon.dns, &host.nameservers);
        for server in servers.iter().filter(|s| !is_loopback(s)) {
            text.push_str(&format!("nameserver {server}\n"));
        }
    }
    if !search.is_empty() && search != ["."] {
        text.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        text.push_str(&format!("options {}\n", options.join(" ")));
    }
    text
}

/// Parses an `--add-host` entry `name:address` (or `name=address`); `host-gateway` is the
/// daemon's host gateway address.
pub(crate) fn parse_extra_host(
    entry: &str,
    host_gateway: Option<Ipv4Addr>,
) -> Result<(String, String)> {
    let (name, address) = entry
        .split_once('=')
        .or_else(|| entry.split_once(':'))
        .ok_or_else(|| Error::invalid(format!("invalid additional host: {entry}")))?;
    if name.is_empty() {
        return Err(Error::invalid(format!("invalid additional host: {entry}")));
    }
    let address = address.trim_start_matches('[').trim_end_matches(']');
    if address == "host-gateway" {
        return Ok((
            name.to_string(),
            host_gateway
                .map(|g| g.to_string())
                .unwrap_or_else(|| "host-gateway".into()),
        ));
    }
    if address.parse::<std::net::IpAddr>().is_err() {
        return Err(Error::invalid(format!(
            "invalid IP address in add-host: \"{address}\""
        )));
    }
    Ok((name.to_string(), address.to_string()))
}

const HOSTS_BASE: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// /etc/hosts as dockerd writes it: localhost lines, `--add-host` entries, then the
/// container's own addresses with its hostname.
pub(crate) fn hosts_file(
    record: &ContainerRecord,
    hostname: &str,
    host_gateway: Option<Ipv4Addr>,
) -> Result<String> {
    let mut hosts = if mode_of(&record.host_config) == Mode::Host {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        HOSTS_BASE.to_string()
    };
    for extra in record.host_config.extra_hosts.iter().flatten() {
        let (name, address) = parse_extra_host(extra, host_gateway)?;
        hosts.push_str(&format!("{address}\t{name}\n"));
    }
    let names = match record
        .config
        .domainname
        .as_deref()
        .filter(|d| !d.is_empty())
    {
        Some(domain) => format!("{hostname}.{domain} {hostname}"),
        None => hostname.to_string(),
    };
    for endpoint in &record.network.endpoints {
        if let Some(address) = endpoint.address {
            hosts.push_str(&format!("{address}\t{names}\n"));
        }
    }
    Ok(hosts)
}

/// The address `host-gateway` stands for.
fn host_gateway(networks: &Networks) -> Option<Ipv4Addr> {
    networks
        .options
        .host_gateway_ip
        .or_else(|| networks.find("bridge").ok().and_then(|b| b.gateway))
}

/// Writes hostname, hosts and resolv.conf into the container's directory and returns them with
/// the destinations they are bind-mounted to. `--network container:X` uses X's files.
pub(crate) async fn write_etc_files(
    engine: &Engine,
    record: &ContainerRecord,
    hostname: &str,
) -> Result<Vec<(PathBuf, &'static str)>> {
    let config = &engine.config;
    if let Mode::Container(target) = mode_of(&record.host_config) {
        let entry = engine.find(&target)?;
        let other_id = entry.record.lock().await.id.clone();
        let dir = config.containers_root().join(other_id);
        return Ok(vec![
            (dir.join("hostname"), "/etc/hostname"),
            (dir.join("hosts"), "/etc/hosts"),
            (dir.join("resolv.conf"), "/etc/resolv.conf"),
        ]);
    }
    let dir = config.containers_root().join(&record.id);
    let host_network = mode_of(&record.host_config) == Mode::Host;
    let hostname = if host_network {
        nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        hostname.to_string()
    };
    let hostname_file = dir.join("hostname");
    let hosts_path = dir.join("hosts");
    let resolv_path = dir.join("resolv.conf");
    std::fs::write(&hostname_file, format!("{hostname}\n"))?;
    std::fs::write(
        &hosts_path,
        hosts_file(record, &hostname, host_gateway(&engine.networks))?,
    )?;
    let host = host_resolv_conf();
    let resolv = if host_network {
        std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
    } else {
        let embedded = record.network.endpoints.iter().any(|e| {
            engine
                .networks
                .find(&e.network_id)
                .is_ok_and(|n| n.has_dns())
        });
        resolv_conf(
            &host,
            &record.host_config,
            &engine.networks.options,
            embedded,
        )
    };
    std::fs::write(&resolv_path, resolv)?;
    Ok(vec![
        (hostname_file, "/etc/hostname"),
        (hosts_path, "/etc/hosts"),
        (resolv_path, "/etc/resolv.conf"),
    ])
}

/// Rewrites /etc/hosts of a running container in place (the bind mount follows the inode).
pub(crate) fn rewrite_hosts(
    config: &EngineConfig,
    record: &ContainerRecord,
    networks: &Networks,
) -> Result<()> {
    let hostname = record
        .config
        .hostname
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| record.id[..12].to_string());
    let text = hosts_file(record, &hostname, host_gateway(networks))?;
    std::fs::write(
        config.containers_root().join(&record.id).join("hosts"),
        text,
    )?;
    Ok(())
}

/// NetworkSettings of container inspect.
pub(crate) fn network_settings(record: &ContainerRecord) -> NetworkSettings {
    let running = record.state.status.is_running();
    let mut networks = HashMap::new();
    for endpoint in &record.network.endpoints {
        let live = running && endpoint.address.is_some();
        let dns_names = (!matches!(endpoint.network_name.as_str(), "bridge" | "host" | "none"))
            .then(|| dns_names(record, endpoint));
        networks.insert(
            endpoint.network_name.clone(),
            EndpointSettings {
                ipam_config: endpoint.requested_ip.map(|ip| EndpointIpamConfig {
                    ipv4_address: Some(ip.to_string()),
                    ..Default::default()
                }),
                links: (!endpoint.links.is_empty()).then(|| endpoint.links.clone()),
                mac_address: Some(if live {
                    endpoint.mac.clone().unwrap_or_default()
                } else {
                    endpoint.requested_mac.clone().unwrap_or_default()
                }),
                aliases: (!endpoint.aliases.is_empty()).then(|| endpoint.aliases.clone()),
                driver_opts: (!endpoint.driver_opts.is_empty())
                    .then(|| endpoint.driver_opts.clone()),
                gw_priority: Some(0),
                network_id: Some(endpoint.network_id.clone()),
                endpoint_id: Some(if live {
                    endpoint.endpoint_id.clone()
                } else {
                    String::new()
                }),
                gateway: Some(if live {
                    endpoint.gateway.map(|g| g.to_string()).unwrap_or_default()
                } else {
                    String::new()
                }),
                ip_address: Some(if live {
                    endpoint.address.map(|a| a.to_string()).unwrap_or_default()
                } else {
                    String::new()
                }),
                ip_prefix_len: Some(if live {
                    i64::from(endpoint.prefix_len)
                } else {
                    0
                }),
                ipv6_gateway: Some(String::new()),
                global_ipv6_address: Some(String::new()),
                global_ipv6_prefix_len: Some(0),
                dns_names,
            },
        );
    }
    let mut ports: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    if running {
        for key in record.config.exposed_ports.iter().flatten() {
            ports.entry(normalize_port_key(key)).or_insert(None);
        }
        for port in &record.network.ports {
            let key = format!(
                "{}/{}",
                port.forward.container_port,
                port.forward.protocol.as_str()
            );
            ports
                .entry(key)
                .or_insert(None)
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: Some(
                        port.host
                            .host_ip
                            .map(|ip| ip.to_string())
                            .unwrap_or_else(|| "0.0.0.0".into()),
                    ),
                    host_port: Some(port.host.port.to_string()),
                });
        }
    }
    NetworkSettings {
        sandbox_id: record
            .network
            .sandbox_key
            .as_ref()
            .map(|_| record.id.clone())
            .or(Some(String::new())),
        sandbox_key: Some(
            running
                .then(|| record.network.sandbox_key.clone())
                .flatten()
                .unwrap_or_default(),
        ),
        ports: Some(ports),
        networks: Some(networks),
    }
}

fn normalize_port_key(key: &str) -> String {
    if key.contains('/') {
        key.to_string()
    } else {
        format!("{key}/tcp")
    }
}

/// Ports of `GET /containers/json`: published ones with their host side, exposed ones bare.
pub(crate) fn summary_ports(record: &ContainerRecord) -> Vec<Port> {
    let mut out = Vec::new();
    let kind = |protocol: Protocol| match protocol {
        Protocol::Tcp => PortTypeEnum::TCP,
        Protocol::Udp => PortTypeEnum::UDP,
        Protocol::Sctp => PortTypeEnum::SCTP,
    };
    let running = record.state.status.is_running();
    let mut published = Vec::new();
    if running {
        for port in &record.network.ports {
            published.push((port.forward.container_port, port.forward.protocol));
            out.push(Port {
                ip: Some(
                    port.host
                        .host_ip
                        .map(|ip| ip.to_string())
                        .unwrap_or_else(|| "0.0.0.0".into()),
                ),
                private_port: port.forward.container_port,
                public_port: Some(port.host.port),
                typ: Some(kind(port.forward.protocol)),
            });
        }
    }
    for key in record.config.exposed_ports.iter().flatten() {
        if let Ok((port, protocol)) = network::ports::parse_container_port(key)
            && !published.contains(&(port, protocol))
        {
            out.push(Port {
                ip: None,
                private_port: port,
                public_port: None,
                typ: Some(kind(protocol)),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_as_dockerd_writes_it() {
        let host = parse_resolv_conf(
            "nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch corp.example\noptions edns0\n",
        );
        assert_eq!(host.nameservers, ["127.0.0.53", "10.0.0.2"]);
        let options = crate::networks::NetworkOptions::default();
        let plain = resolv_conf(&host, &HostConfig::default(), &options, false);
        assert_eq!(
            plain,
            "# Generated by Berth.\nnameserver 10.0.0.2\nsearch corp.example\noptions edns0\n"
        );
        let embedded = resolv_conf(&host, &HostConfig::default(), &options, true);
        assert_eq!(
            embedded,
            "# Generated by Berth.\nnameserver 127.0.0.11\nsearch corp.example\noptions ndots:0 edns0\n"
        );
        let given = HostConfig {
            dns: Some(vec!["192.0.2.53".into()]),
            dns_search: Some(vec!["a.example".into(), "b.example".into()]),
            dns_options: Some(vec!["timeout:1".into()]),
            ..Default::default()
        };
        assert_eq!(
            resolv_conf(&host, &given, &options, false),
            "# Generated by Berth.\nnameserver 192.0.2.53\nsearch a.example b.example\noptions timeout:1\n"
        );
    }

    #[test]
    fn extra_hosts() {
        let gateway = Some(Ipv4Addr::new(172, 17, 0, 1));
        assert_eq!(
            parse_extra_host("db:10.1.2.3", gateway).unwrap(),
            ("db".into(), "10.1.2.3".into())
        );
        assert_eq!(
            parse_extra_host("host.docker.internal:host-gateway", gateway).unwrap(),
            ("host.docker.internal".into(), "172.17.0.1".into())
        );
        assert_eq!(
            parse_extra_host("v6=[::1]", gateway).unwrap(),
            ("v6".into(), "::1".into())
        );
        assert!(parse_extra_host("nocolon", gateway).is_err());
        assert!(parse_extra_host("x:notanip", gateway).is_err());
    }

    #[test]
    fn port_requests_follow_port_bindings_and_publish_all() {
        let config = ContainerConfig {
            exposed_ports: Some(vec!["80/tcp".into(), "53/udp".into(), "443/tcp".into()]),
            ..Default::default()
        };
        let host_config = HostConfig {
            port_bindings: Some(HashMap::from([(
                "80/tcp".to_string(),
                Some(vec![
                    PortBinding {
                        host_ip: Some("127.0.0.1".into()),
                        host_port: Some("8080".into()),
                    },
                    PortBinding {
                        host_ip: Some("::".into()),
                        host_port: Some("8080".into()),
                    },
                ]),
            )])),
            publish_all_ports: Some(true),
            ..Default::default()
        };
        let requests = port_requests(&config, &host_config).unwrap();
        assert_eq!(requests.len(), 3);
        assert_eq!(requests[0].host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(requests[0].host_ports, (8080, 8080));
        assert!(requests[1..].iter().all(|r| r.host_ports == (0, 0)));
        let bad = HostConfig {
            port_bindings: Some(HashMap::from([(
                "80/tcp".to_string(),
                Some(vec![PortBinding {
                    host_ip: Some("nope".into()),
                    host_port: Some("1".into()),
                }]),
            )])),
            ..Default::default()
        };
        assert!(port_requests(&ContainerConfig::default(), &bad).is_err());
    }
}
