//! Networks: the daemon's network records (the predefined `bridge`, `host` and `none`, and
//! user-defined `bridge` and `macvlan` networks), their address pools, the host side of their
//! plumbing (bridges, the nftables table) and the services of `/networks`.
//!
//! A record is one JSON file per network under `<data-root>/network/`, written atomically.
//! Address allocations are not stored here: every running container's record holds its
//! endpoints' addresses, and the pools are rebuilt from them when the daemon starts
//! (see [`crate::sandbox`]).

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use bollard_stubs::models::{
    EndpointResource, EndpointSettings, EventMessageTypeEnum, Ipam, IpamConfig,
    NetworkCreateRequest, NetworkInspect, NetworkSummary,
};
use ipnet::Ipv4Net;
use network::firewall::{BridgePolicy, Firewall};
use network::ipam::{AddressPool, PoolSpec};
use network::link::Netlink;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::record::now_rfc3339;
use crate::{Engine, Status};

/// The daemon's networking settings (dockerd's flags and daemon.json keys of the same names).
#[derive(Debug, Clone)]
pub struct NetworkOptions {
    /// Name of the default bridge (`bridge`, `-b`); "none" turns the default bridge off.
    pub bridge: String,
    /// The default bridge's address and prefix (`bip`), e.g. 172.17.0.1/16.
    pub bip: Option<Ipv4Net>,
    /// Where subnets of new networks come from (`default-address-pools`).
    pub pools: Vec<PoolSpec>,
    /// Manage NAT and published ports in nftables (`iptables`).
    pub firewall: bool,
    /// The nftables table of this daemon.
    pub table: String,
    /// Set net.ipv4.ip_forward (`ip-forward`).
    pub ip_forward: bool,
    /// Inter-container traffic on the default bridge (`icc`).
    pub icc: bool,
    /// MTU of the default bridge and its veths (`mtu`).
    pub mtu: Option<u32>,
    /// DNS servers, search domains and options for containers (`dns`, `dns-search`,
    /// `dns-opts`); empty: the host's /etc/resolv.conf.
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// The address of `host-gateway` in `--add-host` (`host-gateway-ip`); default: the
    /// default bridge's gateway.
    pub host_gateway_ip: Option<Ipv4Addr>,
}

impl Default for NetworkOptions {
    fn default() -> Self {
        Self {
            bridge: "berth0".into(),
            bip: None,
            pools: network::ipam::default_pools(),
            firewall: true,
            table: "berth".into(),
            ip_forward: true,
            icc: true,
            mtu: None,
            dns: Vec::new(),
            dns_search: Vec::new(),
            dns_options: Vec::new(),
            host_gateway_ip: None,
        }
    }
}

/// Drivers Berth has.
pub const DRIVERS: [&str; 4] = ["bridge", "macvlan", "host", "null"];

/// The option keys of the bridge driver (dockerd's names).
pub const OPTION_BRIDGE_NAME: &str = "com.docker.network.bridge.name";
pub const OPTION_ICC: &str = "com.docker.network.bridge.enable_icc";
pub const OPTION_MASQUERADE: &str = "com.docker.network.bridge.enable_ip_masquerade";
pub const OPTION_MTU: &str = "com.docker.network.driver.mtu";
pub const OPTION_DEFAULT_BRIDGE: &str = "com.docker.network.bridge.default_bridge";

/// One network, as persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    /// bridge, macvlan, host or null.
    pub driver: String,
    pub created: String,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    /// The subnet (none for host and null).
    pub subnet: Option<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
    #[serde(default)]
    pub ip_range: Option<Ipv4Net>,
    /// Whether the user gave the subnet (inspect then shows only what was given).
    #[serde(default)]
    pub user_subnet: bool,
    #[serde(default)]
    pub user_gateway: bool,
    /// Link name: the bridge, or a macvlan's parent.
    #[serde(default)]
    pub interface: String,
    #[serde(default)]
    pub mtu: Option<u32>,
    #[serde(default = "yes")]
    pub icc: bool,
    #[serde(default = "yes")]
    pub masquerade: bool,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: HashMap<String, String>,
    #[serde(default)]
    pub ipam_options: HashMap<String, String>,
}

fn yes() -> bool {
    true
}

impl NetworkRecord {
    /// One of the three networks every daemon has.
    pub fn is_predefined(&self) -> bool {
        matches!(self.name.as_str(), "bridge" | "host" | "none")
    }

    /// A network whose containers get the embedded DNS server (user-defined bridge or
    /// macvlan).
    pub fn has_dns(&self) -> bool {
        !self.is_predefined() && matches!(self.driver.as_str(), "bridge" | "macvlan")
    }

    /// A record with no address, link or option (host and none; a stand-in for a network
    /// that is gone), to be completed with struct update syntax.
    pub(crate) fn bare(driver: &str) -> Self {
        Self {
            id: String::new(),
            name: String::new(),
            driver: driver.into(),
            created: String::new(),
            internal: false,
            attachable: false,
            subnet: None,
            gateway: None,
            ip_range: None,
            user_subnet: false,
            user_gateway: false,
            interface: String::new(),
            mtu: None,
            icc: true,
            masquerade: true,
            options: BTreeMap::new(),
            labels: HashMap::new(),
            ipam_options: HashMap::new(),
        }
    }

    fn policy(&self) -> Option<BridgePolicy> {
        (self.driver == "bridge").then(|| BridgePolicy {
            bridge: self.interface.clone(),
            subnet: self.subnet.expect("bridge networks have a subnet"),
            internal: self.internal,
            icc: self.icc,
            masquerade: self.masquerade,
        })
    }

    fn prefix_len(&self) -> u8 {
        self.subnet.map(|s| s.prefix_len()).unwrap_or(0)
    }

    fn summary(&self) -> NetworkSummary {
        let config = self.subnet.map(|subnet| {
            let mut config = IpamConfig {
                subnet: Some(subnet.to_string()),
                ..Default::default()
            };
            if !self.user_subnet || self.user_gateway {
                config.gateway = self.gateway.map(|g| g.to_string());
            }
            config.ip_range = self.ip_range.map(|r| r.to_string());
            config
        });
        NetworkSummary {
            name: Some(self.name.clone()),
            id: Some(self.id.clone()),
            created: Some(self.created.clone()),
            scope: Some("local".into()),
            driver: Some(self.driver.clone()),
            enable_ipv4: Some(true),
            enable_ipv6: Some(false),
            ipam: Some(Ipam {
                driver: Some("default".into()),
                config: Some(config.into_iter().collect()),
                options: Some(self.ipam_options.clone()),
            }),
            internal: Some(self.internal),
            attachable: Some(self.attachable),
            ingress: Some(false),
            config_from: Some(bollard_stubs::models::ConfigReference {
                network: Some(String::new()),
            }),
            config_only: Some(false),
            options: Some(self.options.clone().into_iter().collect()),
            labels: Some(self.labels.clone()),
            peers: None,
        }
    }
}

/// The networks part of the engine.
pub(crate) struct Networks {
    pub(crate) options: NetworkOptions,
    root: PathBuf,
    records: RwLock<HashMap<String, NetworkRecord>>,
    pools: Mutex<HashMap<String, AddressPool>>,
    netlink: tokio::sync::OnceCell<Netlink>,
    firewall: Option<Firewall>,
    /// nft batches are applied one at a time, in order.
    firewall_lock: tokio::sync::Mutex<()>,
    pub(crate) ports: network::ports::PortAllocator,
    pub(crate) dns: Arc<network::dns::Registry>,
    pub(crate) dns_servers: Mutex<HashMap<String, network::dns::Server>>,
    /// Serializes changes to the set of networks and to container attachments.
    pub(crate) change: tokio::sync::Mutex<()>,
}

fn new_id() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn net_error(error: network::Error) -> Error {
    Error::new(error.kind, error.message)
}

impl Networks {
    pub(crate) fn new(options: NetworkOptions, data_root: &std::path::Path) -> Self {
        let firewall = options
            .firewall
            .then(|| Firewall::new(options.table.clone()));
        Self {
            options,
            root: data_root.join("network"),
            records: RwLock::new(HashMap::new()),
            pools: Mutex::new(HashMap::new()),
            netlink: tokio::sync::OnceCell::new(),
            firewall,
            firewall_lock: tokio::sync::Mutex::new(()),
            ports: network::ports::PortAllocator::new(),
            dns: network::dns::Registry::new(),
            dns_servers: Mutex::new(HashMap::new()),
            change: tokio::sync::Mutex::new(()),
        }
    }

    /// The daemon's netlink connection (host namespace).
    pub(crate) async fn netlink(&self) -> Result<&Netlink> {
        self.netlink
            .get_or_try_init(|| async { Netlink::current().map_err(net_error) })
            .await
    }

    /// Applies a firewall batch built by `build` (nothing when the firewall is off).
    pub(crate) async fn apply(
        &self,
        build: impl FnOnce(&Firewall) -> nftables::schema::Nftables<'static>,
    ) -> Result<()> {
        let Some(firewall) = &self.firewall else {
            return Ok(());
        };
        let batch = build(firewall);
        let _guard = self.firewall_lock.lock().await;
        tokio::task::spawn_blocking(move || network::firewall::apply(&batch))
            .await
            .map_err(|e| Error::internal(e.to_string()))?
            .map_err(net_error)
    }

    /// Refreshes the accept rules in iptables-nft's FORWARD chain (dockerd's policy DROP).
    async fn refresh_forward_accepts(&self) {
        let Some(firewall) = self.firewall.clone() else {
            return;
        };
        let bridges = self.bridge_interfaces();
        let _guard = self.firewall_lock.lock().await;
        let outcome = tokio::task::spawn_blocking(move || {
            forward_accepts(&firewall, &bridges).map(|batch| network::firewall::apply(&batch))
        })
        .await;
        if let Ok(Some(Err(error))) = outcome {
            tracing::warn!("accept rules in ip filter FORWARD: {error}");
        }
    }

    /// The interfaces of the bridge networks.
    fn bridge_interfaces(&self) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|n| n.driver == "bridge")
            .map(|n| n.interface)
            .collect()
    }

    pub(crate) fn all(&self) -> Vec<NetworkRecord> {
        self.records
            .read()
            .expect("networks lock")
            .values()
            .cloned()
            .collect()
    }

    /// Finds a network by full id, name, or unique id prefix (dockerd's order).
    pub(crate) fn find(&self, name_or_id: &str) -> Result<NetworkRecord> {
        let records = self.records.read().expect("networks lock");
        if let Some(record) = records.get(name_or_id) {
            return Ok(record.clone());
        }
        if let Some(record) = records.values().find(|r| r.name == name_or_id) {
            return Ok(record.clone());
        }
        if !name_or_id.is_empty() {
            let matches: Vec<&NetworkRecord> = records
                .values()
                .filter(|r| r.id.starts_with(name_or_id))
                .collect();
            match matches.as_slice() {
                [one] => return Ok((*one).clone()),
                [] => {}
                _ => {
                    return Err(Error::invalid(format!(
                        "network {name_or_id} is ambiguous ({} matches found based on ID prefix)",
                        matches.len()
                    )));
                }
            }
        }
        Err(Error::not_found(format!("network {name_or_id} not found")))
    }

    fn save(&self, record: &NetworkRecord) -> Result<()> {
        std::fs::create_dir_all(&self.root)?;
        let temporary = self.root.join(format!(".{}.tmp", record.id));
        {
            use std::io::Write;
            let mut file = std::fs::File::create(&temporary)?;
            file.write_all(&serde_json::to_vec_pretty(record)?)?;
            file.sync_all()?;
        }
        std::fs::rename(&temporary, self.root.join(format!("{}.json", record.id)))?;
        Ok(())
    }

    fn insert(&self, record: NetworkRecord) {
        if let Some(subnet) = record.subnet {
            self.pools.lock().expect("pools lock").insert(
                record.id.clone(),
                AddressPool::new(subnet, record.gateway, record.ip_range),
            );
        }
        self.records
            .write()
            .expect("networks lock")
            .insert(record.id.clone(), record);
    }

    fn forget(&self, id: &str) {
        self.records.write().expect("networks lock").remove(id);
        self.pools.lock().expect("pools lock").remove(id);
        let _ = std::fs::remove_file(self.root.join(format!("{id}.json")));
    }

    /// Hands an address of network `id` to an endpoint.
    pub(crate) fn allocate(&self, id: &str, requested: Option<Ipv4Addr>) -> Result<Ipv4Addr> {
        let mut pools = self.pools.lock().expect("pools lock");
        let pool = pools
            .get_mut(id)
            .ok_or_else(|| Error::internal(format!("network {id} has no address pool")))?;
        pool.allocate(requested).map_err(|error| {
            if error.message.starts_with("no available IPv4") {
                Error::new(error.kind, format!("{}: {id}", error.message))
            } else {
                net_error(error)
            }
        })
    }

    /// Marks an address taken (a running container found at daemon start).
    pub(crate) fn reserve(&self, id: &str, address: Ipv4Addr) {
        if let Some(pool) = self.pools.lock().expect("pools lock").get_mut(id) {
            pool.reserve(address);
        }
    }

    pub(crate) fn release(&self, id: &str, address: Ipv4Addr) {
        if let Some(pool) = self.pools.lock().expect("pools lock").get_mut(id) {
            pool.release(address);
        }
    }

    /// Subnets a new network's must not overlap: every network's, and (for picked ones) the
    /// host's routes.
    async fn taken_subnets(&self, with_routes: bool) -> Vec<Ipv4Net> {
        let mut taken: Vec<Ipv4Net> = self.all().iter().filter_map(|n| n.subnet).collect();
        if with_routes && let Ok(netlink) = self.netlink().await {
            taken.extend(netlink.routed_subnets().await.unwrap_or_default());
        }
        taken
    }

    /// Creates (or finds) a bridge network's link, and (`firewall`) its firewall elements (at
    /// daemon start the whole table is rebuilt later instead).
    async fn plumb_bridge(&self, record: &NetworkRecord, firewall: bool) -> Result<()> {
        let subnet = record.subnet.expect("bridge networks have a subnet");
        let gateway = record
            .gateway
            .unwrap_or_else(|| network::ipam::first_host(&subnet));
        let address = Ipv4Net::new(gateway, subnet.prefix_len())
            .map_err(|e| Error::internal(e.to_string()))?;
        let netlink = self.netlink().await?;
        let (_, created) = netlink
            .ensure_bridge(&record.interface, address, record.mtu)
            .await
            .map_err(net_error)?;
        let outcome = async {
            network::sysctl::enable_route_localnet(&record.interface).map_err(net_error)?;
            network::sysctl::disable_ipv6(&record.interface);
            if let Some(policy) = record.policy().filter(|_| firewall) {
                self.apply(|f| f.add_bridge(&policy)).await?;
            }
            Ok::<_, Error>(())
        }
        .await;
        if let Err(error) = outcome {
            if created {
                let _ = netlink.delete_by_name(&record.interface).await;
            }
            return Err(error);
        }
        Ok(())
    }

    /// Loads the records and sets up the default bridge and every bridge network's link; the
    /// firewall table is rebuilt later, once the running containers are known.
    pub(crate) async fn open(&self) -> Result<()> {
        std::fs::create_dir_all(&self.root)?;
        for entry in std::fs::read_dir(&self.root)?.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            match std::fs::read(&path)
                .map_err(Error::from)
                .and_then(|bytes| Ok(serde_json::from_slice::<NetworkRecord>(&bytes)?))
            {
                Ok(record) => self.insert(record),
                Err(error) => tracing::warn!("skipping network {}: {error}", path.display()),
            }
        }
        for (name, driver) in [("host", "host"), ("none", "null")] {
            if self.find(name).is_err() {
                let record = NetworkRecord {
                    id: new_id(),
                    name: name.into(),
                    created: now_rfc3339(),
                    ..NetworkRecord::bare(driver)
                };
                self.save(&record)?;
                self.insert(record);
            }
        }
        if self.options.ip_forward
            && let Err(error) = network::sysctl::enable_forwarding()
        {
            tracing::warn!("{error}");
        }
        self.open_default_bridge().await?;
        for record in self.all() {
            if record.driver == "bridge"
                && record.name != "bridge"
                && let Err(error) = self.plumb_bridge(&record, false).await
            {
                tracing::warn!("network {}: {error}", record.name);
            }
        }
        Ok(())
    }

    async fn open_default_bridge(&self) -> Result<()> {
        let existing = self.find("bridge").ok();
        if self.options.bridge == "none" {
            if let Some(record) = existing {
                self.forget(&record.id);
            }
            return Ok(());
        }
        let name = self.options.bridge.clone();
        let netlink = self.netlink().await?;
        let link_address = match netlink.index_of(&name).await.map_err(net_error)? {
            Some(index) => netlink
                .addresses(index)
                .await
                .map_err(net_error)?
                .into_iter()
                .next(),
            None => None,
        };
        let address = match (self.options.bip, link_address, &existing) {
            (Some(bip), _, _) => bip,
            (None, Some(address), _) => address,
            (None, None, Some(record)) if record.interface == name && record.subnet.is_some() => {
                let subnet = record.subnet.expect("subnet");
                let gateway = record
                    .gateway
                    .unwrap_or_else(|| network::ipam::first_host(&subnet));
                Ipv4Net::new(gateway, subnet.prefix_len())
                    .map_err(|e| Error::internal(e.to_string()))?
            }
            _ => {
                let others: Vec<Ipv4Net> = self
                    .all()
                    .iter()
                    .filter(|n| n.name != "bridge")
                    .filter_map(|n| n.subnet)
                    .collect();
                let mut taken = others;
                taken.extend(netlink.routed_subnets().await.unwrap_or_default());
                let subnet =
                    network::ipam::pick_subnet(&self.options.pools, &taken).map_err(net_error)?;
                Ipv4Net::new(network::ipam::first_host(&subnet), subnet.prefix_len())
                    .map_err(|e| Error::internal(e.to_string()))?
            }
        };
        let mut options = BTreeMap::from([
            (OPTION_DEFAULT_BRIDGE.to_string(), "true".to_string()),
            (OPTION_ICC.to_string(), self.options.icc.to_string()),
            (OPTION_MASQUERADE.to_string(), "true".to_string()),
            (
                "com.docker.network.bridge.host_binding_ipv4".to_string(),
                "0.0.0.0".to_string(),
            ),
            (OPTION_BRIDGE_NAME.to_string(), name.clone()),
        ]);
        options.insert(
            OPTION_MTU.to_string(),
            self.options.mtu.unwrap_or(1500).to_string(),
        );
        let record = NetworkRecord {
            id: existing
                .as_ref()
                .map(|r| r.id.clone())
                .unwrap_or_else(new_id),
            name: "bridge".into(),
            driver: "bridge".into(),
            created: existing
                .as_ref()
                .map(|r| r.created.clone())
                .unwrap_or_else(now_rfc3339),
            internal: false,
            attachable: false,
            subnet: Some(address.trunc()),
            gateway: Some(address.addr()),
            ip_range: None,
            user_subnet: false,
            user_gateway: false,
            interface: name,
            mtu: self.options.mtu,
            icc: self.options.icc,
            masquerade: true,
            options,
            labels: HashMap::new(),
            ipam_options: HashMap::new(),
        };
        self.plumb_bridge(&record, false).await?;
        // Unchanged on most starts: no rewrite (and no fsync) then.
        if existing.as_ref() != Some(&record) {
            self.save(&record)?;
        }
        self.insert(record);
        Ok(())
    }

    /// The whole firewall table from the networks and the published ports of the running
    /// containers, and the accept rules in the FORWARD chain, in one transaction (daemon start:
    /// stale elements of a crashed run go; each nft transaction costs ~10 ms of the start).
    pub(crate) async fn rebuild_firewall(&self, ports: Vec<network::firewall::PortForward>) {
        let Some(firewall) = self.firewall.clone() else {
            return;
        };
        let policies: Vec<BridgePolicy> = self.all().iter().filter_map(|n| n.policy()).collect();
        let bridges = self.bridge_interfaces();
        let _guard = self.firewall_lock.lock().await;
        let outcome = tokio::task::spawn_blocking(move || {
            let table = firewall.rebuild(&policies, &ports);
            let Some(accepts) = forward_accepts(&firewall, &bridges) else {
                return (network::firewall::apply(&table), Ok(()));
            };
            let mut both = table.clone();
            both.objects
                .to_mut()
                .extend(accepts.objects.iter().cloned());
            if network::firewall::apply(&both).is_ok() {
                return (Ok(()), Ok(()));
            }
            // The FORWARD chain may have changed since it was listed: one at a time.
            (
                network::firewall::apply(&table),
                network::firewall::apply(&accepts),
            )
        })
        .await;
        match outcome {
            Ok((table, accepts)) => {
                if let Err(error) = table {
                    tracing::error!("nftables: {error}");
                }
                if let Err(error) = accepts {
                    tracing::warn!("accept rules in ip filter FORWARD: {error}");
                }
            }
            Err(error) => tracing::error!("nftables: {error}"),
        }
    }
}

/// The batch that refreshes this daemon's accept rules in `ip filter FORWARD`, from its
/// current listing; None when there is no such chain. Blocking (runs nft).
fn forward_accepts(
    firewall: &Firewall,
    bridges: &[String],
) -> Option<nftables::schema::Nftables<'static>> {
    let listing = network::firewall::list_forward_chain()?;
    firewall.forward_accepts(&listing, bridges)
}

/// A parsed `POST /networks/create`.
fn requested_ipam(request: &NetworkCreateRequest) -> Result<Option<network::ipam::ValidConfig>> {
    let configs = request
        .ipam
        .as_ref()
        .and_then(|i| i.config.clone())
        .unwrap_or_default();
    let mut valid = None;
    for config in &configs {
        let requested = network::ipam::RequestedConfig {
            subnet: config.subnet.clone(),
            ip_range: config.ip_range.clone(),
            gateway: config.gateway.clone(),
        };
        if config.subnet.as_deref().is_none_or(str::is_empty) {
            if config.gateway.as_deref().is_some_and(|g| !g.is_empty())
                || config.ip_range.as_deref().is_some_and(|r| !r.is_empty())
            {
                return Err(Error::invalid(
                    "invalid network config:\nno subnet specified for the gateway or ip-range",
                ));
            }
            continue;
        }
        let checked = network::ipam::validate(&requested).map_err(net_error)?;
        if valid.is_some() {
            return Err(Error::invalid("berth supports one IPv4 subnet per network"));
        }
        valid = Some(checked);
    }
    Ok(valid)
}

fn parse_bool_option(options: &HashMap<String, String>, key: &str, default: bool) -> Result<bool> {
    match options.get(key).map(String::as_str) {
        None | Some("") => Ok(default),
        Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(other) => Err(Error::invalid(format!(
            "failed to parse {key} value: {other:?}: invalid syntax"
        ))),
    }
}

/// dockerd's pattern for network names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
fn valid_network_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// An `until` filter: unix seconds, RFC 3339, or a duration before now (`10m`, `24h`).
fn parse_until(text: &str) -> Result<i64> {
    let bad = || Error::invalid(format!("invalid filter 'until={text}'"));
    if let Ok(seconds) = text.parse::<f64>() {
        return Ok(seconds as i64);
    }
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(time.timestamp());
    }
    let (number, unit) = text.split_at(
        text.find(|c: char| c.is_ascii_alphabetic())
            .ok_or_else(bad)?,
    );
    let number: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(bad()),
    };
    Ok(chrono::Utc::now().timestamp() - seconds as i64)
}

/// Filters of `GET /networks` and `POST /networks/prune`.
pub type NetworkFilters = HashMap<String, Vec<String>>;

fn label_matches(labels: &HashMap<String, String>, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((key, value)) => labels.get(key).is_some_and(|v| v == value),
        None => labels.contains_key(filter),
    }
}

impl Engine {
    /// `POST /networks/create`: returns the id.
    pub async fn create_network(&self, request: NetworkCreateRequest) -> Result<String> {
        let networks = &self.networks;
        let _change = networks.change.lock().await;
        let name = request.name.trim().to_string();
        if name.is_empty() {
            return Err(Error::invalid("network name must not be empty"));
        }
        if !valid_network_name(&name) {
            return Err(Error::invalid(format!(
                "invalid network name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        if matches!(name.as_str(), "host" | "none" | "bridge") && networks.find(&name).is_ok() {
            return Err(Error::new(
                types::ErrorKind::PermissionDenied,
                format!("operation is not permitted on predefined {name} network "),
            ));
        }
        if networks.all().iter().any(|n| n.name == name) {
            return Err(Error::conflict(format!(
                "network with name {name} already exists"
            )));
        }
        let driver = request
            .driver
            .clone()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "bridge".into());
        match driver.as_str() {
            "bridge" | "macvlan" => {}
            "host" | "null" => {
                return Err(Error::new(
                    types::ErrorKind::PermissionDenied,
                    format!("only one instance of \"{driver}\" network is allowed"),
                ));
            }
            other => {
                return Err(Error::not_found(format!("plugin \"{other}\" not found")));
            }
        }
        if request.enable_ipv6.unwrap_or(false) {
            return Err(Error::new(
                types::ErrorKind::Unsupported,
                "IPv6 networks are not supported by berth yet",
            ));
        }
        let options: HashMap<String, String> = request.options.clone().unwrap_or_default();
        let ipam = requested_ipam(&request)?;
        let taken = networks.taken_subnets(false).await;
        let (subnet, gateway, ip_range, user_subnet, user_gateway) = match ipam {
            Some(config) => {
                if taken
                    .iter()
                    .any(|t| network::ipam::overlaps(t, &config.subnet))
                {
                    return Err(Error::new(
                        types::ErrorKind::PermissionDenied,
                        "invalid pool request: Pool overlaps with other one on this address space",
                    ));
                }
                (
                    config.subnet,
                    config.gateway,
                    config.ip_range,
                    true,
                    config.gateway.is_some(),
                )
            }
            None => {
                let taken = networks.taken_subnets(true).await;
                let subnet = network::ipam::pick_subnet(&networks.options.pools, &taken)
                    .map_err(net_error)?;
                (subnet, None, None, false, false)
            }
        };
        let gateway = Some(gateway.unwrap_or_else(|| network::ipam::first_host(&subnet)));
        let id = new_id();
        let mtu = match options.get(OPTION_MTU) {
            Some(text) => Some(
                text.parse::<u32>()
                    .map_err(|_| Error::invalid(format!("invalid MTU value {text:?}")))?,
            ),
            None => None,
        };
        let interface = match driver.as_str() {
            "bridge" => {
                let name = options
                    .get(OPTION_BRIDGE_NAME)
                    .cloned()
                    .unwrap_or_else(|| format!("br-{}", &id[..12]));
                if name.len() > 15 {
                    return Err(Error::invalid(format!(
                        "bridge name {name} is longer than 15 characters"
                    )));
                }
                if networks
                    .all()
                    .iter()
                    .any(|n| n.driver == "bridge" && n.interface == name)
                {
                    return Err(Error::conflict(format!(
                        "bridge name {name} is already in use by another network"
                    )));
                }
                name
            }
            _ => {
                let parent = options
                    .get("parent")
                    .cloned()
                    .filter(|p| !p.is_empty())
                    .ok_or_else(|| {
                        Error::invalid(
                            "macvlan networks need a parent interface: -o parent=<interface>",
                        )
                    })?;
                let netlink = networks.netlink().await?;
                if netlink
                    .index_of(&parent)
                    .await
                    .map_err(net_error)?
                    .is_none()
                {
                    return Err(Error::invalid(format!(
                        "-o parent interface was not found on the host: {parent}"
                    )));
                }
                if let Some(mode) = options.get("macvlan_mode").filter(|m| *m != "bridge") {
                    return Err(Error::invalid(format!(
                        "berth supports only the bridge mode of macvlan, not {mode}"
                    )));
                }
                parent
            }
        };
        let record = NetworkRecord {
            id: id.clone(),
            name: name.clone(),
            driver: driver.clone(),
            created: now_rfc3339(),
            internal: request.internal.unwrap_or(false),
            attachable: request.attachable.unwrap_or(false),
            subnet: Some(subnet),
            gateway,
            ip_range,
            user_subnet,
            user_gateway,
            interface,
            mtu,
            icc: parse_bool_option(&options, OPTION_ICC, true)?,
            masquerade: parse_bool_option(&options, OPTION_MASQUERADE, true)?,
            options: options.into_iter().collect(),
            labels: request.labels.clone().unwrap_or_default(),
            ipam_options: request
                .ipam
                .as_ref()
                .and_then(|i| i.options.clone())
                .unwrap_or_default(),
        };
        if driver == "bridge" {
            networks.plumb_bridge(&record, true).await?;
        }
        if let Err(error) = networks.save(&record) {
            self.unplumb(&record).await;
            return Err(error);
        }
        networks.insert(record);
        if driver == "bridge" {
            networks.refresh_forward_accepts().await;
        }
        self.events.publish(
            EventMessageTypeEnum::NETWORK,
            "create",
            &id,
            HashMap::from([("name".to_string(), name), ("type".to_string(), driver)]),
        );
        Ok(id)
    }

    /// Removes a network's link and firewall elements.
    async fn unplumb(&self, record: &NetworkRecord) {
        if record.driver != "bridge" {
            return;
        }
        if let Some(policy) = record.policy()
            && let Err(error) = self.networks.apply(|f| f.remove_bridge(&policy)).await
        {
            tracing::warn!("firewall of network {}: {error}", record.name);
        }
        if let Ok(netlink) = self.networks.netlink().await
            && let Err(error) = netlink.delete_by_name(&record.interface).await
        {
            tracing::warn!("delete {}: {error}", record.interface);
        }
    }

    /// The containers attached to a network right now: (container id, name, endpoint).
    pub(crate) async fn network_endpoints(
        &self,
        network_id: &str,
    ) -> Vec<(String, String, crate::sandbox::Endpoint)> {
        let mut out = Vec::new();
        for entry in self.entries() {
            let record = entry.record.lock().await;
            if !record.state.status.is_running() {
                continue;
            }
            for endpoint in &record.network.endpoints {
                if endpoint.network_id == network_id && endpoint.address.is_some() {
                    out.push((record.id.clone(), record.name.clone(), endpoint.clone()));
                }
            }
        }
        out
    }

    /// `GET /networks/{id}`.
    pub async fn inspect_network(&self, name_or_id: &str) -> Result<NetworkInspect> {
        let record = self.networks.find(name_or_id)?;
        let summary = record.summary();
        let mut containers = HashMap::new();
        for (id, name, endpoint) in self.network_endpoints(&record.id).await {
            containers.insert(
                id,
                EndpointResource {
                    name: Some(name),
                    endpoint_id: Some(endpoint.endpoint_id.clone()),
                    mac_address: Some(endpoint.mac.clone().unwrap_or_default()),
                    ipv4_address: endpoint
                        .address
                        .map(|a| format!("{a}/{}", record.prefix_len())),
                    ipv6_address: Some(String::new()),
                },
            );
        }
        Ok(NetworkInspect {
            name: summary.name,
            id: summary.id,
            created: summary.created,
            scope: summary.scope,
            driver: summary.driver,
            enable_ipv4: summary.enable_ipv4,
            enable_ipv6: summary.enable_ipv6,
            ipam: summary.ipam,
            internal: summary.internal,
            attachable: summary.attachable,
            ingress: summary.ingress,
            config_from: summary.config_from,
            config_only: summary.config_only,
            options: summary.options,
            labels: summary.labels,
            peers: None,
            containers: Some(containers),
            services: None,
            status: None,
        })
    }

    /// `GET /networks`.
    pub async fn list_networks(&self, filters: &NetworkFilters) -> Result<Vec<NetworkSummary>> {
        for key in filters.keys() {
            if !matches!(
                key.as_str(),
                "driver" | "id" | "label" | "name" | "scope" | "type" | "dangling"
            ) {
                return Err(Error::invalid(format!("invalid filter '{key}'")));
            }
        }
        let mut records = self.networks.all();
        records.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out = Vec::new();
        for record in records {
            if !self.network_matches(&record, filters).await? {
                continue;
            }
            out.push(record.summary());
        }
        Ok(out)
    }

    async fn network_matches(
        &self,
        record: &NetworkRecord,
        filters: &NetworkFilters,
    ) -> Result<bool> {
        for (key, values) in filters {
            let mut any = false;
            for value in values {
                let hit = match key.as_str() {
                    "driver" => record.driver == *value,
                    "id" => record.id.starts_with(value.as_str()),
                    "name" => record.name.contains(value.as_str()),
                    "label" => label_matches(&record.labels, value),
                    "scope" => value == "local",
                    "type" => match value.as_str() {
                        "custom" => !record.is_predefined(),
                        "builtin" => record.is_predefined(),
                        other => {
                            return Err(Error::invalid(format!(
                                "invalid filter: 'type'='{other}'"
                            )));
                        }
                    },
                    "dangling" => {
                        let dangling = match value.as_str() {
                            "true" | "1" => true,
                            "false" | "0" => false,
                            other => {
                                return Err(Error::invalid(format!(
                                    "invalid filter 'dangling={other}'"
                                )));
                            }
                        };
                        let unused =
                            !record.is_predefined() && !self.network_in_use(&record.id).await;
                        unused == dangling
                    }
                    _ => true,
                };
                any |= hit;
            }
            if !any {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Takes `change` together with a snapshot of every container's endpoints. A container in
    /// the middle of an operation holds its record's lock and may wait for `change` (start and
    /// stop take the record, then `change`): waiting for its record while holding `change`
    /// would deadlock, so when a record is busy `change` is let go and both are tried again.
    async fn lock_change_with_endpoints(
        &self,
    ) -> (tokio::sync::MutexGuard<'_, ()>, Vec<ContainerEndpoints>) {
        loop {
            let change = self.networks.change.lock().await;
            let mut snapshot = Vec::new();
            let mut busy = false;
            for entry in self.entries() {
                let Ok(record) = entry.record.try_lock() else {
                    busy = true;
                    break;
                };
                snapshot.push(ContainerEndpoints {
                    id: record.id.clone(),
                    name: record.name.clone(),
                    running: record.state.status.is_running(),
                    endpoints: record.network.endpoints.clone(),
                });
            }
            if !busy {
                return (change, snapshot);
            }
            drop(change);
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Whether any container (running or not) is configured on the network.
    async fn network_in_use(&self, network_id: &str) -> bool {
        for entry in self.entries() {
            let record = entry.record.lock().await;
            if record
                .network
                .endpoints
                .iter()
                .any(|e| e.network_id == network_id)
            {
                return true;
            }
        }
        false
    }

    /// `DELETE /networks/{id}`.
    pub async fn remove_network(&self, name_or_id: &str) -> Result<()> {
        let (_change, containers) = self.lock_change_with_endpoints().await;
        self.remove_network_locked(name_or_id, &containers).await
    }

    /// Removes a network, `change` held; `containers` is the endpoints snapshot taken with it.
    async fn remove_network_locked(
        &self,
        name_or_id: &str,
        containers: &[ContainerEndpoints],
    ) -> Result<()> {
        let record = self.networks.find(name_or_id)?;
        if record.is_predefined() {
            return Err(Error::new(
                types::ErrorKind::PermissionDenied,
                format!(
                    "{} is a pre-defined network and cannot be removed",
                    record.name
                ),
            ));
        }
        let endpoints: Vec<&ContainerEndpoints> = containers
            .iter()
            .filter(|c| c.running && c.active_on(&record.id))
            .collect();
        if !endpoints.is_empty() {
            let list = endpoints
                .iter()
                .map(|c| format!("name:{:?} id:{:?}", c.name, &c.id[..12]))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(Error::new(
                types::ErrorKind::PermissionDenied,
                format!(
                    "error while removing network: network {} has active endpoints ({list})",
                    record.name
                ),
            ));
        }
        self.unplumb(&record).await;
        self.networks.forget(&record.id);
        if record.driver == "bridge" {
            self.networks.refresh_forward_accepts().await;
        }
        self.events.publish(
            EventMessageTypeEnum::NETWORK,
            "destroy",
            &record.id,
            HashMap::from([
                ("name".to_string(), record.name.clone()),
                ("type".to_string(), record.driver.clone()),
            ]),
        );
        Ok(())
    }

    /// `POST /networks/prune`: the names of the networks removed.
    pub async fn prune_networks(&self, filters: &NetworkFilters) -> Result<Vec<String>> {
        for key in filters.keys() {
            if !matches!(key.as_str(), "until" | "label" | "label!") {
                return Err(Error::invalid(format!("invalid filter '{key}'")));
            }
        }
        let until = match filters.get("until").and_then(|v| v.first()) {
            Some(text) => Some(parse_until(text)?),
            None => None,
        };
        let (_change, containers) = self.lock_change_with_endpoints().await;
        let mut removed = Vec::new();
        for record in self.networks.all() {
            if record.is_predefined() || containers.iter().any(|c| c.configured_on(&record.id)) {
                continue;
            }
            if let Some(labels) = filters.get("label")
                && !labels.iter().all(|l| label_matches(&record.labels, l))
            {
                continue;
            }
            if let Some(labels) = filters.get("label!")
                && labels.iter().any(|l| label_matches(&record.labels, l))
            {
                continue;
            }
            if let Some(until) = until {
                let created = chrono::DateTime::parse_from_rfc3339(&record.created)
                    .map(|t| t.timestamp())
                    .unwrap_or(0);
                if created >= until {
                    continue;
                }
            }
            if self
                .remove_network_locked(&record.id, &containers)
                .await
                .is_ok()
            {
                removed.push(record.name);
            }
        }
        removed.sort();
        Ok(removed)
    }

    /// `POST /networks/{id}/connect`.
    pub async fn connect_network(
        self: &Arc<Self>,
        name_or_id: &str,
        container: &str,
        settings: Option<EndpointSettings>,
    ) -> Result<()> {
        let network = self.networks.find(name_or_id)?;
        let entry = self.find(container)?;
        // The record, then `change`: the order start and stop take them in.
        let mut record = entry.record.lock().await;
        let _change = self.networks.change.lock().await;
        crate::sandbox::check_connectable(&record, &network)?;
        let endpoint =
            crate::sandbox::endpoint_from_settings(&network, settings.as_ref(), &record)?;
        if record.state.status == Status::Running || record.state.status == Status::Paused {
            self.attach_live(&mut record, endpoint).await?;
        } else {
            record.network.endpoints.push(endpoint);
        }
        record.save(&self.config.containers_root())?;
        self.events.publish(
            EventMessageTypeEnum::NETWORK,
            "connect",
            &network.id,
            HashMap::from([
                ("container".to_string(), record.id.clone()),
                ("name".to_string(), network.name.clone()),
                ("type".to_string(), network.driver.clone()),
            ]),
        );
        Ok(())
    }

    /// `POST /networks/{id}/disconnect`.
    pub async fn disconnect_network(
        &self,
        name_or_id: &str,
        container: &str,
        force: bool,
    ) -> Result<()> {
        let network = self.networks.find(name_or_id);
        let entry = self.find(container)?;
        // The record, then `change`: the order start and stop take them in.
        let mut record = entry.record.lock().await;
        let _change = self.networks.change.lock().await;
        let network = match network {
            Ok(network) => network,
            Err(_) if force => {
                // dockerd lets a forced disconnect clean up a network that is gone.
                let name = name_or_id.to_string();
                record
                    .network
                    .endpoints
                    .retain(|e| e.network_name != name && e.network_id != name);
                record.save(&self.config.containers_root())?;
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        let position = record
            .network
            .endpoints
            .iter()
            .position(|e| e.network_id == network.id)
            .ok_or_else(|| {
                Error::new(
                    types::ErrorKind::PermissionDenied,
                    format!(
                        "container {} is not connected to network {}",
                        record.id, network.name
                    ),
                )
            })?;
        let endpoint = record.network.endpoints.remove(position);
        if record.state.status.is_running() {
            self.detach_endpoint(&record.id, &endpoint).await;
        }
        // A network mode naming this network stays, as dockerd keeps it: a later start
        // without that network fails as it would there.
        record.save(&self.config.containers_root())?;
        if record.state.status.is_running() {
            let _ = crate::sandbox::rewrite_hosts(&self.config, &record, &self.networks);
        }
        self.events.publish(
            EventMessageTypeEnum::NETWORK,
            "disconnect",
            &network.id,
            HashMap::from([
                ("container".to_string(), record.id.clone()),
                ("name".to_string(), network.name.clone()),
                ("type".to_string(), network.driver.clone()),
            ]),
        );
        Ok(())
    }

    /// The default network mode of this daemon: bridge, or none when the default bridge is off.
    pub(crate) fn default_network(&self) -> &'static str {
        if self.networks.options.bridge == "none" {
            "none"
        } else {
            "bridge"
        }
    }
}

/// One container's endpoints, as [`Engine::lock_change_with_endpoints`] saw them.
struct ContainerEndpoints {
    id: String,
    name: String,
    running: bool,
    endpoints: Vec<crate::sandbox::Endpoint>,
}

impl ContainerEndpoints {
    /// Configured on the network (running or not).
    fn configured_on(&self, network_id: &str) -> bool {
        self.endpoints.iter().any(|e| e.network_id == network_id)
    }

    /// Holding an address on the network.
    fn active_on(&self, network_id: &str) -> bool {
        self.endpoints
            .iter()
            .any(|e| e.network_id == network_id && e.address.is_some())
    }
}
